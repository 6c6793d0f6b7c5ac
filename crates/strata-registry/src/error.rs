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
        /// The problem and how to write the reference.
        reason: String,
    },
    /// The registry returned an unexpected status.
    #[error("{operation} at {url} failed with HTTP {status}: {body}")]
    Status {
        /// The operation, such as `upload blob`.
        operation: String,
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The registry could not be reached.
    #[error("{operation} at {url}: {source}")]
    Http {
        /// The operation.
        operation: String,
        /// The URL.
        url: String,
        /// The cause.
        source: reqwest::Error,
    },
    /// The registry sent something strata cannot accept.
    #[error("{0}")]
    Invalid(String),
    /// A transfer broke and stayed broken after the retries; running the same command again
    /// continues it.
    #[error("{what} broke ({source}); run the same command again to continue where it stopped")]
    Interrupted {
        /// The transfer that broke.
        what: String,
        /// The last failure.
        source: Box<RegistryError>,
    },
    /// Reading or writing the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading credentials or a blob failed.
    #[error("{context}: {source}")]
    Io {
        /// The file or blob being read.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Result of a registry operation.
pub type Result<T> = std::result::Result<T, RegistryError>;
