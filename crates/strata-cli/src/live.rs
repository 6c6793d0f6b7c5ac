//! The chat a `strata run` holds: engine, conversation, sampling settings and the snapshot it
//! came from, with the save, load and fork steps the REPL and the flags share.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use strata_model::load::LoadedModel;
use strata_runtime::SamplingParams;
use strata_runtime::engine::{Chat, Engine};
use strata_runtime::model::BlockDtype;
use strata_sessions::{SaveOptions, SessionName, Snapshot};
use strata_store::{Reference, Store};

use crate::commands::import::human_bytes;
use crate::commands::pull;

/// One running conversation and where it came from.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) store: Store,
    pub(crate) engine: Engine,
    pub(crate) chat: Chat,
    pub(crate) params: SamplingParams,
    /// Element type of saved cache blocks, and the precision the cache keeps.
    pub(crate) kv_dtype: BlockDtype,
    /// The snapshot this chat was restored from or last saved as: the next save's parent.
    pub(crate) origin: Option<Snapshot>,
    /// The name a plain `/save` writes to: the session loaded or saved last.
    pub(crate) attached: Option<SessionName>,
}

impl Live {
    /// Starts an empty chat on `engine`.
    pub(crate) fn new(
        store: Store,
        mut engine: Engine,
        params: SamplingParams,
        kv_dtype: BlockDtype,
    ) -> Live {
        engine.model_mut().set_kv_precision(kv_dtype);
        let chat = engine.new_chat(None);
        Live {
            store,
            engine,
            chat,
            params,
            kv_dtype,
            origin: None,
            attached: None,
        }
    }

    /// Saves the chat as `name` and makes it this chat's origin.
    pub(crate) fn save(&mut self, name: &SessionName) -> anyhow::Result<()> {
        let options = SaveOptions {
            dtype: self.kv_dtype,
            parent: self.origin.as_ref(),
            ..SaveOptions::default()
        };
        let (engine, chat) = (&self.engine, &self.chat);
        let saved = strata_sessions::save(&self.store, name, engine, chat, &self.params, &options)
            .with_context(|| format!("cannot save session `{name}`"))?;
        let snapshot = &saved.snapshot;
        eprintln!(
            "saved session `{name}` ({} tokens, {} new in {} blocks, {} reused)",
            snapshot.config.cached_tokens,
            human_bytes(saved.bytes_written),
            saved.blocks_written,
            saved.blocks_reused,
        );
        self.origin = Some(saved.snapshot);
        self.attached = Some(name.clone());
        Ok(())
    }

    /// Replaces the chat and its sampling settings with the session `name`; on an error the
    /// chat stays as it was. With `attach`, a later plain `/save` writes back to `name`.
    pub(crate) fn load(&mut self, name: &SessionName, attach: bool) -> anyhow::Result<()> {
        let snapshot = Snapshot::open(&self.store, name)?;
        let params = snapshot.config.sampling.clone();
        self.restore(snapshot, name, attach)?;
        self.params = params;
        Ok(())
    }

    /// Replaces the chat with `snapshot`, the session `name`; sampling settings stay.
    pub(crate) fn restore(
        &mut self,
        snapshot: Snapshot,
        name: &SessionName,
        attach: bool,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let restored = strata_sessions::restore(&self.store, &snapshot, &self.engine)
            .with_context(|| format!("cannot restore session `{name}`"))?;
        if let Some(recomputed) = &restored.recomputed {
            eprintln!("note: {recomputed}");
        }
        tracing::info!(session = %name, elapsed = ?started.elapsed(), "restored session");
        self.chat = restored.chat;
        self.origin = Some(snapshot);
        self.attached = attach.then(|| name.clone());
        Ok(())
    }
}

/// Loads the model `reference`, pulling it first when it is a known default the store lacks.
pub(crate) fn load_engine(
    home: &Path,
    store: &Store,
    reference: &Reference,
) -> anyhow::Result<Engine> {
    if let Some(known) = pull::known_and_missing(store, reference) {
        eprintln!("{reference} is not in the store yet; pulling it");
        pull::pull(home, known)?;
    }
    let started = Instant::now();
    let loaded = LoadedModel::open(store, reference)
        .with_context(|| format!("cannot load `{reference}`; see `strata list`"))?;
    let engine = Engine::load(&loaded).with_context(|| format!("cannot start `{reference}`"))?;
    tracing::info!(model = %reference, elapsed = ?started.elapsed(), "model loaded");
    Ok(engine)
}
