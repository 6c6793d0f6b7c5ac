//! The models the server has loaded: one engine and one batching worker per model tag and
//! lesson route. They are reloaded when the tag moves (a lesson committed a version, or a
//! rollback), so every request runs the version its tag names at that moment. A request whose last message is
//! about a lesson the version learned runs on that lesson's engine, which shares the base
//! weights and has its own worker, so each batch runs one set of weights.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use strata_learning::routing::RoutedModel;
use strata_model::load::LoadedModel;
use strata_runtime::engine::Engine;
use strata_store::{Digest, Reference, Store};

use crate::error::ApiError;
use crate::scheduler::{Scheduler, SchedulerLimits};

/// A loaded version and the worker that serves it.
#[derive(Clone, Debug)]
pub struct Served {
    /// The decoder, tokenizer and template.
    pub engine: Arc<Engine>,
    /// The worker's queue.
    pub scheduler: Scheduler,
    /// The lesson whose adapters the engine runs, `None` for the base weights.
    pub route: Option<u32>,
}

/// One loaded version: its routes and a worker per route used so far.
#[derive(Debug)]
struct Loaded {
    model: Arc<RoutedModel>,
    served: HashMap<Option<u32>, Served>,
}

/// Engines by model reference, loaded on first use.
#[derive(Debug)]
pub struct Models {
    store: Store,
    limits: SchedulerLimits,
    loaded: Mutex<HashMap<String, Loaded>>,
}

impl Models {
    /// An empty registry over `store`.
    pub fn new(store: Store, limits: SchedulerLimits) -> Models {
        Models {
            store,
            limits,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// Returns the base engine and worker for `name` (`NAME`, `NAME:TAG` or `NAME@DIGEST`),
    /// loading the version the tag names now when it is not the one loaded. Blocks while loading.
    pub fn get(&self, name: &str) -> Result<Served, ApiError> {
        self.get_routed(name, None)
    }

    /// Returns the engine and worker for `name` that reply to `message`: those of the lesson
    /// it is about, or the base ones. Blocks while loading.
    pub fn get_routed(&self, name: &str, message: Option<&str>) -> Result<Served, ApiError> {
        let reference = parse_model(name)?;
        let digest = self.resolve(&reference, name)?;
        let key = reference.to_string();

        let model = self.model(&reference, &key, &digest)?;
        let route = match message {
            Some(text) => model
                .route(text)
                .map_err(|error| ApiError::internal("-", &error))?,
            None => None,
        };

        let mut loaded = self.lock();
        let Some(entry) = loaded.get_mut(&key) else {
            return Err(ApiError::internal(
                "-",
                &"the model was unloaded while routing",
            ));
        };
        // Another request may have loaded a newer version since the route was chosen. Its
        // lesson numbers can mean other lessons, so the message is routed again on it.
        let route = match (message, Arc::ptr_eq(&entry.model, &model)) {
            (Some(text), false) => entry
                .model
                .route(text)
                .map_err(|error| ApiError::internal("-", &error))?,
            _ => route,
        };
        if let Some(served) = entry.served.get(&route) {
            return Ok(served.clone());
        }
        let engine = entry
            .model
            .engine(route)
            .map_err(|error| ApiError::internal("-", &error))?;
        let scheduler = Scheduler::start(engine.clone(), self.limits)
            .map_err(|error| ApiError::internal("-", &error))?;
        let served = Served {
            engine,
            scheduler,
            route,
        };
        entry.served.insert(route, served.clone());
        Ok(served)
    }

    /// Returns the loaded version `key` names, loading `digest` when another one is loaded.
    fn model(
        &self,
        reference: &Reference,
        key: &str,
        digest: &Digest,
    ) -> Result<Arc<RoutedModel>, ApiError> {
        let mut loaded = self.lock();
        if let Some(entry) = loaded.get(key)
            && entry.model.base().manifest_digest() == digest
        {
            return Ok(entry.model.clone());
        }
        let model = Arc::new(self.load(reference)?);
        tracing::info!(model = %reference, version = %digest.short(), lessons = model.lessons().len(), "loaded model");
        let entry = Loaded {
            model: model.clone(),
            served: HashMap::new(),
        };
        loaded.insert(key.to_owned(), entry);
        Ok(model)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Loaded>> {
        self.loaded
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Stops taking work: every worker ends its requests at the next step.
    pub fn cancel_all(&self) {
        let loaded = self.lock();
        for served in loaded.values().flat_map(|entry| entry.served.values()) {
            served.scheduler.cancel_all();
        }
    }

    fn resolve(&self, reference: &Reference, name: &str) -> Result<Digest, ApiError> {
        match self.store.resolve(reference) {
            Ok(descriptor) => Ok(descriptor.digest),
            Err(error) if error.is_not_found() => Err(ApiError::invalid(
                "model",
                format!(
                    "model `{name}` is not in the store; `GET /v1/models` lists the models it \
                     has, and `strata pull` or `strata import` adds one"
                ),
            )
            .code("model_not_found")),
            Err(error) => Err(ApiError::internal("-", &error)),
        }
    }

    fn load(&self, reference: &Reference) -> Result<RoutedModel, ApiError> {
        let cannot = |error: &dyn std::fmt::Display| {
            ApiError::invalid(
                "model",
                format!("model `{reference}` cannot be loaded: {error}"),
            )
        };
        let loaded = LoadedModel::open(&self.store, reference).map_err(|error| cannot(&error))?;
        RoutedModel::load(&self.store, &loaded).map_err(|error| cannot(&error))
    }
}

/// Parses a model name from a request, rejecting session tags and malformed names.
pub fn parse_model(name: &str) -> Result<Reference, ApiError> {
    let reference = Reference::parse(name).map_err(|error| {
        ApiError::invalid("model", format!("invalid model name `{name}`: {error}"))
    })?;
    if reference.name.starts_with(strata_sessions::TAG_PREFIX) {
        return Err(ApiError::invalid(
            "model",
            format!("`{name}` names a saved session, not a model; pass it as `snapshot`"),
        ));
    }
    Ok(reference)
}
