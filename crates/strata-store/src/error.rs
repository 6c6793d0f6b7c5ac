//! The one error type of the store.
//!
//! Every message is lowercase, names the operation and the value involved, and states what was
//! expected. IO errors carry the path and keep the `io::Error` as their source, so a caller that
//! prints the whole error chain shows the operating system's reason once.

use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Digest;

/// An error from any store operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A string is not a valid `sha256:` digest.
    #[error("invalid digest `{value}`: expected {expected}")]
    InvalidDigest {
        /// The rejected text.
        value: String,
        /// The rule the text breaks.
        expected: String,
    },
    /// A string is not a valid `NAME[:TAG]` or `NAME@DIGEST` reference.
    #[error("invalid reference `{value}`: {reason}")]
    InvalidReference {
        /// The rejected text.
        value: String,
        /// The rule the text breaks.
        reason: String,
    },
    /// A filesystem operation failed.
    #[error("{operation} `{path}` failed")]
    Io {
        /// Operation that failed, for example `fsync blob`.
        operation: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A blob that an operation needs is not in the store.
    #[error("{operation}: blob {digest} not found in the store")]
    NotFound {
        /// Operation that failed.
        operation: &'static str,
        /// The missing blob.
        digest: Digest,
    },
    /// No `index.json` entry carries the tag.
    #[error("{operation}: tag `{reference}` not found in the store")]
    TagNotFound {
        /// Operation that failed.
        operation: &'static str,
        /// The tag reference, written `name:tag`.
        reference: String,
    },
    /// A tag no longer points where a compare-and-set expected it to.
    #[error(
        "tag `{reference}` was moved by another writer: it points to {actual}, expected {expected}"
    )]
    TagMoved {
        /// The tag reference, written `name:tag`.
        reference: String,
        /// Manifest digest expected, or `nothing` for a new tag.
        expected: String,
        /// Manifest digest found, or `nothing` when the tag is gone.
        actual: String,
    },
    /// A reference names a digest where a tag is expected.
    #[error("{operation}: reference `{reference}` names a digest, expected `name:tag`")]
    NotATag {
        /// Operation that failed.
        operation: &'static str,
        /// The reference as written.
        reference: String,
    },
    /// Content does not hash to the digest it was stored or declared under.
    #[error("{operation}: content has digest {actual}, expected {expected}")]
    DigestMismatch {
        /// Operation that failed.
        operation: &'static str,
        /// The digest the caller or the path declared.
        expected: Digest,
        /// The sha256 of the bytes actually read.
        actual: Digest,
    },
    /// A blob's length differs from the size a descriptor declares.
    #[error("{operation}: blob {digest} has {actual} bytes, expected {expected}")]
    SizeMismatch {
        /// Operation that failed.
        operation: &'static str,
        /// The blob.
        digest: Digest,
        /// The size declared by the descriptor, in bytes.
        expected: u64,
        /// The size on disk, in bytes.
        actual: u64,
    },
    /// A manifest breaks the OCI image manifest rules that the store relies on.
    #[error("invalid manifest {digest}: {reason}")]
    InvalidManifest {
        /// The manifest digest, or `(unsaved)` before it is stored.
        digest: String,
        /// The rule the manifest breaks.
        reason: String,
    },
    /// A JSON document of the store (`oci-layout`, `index.json`, a manifest) does not parse.
    #[error("parse `{path}` failed: expected {expected}")]
    Json {
        /// The file, or `blobs/sha256/<hex>` for a blob.
        path: PathBuf,
        /// The document type expected.
        expected: &'static str,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The directory is an OCI layout of a version the store does not read.
    #[error("open store `{path}`: oci-layout has imageLayoutVersion `{found}`, expected `1.0.0`")]
    UnsupportedLayout {
        /// The store root.
        path: PathBuf,
        /// The version found.
        found: String,
    },
    /// The directory is neither empty nor an OCI image layout.
    #[error(
        "open store `{path}`: the directory is not empty and has no `oci-layout` file; \
         expected an empty directory or an OCI image layout"
    )]
    NotAStore {
        /// The directory.
        path: PathBuf,
    },
    /// `gc` stopped before removing anything because a tagged manifest cannot be walked.
    #[error(
        "gc: cannot walk manifest {digest} of `{reference}`, so nothing was removed; \
         run `fsck`, then repair or remove that tag"
    )]
    Unwalkable {
        /// The manifest that cannot be read.
        digest: Digest,
        /// The `org.opencontainers.image.ref.name` of its index entry, or `-` without one.
        reference: String,
        /// Error that stopped the walk.
        #[source]
        source: Box<StoreError>,
    },
}

impl StoreError {
    /// Builds an [`StoreError::Io`] for `operation` on `path`.
    pub(crate) fn io(operation: &'static str, path: &Path, source: io::Error) -> StoreError {
        StoreError::Io {
            operation,
            path: path.to_path_buf(),
            source,
        }
    }

    /// True when the error is a missing blob or tag.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            StoreError::NotFound { .. } | StoreError::TagNotFound { .. }
        )
    }
}

/// Adds the operation and path to an `io::Result`.
pub(crate) trait IoContext<T> {
    /// Maps the error into [`StoreError::Io`].
    fn context(self, operation: &'static str, path: &Path) -> Result<T, StoreError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, operation: &'static str, path: &Path) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::io(operation, path, source))
    }
}
