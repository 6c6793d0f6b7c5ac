//! Errors of collections: bad input (names, specs, points, queries, filters), missing
//! collections and points, and failures of the store, the payload database or the HNSW index.
//!
//! Bad input is detected before anything is written, so an operation that fails with one of the
//! input errors leaves the tag, the blobs and the payload database as they were.

use std::io;
use std::path::PathBuf;

use strata_store::{Digest, StoreError};

/// Result with a [`CollectionError`].
pub type Result<T, E = CollectionError> = std::result::Result<T, E>;

/// An error from any collection operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectionError {
    /// A collection name breaks the naming rule.
    #[error(
        "invalid collection name `{name}`: {reason}; use lowercase letters, digits and `.`, `_` \
         or `-`, for example `docs-v2`"
    )]
    InvalidName {
        /// The name given.
        name: String,
        /// The rule the name breaks.
        reason: String,
    },
    /// A metric name other than `cosine`, `dot` and `l2`.
    #[error("unknown metric `{value}`: expected `cosine`, `dot` or `l2`")]
    UnknownMetric {
        /// The name given.
        value: String,
    },
    /// A collection spec has a value out of range.
    #[error("invalid collection spec: {reason}")]
    InvalidSpec {
        /// The field, its value and the accepted range.
        reason: String,
    },
    /// No collection has this name.
    #[error("no collection named `{name}`; create it first, or list the collections")]
    NotFound {
        /// The name looked up.
        name: String,
    },
    /// A collection of this name exists already.
    #[error("collection `{name}` already exists; remove it first or choose another name")]
    AlreadyExists {
        /// The name given.
        name: String,
    },
    /// A vector's length differs from the collection's dimension.
    #[error(
        "{vector} has {actual} values but collection `{name}` has dimension {expected}; {hint}"
    )]
    DimensionMismatch {
        /// The collection.
        name: String,
        /// The vector: a point named by its id, or the query vector.
        vector: String,
        /// The collection's dimension.
        expected: usize,
        /// The vector's length.
        actual: usize,
        /// How to produce a vector that fits, naming the embedder when the collection has one.
        hint: String,
    },
    /// A vector contains NaN or an infinity.
    #[error("{vector} has {value} at index {index}; every value must be a finite number")]
    NonFinite {
        /// The vector: a point named by its id, or the query vector.
        vector: String,
        /// Position of the first bad value.
        index: usize,
        /// The bad value as text: `NaN`, `inf` or `-inf`.
        value: String,
    },
    /// A vector of all zeros was given to a cosine collection, whose similarity is undefined
    /// for it.
    #[error(
        "{vector} is all zeros, which has no cosine similarity to anything; give a non-zero vector"
    )]
    ZeroVector {
        /// The vector: a point named by its id, or the query vector.
        vector: String,
    },
    /// A point id breaks the id rule.
    #[error("invalid point id `{id}`: {reason}")]
    InvalidId {
        /// The id given.
        id: String,
        /// The rule the id breaks.
        reason: String,
    },
    /// One request names the same point id twice.
    #[error("point id `{id}` appears twice in one request; give each id once")]
    DuplicateId {
        /// The repeated id.
        id: String,
    },
    /// A point id is not in the collection.
    #[error("no point `{id}` in collection `{name}`")]
    PointNotFound {
        /// The collection.
        name: String,
        /// The id looked up.
        id: String,
    },
    /// A filter expression does not parse.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// A filter names a field that no point's payload has.
    #[error("filter field `{field}` is in no point of collection `{name}`; known fields: {known}")]
    UnknownField {
        /// The collection.
        name: String,
        /// The field the filter names.
        field: String,
        /// The fields the points have, comma-separated, or `none`.
        known: String,
    },
    /// Search options out of range.
    #[error("invalid search options: {reason}")]
    InvalidSearch {
        /// The option, its value and the accepted range.
        reason: String,
    },
    /// Another writer moved the collection's tag after this operation read it.
    #[error("collection `{name}` was changed by another writer meanwhile; run the operation again")]
    Moved {
        /// The collection.
        name: String,
        /// The store's compare-and-set error, naming both digests.
        #[source]
        source: StoreError,
    },
    /// A stored blob of the collection does not decode.
    #[error("invalid collection blob {digest}: {reason}; run `strata fsck`")]
    Corrupt {
        /// The blob.
        digest: Digest,
        /// The fault found in it.
        reason: String,
    },
    /// A collection manifest or config breaks the format.
    #[error("invalid collection version {digest}: {reason}")]
    InvalidVersion {
        /// The manifest digest.
        digest: Digest,
        /// The rule it breaks.
        reason: String,
    },
    /// The HNSW index library reported an error.
    #[error("HNSW index: {operation} failed: {message}")]
    Index {
        /// The index operation, for example `add vector`.
        operation: &'static str,
        /// The library's message.
        message: String,
    },
    /// The payload database failed.
    #[error("payload database `{path}`: {operation} failed")]
    Database {
        /// The database file.
        path: PathBuf,
        /// The operation, for example `commit`.
        operation: &'static str,
        /// redb's error, boxed because it is large.
        #[source]
        source: Box<redb::Error>,
    },
    /// A filesystem operation outside the store failed.
    #[error("{operation} `{path}` failed")]
    Io {
        /// The operation, for example `remove payload database`.
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A JSON document of a collection does not parse.
    #[error("parse {document} failed")]
    Json {
        /// The document, for example `collection config sha256:…`.
        document: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A filter expression that does not parse, with the position of the offending token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter at column {column} near `{token}`: {message}")]
pub struct FilterError {
    /// Column of the token's first character, counted in characters from 1.
    pub column: usize,
    /// The token's text, or `end of filter`.
    pub token: String,
    /// The problem and what the parser expected at that position.
    pub message: String,
}

impl CollectionError {
    /// Builds a [`CollectionError::Database`] from any of redb's error types.
    pub(crate) fn database(
        path: &std::path::Path,
        operation: &'static str,
        source: impl Into<redb::Error>,
    ) -> CollectionError {
        CollectionError::Database {
            path: path.to_path_buf(),
            operation,
            source: Box::new(source.into()),
        }
    }

    /// Builds a [`CollectionError::Index`] from the index library's exception.
    pub(crate) fn index(operation: &'static str, error: impl std::fmt::Display) -> CollectionError {
        CollectionError::Index {
            operation,
            message: error.to_string(),
        }
    }

    /// True when the error is a missing collection or point.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            CollectionError::NotFound { .. } | CollectionError::PointNotFound { .. }
        )
    }
}
