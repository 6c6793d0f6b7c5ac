//! Media types and annotation keys of session snapshots.

/// `artifactType` of a snapshot manifest.
pub const SNAPSHOT_ARTIFACT_TYPE: &str = "application/vnd.strata.session.v1+json";

/// Media type of a snapshot's config document.
pub const SNAPSHOT_CONFIG_MEDIA_TYPE: &str = "application/vnd.strata.session.config.v1+json";

/// Media type of a KV cache block layer.
pub const KV_BLOCK_MEDIA_TYPE: &str = "application/vnd.strata.session.kv-block.v1";

/// Annotation on a block layer: the first position it covers, in decimal.
pub const BLOCK_START_ANNOTATION: &str = "org.strata.kv.start";

/// Annotation on a block layer: how many positions it covers, in decimal.
pub const BLOCK_TOKENS_ANNOTATION: &str = "org.strata.kv.tokens";
