//! The record a learned version keeps in its config: lesson, training and gate figures.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use strata_model::ModelConfig;

use crate::error::Result;
use crate::gate::{Baseline, GateReport};
use crate::lesson::Lesson;
use crate::training::{TrainingReport, TrainingSettings};

/// Value of `strata.source.kind` for a learned version.
pub const SOURCE_KIND: &str = "lesson";

/// `strata.learning` of a learned version's config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LearningRecord {
    /// When the version was committed.
    pub created: DateTime<Utc>,
    /// The lesson learned.
    pub lesson: Lesson,
    /// The adapter's training settings.
    pub settings: TrainingSettings,
    /// The training run's figures.
    pub training: TrainingReport,
    /// The gate's summary figures.
    pub gate: GateSummary,
    /// What this version knows, which its children are held to.
    pub baseline: Baseline,
}

/// The gate's figures, without the replies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateSummary {
    /// Lesson questions answered correctly.
    pub lesson_passed: usize,
    /// Lesson questions asked.
    pub lesson_total: usize,
    /// Earlier facts still answered.
    pub earlier_passed: usize,
    /// Earlier facts checked: asked again, or kept at the parent's result because their route did
    /// not change.
    pub earlier_total: usize,
    /// Control questions answered correctly.
    pub controls_passed: usize,
    /// Control questions asked.
    pub controls_total: usize,
    /// Parent's held-out perplexity.
    pub perplexity_before: f64,
    /// This version's held-out perplexity.
    pub perplexity_after: f64,
    /// Digest of the held-out sample.
    pub heldout: String,
    /// Wall time of the gate.
    pub seconds: f64,
}

impl GateSummary {
    /// Summarizes a gate report.
    pub fn from_report(report: &GateReport) -> GateSummary {
        let passed = |checks: &[crate::gate::Check]| checks.iter().filter(|c| c.passed).count();
        GateSummary {
            lesson_passed: passed(&report.lesson),
            lesson_total: report.lesson.len(),
            earlier_passed: passed(&report.earlier),
            earlier_total: report.earlier.len(),
            controls_passed: passed(&report.controls),
            controls_total: report.controls.len(),
            perplexity_before: report.perplexity_before,
            perplexity_after: report.perplexity_after,
            heldout: report.heldout.clone(),
            seconds: report.seconds,
        }
    }

    /// Relative change of perplexity.
    pub fn perplexity_change(&self) -> f64 {
        self.perplexity_after / self.perplexity_before - 1.0
    }
}

impl LearningRecord {
    /// Reads the record of a version's config, `None` for a version not made by learning.
    pub fn of(config: &ModelConfig) -> Result<Option<LearningRecord>> {
        match &config.strata.learning {
            Some(value) => Ok(Some(serde_json::from_value(value.clone())?)),
            None => Ok(None),
        }
    }
}
