//! `strata import`: bring a GGUF file or a Hugging Face directory into the store.

use std::path::Path;

use anyhow::{Context, bail};
use strata_model::import::{self, ImportOutcome};
use strata_store::{RefTarget, Reference};

use crate::cli::ImportArgs;
use crate::home;

/// Runs `strata import PATH --name NAME[:TAG]`.
pub(crate) fn run(home: &Path, args: &ImportArgs) -> anyhow::Result<()> {
    let label = args
        .path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("import");
    run_with_name(home, args, label)
}

/// Imports `args.path`, labelling the progress bar with `label`.
pub(crate) fn run_with_name(home: &Path, args: &ImportArgs, label: &str) -> anyhow::Result<()> {
    let path = &args.path;
    if path.extension().is_some_and(|extension| extension == "tar") {
        return crate::commands::registry::import_archive(home, path, &args.name);
    }
    let reference = parse_tag_reference(&args.name)?;
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot import: the path does not exist", path.display()))?;
    let store = home::open_store(home)?;

    let bar = crate::progress::bytes_bar("importing", 0);
    let mut progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    if metadata.is_dir() && path.join("modules.json").is_file() {
        return import_text_embedder(&store, path, &reference);
    }
    let outcome = if metadata.is_dir() {
        import::import_hf_dir(&store, path, &reference, &mut progress)
    } else {
        import::import_gguf(&store, path, &reference, &mut progress)
    };
    bar.finish_and_clear();
    let outcome = outcome.with_context(|| format!("{}: import failed", path.display()))?;

    print_outcome(label, &reference, &outcome);
    Ok(())
}

/// Imports a sentence-transformers folder (one with `modules.json`) as a text embedder.
fn import_text_embedder(
    store: &strata_store::Store,
    path: &Path,
    reference: &Reference,
) -> anyhow::Result<()> {
    let files = strata_embed::PackageFiles::in_dir(path);
    let imported = strata_embed::import_text_embedder(store, &files, reference)
        .with_context(|| format!("{}: import failed", path.display()))?;
    eprintln!(
        "imported text embedder {} as {reference} ({} tensors, {} new, {} already stored) {}",
        path.display(),
        imported.tensors,
        human_bytes(imported.bytes_written),
        human_bytes(imported.bytes_deduplicated),
        imported.descriptor.digest.short()
    );
    Ok(())
}

/// Parses `NAME[:TAG]`, rejecting digest references, which cannot be tagged.
pub(crate) fn parse_tag_reference(text: &str) -> anyhow::Result<Reference> {
    let reference = Reference::parse(text)?;
    if let RefTarget::Digest(_) = reference.target {
        bail!("`{text}` is a digest reference; give a name and tag such as `mymodel:v1`");
    }
    if reference.name.starts_with(strata_sessions::TAG_PREFIX) {
        let prefix = strata_sessions::TAG_PREFIX;
        bail!("`{text}`: names under `{prefix}` are kept for saved sessions; choose another");
    }
    Ok(reference)
}

fn print_outcome(label: &str, reference: &Reference, outcome: &ImportOutcome) {
    eprintln!(
        "imported {label} as {reference} ({} tensors, {} new, {} already stored) {}",
        outcome.tensors,
        human_bytes(outcome.bytes_written),
        human_bytes(outcome.bytes_deduplicated),
        outcome.descriptor.digest.short()
    );
}

/// Formats a byte count with a binary unit.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
