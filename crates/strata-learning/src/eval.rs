//! Measuring learning quality: facts taught one lesson at a time, with efficacy,
//! generalization, specificity, perplexity and time per lesson measured as lessons accumulate,
//! next to the same facts given in the context instead.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use strata_runtime::engine::Engine;
use strata_store::{Reference, Store};

use crate::answer;
use crate::error::Result;
use crate::gate;
use crate::learn::{Event, LearnOptions, Learner};
use crate::lesson::{Fact, Lesson, LessonSource};
use crate::routing::RoutedModel;

/// Settings of an evaluation.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Facts, taught one per lesson in this order.
    pub facts: Vec<Fact>,
    /// Name of the facts file, recorded in each lesson.
    pub facts_file: String,
    /// Lessons between checkpoints.
    pub every: usize,
    /// Lesson settings; their controls are the specificity questions.
    pub learn: LearnOptions,
}

/// A share of questions answered correctly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Answered correctly.
    pub passed: usize,
    /// Asked.
    pub total: usize,
}

impl Score {
    /// `passed / total`, or 0 when nothing was asked.
    pub fn ratio(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        self.passed as f64 / self.total as f64
    }

    /// Counts one more question, answered or not.
    pub fn add(&mut self, passed: bool) {
        self.total += 1;
        self.passed += usize::from(passed);
    }

    fn of(checks: &[gate::Check]) -> Score {
        Score {
            passed: checks.iter().filter(|check| check.passed).count(),
            total: checks.len(),
        }
    }
}

/// Figures after a number of lessons.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Lessons taught so far.
    pub lessons: usize,
    /// Lessons whose gate passed so far.
    pub committed: usize,
    /// Exact questions of the lessons since the last checkpoint.
    pub efficacy: Score,
    /// Paraphrases of those lessons' questions.
    pub generalization: Score,
    /// Exact questions of every lesson so far.
    pub retention: Score,
    /// Control questions the base model answered correctly that are still answered correctly.
    pub controls_kept: Score,
    /// Held-out perplexity against the base model's, relative.
    pub perplexity_change: f64,
    /// Mean wall time per lesson since the last checkpoint, from loading the parent to the
    /// commit. The first lesson of a run also computes the held-out figures of the base.
    pub seconds_per_lesson: f64,
    /// Mean training time per lesson since the last checkpoint.
    pub training_seconds: f64,
}

/// One lesson's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LessonResult {
    /// The question taught.
    pub question: String,
    /// Whether the gate passed.
    pub committed: bool,
    /// Training steps.
    pub steps: usize,
    /// Training time.
    pub training_seconds: f64,
    /// Gate time.
    pub gate_seconds: f64,
    /// Of `seconds`, the time spent loading the parent and reading or measuring its figures.
    #[serde(default)]
    pub setup_seconds: f64,
    /// Wall time from loading the parent to the commit.
    pub seconds: f64,
    /// Training and gate rounds.
    pub attempts: usize,
    /// Gate failures, empty when committed.
    pub failures: Vec<String>,
}

/// Every figure of an evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The tag the lessons were committed to.
    pub tag: String,
    /// The base model on the exact questions.
    pub base_efficacy: Score,
    /// The base model on the paraphrases.
    pub base_generalization: Score,
    /// Control questions the base model answered correctly.
    pub base_controls: Score,
    /// The base model's held-out perplexity.
    pub base_perplexity: f64,
    /// Each fact's statement as the system prompt: the exact questions.
    pub in_context_efficacy: Score,
    /// Each fact's statement as the system prompt: the paraphrases.
    pub in_context_generalization: Score,
    /// Figures every `every` lessons.
    pub checkpoints: Vec<Checkpoint>,
    /// Per lesson.
    pub lessons: Vec<LessonResult>,
}

/// Progress of an evaluation.
#[derive(Clone, Debug, PartialEq)]
pub enum EvalEvent {
    /// Measuring the base model and the in-context baseline.
    Baseline,
    /// The base model and in-context figures, measured before the first lesson.
    Baselines(Box<EvalReport>),
    /// A lesson finished.
    Lesson(LessonResult),
    /// A checkpoint was measured.
    Checkpoint(Checkpoint),
}

