//! `strata eval`: teach facts one lesson at a time and print the learning figures.

use std::path::Path;

use anyhow::Context;
use strata_learning::eval::{self, Checkpoint, EvalEvent, EvalOptions, EvalReport, Score};
use strata_learning::lesson;

use crate::cli::EvalArgs;
use crate::commands::import::parse_tag_reference;
use crate::commands::learn::learn_options;
use crate::home;

/// Runs `strata eval MODEL --facts FILE`.
pub(crate) fn run(home: &Path, args: &EvalArgs) -> anyhow::Result<()> {
    let reference = parse_tag_reference(&args.model)?;
    let store = home::open_store(home)?;
    let mut facts = lesson::read_facts(&args.facts)?;
    if let Some(limit) = args.limit {
        facts.truncate(limit);
    }
    let facts_file = args
        .facts
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    if args.memory {
        return memory_only(home, &store, &reference, &facts);
    }
    let options = EvalOptions {
        facts,
        facts_file,
        every: args.every,
        learn: learn_options(&args.learning)?,
    };
    let total = options.facts.len();
    let mut taught = 0;
    let report = eval::run(&store, &reference, &options, &mut |event| match event {
        EvalEvent::Baseline => eprintln!("measuring the base model and the in-context baseline"),
        EvalEvent::Lesson(lesson) => {
            taught += 1;
            let verdict = if lesson.committed {
                "committed"
            } else {
                "rejected"
            };
            eprintln!(
                "lesson {:>2}/{total} {verdict} in {:.1} s ({} rounds, last training {:.1} s in {} steps, last gate {:.1} s): {}",
                taught,
                lesson.seconds,
                lesson.attempts,
                lesson.training_seconds,
                lesson.steps,
                lesson.gate_seconds,
                lesson.question
            );
            for failure in &lesson.failures {
                eprintln!("    {failure}");
            }
        }
        EvalEvent::Baselines(report) => eprintln!(
            "base model: exact {}, paraphrases {}, controls {}; in context: exact {}, paraphrases {}",
            percent(report.base_efficacy),
            percent(report.base_generalization),
            percent(report.base_controls),
            percent(report.in_context_efficacy),
            percent(report.in_context_generalization)
        ),
        EvalEvent::Checkpoint(checkpoint) => eprintln!("{}", checkpoint_row(&checkpoint)),
    })?;
    print_report(&report);
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Runs `strata eval MODEL --facts FILE --memory`.
fn memory_only(
    home: &Path,
    store: &strata_store::Store,
    reference: &strata_store::Reference,
    facts: &[strata_learning::Fact],
) -> anyhow::Result<()> {
    let engine = crate::live::load_engine(home, store, reference)?;
    let embedder = crate::embedding::text_embedder(store)?;
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let scratch = format!("{}-eval-{seconds}", reference.name);
    let controls = strata_learning::lesson::default_controls();
    eprintln!(
        "storing {} facts in a scratch memory and asking with recall",
        facts.len()
    );
    let report =
        strata_learning::memory_eval::run(store, &engine, &embedder, &scratch, facts, &controls)?;
    println!("| memory alone | figure |");
    println!("|---|---:|");
    println!(
        "| efficacy (exact questions) | {} |",
        percent(report.efficacy)
    );
    println!(
        "| generalization (paraphrases) | {} |",
        percent(report.generalization)
    );
    println!(
        "| exact questions that recalled their fact | {} |",
        percent(report.recalled_exact)
    );
    println!(
        "| paraphrases that recalled their fact | {} |",
        percent(report.recalled_paraphrases)
    );
    println!(
        "| controls kept (of those the model answers alone) | {} |",
        percent(report.controls_kept)
    );
    println!(
        "| controls that recalled any fact | {} |",
        report.controls_with_recall
    );
    println!(
        "| ms to embed and store one fact | {:.1} |",
        report.remember_ms
    );
    println!(
        "| ms to recall for one question | {:.1} |",
        report.recall_ms
    );
    eprintln!(
        "the facts stay in collection `{}`; `strata collection rm {}` removes it",
        report.collection, report.collection
    );
    Ok(())
}

fn percent(score: Score) -> String {
    format!(
        "{:.1}% ({}/{})",
        score.ratio() * 100.0,
        score.passed,
        score.total
    )
}

fn checkpoint_row(checkpoint: &Checkpoint) -> String {
    format!(
        "| {} | {} | {} | {} | {} | {} | {:+.2}% | {:.1} | {:.1} |",
        checkpoint.lessons,
        checkpoint.committed,
        percent(checkpoint.efficacy),
        percent(checkpoint.generalization),
        percent(checkpoint.retention),
        percent(checkpoint.controls_kept),
        checkpoint.perplexity_change * 100.0,
        checkpoint.seconds_per_lesson,
        checkpoint.training_seconds,
    )
}

fn print_report(report: &EvalReport) {
    println!("lessons committed to {}", report.tag);
    println!();
    println!(
        "| lessons | committed | efficacy (last block) | generalization (last block) | retention (all so far) | controls kept | perplexity change | s/lesson | training s/lesson |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for checkpoint in &report.checkpoints {
        println!("{}", checkpoint_row(checkpoint));
    }
    println!();
    println!("| baseline | exact question | paraphrases |");
    println!("|---|---:|---:|");
    println!(
        "| base model, nothing taught | {} | {} |",
        percent(report.base_efficacy),
        percent(report.base_generalization)
    );
    println!(
        "| statement in the system prompt (in context) | {} | {} |",
        percent(report.in_context_efficacy),
        percent(report.in_context_generalization)
    );
    println!();
    println!(
        "base model: controls {} answered, held-out perplexity {:.3}",
        percent(report.base_controls),
        report.base_perplexity
    );
}
