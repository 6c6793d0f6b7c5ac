//! `strata learn`: one lesson from a facts file, a saved session or one pair.

use std::path::Path;

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use strata_learning::gate::GateSettings;
use strata_learning::learn::{Event, LearnOptions, Learner, Outcome};
use strata_learning::lesson::{self, Fact, Lesson, LessonSource};
use strata_learning::training::{Progress, TrainingSettings};
use strata_runtime::model::Projection;
use strata_sessions::{Snapshot, SnapshotRef};
use strata_store::Store;

use crate::cli::{LearnArgs, LearningArgs};
use crate::commands::import::parse_tag_reference;
use crate::{home, progress};

/// Runs `strata learn MODEL --facts FILE | --session NAME | --teach PAIR`.
pub(crate) fn run(home: &Path, args: &LearnArgs) -> anyhow::Result<()> {
    let reference = parse_tag_reference(&args.model)?;
    let store = home::open_store(home)?;
    let lesson = read_lesson(&store, args)?;
    let options = learn_options(&args.learning)?;
    eprintln!("lesson: {}", lesson.summary());

    let mut learner = Learner::new(store);
    let outcome = learner.learn(&reference, &lesson, &options, &mut progress_printer())?;
    print_outcome(&outcome);
    match &outcome.committed {
        Some(descriptor) => {
            println!("{reference} is now {}", descriptor.digest);
            Ok(())
        }
        None => bail!("the gate failed, so `{reference}` was not changed"),
    }
}

fn read_lesson(store: &Store, args: &LearnArgs) -> anyhow::Result<Lesson> {
    if let Some(path) = &args.facts {
        let facts = lesson::read_facts(path)?;
        let file = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(Lesson::new(facts, LessonSource::Facts { file })?);
    }
    if let Some(name) = &args.session {
        let reference = SnapshotRef::parse(name)?;
        let snapshot = Snapshot::open_ref(store, &reference)
            .with_context(|| format!("cannot read session `{name}`"))?;
        let facts = lesson::pairs_from_messages(&snapshot.config.messages);
        let source = LessonSource::Session {
            name: Some(name.clone()),
        };
        return Ok(Lesson::new(facts, source)?);
    }
    if let Some(pair) = &args.teach {
        let fact = lesson::parse_teach(pair)?;
        return Ok(Lesson::new(vec![fact], LessonSource::Teach)?);
    }
    bail!("nothing to learn: give --facts FILE, --session NAME or --teach 'QUESTION => ANSWER'")
}

/// Builds lesson settings from the command line.
pub(crate) fn learn_options(args: &LearningArgs) -> anyhow::Result<LearnOptions> {
    let mut targets = Vec::with_capacity(args.targets.len());
    for name in &args.targets {
        let Some(projection) = Projection::parse(name) else {
            bail!("unknown --targets entry `{name}`: use q, k, v, o, gate, up or down");
        };
        targets.push(projection);
    }
    if args.layers == 0 {
        bail!("--layers 0 leaves nothing to train; give 1 or more");
    }
    if !(args.lr.is_finite() && args.lr > 0.0) {
        bail!("--lr {} must be a positive number", args.lr);
    }
    let controls: Vec<Fact> = match &args.controls {
        Some(path) => lesson::read_controls(path)?,
        None => lesson::default_controls(),
    };
    // The first adapter layer depends on the model's depth, so `adapter_layers` sets it once
    // the model is loaded.
    let mut training = TrainingSettings::for_layers(args.layers);
    training.lora.rank = args.rank;
    training.lora.alpha = args.alpha;
    training.lora.targets = targets;
    training.max_steps = args.steps;
    training.optimizer.learning_rate = args.lr;
    training.optimizer.seed = args.seed;
    Ok(LearnOptions {
        training: Some(training),
        adapter_layers: Some(args.layers),
        gate: GateSettings {
            max_perplexity_increase: args.max_perplexity_increase / 100.0,
            max_control_regressions: args.max_control_regressions,
            max_forgotten: args.max_forgotten,
        },
        controls,
        heldout_dir: args.heldout.clone(),
        attempts: args.attempts.max(1),
    })
}

/// Prints lesson events to stderr, with a bar for the training steps.
pub(crate) fn progress_printer() -> impl FnMut(Event) {
    let mut bar: Option<ProgressBar> = None;
    move |event| match event {
        Event::Queued => tracing::debug!("waiting for other lessons on this model"),
        Event::Started { parent } => eprintln!("training on {parent}"),
        Event::Baseline => eprintln!("measuring the parent's answers and perplexity"),
        Event::Training(Progress::Anchors { .. }) => {}
        Event::Training(Progress::Step {
            step,
            max_steps,
            loss,
        }) => {
            let bar = bar.get_or_insert_with(|| progress::steps_bar("training", max_steps as u64));
            bar.set_position(step as u64);
            bar.set_message(format!("loss {loss:.3}"));
        }
        Event::Gate => {
            if let Some(bar) = bar.take() {
                bar.finish_and_clear();
            }
            eprintln!("checking the gate");
        }
    }
}

/// Prints the training and gate figures.
pub(crate) fn print_outcome(outcome: &Outcome) {
    let training = &outcome.training;
    let gate = &outcome.gate;
    let passed =
        |checks: &[strata_learning::gate::Check]| checks.iter().filter(|c| c.passed).count();
    eprintln!(
        "trained {} steps on {} examples in {:.1} s, loss {:.3} → {:.3}",
        training.steps,
        training.examples,
        training.seconds,
        training.first_loss,
        training.final_loss
    );
    eprintln!(
        "gate ({:.1} s): lesson {}/{}, earlier {}/{}, controls {}/{}, perplexity {:.3} → {:.3} ({:+.2}%)",
        gate.seconds,
        passed(&gate.lesson),
        gate.lesson.len(),
        passed(&gate.earlier),
        gate.earlier.len(),
        passed(&gate.controls),
        gate.controls.len(),
        gate.perplexity_before,
        gate.perplexity_after,
        gate.perplexity_change() * 100.0
    );
    for failure in &gate.failures {
        eprintln!("gate failed: {failure}");
    }
}
