//! Learning one lesson: wait for the lineage, train on the parent, gate the candidate, commit.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use strata_model::load::LoadedModel;
use strata_runtime::engine::Engine;
use strata_runtime::train::{AdapterSet, LoraConfig};
use strata_store::{Descriptor, Digest, Reference, Store};

use crate::error::{LearnError, Result};
use crate::gate::{self, Baseline, GateInputs, GateReport, GateSettings, HeldOutFigures};
use crate::heldout::{HeldOut, PerplexityProbe, WindowLoss};
use crate::lesson::{Fact, Lesson};
use crate::lineage::{self, Version};
use crate::memory::TextEmbedding;
use crate::record::{GateSummary, LearningRecord};
use crate::routing::{self, LessonRoute, RoutedModel, Router};
use crate::training::{self, AnchorReplies, Progress, TrainingReport, TrainingSettings};
use crate::version::{self, RoutedLesson};

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
    /// Training and gate rounds: after a failed gate, training goes on with a new seed and,
    /// when controls or perplexity failed, more anchors.
    pub attempts: usize,
    /// Of `seconds`, the time spent loading the parent and measuring its baseline (the held-out
    /// hidden states, computed once per learner, are most of it).
    pub setup_seconds: f64,
    /// Wall time from start (after any wait) to commit.
    pub seconds: f64,
}

/// Runs lessons; keeps the held-out sample, perplexity probes, base losses and baselines between
/// them.
pub struct Learner {
    store: Store,
    embedder: Option<Arc<dyn TextEmbedding>>,
    heldout: Option<HeldOut>,
    heldout_vectors: Option<Vec<Vec<f32>>>,
    probes: HashMap<(String, usize), PerplexityProbe>,
    base_losses: HashMap<(String, usize), Vec<WindowLoss>>,
    baselines: HashMap<Digest, Baseline>,
    anchor_replies: HashMap<String, AnchorReplies>,
}

