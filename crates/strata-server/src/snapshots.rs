//! Starting a request from a saved session: by name, or found because the request's prompt
//! begins with the snapshot's tokens on the same model version (prefix reuse).

use strata_runtime::Sequence;
use strata_runtime::engine::Engine;
use strata_runtime::template::Message;
use strata_sessions::{SessionError, Snapshot, SnapshotRef};
use strata_store::Store;

use crate::error::ApiError;

/// Snapshots shorter than this are not worth a restore for prefix reuse.
const MIN_PREFIX_TOKENS: usize = 32;

/// Reads the snapshot a request names (`NAME` or `sha256:…`); `param` is the request field.
pub fn open(store: &Store, name: &str, param: &str) -> Result<Snapshot, ApiError> {
    let reference = SnapshotRef::parse(name)
        .map_err(|error| ApiError::invalid(param, format!("invalid snapshot `{name}`: {error}")))?;
    Snapshot::open_ref(store, &reference).map_err(|error| match error {
        SessionError::NotFound { .. } => {
            let mut error = ApiError::not_found(error.to_string()).code("snapshot_not_found");
            error.param = Some(param.to_owned());
            error
        }
        error => ApiError::invalid(param, format!("snapshot `{name}` cannot be read: {error}")),
    })
}

/// Rebuilds a snapshot's chat on `engine`: the system message and messages, and the cache
/// (read, or recomputed when the snapshot was saved with another version).
pub fn restore(
    store: &Store,
    snapshot: &Snapshot,
    engine: &Engine,
) -> Result<(Vec<Message>, Option<Sequence>), ApiError> {
    let restored = strata_sessions::restore(store, snapshot, engine).map_err(|error| {
        ApiError::invalid(
            "snapshot",
            format!(
                "snapshot {} cannot be restored: {error}",
                snapshot.descriptor.digest.short()
            ),
        )
    })?;
    if let Some(reason) = &restored.recomputed {
        tracing::info!(snapshot = %snapshot.descriptor.digest.short(), %reason, "snapshot recomputed");
    }
    let (system, messages, sequence) = restored.chat.into_parts();
    let system = system.map(|text| Message::new("system", text));
    Ok((system.into_iter().chain(messages).collect(), sequence))
}

/// The conversation of a request that continues a snapshot: the snapshot's messages, then the
/// request's, unless the request already repeats the snapshot's history.
pub fn continue_messages(saved: Vec<Message>, request: Vec<Message>) -> Vec<Message> {
    if request.starts_with(&saved) {
        return request;
    }
    saved.into_iter().chain(request).collect()
}

/// Restores the longest saved session on `engine`'s version whose tokens begin `prompt`, when
/// one covers at least [`MIN_PREFIX_TOKENS`]. Snapshots that cannot be read are skipped.
pub fn longest_prefix(store: &Store, engine: &Engine, prompt: &[u32]) -> Option<Sequence> {
    if prompt.len() <= MIN_PREFIX_TOKENS {
        return None;
    }
    let snapshots = strata_sessions::list(store).ok()?;
    let best = snapshots
        .into_iter()
        .filter_map(|(_, snapshot)| snapshot.ok())
        .filter(|snapshot| {
            let tokens = &snapshot.config.tokens;
            snapshot.config.model.manifest == *engine.manifest_digest()
                && tokens.len() >= MIN_PREFIX_TOKENS
                && prompt.starts_with(tokens)
        })
        .max_by_key(|snapshot| snapshot.config.tokens.len())?;
    match strata_sessions::restore(store, &best, engine) {
        Ok(restored) => {
            tracing::debug!(snapshot = %best.descriptor.digest.short(), tokens = best.config.tokens.len(), "prefix from snapshot");
            restored.chat.into_parts().2
        }
        Err(error) => {
            tracing::warn!(snapshot = %best.descriptor.digest.short(), %error, "prefix snapshot not restored");
            None
        }
    }
}
