//! `strata bench --sessions`: restoring a saved session against prefilling its tokens, and the
//! disk cost of forks.
//!
//! Snapshots go to a scratch store in a temporary directory. It holds only a copy of the model's
//! manifest blob, which a snapshot names as its subject, so the user's store is not touched.
//! Restores read blocks that were just written, so they come from the page cache, as in
//! llama.cpp's slot restore figures.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use strata_runtime::Sequence;
use strata_runtime::engine::{Chat, Engine};
use strata_sessions::{SaveOptions, SessionName, Snapshot};
use strata_store::{Digest, Reference, Store};

use crate::cli::BenchArgs;
use crate::commands::bench::{Figure, bench_tokens, millis, print_table, write_json};
use crate::home;
use crate::live::load_engine;

/// Forks made of the first snapshot, and the tokens each adds.
const FORKS: usize = 10;
const FORK_TOKENS: usize = 50;

/// Runs `strata bench --sessions`.
pub(crate) fn run(home: &Path, args: &BenchArgs) -> anyhow::Result<()> {
    let runs = args.runs.max(1);
    let store = home::open_store(home)?;
    let engine = load_engine(home, &store, &Reference::parse(&args.model)?)?;
    let scratch_dir = tempfile::tempdir().context("cannot create a scratch directory")?;
    let scratch = Store::open(scratch_dir.path())?;
    scratch.put_blob(&store.read_blob(engine.manifest_digest())?)?;

    let mut figures = Vec::new();
    for &tokens in &args.tokens {
        figures.extend(restore_figures(&scratch, &engine, tokens, runs)?);
    }
    if let Some(&base) = args.tokens.first() {
        figures.extend(fork_figures(&scratch, &engine, base)?);
    }
    print_table(&args.model, runs, &figures)?;
    if let Some(path) = &args.json {
        write_json(path, &args.model, &figures)?;
    }
    Ok(())
}

/// Prefill, save and restore times for a snapshot of `tokens` tokens, their ratio and its size.
fn restore_figures(
    scratch: &Store,
    engine: &Engine,
    tokens: usize,
    runs: usize,
) -> anyhow::Result<Vec<Figure>> {
    let ids = bench_tokens(engine, tokens);
    let mut prefill = figure(format!("prefill {tokens}"), "ms");
    let mut sequence = None;
    for _ in 0..runs {
        let mut fresh = Sequence::new(engine.model().new_cache(tokens + 1)?);
        let started = Instant::now();
        fresh.feed(engine.model(), &ids)?;
        prefill.runs.push(millis(started.elapsed()));
        sequence = Some(fresh);
    }

    let chat = Chat::from_parts(None, Vec::new(), sequence);
    let name = SessionName::parse(&format!("bench-{tokens}"))?;
    let params = strata_runtime::SamplingParams::default();
    let mut save = figure(format!("save {tokens}"), "ms");
    for _ in 0..runs {
        let started = Instant::now();
        strata_sessions::save(
            scratch,
            &name,
            engine,
            &chat,
            &params,
            &SaveOptions::default(),
        )?;
        save.runs.push(millis(started.elapsed()));
    }

    let mut restore = figure(format!("restore {tokens}"), "ms");
    let mut bytes = 0;
    for _ in 0..runs + 1 {
        let started = Instant::now();
        let snapshot = Snapshot::open(scratch, &name)?;
        let restored = strata_sessions::restore(scratch, &snapshot, engine)?;
        let elapsed = millis(started.elapsed());
        anyhow::ensure!(
            restored.recomputed.is_none(),
            "the bench restore was recomputed"
        );
        restore.runs.push(elapsed);
        bytes = snapshot.cache_bytes();
    }
    restore.runs.remove(0);

    let ratio = prefill.median() / restore.median();
    let mut ratio_figure = figure(format!("prefill/restore {tokens}"), "x");
    ratio_figure.runs.push(ratio);
    let mut size = figure(format!("snapshot {tokens}"), "bytes");
    size.runs.push(bytes as f64);
    let mut per_token = figure(format!("bytes/token {tokens}"), "bytes");
    per_token.runs.push(bytes as f64 / tokens as f64);
    Ok(vec![prefill, save, restore, ratio_figure, size, per_token])
}

/// Bytes on disk of [`FORKS`] forks of the `base`-token snapshot, each continued by
/// [`FORK_TOKENS`] tokens, against the ideal and against full copies.
fn fork_figures(scratch: &Store, engine: &Engine, base: usize) -> anyhow::Result<Vec<Figure>> {
    let base_name = SessionName::parse(&format!("bench-{base}"))?;
    let parent = Snapshot::open(scratch, &base_name)?;
    let params = strata_runtime::SamplingParams::default();
    let mut blocks: BTreeMap<Digest, u64> = block_sizes(&parent);
    for fork in 0..FORKS {
        let restored = strata_sessions::restore(scratch, &parent, engine)?;
        let (system, messages, sequence) = restored.chat.into_parts();
        let mut sequence = sequence.context("the bench snapshot is empty")?;
        let extra: Vec<u32> = bench_tokens(engine, base + FORK_TOKENS * (fork + 2))
            .split_off(base + FORK_TOKENS * (fork + 1));
        sequence.feed(engine.model(), &extra)?;
        let chat = Chat::from_parts(system, messages, Some(sequence));
        let name = SessionName::parse(&format!("bench-fork-{fork}"))?;
        let options = SaveOptions {
            parent: Some(&parent),
            ..SaveOptions::default()
        };
        let saved = strata_sessions::save(scratch, &name, engine, &chat, &params, &options)?;
        blocks.extend(block_sizes(&saved.snapshot));
    }

    let per_token = parent.cache_bytes() as f64 / base as f64;
    let stored: u64 = blocks.values().sum();
    let ideal = per_token * (base + FORKS * FORK_TOKENS) as f64;
    let copies = per_token * (FORKS * (base + FORK_TOKENS)) as f64;
    let mut figures = Vec::new();
    for (label, value) in [
        (
            format!("{FORKS} forks of {base} +{FORK_TOKENS}: stored"),
            stored as f64,
        ),
        (
            format!("{FORKS} forks: ideal {base}+{FORKS}x{FORK_TOKENS}"),
            ideal,
        ),
        (format!("{FORKS} forks: full copies"), copies),
    ] {
        let mut entry = figure(label, "bytes");
        entry.runs.push(value);
        figures.push(entry);
    }
    let mut ratio = figure("stored/ideal".to_string(), "x");
    ratio.runs.push(stored as f64 / ideal);
    figures.push(ratio);
    Ok(figures)
}

fn block_sizes(snapshot: &Snapshot) -> BTreeMap<Digest, u64> {
    let blocks = snapshot.blocks.iter();
    blocks
        .map(|b| (b.descriptor.digest.clone(), b.descriptor.size))
        .collect()
}

fn figure(label: String, unit: &'static str) -> Figure {
    Figure {
        label,
        unit,
        runs: Vec::new(),
    }
}