impl std::fmt::Debug for Learner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Learner")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Learner {
    /// Creates a learner over `store`; the default text embedder loads with the first lesson.
    pub fn new(store: Store) -> Learner {
        Learner {
            store,
            embedder: None,
            heldout: None,
            heldout_vectors: None,
            probes: HashMap::new(),
            base_losses: HashMap::new(),
            baselines: HashMap::new(),
            anchor_replies: HashMap::new(),
        }
    }

    /// Returns the store lessons are committed to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Teaches `lesson` to the version `reference` (a tag) names and, when the gate passes,
    /// moves the tag to the new version. Lessons on one name wait for each other, in any process.
    ///
    /// The lesson gets adapters of its own, trained on the base weights and keyed by its
    /// questions and statements, so it runs only for messages about it.
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
        let parent_version = &versions[0];
        let by_digest = Reference::digested(&reference.name, parent_digest.clone())?;
        let loaded = LoadedModel::open(&self.store, &by_digest)?;
        if loaded.config.strata.adapter.is_some() {
            return Err(LearnError::Version {
                reference: reference.to_string(),
                reason: format!(
                    "this version carries adapters that run on every message, from before \
                     lessons got adapters of their own; merge them into the weights with \
                     `strata squash {reference}` and teach again"
                ),
            });
        }
        let router = Router::read(&loaded)?;
        let embedder = self.embedder(router.as_ref().map(|r| r.embedder.as_str()))?;
        let base = Arc::new(Engine::load(&loaded)?);
        let parent = RoutedModel::new(base.clone(), router.clone(), Some(embedder.clone()));

        let layers = base.model().config().num_hidden_layers;
        let mut settings = options
            .training
            .clone()
            .unwrap_or_else(|| TrainingSettings::for_layers(layers));
        if let Some(count) = options.adapter_layers {
            settings.lora.first_layer = layers.saturating_sub(count);
        }
        if let Some(router) = &router {
            settings.lora = router.lora.clone();
        }

        events(Event::Baseline);
        let probe_key =
            self.probe_key(&base, parent_version, settings.lora.first_layer, options)?;
        self.heldout_vectors(&embedder, &base)?;
        let baseline = self.baseline(&parent, &versions, &probe_key, &options.controls)?;

        let lesson_questions: Vec<&str> =
            lesson.facts.iter().map(|f| f.question.as_str()).collect();
        let earlier: Vec<Fact> = lineage::facts(&versions)
            .into_iter()
            .filter(|fact| !lesson_questions.contains(&fact.question.as_str()))
            .collect();
        let keys = key_vectors(&embedder, &lesson.facts)?;
        let id = router.as_ref().map_or(0, Router::next_id);
        let setup_seconds = started.elapsed().as_secs_f64();

        let weights_key = base_weights_key(parent_version);
        let mut anchor_replies = self.anchor_replies.remove(&weights_key).unwrap_or_default();
        let mut init: Option<AdapterSet> = None;
        let mut attempt = 0;
        let (adapters, candidate, training, report) = loop {
            let mut engine = (*base).clone();
            let (adapters, training) = training::train(
                &mut engine,
                init.as_ref(),
                lesson,
                &[],
                &settings,
                &mut anchor_replies,
                &mut |progress| events(Event::Training(progress)),
            )?;
            let route = LessonRoute {
                id,
                keys: keys.clone(),
                adapters: adapters.clone(),
            };
            let candidate =
                parent.with_lesson(route, Arc::new(engine), embedder.clone(), &settings.lora);
            events(Event::Gate);
            let inputs = GateInputs {
                parent: &parent,
                candidate: &candidate,
                lesson: &lesson.facts,
                earlier: &earlier,
                controls: &options.controls,
                baseline: &baseline,
                heldout: self.heldout_figures(&probe_key),
            };
            let report = gate::run(&inputs, &options.gate)?;
            attempt += 1;
            if report.passed() || attempt >= options.attempts {
                break (adapters, candidate, training, report);
            }
            // Training goes on from here with a new seed and, when controls or perplexity
            // moved, twice the anchors pulling towards the base.
            tracing::info!(failures = ?report.failures, attempt, "gate failed; training again");
            if !anchored(&report, &options.gate) {
                settings.augment.anchors *= 2;
            }
            init = Some(adapters);
            settings.optimizer.seed = settings.optimizer.seed.wrapping_add(1);
        };
        self.anchor_replies.insert(weights_key, anchor_replies);
        let committed = if report.passed() {
            let record = LearningRecord {
                created: chrono::Utc::now(),
                lesson: lesson.clone(),
                settings,
                training: training.clone(),
                gate: GateSummary::from_report(&report),
                baseline: report.baseline(),
            };
            let router = candidate
                .router()
                .expect("the candidate has the new lesson");
            let routed = RoutedLesson {
                id,
                adapters: &adapters,
                keys: &keys,
                router,
            };
            Some(version::commit_lesson(
                &self.store,
                reference,
                parent_version,
                &routed,
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

    /// Loads (once) the default text embedder, checking it is the one named `expected`.
    fn embedder(&mut self, expected: Option<&str>) -> Result<Arc<dyn TextEmbedding>> {
        if self.embedder.is_none() {
            self.embedder = Some(routing::default_embedder(&self.store, None)?);
        }
        let embedder = self.embedder.clone().expect("loaded above");
        if let Some(expected) = expected
            && embedder.name() != expected
        {
            return Err(LearnError::Routing {
                reason: format!(
                    "the lineage's lessons were keyed with `{expected}`, but the text embedder \
                     is `{}`",
                    embedder.name()
                ),
            });
        }
        Ok(embedder)
    }

    /// Builds (once) the probe for the base's frozen layers below `first_layer` and every
    /// window's loss under the base weights.
    fn probe_key(
        &mut self,
        base: &Engine,
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
                base.tokenizer(),
            )?);
        }
        let heldout = self.heldout.as_ref().expect("loaded above");
        let started = Instant::now();
        let probe = PerplexityProbe::new(base.model(), heldout, first_layer)?;
        let losses = (0..probe.windows())
            .map(|index| probe.window_loss(base.model(), index))
            .collect::<Result<Vec<_>>>()?;
        tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            "computed held-out hidden states and base losses"
        );
        self.probes.insert(key.clone(), probe);
        self.base_losses.insert(key.clone(), losses);
        Ok(key)
    }

    /// Embeds (once) the text of every held-out window, for routing.
    fn heldout_vectors(&mut self, embedder: &Arc<dyn TextEmbedding>, base: &Engine) -> Result<()> {
        if self.heldout_vectors.is_some() {
            return Ok(());
        }
        let heldout = self.heldout.as_ref().expect("loaded by probe_key");
        let mut vectors = Vec::with_capacity(heldout.windows.len());
        for window in &heldout.windows {
            let text = base.tokenizer().decode(window)?;
            let vector = embedder
                .embed(&text)
                .map_err(|reason| LearnError::Routing { reason })?;
            vectors.push(vector);
        }
        self.heldout_vectors = Some(vectors);
        Ok(())
    }

    fn heldout_figures(&self, probe_key: &(String, usize)) -> HeldOutFigures<'_> {
        HeldOutFigures {
            probe: &self.probes[probe_key],
            base: &self.base_losses[probe_key],
            vectors: self.heldout_vectors.as_deref().unwrap_or_default(),
        }
    }

    /// Returns the parent's baseline: from its record when it has one for this sample and these
    /// controls, otherwise measured.
    fn baseline(
        &mut self,
        parent: &RoutedModel,
        versions: &[Version],
        probe_key: &(String, usize),
        controls: &[Fact],
    ) -> Result<Baseline> {
        let version = &versions[0];
        let digest = &self.probes[probe_key].digest;

        if let Some(record) = &version.record {
            let same_controls = controls
                .iter()
                .all(|control| record.baseline.controls_asked.contains(&control.question));
            if &record.gate.heldout == digest && same_controls {
                return Ok(record.baseline.clone());
            }
        }
        if let Some(baseline) = self.baselines.get(&version.digest) {
            return Ok(baseline.clone());
        }

        let started = Instant::now();
        let control_checks = gate::ask_routed(parent, controls)?;
        // Every fact of the lineage is asked, since the gate later assumes that a fact whose
        // route does not change keeps this result.
        let facts = lineage::facts(versions);
        let known_checks = gate::ask_routed(parent, &facts)?;
        let passed = |checks: &[gate::Check]| {
            checks
                .iter()
                .filter(|check| check.passed)
                .map(|check| check.question.clone())
                .collect::<Vec<_>>()
        };
        let (perplexity, _) = gate::routed_perplexity(parent, &self.heldout_figures(probe_key))?;
        let baseline = Baseline {
            known: passed(&known_checks),
            controls_known: passed(&control_checks),
            controls_asked: controls.iter().map(|c| c.question.clone()).collect(),
            perplexity,
        };
        tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            perplexity = baseline.perplexity,
            "measured parent baseline"
        );
        self.baselines
            .insert(version.digest.clone(), baseline.clone());
        Ok(baseline)
    }
}

/// Embeds the texts a lesson is keyed by.
fn key_vectors(embedder: &Arc<dyn TextEmbedding>, facts: &[Fact]) -> Result<Vec<Vec<f32>>> {
    routing::key_texts(facts)
        .iter()
        .map(|text| {
            embedder
                .embed(text)
                .map_err(|reason| LearnError::Routing { reason })
        })
        .collect()
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
        let learned = |name: &String| {
            strata_runtime::train::adapter::is_adapter_tensor(name)
                || routing::is_lesson_tensor(name)
        };
        if name.is_some_and(learned) {
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
