//! The config document of a collection version: everything about the version except its points
//! and its index.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use strata_store::Digest;

use crate::metric::Metric;
use crate::spec::CollectionSpec;

/// Graph degree of the HNSW index (usearch's `connectivity`, HNSW's M).
pub const DEFAULT_CONNECTIVITY: usize = 16;

/// Candidate list size while inserting into the HNSW index (usearch's `expansion_add`).
pub const DEFAULT_EXPANSION_ADD: usize = 128;

/// The config document of a collection manifest, media type
/// [`COLLECTION_CONFIG_MEDIA_TYPE`](crate::media::COLLECTION_CONFIG_MEDIA_TYPE).
///
/// The store's `gc` follows the `parent` key of a JSON config as a manifest, so every earlier
/// version stays readable for [`Collections::log`](crate::Collections::log).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CollectionConfig {
    /// The collection's name.
    pub name: String,
    /// Number of values in every vector.
    pub dim: usize,
    /// The distance metric.
    pub metric: Metric,
    /// Name of the model that embeds points and queries, when one was given.
    pub embedder: Option<String>,
    /// Number of points in this version.
    pub points: usize,
    /// Maximum points per segment.
    pub segment_points: usize,
    /// Index key the next new point gets. Keys are never reused, so a key names one point
    /// across every version.
    pub next_key: u64,
    /// Serial number the next new segment gets.
    pub next_segment: u32,
    /// Manifest digest of the version this one was derived from; `None` for a new collection.
    pub parent: Option<Digest>,
    /// When this version was written.
    pub created: DateTime<Utc>,
    /// Settings the HNSW index was built with.
    pub index: IndexSettings,
}

/// Build settings of the HNSW index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexSettings {
    /// Graph degree (HNSW's M).
    pub connectivity: usize,
    /// Candidate list size while inserting.
    pub expansion_add: usize,
}

impl Default for IndexSettings {
    fn default() -> IndexSettings {
        IndexSettings {
            connectivity: DEFAULT_CONNECTIVITY,
            expansion_add: DEFAULT_EXPANSION_ADD,
        }
    }
}

impl CollectionConfig {
    /// Describes a new, empty collection.
    pub(crate) fn new(name: &str, spec: &CollectionSpec) -> CollectionConfig {
        CollectionConfig {
            name: name.to_string(),
            dim: spec.dim,
            metric: spec.metric,
            embedder: spec.embedder.clone(),
            points: 0,
            segment_points: spec.segment_points,
            next_key: 0,
            next_segment: 0,
            parent: None,
            created: Utc::now(),
            index: spec.index,
        }
    }

    /// Serializes the config as indented JSON, the bytes of its blob.
    pub(crate) fn to_json_bytes(&self) -> Vec<u8> {
        // Plain structs, strings and numbers always serialize.
        serde_json::to_vec_pretty(self).expect("a collection config always serializes")
    }
}
