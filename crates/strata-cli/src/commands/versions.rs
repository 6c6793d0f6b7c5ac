//! `strata log`, `strata diff`, `strata tag` and `strata rollback`: a model's versions.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use candle_core::Device;
use strata_learning::lineage::{self, Version};
use strata_learning::routing::Router;
use strata_model::load::LoadedModel;
use strata_model::{TensorView, media};
use strata_runtime::model::linear::float_tensor;
use strata_store::{Reference, Store};

use crate::cli::{DiffArgs, LogArgs, RollbackArgs, TagArgs};
use crate::commands::import::parse_tag_reference;
use crate::home;

/// Runs `strata log MODEL`.
pub(crate) fn log(home: &Path, args: &LogArgs) -> anyhow::Result<()> {
    let reference = Reference::parse(&args.model)?;
    let store = home::open_store(home)?;
    let head = store
        .resolve(&reference)
        .with_context(|| format!("cannot find `{reference}`; see `strata list`"))?;
    let versions = lineage::lineage(&store, &head.digest)?;
    for (index, version) in versions.iter().enumerate() {
        print_version(index, version);
    }
    Ok(())
}

fn print_version(index: usize, version: &Version) {
    let created = version
        .config
        .descriptor
        .created_at
        .format("%Y-%m-%d %H:%M:%S UTC");
    let marker = if index == 0 { " (current)" } else { "" };
    println!("version {}{marker}  ~{index}", version.digest);
    println!("  created   {created}");
    match &version.record {
        Some(record) => {
            let gate = &record.gate;
            println!(
                "  lesson    {} ({} facts)",
                record.lesson.summary(),
                record.lesson.facts.len()
            );
            println!(
                "  training  {} steps on {} examples, loss {:.3} → {:.3}, {:.1} s",
                record.training.steps,
                record.training.examples,
                record.training.first_loss,
                record.training.final_loss,
                record.training.seconds
            );
            println!(
                "  gate      lesson {}/{}, earlier {}/{}, controls {}/{}, perplexity {:.3} → {:.3} ({:+.2}%)",
                gate.lesson_passed,
                gate.lesson_total,
                gate.earlier_passed,
                gate.earlier_total,
                gate.controls_passed,
                gate.controls_total,
                gate.perplexity_before,
                gate.perplexity_after,
                gate.perplexity_change() * 100.0
            );
        }
        None => {
            let source = &version.config.strata.source;
            println!("  source    {} {}", source.kind, source.file);
        }
    }
    println!();
}

/// Runs `strata tag SOURCE TARGET`.
pub(crate) fn tag(home: &Path, args: &TagArgs) -> anyhow::Result<()> {
    let source = Reference::parse(&args.source)?;
    let target = parse_tag_reference(&args.target)?;
    let store = home::open_store(home)?;
    let descriptor = store
        .resolve(&source)
        .with_context(|| format!("cannot find `{source}`; see `strata list`"))?;
    store.set_tag(&target, &descriptor)?;
    println!("{target} → {}", descriptor.digest);
    Ok(())
}

/// Runs `strata rollback MODEL [VERSION]`.
pub(crate) fn rollback(home: &Path, args: &RollbackArgs) -> anyhow::Result<()> {
    let reference = parse_tag_reference(&args.model)?;
    let store = home::open_store(home)?;
    store
        .resolve(&reference)
        .with_context(|| format!("cannot find `{reference}`; see `strata list`"))?;
    let (before, after) = lineage::rollback(&store, &reference, &args.version)?;
    println!("{reference}: {before} → {after}");
    println!("nothing was deleted; `strata rollback {reference} {before}` undoes this");
    Ok(())
}

/// Runs `strata diff A B`.
pub(crate) fn diff(home: &Path, args: &DiffArgs) -> anyhow::Result<()> {
    let store = home::open_store(home)?;
    let left = open(&store, &args.from)?;
    let right = open(&store, &args.to)?;
    let left_layers = tensor_layers(&store, &left.manifest_digest)?;
    let right_layers = tensor_layers(&store, &right.manifest_digest)?;
    let names: std::collections::BTreeSet<&String> =
        left_layers.keys().chain(right_layers.keys()).collect();

    let mut same = 0;
    for name in names {
        match (left_layers.get(name), right_layers.get(name)) {
            (Some(a), Some(b)) if a == b => same += 1,
            (Some(_), Some(_)) => {
                let norm = difference_norm(left.tensors.get(name), right.tensors.get(name))?;
                println!("changed  {name}  ‖B−A‖ = {norm:.4}");
            }
            (None, Some(_)) => println!(
                "added    {name}  ‖B‖ = {:.4}",
                norm(right.tensors.get(name))?
            ),
            (Some(_), None) => println!(
                "removed  {name}  ‖A‖ = {:.4}",
                norm(left.tensors.get(name))?
            ),
            (None, None) => {}
        }
    }
    println!("{same} tensors identical");
    print_adapter_updates("A", &left)?;
    print_adapter_updates("B", &right)?;
    print_lesson_updates(&left, &right)?;
    Ok(())
}

