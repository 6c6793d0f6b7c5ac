//! The evaluation gate a trained candidate must pass before it is committed.
//!
//! Four checks, each against figures of the parent version. The lesson's questions are
//! answered from a fresh chat. Facts of earlier lessons the parent knew are still known. Control
//! questions the parent answered are still answered. Perplexity on held-out text rises by no
//! more than a threshold.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use strata_runtime::engine::Engine;

use crate::answer;
use crate::error::Result;
use crate::heldout::PerplexityProbe;
use crate::lesson::Fact;

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
    facts
        .iter()
        .map(|fact| {
            let reply = answer::ask(engine, None, &fact.question, Some(&fact.answer))?;
            Ok(Check {
                question: fact.question.clone(),
                expected: fact.answer.clone(),
                passed: answer::contains(&reply, &fact.answer),
                reply,
            })
        })
        .collect()
}

/// Runs the four checks on `candidate`.
pub fn run(
    candidate: &Engine,
    lesson: &[Fact],
    earlier: &[Fact],
    controls: &[Fact],
    baseline: &Baseline,
    probe: &PerplexityProbe,
    settings: &GateSettings,
) -> Result<GateReport> {
    let started = Instant::now();
    let lesson_checks = ask_all(candidate, lesson)?;
    let earlier_checks = ask_all(candidate, earlier)?;
    let control_checks = ask_all(candidate, controls)?;
    let perplexity_after = probe.perplexity(candidate.model())?;

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
        heldout: probe.digest.clone(),
        failures,
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
