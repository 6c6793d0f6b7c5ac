//! Errors of saving, restoring and listing snapshots.

use strata_store::{Digest, StoreError};

/// Result with a [`SessionError`].
pub type Result<T, E = SessionError> = std::result::Result<T, E>;

/// Error of saving, reading or restoring a snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A session name breaks the naming rule.
    #[error(
        "invalid session name `{name}`: {reason}; use lowercase letters, digits and `.`, `_` or `-`, \
         for example `work-notes`"
    )]
    InvalidName {
        /// The name given.
        name: String,
        /// The rule the name breaks.
        reason: String,
    },
    /// No snapshot has this name.
    #[error("no saved session named `{name}`; see `strata session list`")]
    NotFound {
        /// The name looked up.
        name: String,
    },
    /// A snapshot's manifest or config contradicts itself or the format.
    #[error("invalid snapshot: {what}")]
    Invalid {
        /// Description of the fault.
        what: String,
    },
    /// A block the snapshot lists is not in the store.
    #[error("cache block {index} ({digest}) is missing from the store; run `strata fsck`")]
    MissingBlock {
        /// Position of the block in the manifest.
        index: usize,
        /// Digest of the block.
        digest: Digest,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// A block's stored size differs from what its token count needs.
    #[error(
        "cache block {index} ({digest}) holds {actual} bytes, but {tokens} positions need {expected}; \
         the block is truncated or damaged, run `strata fsck`"
    )]
    BlockSize {
        /// Position of the block in the manifest.
        index: usize,
        /// Digest of the block.
        digest: Digest,
        /// Positions the block covers.
        tokens: usize,
        /// Bytes expected.
        expected: u64,
        /// Bytes stored.
        actual: u64,
    },
    /// The model a snapshot was computed with is not in the store.
    #[error(
        "the session was saved with model {reference} ({digest}), which is not in the store; pull \
         that model again, or move the session to another model with `strata session rebase`"
    )]
    ModelMissing {
        /// Reference recorded in the snapshot.
        reference: String,
        /// Manifest digest recorded in the snapshot.
        digest: Digest,
    },
    /// The snapshot contains more positions than the model's context length.
    #[error(
        "the session holds {tokens} tokens but the model's context is {max}; start a new session \
         or rebase onto a model with a longer context"
    )]
    ContextLength {
        /// Tokens in the snapshot.
        tokens: usize,
        /// Context length of the model.
        max: usize,
    },
    /// Another save moved the name after this session read it.
    #[error("session `{name}` was saved by another process meanwhile; save under another name")]
    Moved {
        /// The session name.
        name: String,
        /// The store's compare-and-set error, naming both digests.
        #[source]
        source: StoreError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The runtime failed to encode, decode or recompute the cache.
    #[error(transparent)]
    Runtime(#[from] strata_runtime::Error),
    /// A config document could not be written or parsed.
    #[error("snapshot config {digest}: {source}")]
    Json {
        /// Digest of the config blob (or `(unsaved)`).
        digest: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
}
