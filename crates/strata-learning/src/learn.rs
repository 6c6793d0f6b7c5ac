//! Learning one lesson: wait for the lineage, train on the parent, gate the candidate, commit.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use strata_model::load::LoadedModel;
use strata_runtime::engine::Engine;
use strata_runtime::train::{AdapterSet, LoraConfig};
use strata_store::{Descriptor, Digest, Reference, Store};

use crate::error::{LearnError, Result};
use crate::gate::{self, Baseline, GateReport, GateSettings};
use crate::heldout::{HeldOut, PerplexityProbe};
use crate::lesson::{Fact, Lesson};
use crate::lineage::{self, Version};
use crate::record::{GateSummary, LearningRecord};
use crate::training::{self, Progress, TrainingReport, TrainingSettings};
use crate::version;

/// Settings of [`Learner::learn`].
#[derive(Clone, Debug)]
pub struct LearnOptions {
    /// Training settings; `None` uses [`TrainingSettings::for_layers`]. A lineage that already
    /// has adapters keeps their placement and rank whatever is given here.
    pub training: Option<TrainingSettings>,
    /// Number of top decoder layers that get adapters, which sets `training.lora.first_layer`
    /// once the model's depth is known; `None` keeps the setting as given.
    pub adapter_layers: Option<usize>,
    /// Gate thresholds.
    pub gate: GateSettings,
    /// Control questions whose answers must not change.
    pub controls: Vec<Fact>,
    /// Directory of held-out text; `None` uses [`HeldOut::load`]'s default.
    pub heldout_dir: Option<PathBuf>,
    /// Most training and gate rounds per lesson.
    pub attempts: usize,
}

impl Default for LearnOptions {
    /// Returns the settings a chat's lessons use: default training, adapter placement and
    /// gate, the bundled control questions, the default held-out text and two rounds.
    fn default() -> Self {
        LearnOptions {
            training: None,
            adapter_layers: None,
            gate: GateSettings::default(),
            controls: crate::lesson::default_controls(),
            heldout_dir: None,
            attempts: 2,
        }
    }
}

/// True when controls and perplexity are within the gate's bounds.
fn anchored(report: &GateReport, settings: &GateSettings) -> bool {
    let controls_ok = report.control_regressions.len() <= settings.max_control_regressions;
    let perplexity_ok = report.perplexity_change() <= settings.max_perplexity_increase;
    controls_ok && perplexity_ok
}

/// A lesson's progress, for displays.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Waiting for another lesson on the same lineage to finish.
    Queued,
    /// Training on this parent version.
    Started {
        /// The parent's manifest digest.
        parent: Digest,
    },
    /// Measuring the parent's baseline.
    Baseline,
    /// Training progress.
    Training(Progress),
    /// Running the gate.
    Gate,
}

/// The result of one lesson.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The version the lesson trained on.
    pub parent: Digest,
    /// The new version, when the gate passed.
    pub committed: Option<Descriptor>,
    /// The training run's figures.
    pub training: TrainingReport,
    /// Every gate figure.
    pub gate: GateReport,
    /// Training and gate rounds: after a failed gate, training goes on with forgotten facts
    /// added and, when controls or perplexity failed, more anchors.
    pub attempts: usize,
    /// Of `seconds`, the time spent loading the parent and measuring its baseline (the held-out
    /// hidden states, computed once per learner, are most of it).
    pub setup_seconds: f64,
    /// Wall time from start (after any wait) to commit.
    pub seconds: f64,
}

/// Runs lessons; keeps the held-out sample, perplexity probes and base baselines between them.
#[derive(Debug)]
pub struct Learner {
    store: Store,
    heldout: Option<HeldOut>,
    probes: HashMap<(String, usize), PerplexityProbe>,
    baselines: HashMap<Digest, Baseline>,
}

impl Learner {
    /// Creates a learner over `store`.
    pub fn new(store: Store) -> Learner {
        Learner {
            store,
            heldout: None,
            probes: HashMap::new(),
            baselines: HashMap::new(),
        }
    }

