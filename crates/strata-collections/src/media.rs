//! Media types and annotation keys of collection versions.

/// `artifactType` of a collection version's manifest.
pub const COLLECTION_ARTIFACT_TYPE: &str = "application/vnd.strata.collection.v1+json";

/// Media type of a collection version's config document.
pub const COLLECTION_CONFIG_MEDIA_TYPE: &str = "application/vnd.strata.collection.config.v1+json";

/// Media type of a segment's vectors blob: keys, vectors and ids in the binary layout that
/// `segment.rs` describes.
pub const VECTORS_MEDIA_TYPE: &str = "application/vnd.strata.collection.vectors.v1";

/// Media type of a segment's payloads blob: a JSON array of `{"id", "payload"}` objects in the
/// order of the vectors blob.
pub const PAYLOADS_MEDIA_TYPE: &str = "application/vnd.strata.collection.payloads.v1+json";

/// Media type of the HNSW index: usearch's own serialization of a dense index of f32 vectors.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.strata.collection.hnsw.usearch.v1";

/// Annotation on both layers of a segment: the segment's serial number, in decimal.
pub const SEGMENT_ANNOTATION: &str = "org.strata.collection.segment";

/// Annotation on both layers of a segment: how many points it contains, in decimal.
pub const POINTS_ANNOTATION: &str = "org.strata.collection.points";