/// Loads `MODEL` or `MODEL~N`, the version N steps back in the lineage of `MODEL`.
fn open(store: &Store, text: &str) -> anyhow::Result<LoadedModel> {
    let (model, back) = match text.rsplit_once('~') {
        Some((model, steps)) => (model, Some(steps)),
        None => (text, None),
    };
    let mut reference = Reference::parse(model)?;
    if let Some(steps) = back {
        let head = store
            .resolve(&reference)
            .with_context(|| format!("cannot find `{reference}`; see `strata list`"))?;
        let versions = lineage::lineage(store, &head.digest)?;
        let version = lineage::pick_version(&versions, &format!("~{steps}"))?;
        reference = Reference::digested(&reference.name, version.digest.clone())?;
    }
    LoadedModel::open(store, &reference).with_context(|| format!("cannot load `{text}`"))
}

/// Tensor name to blob digest, for every tensor layer of a manifest.
fn tensor_layers(
    store: &Store,
    digest: &strata_store::Digest,
) -> anyhow::Result<BTreeMap<String, strata_store::Digest>> {
    let manifest = store.read_manifest(digest)?;
    Ok(manifest
        .layers
        .iter()
        .filter_map(|layer| {
            let name = layer.annotations.get(media::TENSOR_NAME)?;
            Some((name.clone(), layer.digest.clone()))
        })
        .collect())
}

fn norm(view: Option<&TensorView>) -> anyhow::Result<f64> {
    let Some(view) = view else { return Ok(0.0) };
    let tensor = float_tensor(view, &Device::Cpu)?;
    Ok(f64::from(
        tensor.sqr()?.sum_all()?.to_scalar::<f32>()?.sqrt(),
    ))
}

fn difference_norm(left: Option<&TensorView>, right: Option<&TensorView>) -> anyhow::Result<f64> {
    let (Some(left), Some(right)) = (left, right) else {
        return Ok(0.0);
    };
    if left.shape != right.shape {
        bail!(
            "`{}` changed shape from {:?} to {:?}",
            left.name,
            left.shape,
            right.shape
        );
    }
    let left = float_tensor(left, &Device::Cpu)?;
    let right = float_tensor(right, &Device::Cpu)?;
    let difference = (right - left)?;
    Ok(f64::from(
        difference.sqr()?.sum_all()?.to_scalar::<f32>()?.sqrt(),
    ))
}

/// Prints the size of the weight update of every lesson one version has and the other lacks.
fn print_lesson_updates(left: &LoadedModel, right: &LoadedModel) -> anyhow::Result<()> {
    let left_routes = Router::read(left)?;
    let right_routes = Router::read(right)?;
    let ids = |router: &Option<Router>| -> Vec<u32> {
        router.as_ref().map_or_else(Vec::new, |router| {
            router.lessons.iter().map(|lesson| lesson.id).collect()
        })
    };
    let (left_ids, right_ids) = (ids(&left_routes), ids(&right_routes));
    for (label, router, other) in [
        ("A", &left_routes, &right_ids),
        ("B", &right_routes, &left_ids),
    ] {
        let Some(router) = router else { continue };
        for lesson in router.lessons.iter().filter(|l| !other.contains(&l.id)) {
            let norms = lesson.adapters.update_norms()?;
            let total = total_norm(&norms);
            println!(
                "{label}: lesson {} has {} adapters (rank {}, alpha {}) and {} keys, ‖update‖ = {total:.4}",
                lesson.id,
                norms.len(),
                router.lora.rank,
                router.lora.alpha,
                lesson.keys.len()
            );
        }
    }
    Ok(())
}

/// Returns the Frobenius norm of a whole adapter set from the norms of its adapters.
fn total_norm(norms: &[(String, f64)]) -> f64 {
    norms
        .iter()
        .map(|(_, norm)| norm * norm)
        .sum::<f64>()
        .sqrt()
}

/// Prints the norm of each adapter's weight update `scale·B·A` of a version.
fn print_adapter_updates(label: &str, model: &LoadedModel) -> anyhow::Result<()> {
    let Some(adapters) = strata_learning::learn::parent_adapters(model)? else {
        return Ok(());
    };
    let norms = adapters.update_norms()?;
    let total = total_norm(&norms);
    println!(
        "{label}: {} adapters (rank {}, alpha {}), ‖update‖ = {total:.4}",
        norms.len(),
        adapters.config.rank,
        adapters.config.alpha
    );
    for (stem, norm) in norms {
        println!("  {stem}  ‖ΔW‖ = {norm:.4}");
    }
    Ok(())
}