/// Teaches `options.facts` to a copy of `reference` under a new tag, one lesson per fact with
/// the paraphrases held out, and measures as it goes.
pub fn run(
    store: &Store,
    reference: &Reference,
    options: &EvalOptions,
    events: &mut dyn FnMut(EvalEvent),
) -> Result<EvalReport> {
    let base = store.resolve(reference)?;
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let tag = Reference::parse(&format!("{}:eval-{stamp}", reference.name))?;
    store.set_tag(&tag, &base)?;

    events(EvalEvent::Baseline);
    let model = RoutedModel::open(store, &tag)?;
    let controls = &options.learn.controls;
    let base_controls = gate::ask_routed(&model, controls)?;
    let base_efficacy = Score::of(&gate::ask_routed(&model, &options.facts)?);
    let base_generalization = Score::of(&gate::ask_routed(&model, &paraphrases(&options.facts))?);
    let (in_context_efficacy, in_context_generalization) =
        in_context(model.base(), &options.facts)?;
    drop(model);

    let mut learner = Learner::new(store.clone());
    let mut report = EvalReport {
        tag: tag.to_string(),
        base_efficacy,
        base_generalization,
        base_controls: Score::of(&base_controls),
        base_perplexity: f64::NAN,
        in_context_efficacy,
        in_context_generalization,
        checkpoints: Vec::new(),
        lessons: Vec::new(),
    };

    events(EvalEvent::Baselines(Box::new(report.clone())));

    let mut learn_options = options.learn.clone();
    let mut block_start = 0;
    for (index, fact) in options.facts.iter().enumerate() {
        let taught = Fact {
            paraphrases: Vec::new(),
            ..fact.clone()
        };
        let source = LessonSource::Facts {
            file: options.facts_file.clone(),
        };
        let lesson = Lesson::new(vec![taught], source)?;
        if let Some(training) = &mut learn_options.training {
            training.optimizer.seed = index as u64;
        }
        let outcome = learner.learn(&tag, &lesson, &learn_options, &mut |_: Event| {})?;
        if report.base_perplexity.is_nan() {
            report.base_perplexity = outcome.gate.perplexity_before;
        }
        let result = LessonResult {
            question: fact.question.clone(),
            committed: outcome.committed.is_some(),
            steps: outcome.training.steps,
            training_seconds: outcome.training.seconds,
            gate_seconds: outcome.gate.seconds,
            setup_seconds: outcome.setup_seconds,
            seconds: outcome.seconds,
            attempts: outcome.attempts,
            failures: outcome.gate.failures.clone(),
        };
        events(EvalEvent::Lesson(result.clone()));
        report.lessons.push(result);

        let taught_so_far = index + 1;
        if taught_so_far % options.every.max(1) == 0 || taught_so_far == options.facts.len() {
            let checkpoint = measure(
                store,
                &tag,
                &options.facts[block_start..taught_so_far],
                &options.facts[..taught_so_far],
                &base_controls,
                controls,
                &report,
            )?;
            events(EvalEvent::Checkpoint(checkpoint.clone()));
            report.checkpoints.push(checkpoint);
            block_start = taught_so_far;
        }
    }
    Ok(report)
}

fn measure(
    store: &Store,
    tag: &Reference,
    block: &[Fact],
    all: &[Fact],
    base_controls: &[gate::Check],
    controls: &[Fact],
    report: &EvalReport,
) -> Result<Checkpoint> {
    let model = RoutedModel::open(store, tag)?;
    let control_checks = gate::ask_routed(&model, controls)?;
    let kept = control_checks
        .iter()
        .zip(base_controls)
        .filter(|(now, before)| now.passed && before.passed)
        .count();
    let base_passed = base_controls.iter().filter(|check| check.passed).count();
    let lessons = &report.lessons[report.lessons.len() - block.len()..];
    let mean = |value: fn(&LessonResult) -> f64| {
        lessons.iter().map(value).sum::<f64>() / lessons.len().max(1) as f64
    };
    let version = crate::lineage::read_version(store, &store.resolve(tag)?.digest)?;
    let perplexity_change = match &version.record {
        Some(record) => record.gate.perplexity_after / report.base_perplexity - 1.0,
        None => 0.0,
    };
    // The record's figure went through JSON, which may round its last bit, so a change of
    // exactly zero can come back as -1e-16; that would print as "-0.00%".
    let perplexity_change = if perplexity_change.abs() < 1e-12 {
        0.0
    } else {
        perplexity_change
    };
    Ok(Checkpoint {
        lessons: all.len(),
        committed: report.lessons.iter().filter(|l| l.committed).count(),
        efficacy: Score::of(&gate::ask_routed(&model, block)?),
        generalization: Score::of(&gate::ask_routed(&model, &paraphrases(block))?),
        retention: Score::of(&gate::ask_routed(&model, all)?),
        controls_kept: Score {
            passed: kept,
            total: base_passed,
        },
        perplexity_change,
        seconds_per_lesson: mean(|lesson| lesson.seconds),
        training_seconds: mean(|lesson| lesson.training_seconds),
    })
}

/// Turns each paraphrase into a question with its fact's answer.
fn paraphrases(facts: &[Fact]) -> Vec<Fact> {
    facts
        .iter()
        .flat_map(|fact| {
            fact.paraphrases
                .iter()
                .map(|paraphrase| Fact::pair(paraphrase, &fact.answer))
        })
        .collect()
}

/// Asks each fact's question and paraphrases with its statement as the system prompt.
fn in_context(engine: &Engine, facts: &[Fact]) -> Result<(Score, Score)> {
    let (mut exact, mut reworded) = (Score::default(), Score::default());
    for fact in facts {
        let context = fact
            .statement
            .clone()
            .unwrap_or_else(|| format!("{} {}", fact.question, fact.answer));
        let ask = |question: &str, score: &mut Score| -> Result<()> {
            let reply = answer::ask(engine, Some(&context), question, Some(&fact.answer))?;
            score.total += 1;
            score.passed += usize::from(answer::contains(&reply, &fact.answer));
            Ok(())
        };
        ask(&fact.question, &mut exact)?;
        for paraphrase in &fact.paraphrases {
            ask(paraphrase, &mut reworded)?;
        }
    }
    Ok((exact, reworded))
}
