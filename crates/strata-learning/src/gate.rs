//! The evaluation gate a trained candidate must pass before it is committed.
//!
//! Four checks, each against figures of the parent version, on the candidate as it will run:
//! every message routed to the lesson it is closest to. The lesson's questions are answered
//! from a fresh chat. Facts of earlier lessons the parent knew are still known. Control
//! questions the parent answered are still answered. Perplexity on held-out text rises by no
//! more than a threshold. A question whose route the new lesson does not change meets exactly
//! the weights it met in the parent, so only the questions it takes over are asked again. Only
//! held-out windows routed to some lesson are measured with adapters.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use strata_runtime::engine::Engine;

use crate::answer;
use crate::error::Result;
use crate::heldout::{PerplexityProbe, WindowLoss, perplexity_of};
use crate::lesson::Fact;
use crate::routing::RoutedModel;

/// Thresholds of the gate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateSettings {
    /// Largest allowed relative rise of held-out perplexity (0.02 is 2%).
    pub max_perplexity_increase: f64,
    /// Control questions the parent answered that the candidate may get wrong; the default 1
    /// of the 20 built-in controls keeps 95% of them.
    pub max_control_regressions: usize,
    /// Earlier facts the parent knew that the candidate may forget.
    pub max_forgotten: usize,
}

impl Default for GateSettings {
    fn default() -> Self {
        GateSettings {
            max_perplexity_increase: 0.02,
            max_control_regressions: 1,
            max_forgotten: 0,
        }
    }
}

/// One question asked of the candidate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// The question.
    pub question: String,
    /// The answer expected in the reply.
    pub expected: String,
    /// The reply, cut once it contained the answer.
    pub reply: String,
    /// Whether the reply contains the answer.
    pub passed: bool,
    /// False when the question was not asked because its route did not change. `passed` is then
    /// the parent's result.
    #[serde(default = "asked_default")]
    pub asked: bool,
}

fn asked_default() -> bool {
    true
}

/// The parent's knowledge, which the candidate is held to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Questions of earlier lessons the parent answered correctly.
    pub known: Vec<String>,
    /// Control questions the parent answered correctly.
    pub controls_known: Vec<String>,
    /// Control questions the parent was asked.
    pub controls_asked: Vec<String>,
    /// The parent's held-out perplexity.
    pub perplexity: f64,
}

/// Every figure of one gate run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateReport {
    /// The lesson's own questions.
    pub lesson: Vec<Check>,
    /// Questions of earlier lessons of the lineage.
    pub earlier: Vec<Check>,
    /// Control questions.
    pub controls: Vec<Check>,
    /// Earlier questions the parent knew and the candidate does not.
    pub forgotten: Vec<String>,
    /// Control questions the parent answered and the candidate does not.
    pub control_regressions: Vec<String>,
    /// Parent's held-out perplexity.
    pub perplexity_before: f64,
    /// Candidate's held-out perplexity.
    pub perplexity_after: f64,
    /// Digest of the held-out sample.
    pub heldout: String,
    /// One line per failed check, empty when the gate passed.
    pub failures: Vec<String>,
    /// Held-out windows routed to a lesson, whose loss was measured with its adapters.
    #[serde(default)]
    pub windows_routed: usize,
    /// Wall time of the gate.
    pub seconds: f64,
}

impl GateReport {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// Relative change of perplexity, `after / before - 1`.
    pub fn perplexity_change(&self) -> f64 {
        self.perplexity_after / self.perplexity_before - 1.0
    }

    /// Returns the baseline a child of the candidate is held to.
    pub fn baseline(&self) -> Baseline {
        let passed = |checks: &[Check]| {
            checks
                .iter()
                .filter(|check| check.passed)
                .map(|check| check.question.clone())
                .collect::<Vec<_>>()
        };
        let mut known = passed(&self.earlier);
        known.extend(passed(&self.lesson));
        Baseline {
            known,
            controls_known: passed(&self.controls),
            controls_asked: self.controls.iter().map(|c| c.question.clone()).collect(),
            perplexity: self.perplexity_after,
        }
    }
}

/// Asks every fact's question of `engine` and records whether each answer came back.
pub fn ask_all(engine: &Engine, facts: &[Fact]) -> Result<Vec<Check>> {
    facts.iter().map(|fact| ask_one(engine, fact)).collect()
}

/// Asks every fact's question of `model`, each routed to the lesson it is closest to.
pub fn ask_routed(model: &RoutedModel, facts: &[Fact]) -> Result<Vec<Check>> {
    facts
        .iter()
        .map(|fact| {
            let (_, engine) = model.engine_for(&fact.question)?;
            ask_one(&engine, fact)
        })
        .collect()
}

fn ask_one(engine: &Engine, fact: &Fact) -> Result<Check> {
    let reply = answer::ask(engine, None, &fact.question, Some(&fact.answer))?;
    Ok(Check {
        question: fact.question.clone(),
        expected: fact.answer.clone(),
        passed: answer::contains(&reply, &fact.answer),
        reply,
        asked: true,
    })
}

