//! The models the server has loaded: one engine and one batching worker per model tag, reloaded
//! when the tag moves (a lesson committed a version, or a rollback), so every request runs the
//! version its tag names at that moment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
}

/// Engines by model reference, loaded on first use.
#[derive(Debug)]
pub struct Models {
    store: Store,
    limits: SchedulerLimits,
    loaded: Mutex<HashMap<String, Served>>,
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

    /// Returns the engine and worker for `name` (`NAME`, `NAME:TAG` or `NAME@DIGEST`), loading
    /// the version the tag names now when it is not the one loaded. Blocks while loading.
    pub fn get(&self, name: &str) -> Result<Served, ApiError> {
        let reference = parse_model(name)?;
        let digest = self.resolve(&reference, name)?;
        let key = reference.to_string();

        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(served) = loaded.get(&key)
            && served.engine.manifest_digest() == &digest
        {
            return Ok(served.clone());
        }
        let served = self.load(&reference)?;
        tracing::info!(model = %reference, version = %served.engine.manifest_digest().short(), "loaded model");
        loaded.insert(key, served.clone());
        Ok(served)
    }

    /// Stops taking work: every worker ends its requests at the next step.
    pub fn cancel_all(&self) {
        let loaded = self
            .loaded
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        for served in loaded.values() {
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

    fn load(&self, reference: &Reference) -> Result<Served, ApiError> {
        let loaded = LoadedModel::open(&self.store, reference).map_err(|error| {
            ApiError::invalid(
                "model",
                format!("model `{reference}` cannot be loaded: {error}"),
            )
        })?;
        let engine = Engine::load(&loaded).map_err(|error| {
            ApiError::invalid(
                "model",
                format!("model `{reference}` cannot be loaded: {error}"),
            )
        })?;
        let engine = Arc::new(engine);
        let scheduler = Scheduler::start(engine.clone(), self.limits)
            .map_err(|error| ApiError::internal("-", &error))?;
        Ok(Served { engine, scheduler })
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
