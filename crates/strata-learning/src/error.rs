//! Errors of the learning crate.

use std::path::PathBuf;

/// Result with [`LearnError`].
pub type Result<T, E = LearnError> = std::result::Result<T, E>;

/// Everything that can stop a lesson, a gate or an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// A facts or controls file could not be read.
    #[error("cannot read `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A line of a facts or controls file is not a valid record.
    #[error("invalid record at {path}:{line}: {reason}")]
    InvalidRecord {
        /// The file.
        path: PathBuf,
        /// One-based line number.
        line: usize,
        /// The problem and its fix.
        reason: String,
    },
    /// A lesson is unusable as given.
    #[error("invalid lesson: {reason}")]
    InvalidLesson {
        /// The problem and its fix.
        reason: String,
    },
    /// The held-out text for perplexity is missing or too short.
    #[error("held-out text for perplexity not usable: {reason}")]
    HeldOut {
        /// The problem and its fix.
        reason: String,
    },
    /// Another process moved the model's tag while the lesson trained.
    #[error(
        "`{reference}` moved to {actual} while the lesson trained on {expected}; nothing was committed, run the lesson again"
    )]
    Moved {
        /// The tag.
        reference: String,
        /// The version the lesson trained on.
        expected: String,
        /// The tag's current manifest.
        actual: String,
    },
    /// The fast memory could not be read or written.
    #[error("memory: {reason}")]
    Memory {
        /// The problem.
        reason: String,
    },
    /// Messages could not be matched to lessons.
    #[error("lesson routing: {reason}")]
    Routing {
        /// The problem.
        reason: String,
    },
    /// A version is not a model version strata can learn on.
    #[error("`{reference}`: {reason}")]
    Version {
        /// The reference or digest.
        reference: String,
        /// The problem.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] strata_store::StoreError),
    /// Loading the model failed.
    #[error(transparent)]
    Model(#[from] strata_model::ModelError),
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] strata_runtime::Error),
    /// Text could not be tokenized.
    #[error(transparent)]
    Tokenizer(#[from] strata_runtime::tokenizer::TokenizerError),
    /// A session could not be read.
    #[error(transparent)]
    Session(#[from] strata_sessions::SessionError),
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    /// A record could not be encoded or decoded.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}
