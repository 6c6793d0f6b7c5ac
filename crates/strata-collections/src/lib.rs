//! Embedding collections: vectors with JSON payloads, searched by nearest neighbour with payload
//! filters, and stored in the strata store so that they version like models.
//!
//! This crate owns the collection format and its operations. A collection `NAME` is the tag
//! `collection/NAME:latest`, and each version is an OCI manifest. Its config records the name,
//! dimension, metric, embedder, point count and parent version. Its layers are the points in
//! segments, each a binary vectors blob and a JSON payloads blob, followed by an HNSW index
//! built with `usearch`. A change rewrites only the segments it touches, so unchanged segments
//! keep their digests and are stored once. Beside the store, a `redb` database per collection
//! under `collections/` holds ids and payloads for lookups and filters; it is derived from the
//! blobs and rebuilt whenever it reflects another version than the tag.
//!
//! [`Collections`] is the entry point: create, list, upsert, delete, get, search, log and
//! remove. Search is HNSW by default, exact on request, and exact over the matching points when
//! a [`Filter`] matches few of them.

mod collections;
mod config;
mod error;
mod filter;
mod index;
mod info;
mod loaded;
mod metric;
mod name;
mod payload_db;
mod payload_index;
mod point;
mod rows;
mod search;
mod segment;
mod spec;
mod update;
mod version;

pub mod media;

pub use collections::{COLLECTIONS_DIR, Collections};
pub use config::{CollectionConfig, DEFAULT_CONNECTIVITY, DEFAULT_EXPANSION_ADD, IndexSettings};
pub use error::{CollectionError, FilterError, Result};
pub use filter::Filter;
pub use info::{CollectionInfo, VersionInfo};
pub use metric::Metric;
pub use name::{CollectionName, MAX_NAME_LEN, TAG_PREFIX};
pub use point::{MAX_ID_LEN, Point};
pub use search::{
    DEFAULT_EF, DEFAULT_TOP_K, EXACT_FALLBACK_FRACTION, EXACT_FALLBACK_POINTS, Hit, MAX_EF,
    MAX_TOP_K, SearchMethod, SearchOptions, SearchResults,
};
pub use segment::{
    COUNT_OFFSET, DIM_OFFSET, HEADER_LEN, IDS_LEN_OFFSET, VECTORS_MAGIC, VECTORS_VERSION,
    VERSION_OFFSET,
};
pub use spec::{
    CollectionSpec, DEFAULT_SEGMENT_POINTS, MAX_CONNECTIVITY, MAX_DIM, MAX_EXPANSION_ADD,
    MAX_SEGMENT_POINTS,
};