/// Asks of `candidate` the facts whose route differs from their route in `parent`. The others
/// keep the parent's result: passed when `known` contains their question.
fn ask_rerouted(
    parent: &RoutedModel,
    candidate: &RoutedModel,
    facts: &[Fact],
    known: &[String],
) -> Result<Vec<Check>> {
    let mut checks = Vec::with_capacity(facts.len());
    for fact in facts {
        let route = candidate.route(&fact.question)?;
        if route == parent.route(&fact.question)? {
            checks.push(Check {
                question: fact.question.clone(),
                expected: fact.answer.clone(),
                reply: String::new(),
                passed: known.contains(&fact.question),
                asked: false,
            });
            continue;
        }
        let engine = candidate.engine(route)?;
        checks.push(ask_one(&engine, fact)?);
    }
    Ok(checks)
}

/// The held-out sample as the gate measures it: the probe, every window's loss under the base
/// weights, and every window's text embedded for routing.
#[derive(Clone, Copy, Debug)]
pub struct HeldOutFigures<'a> {
    /// The probe over the base's frozen layers.
    pub probe: &'a PerplexityProbe,
    /// Each window's loss with no lesson adapters.
    pub base: &'a [WindowLoss],
    /// Each window's embedding.
    pub vectors: &'a [Vec<f32>],
}

/// Returns `model`'s held-out perplexity with each window routed like a message, and how many
/// windows a lesson took.
pub fn routed_perplexity(model: &RoutedModel, heldout: &HeldOutFigures) -> Result<(f64, usize)> {
    let mut losses = Vec::with_capacity(heldout.base.len());
    let mut routed = 0;
    for (index, vector) in heldout.vectors.iter().enumerate() {
        let route = model
            .router()
            .and_then(|router| router.choose(vector))
            .map(|(id, _)| id);
        match route {
            None => losses.push(heldout.base[index]),
            Some(id) => {
                let engine = model.engine(Some(id))?;
                losses.push(heldout.probe.window_loss(engine.model(), index)?);
                routed += 1;
            }
        }
    }
    Ok((perplexity_of(&losses), routed))
}

/// The versions and figures the gate compares.
#[derive(Clone, Copy, Debug)]
pub struct GateInputs<'a> {
    /// The version the lesson was trained on.
    pub parent: &'a RoutedModel,
    /// The parent with the lesson's route added.
    pub candidate: &'a RoutedModel,
    /// The lesson's facts.
    pub lesson: &'a [Fact],
    /// Facts of earlier lessons of the lineage.
    pub earlier: &'a [Fact],
    /// Control questions.
    pub controls: &'a [Fact],
    /// The parent's figures.
    pub baseline: &'a Baseline,
    /// The held-out sample.
    pub heldout: HeldOutFigures<'a>,
}

/// Runs the four checks on the candidate.
pub fn run(inputs: &GateInputs, settings: &GateSettings) -> Result<GateReport> {
    let started = Instant::now();
    let (candidate, baseline) = (inputs.candidate, inputs.baseline);
    let lesson_checks = ask_routed(candidate, inputs.lesson)?;
    let earlier_checks = ask_rerouted(inputs.parent, candidate, inputs.earlier, &baseline.known)?;
    let control_checks = ask_rerouted(
        inputs.parent,
        candidate,
        inputs.controls,
        &baseline.controls_known,
    )?;
    let (perplexity_after, windows_routed) = routed_perplexity(candidate, &inputs.heldout)?;

    let forgotten = regressions(&earlier_checks, &baseline.known);
    let control_regressions = regressions(&control_checks, &baseline.controls_known);
    let mut failures = Vec::new();
    let missed: Vec<&Check> = lesson_checks.iter().filter(|check| !check.passed).collect();
    if !missed.is_empty() {
        let first = missed[0];
        failures.push(format!(
            "lesson: {} of {} questions answered wrong, for example `{}` got `{}` (expected `{}`)",
            missed.len(),
            lesson_checks.len(),
            first.question,
            first.reply.trim(),
            first.expected
        ));
    }
    if forgotten.len() > settings.max_forgotten {
        failures.push(format!(
            "earlier lessons: {} facts forgotten (at most {} allowed), for example `{}`",
            forgotten.len(),
            settings.max_forgotten,
            forgotten[0]
        ));
    }
    if control_regressions.len() > settings.max_control_regressions {
        failures.push(format!(
            "controls: {} answers changed (at most {} allowed), for example `{}`",
            control_regressions.len(),
            settings.max_control_regressions,
            control_regressions[0]
        ));
    }
    let change = perplexity_after / baseline.perplexity - 1.0;
    // A NaN change fails too, since a model whose perplexity cannot be measured must not pass.
    let within = change <= settings.max_perplexity_increase;
    if !within {
        failures.push(format!(
            "perplexity: {:.3} → {perplexity_after:.3} ({:+.2}%, at most {:+.2}% allowed)",
            baseline.perplexity,
            change * 100.0,
            settings.max_perplexity_increase * 100.0
        ));
    }

    Ok(GateReport {
        lesson: lesson_checks,
        earlier: earlier_checks,
        controls: control_checks,
        forgotten,
        control_regressions,
        perplexity_before: baseline.perplexity,
        perplexity_after,
        heldout: inputs.heldout.probe.digest.clone(),
        failures,
        windows_routed,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Questions in `known` whose check failed now.
fn regressions(checks: &[Check], known: &[String]) -> Vec<String> {
    checks
        .iter()
        .filter(|check| !check.passed && known.contains(&check.question))
        .map(|check| check.question.clone())
        .collect()
}
