//! Squashing: merging a version's adapters into its weights as a new base version.
//!
//! Each adapted weight becomes `W + scale·B·A`, stored in the weight's own dtype, so a Q4_1
//! model stays Q4_1. Requantizing rounds the merged weight, which can undo part of a small
//! update, so the squash measures what it changed: held-out perplexity and the lineage's facts
//! before and after.

use std::collections::HashMap;
use std::time::Instant;

use candle_core::Device;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use strata_model::load::LoadedModel;
use strata_model::{GgmlType, media};
use strata_runtime::engine::Engine;
use strata_runtime::model::linear::{encode_tensor, float_tensor};
use strata_runtime::train::adapter::is_adapter_tensor;
use strata_store::{Descriptor, Manifest, Reference, Store};

use crate::error::{LearnError, Result};
use crate::gate;
use crate::heldout::{HeldOut, PerplexityProbe};
use crate::learn::parent_adapters;
use crate::lineage;

/// The figures of a squash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SquashReport {
    /// Weights merged with an adapter.
    pub merged: usize,
    /// Held-out perplexity with the adapters.
    pub perplexity_before: f64,
    /// Held-out perplexity of the merged weights.
    pub perplexity_after: f64,
    /// Lineage facts answered with the adapters.
    pub facts_before: usize,
    /// Lineage facts answered by the merged weights.
    pub facts_after: usize,
    /// Lineage facts asked.
    pub facts_total: usize,
    /// Wall time.
    pub seconds: f64,
}

/// Merges the adapters of the version `reference` names and moves the tag to the result.
pub fn squash(
    store: &Store,
    reference: &Reference,
    heldout_dir: Option<&std::path::Path>,
) -> Result<(Descriptor, SquashReport)> {
    let started = Instant::now();
    let parent_descriptor = store.resolve(reference)?;
    let versions = lineage::lineage(store, &parent_descriptor.digest)?;
    let parent = &versions[0];
    let by_digest = Reference::digested(&reference.name, parent.digest.clone())?;
    let loaded = LoadedModel::open(store, &by_digest)?;
    if loaded.config.strata.routes.is_some() {
        return Err(LearnError::Version {
            reference: reference.to_string(),
            reason: "its lessons' adapters run only on messages about each lesson, and merging \
                     them into the weights would run every lesson on every message; squash \
                     applies to adapters that already run always, and a version with lessons \
                     needs no squashing to keep inference cost flat"
                .to_string(),
        });
    }
    let Some(adapters) = parent_adapters(&loaded)? else {
        return Err(LearnError::Version {
            reference: reference.to_string(),
            reason: "it has no adapters to squash; `strata log` shows its lineage".to_string(),
        });
    };

    let device = Device::Cpu;
    let scale = adapters.config.scale();
    let mut merged: HashMap<String, (GgmlType, Vec<usize>, Vec<u8>)> = HashMap::new();
    for entry in &adapters.entries {
        let name = format!(
            "blk.{}.{}.weight",
            entry.layer,
            entry.projection.gguf_name()
        );
        let Some(view) = loaded.tensors.get(&name) else {
            return Err(LearnError::Version {
                reference: reference.to_string(),
                reason: format!("adapter for `{name}`, which the version lacks"),
            });
        };
        let weight = float_tensor(view, &device)?;
        let update = (entry.b.matmul(&entry.a)? * scale)?;
        let bytes = encode_tensor(&(weight + update)?, view.dtype)?;
        merged.insert(name, (view.dtype, view.shape.clone(), bytes));
    }

    let engine = Engine::load(&loaded)?;
    let heldout = HeldOut::load(heldout_dir, engine.tokenizer())?;
    let probe = PerplexityProbe::new(engine.model(), &heldout, adapters.config.first_layer)?;
    let facts = lineage::facts(&versions);
    let facts_before = passed(&gate::ask_all(&engine, &facts)?);
    let perplexity_before = probe.perplexity(engine.model())?;
    drop(engine);

    let _guard = store.writer()?;
    let mut layers = Vec::with_capacity(parent.manifest.layers.len());
    for layer in &parent.manifest.layers {
        let name = layer.annotations.get(media::TENSOR_NAME);
        if name.is_some_and(|name| is_adapter_tensor(name)) {
            continue;
        }
        match name.and_then(|name| merged.get(name)) {
            Some((_, _, bytes)) => {
                let digest = store.put_blob(bytes)?;
                let mut descriptor = layer.clone();
                descriptor.digest = digest;
                descriptor.size = bytes.len() as u64;
                layers.push(descriptor);
            }
            None => layers.push(layer.clone()),
        }
    }
    let mut config = parent.config.clone();
    config.descriptor.created_at = Utc::now();
    config.modelfs.diff_ids = layers.iter().map(|layer| layer.digest.clone()).collect();
    config.strata.parent = Some(parent.digest.clone());
    config.strata.source = strata_model::config::Source {
        kind: "squash".to_string(),
        file: format!("{} adapters merged into their weights", merged.len()),
        sha256: None,
    };
    config.strata.adapter = None;
    config.strata.learning = None;
    let config_bytes = serde_json::to_vec_pretty(&config)?;
    let config_descriptor = Descriptor::new(
        media::MODEL_CONFIG_MEDIA_TYPE,
        store.put_blob(&config_bytes)?,
        config_bytes.len() as u64,
    );
    let mut manifest = Manifest::new(config_descriptor, layers);
    manifest.artifact_type = Some(media::MODEL_ARTIFACT_TYPE.to_string());
    let descriptor = store.put_manifest(&manifest)?;

    let squashed = Reference::digested(&reference.name, descriptor.digest.clone())?;
    let engine = Engine::load(&LoadedModel::open(store, &squashed)?)?;
    let facts_after = passed(&gate::ask_all(&engine, &facts)?);
    let perplexity_after = probe.perplexity(engine.model())?;

    crate::version::move_tag(store, reference, &descriptor, &parent.digest)?;
    let report = SquashReport {
        merged: merged.len(),
        perplexity_before,
        perplexity_after,
        facts_before,
        facts_after,
        facts_total: facts.len(),
        seconds: started.elapsed().as_secs_f64(),
    };
    tracing::info!(?report, digest = %descriptor.digest, "squashed adapters");
    Ok((descriptor, report))
}

fn passed(checks: &[gate::Check]) -> usize {
    checks.iter().filter(|check| check.passed).count()
}
