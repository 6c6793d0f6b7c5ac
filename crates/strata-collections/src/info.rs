//! Summaries of collections and their versions, for listing and logging.

use chrono::{DateTime, Utc};
use strata_store::Digest;

use crate::metric::Metric;
use crate::version::Version;

/// A collection's current version, summarized.
#[derive(Clone, Debug, PartialEq)]
pub struct CollectionInfo {
    /// The collection's name.
    pub name: String,
    /// Manifest digest of the current version.
    pub digest: Digest,
    /// Number of values in every vector.
    pub dim: usize,
    /// The distance metric.
    pub metric: Metric,
    /// Name of the model that embeds points and queries, when one was given.
    pub embedder: Option<String>,
    /// Number of points.
    pub points: usize,
    /// Number of segments.
    pub segments: usize,
    /// Maximum points per segment.
    pub segment_points: usize,
    /// When the current version was written.
    pub created: DateTime<Utc>,
    /// Manifest digest of the previous version, if any.
    pub parent: Option<Digest>,
}

/// One version in a collection's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    /// Manifest digest.
    pub digest: Digest,
    /// Manifest digest of the version before it, if any.
    pub parent: Option<Digest>,
    /// When it was written.
    pub created: DateTime<Utc>,
    /// Number of points.
    pub points: usize,
    /// Number of segments.
    pub segments: usize,
}

impl From<&Version> for CollectionInfo {
    fn from(version: &Version) -> CollectionInfo {
        let config = &version.config;
        CollectionInfo {
            name: config.name.clone(),
            digest: version.digest().clone(),
            dim: config.dim,
            metric: config.metric,
            embedder: config.embedder.clone(),
            points: config.points,
            segments: version.segments.len(),
            segment_points: config.segment_points,
            created: config.created,
            parent: config.parent.clone(),
        }
    }
}

impl From<&Version> for VersionInfo {
    fn from(version: &Version) -> VersionInfo {
        VersionInfo {
            digest: version.digest().clone(),
            parent: version.config.parent.clone(),
            created: version.config.created,
            points: version.config.points,
            segments: version.segments.len(),
        }
    }
}