    /// Returns the store lessons are committed to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Teaches `lesson` to the version `reference` (a tag) names and, when the gate passes,
    /// moves the tag to the new version. Lessons on one name wait for each other, in any process.
    pub fn learn(
        &mut self,
        reference: &Reference,
        lesson: &Lesson,
        options: &LearnOptions,
        events: &mut dyn FnMut(Event),
    ) -> Result<Outcome> {
        if reference.tag().is_none() {
            return Err(LearnError::Version {
                reference: reference.to_string(),
                reason: "learning moves a tag; name the model as NAME or NAME:TAG".to_string(),
            });
        }
        events(Event::Queued);
        let _lock = self.store.named_lock(&lock_name(reference))?;
        let started = Instant::now();
        let parent_digest = self.store.resolve(reference)?.digest;
        events(Event::Started {
            parent: parent_digest.clone(),
        });
        let versions = lineage::lineage(&self.store, &parent_digest)?;
        let parent = &versions[0];
        let by_digest = Reference::digested(&reference.name, parent_digest.clone())?;
        let loaded = LoadedModel::open(&self.store, &by_digest)?;
        let mut engine = Engine::load(&loaded)?;
        let init = parent_adapters(&loaded)?;

        let layers = engine.model().config().num_hidden_layers;
        let mut settings = options
            .training
            .clone()
            .unwrap_or_else(|| TrainingSettings::for_layers(layers));
        if let Some(count) = options.adapter_layers {
            settings.lora.first_layer = layers.saturating_sub(count);
        }
        if let Some(init) = &init {
            settings.lora = init.config.clone();
        }

        events(Event::Baseline);
        let probe_key = self.probe_key(&engine, parent, settings.lora.first_layer, options)?;
        let baseline = self.baseline(&engine, parent, &probe_key, &options.controls)?;

        let lesson_questions: Vec<&str> =
            lesson.facts.iter().map(|f| f.question.as_str()).collect();
        let earlier: Vec<Fact> = lineage::facts(&versions)
            .into_iter()
            .filter(|fact| !lesson_questions.contains(&fact.question.as_str()))
            .collect();
        let setup_seconds = started.elapsed().as_secs_f64();
        let mut init = init;
        let mut retrained: Vec<Fact> = Vec::new();
        let mut attempt = 0;
        let (adapters, training, report) = loop {
            let mut facts = lesson.facts.clone();
            facts.extend(retrained.iter().cloned());
            let round = Lesson {
                facts,
                source: lesson.source.clone(),
            };
            let (adapters, training) = training::train(
                &mut engine,
                init.as_ref(),
                &round,
                &earlier,
                &settings,
                &mut |progress| events(Event::Training(progress)),
            )?;
            events(Event::Gate);
            let report = gate::run(
                &engine,
                &lesson.facts,
                &earlier,
                &options.controls,
                &baseline,
                &self.probes[&probe_key],
                &options.gate,
            )?;
            attempt += 1;
            if report.passed() || attempt >= options.attempts {
                break (adapters, training, report);
            }
            // Training goes on from here with the forgotten facts added to the lesson and, when
            // controls or perplexity moved, twice the anchors pulling towards the parent.
            tracing::info!(failures = ?report.failures, attempt, "gate failed; training again");
            retrained = earlier
                .iter()
                .filter(|fact| report.forgotten.contains(&fact.question))
                .cloned()
                .collect();
            if !anchored(&report, &options.gate) {
                settings.augment.anchors *= 2;
            }
            init = Some(adapters);
            settings.optimizer.seed = settings.optimizer.seed.wrapping_add(1);
        };
        let committed = if report.passed() {
            let record = LearningRecord {
                created: chrono::Utc::now(),
                lesson: lesson.clone(),
                settings,
                training: training.clone(),
                gate: GateSummary::from_report(&report),
                baseline: report.baseline(),
            };
            Some(version::commit(
                &self.store,
                reference,
                parent,
                &adapters,
                &record,
            )?)
        } else {
            tracing::warn!(failures = ?report.failures, "gate failed; nothing committed");
            None
        };
        Ok(Outcome {
            parent: parent_digest,
            committed,
            training,
            gate: report,
            attempts: attempt,
            setup_seconds,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Builds (once) the probe for the parent's frozen layers below `first_layer`, from the
    /// parent's engine: its adapters all sit at or above `first_layer`.
    fn probe_key(
        &mut self,
        engine: &Engine,
        parent: &Version,
        first_layer: usize,
        options: &LearnOptions,
    ) -> Result<(String, usize)> {
        let key = (base_weights_key(parent), first_layer);
        if self.probes.contains_key(&key) {
            return Ok(key);
        }
        if self.heldout.is_none() {
            self.heldout = Some(HeldOut::load(
                options.heldout_dir.as_deref(),
                engine.tokenizer(),
            )?);
        }
        let heldout = self.heldout.as_ref().expect("loaded above");
        let started = Instant::now();
        let probe = PerplexityProbe::new(engine.model(), heldout, first_layer)?;
        tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            "computed held-out hidden states"
        );
        self.probes.insert(key.clone(), probe);
        Ok(key)
    }

    /// Returns the parent's baseline: from its record when it has one for this sample and these
    /// controls, otherwise measured.
    fn baseline(
        &mut self,
        engine: &Engine,
        parent: &Version,
        probe_key: &(String, usize),
        controls: &[Fact],
    ) -> Result<Baseline> {
        let probe = &self.probes[probe_key];

        if let Some(record) = &parent.record {
            let same_controls = controls
                .iter()
                .all(|control| record.baseline.controls_asked.contains(&control.question));
            if record.gate.heldout == probe.digest && same_controls {
                return Ok(record.baseline.clone());
            }
        }
        if let Some(baseline) = self.baselines.get(&parent.digest) {
            return Ok(baseline.clone());
        }

        let started = Instant::now();
        let control_checks = gate::ask_all(engine, controls)?;
        let facts = lineage::facts(std::slice::from_ref(parent));
        let known_checks = gate::ask_all(engine, &facts)?;
        let passed = |checks: &[gate::Check]| {
            checks
                .iter()
                .filter(|check| check.passed)
                .map(|check| check.question.clone())
                .collect::<Vec<_>>()
        };
        let baseline = Baseline {
            known: passed(&known_checks),
            controls_known: passed(&control_checks),
            controls_asked: controls.iter().map(|c| c.question.clone()).collect(),
            perplexity: probe.perplexity(engine.model())?,
        };
        tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            perplexity = baseline.perplexity,
            "measured parent baseline"
        );
        self.baselines
            .insert(parent.digest.clone(), baseline.clone());
        Ok(baseline)
    }
}

/// The adapters a loaded version carries.
pub fn parent_adapters(loaded: &LoadedModel) -> Result<Option<AdapterSet>> {
    let Some(info) = &loaded.config.strata.adapter else {
        return Ok(None);
    };
    let config = LoraConfig::from_info(info)?;
    let device = candle_core::Device::Cpu;
    Ok(Some(AdapterSet::from_tensors(
        config,
        &loaded.tensors,
        &device,
    )?))
}

/// Identifies a version's weights without its adapters, so versions of one lineage share a
/// perplexity probe.
fn base_weights_key(version: &Version) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    for layer in &version.manifest.layers {
        let name = layer.annotations.get(strata_model::media::TENSOR_NAME);
        if name.is_some_and(|name| strata_runtime::train::adapter::is_adapter_tensor(name)) {
            continue;
        }
        hasher.update(layer.digest.to_string().as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

/// Names the lock that queues lessons on one model name.
fn lock_name(reference: &Reference) -> String {
    let name: String = reference
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("learn-{name}")
}
