//! `strata show`: a model's config, and with `--tensors` one line per tensor.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use strata_model::{ModelConfig, media};
use strata_store::{Descriptor, Reference};

use crate::cli::ShowArgs;
use crate::commands::import::human_bytes;
use crate::home;

/// Runs `strata show MODEL [--tensors]`.
pub(crate) fn run(home: &Path, args: &ShowArgs) -> anyhow::Result<()> {
    let reference = Reference::parse(&args.model)?;
    let store = home::open_store(home)?;
    let descriptor = store
        .resolve(&reference)
        .with_context(|| format!("model `{reference}` not found; see `strata list`"))?;
    let manifest = store.read_manifest(&descriptor.digest)?;
    let config: ModelConfig = serde_json::from_slice(&store.read_blob(&manifest.config.digest)?)
        .with_context(|| format!("`{reference}`: the config blob is not a model config"))?;

    let mut out = std::io::stdout().lock();
    print_summary(&mut out, &reference, &descriptor, &config)?;
    if args.tensors {
        print_tensors(&mut out, &manifest.layers)?;
    }
    Ok(())
}

fn print_summary(
    out: &mut impl Write,
    reference: &Reference,
    descriptor: &Descriptor,
    config: &ModelConfig,
) -> anyhow::Result<()> {
    let strata = &config.strata;
    let hp = &strata.hyperparameters;
    writeln!(out, "model         {reference}")?;
    writeln!(out, "digest        {}", descriptor.digest)?;
    writeln!(out, "architecture  {:?}", strata.architecture)?;
    writeln!(out, "parameters    {}", config.config.param_size)?;
    writeln!(out, "quantization  {}", config.config.quantization)?;
    writeln!(out, "context       {}", hp.max_position_embeddings)?;
    writeln!(
        out,
        "shape         {} layers, hidden {}, ffn {}, {} heads ({} kv), head dim {}, vocab {}",
        hp.num_hidden_layers,
        hp.hidden_size,
        hp.intermediate_size,
        hp.num_attention_heads,
        hp.num_key_value_heads,
        hp.head_dim,
        hp.vocab_size
    )?;
    writeln!(
        out,
        "rope          theta {}, {:?}",
        hp.rope_theta, hp.rope_style
    )?;
    writeln!(
        out,
        "parent        {}",
        strata.parent.as_ref().map_or("-", |d| d.as_str())
    )?;
    writeln!(
        out,
        "created       {}",
        config.descriptor.created_at.to_rfc3339()
    )?;
    let sha = strata
        .source
        .sha256
        .as_ref()
        .map_or(String::new(), |d| format!(" ({d})"));
    writeln!(
        out,
        "source        {} {}{sha}",
        strata.source.kind, strata.source.file
    )?;
    if let Some(routes) = &strata.routes {
        let adapter = &routes.adapter;
        writeln!(
            out,
            "lessons       {}, each with rank {} adapters from layer {}, routed by {} at cosine {}",
            routes.lessons.len(),
            adapter.rank,
            adapter.first_layer,
            routes.embedder,
            routes.threshold
        )?;
    }
    Ok(())
}

fn print_tensors(out: &mut impl Write, layers: &[Descriptor]) -> anyhow::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "{:<28} {:<6} {:<14} {:>10}  DIGEST",
        "TENSOR", "DTYPE", "SHAPE", "BYTES"
    )?;
    for layer in layers
        .iter()
        .filter(|layer| layer.media_type == media::WEIGHT_MEDIA_TYPE)
    {
        let annotation = |key: &str| layer.annotations.get(key).map_or("?", String::as_str);
        writeln!(
            out,
            "{:<28} {:<6} {:<14} {:>10}  {}",
            annotation(media::TENSOR_NAME),
            annotation(media::TENSOR_DTYPE),
            annotation(media::TENSOR_SHAPE),
            layer.size,
            layer.digest
        )?;
    }
    let total: u64 = layers.iter().map(|layer| layer.size).sum();
    writeln!(out, "{} layers, {}", layers.len(), human_bytes(total))?;
    Ok(())
}
