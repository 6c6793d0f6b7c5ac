//! `strata bench`: load time, prefill and decode speed, medians of several runs.
//!
//! The measurements follow llama-bench's: prefill feeds N prompt tokens into an empty cache in
//! one forward pass; decode generates tokens one at a time, from an empty cache or after a
//! prefilled context. Token ids are fixed pseudo-random ids, so no tokenizer work is timed.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use strata_runtime::engine::Engine;

use crate::cli::BenchArgs;
use strata_store::Reference;

use crate::home;
use crate::live::load_engine;

/// One measured figure: a label and the per-run values.
pub(crate) struct Figure {
    pub(crate) label: String,
    pub(crate) unit: &'static str,
    pub(crate) runs: Vec<f64>,
}

impl Figure {
    pub(crate) fn median(&self) -> f64 {
        let mut sorted = self.runs.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }
}

/// Runs `strata bench [MODEL]`.
pub(crate) fn run(home: &Path, args: &BenchArgs) -> anyhow::Result<()> {
    if args.sessions {
        return crate::commands::bench_sessions::run(home, args);
    }
    if let Some(url) = &args.serve {
        return crate::commands::bench_serve::run(url, args);
    }
    let runs = args.runs.max(1);
    let mut load = Figure {
        label: "load".to_string(),
        unit: "ms",
        runs: Vec::new(),
    };
    let mut engine = None;
    let store = home::open_store(home)?;
    let reference = Reference::parse(&args.model)?;
    for _ in 0..runs {
        let started = Instant::now();
        engine = Some(load_engine(home, &store, &reference)?);
        load.runs.push(millis(started.elapsed()));
    }
    let engine = engine.context("no run was made")?;

    let figures = vec![
        load,
        measure(runs, "prefill 128", || prefill(&engine, 128))?,
        measure(runs, "prefill 512", || prefill(&engine, 512))?,
        measure(runs, "decode 128", || decode(&engine, 0, 128))?,
        measure(runs, "decode 128 after 512", || decode(&engine, 512, 128))?,
    ];
    print_table(&args.model, runs, &figures)?;
    if let Some(path) = &args.json {
        write_json(path, &args.model, &figures)?;
    }
    Ok(())
}

fn measure(
    runs: usize,
    label: &str,
    mut once: impl FnMut() -> anyhow::Result<f64>,
) -> anyhow::Result<Figure> {
    once()?;
    let values = (0..runs)
        .map(|_| once())
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Figure {
        label: label.to_string(),
        unit: "tok/s",
        runs: values,
    })
}

/// Tokens per second of one forward pass over `n` tokens from an empty cache.
fn prefill(engine: &Engine, n: usize) -> anyhow::Result<f64> {
    let tokens = bench_tokens(engine, n);
    let mut cache = engine.model().new_cache(n + 1)?;
    let started = Instant::now();
    engine.model().forward(&tokens, &mut cache)?;
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Tokens per second of `n` one-token steps after a `context`-token prefill (not timed).
fn decode(engine: &Engine, context: usize, n: usize) -> anyhow::Result<f64> {
    let mut cache = engine.model().new_cache(context + n + 1)?;
    if context > 0 {
        engine
            .model()
            .forward(&bench_tokens(engine, context), &mut cache)?;
    }
    let mut token = 1;
    let started = Instant::now();
    for _ in 0..n {
        let logits = engine.model().forward(&[token], &mut cache)?;
        token = logits.argmax(0)?.to_scalar::<u32>()?;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Fixed pseudo-random token ids below the vocabulary size.
pub(crate) fn bench_tokens(engine: &Engine, n: usize) -> Vec<u32> {
    let vocab = engine.vocab_size() as u64;
    (0..n as u64)
        .map(|i| ((i * 7919 + 17) % vocab) as u32)
        .collect()
}

pub(crate) fn print_table(model: &str, runs: usize, figures: &[Figure]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "model {model}, {runs} runs, {} threads",
        rayon_threads()
    )?;
    writeln!(out, "{:<30} {:>12}  {:<6} runs", "test", "median", "unit")?;
    for figure in figures {
        let runs: Vec<String> = figure
            .runs
            .iter()
            .map(|value| format!("{value:.1}"))
            .collect();
        writeln!(
            out,
            "{:<30} {:>12.1}  {:<6} {}",
            figure.label,
            figure.median(),
            figure.unit,
            runs.join(" ")
        )?;
    }
    Ok(())
}

pub(crate) fn write_json(path: &Path, model: &str, figures: &[Figure]) -> anyhow::Result<()> {
    let rows: Vec<_> = figures
        .iter()
        .map(|f| json!({"test": f.label, "unit": f.unit, "median": f.median(), "runs": f.runs}))
        .collect();
    let document = json!({"model": model, "threads": rayon_threads(), "results": rows});
    std::fs::write(path, serde_json::to_vec_pretty(&document)?)
        .with_context(|| format!("{}: cannot write", path.display()))
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

pub(crate) fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
