//! Errors of registry operations.

use strata_store::StoreError;

/// Any failure to push or pull.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A reference that is not `oci://HOST[:PORT]/REPO[:TAG|@DIGEST]`.
    #[error("invalid registry reference `{value}`: {reason}")]
    InvalidReference {
        /// The text given.
        value: String,
        /// What is wrong and how to write it.
        reason: String,
    },
    /// The registry answered with an unexpected status.
    #[error("{operation} at {url} failed with HTTP {status}: {body}")]
    Status {
        /// What was attempted, such as `upload blob`.
        operation: String,
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the registry's answer.
        body: String,
    },
    /// The registry could not be reached.
    #[error("{operation} at {url}: {source}")]
    Http {
        /// What was attempted.
        operation: String,
        /// The URL.
        url: String,
        /// The cause.
        source: reqwest::Error,
    },
    /// The registry sent something strata cannot accept.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading credentials or a blob failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being read.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Result of a registry operation.
pub type Result<T> = std::result::Result<T, RegistryError>;
