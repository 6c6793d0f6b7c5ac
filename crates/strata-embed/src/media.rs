//! Media types and annotation keys of embedder manifests.
//!
//! Tensor and tokenizer layers use the same media types and annotations as model manifests
//! (`strata_model::media`), so tools that list a model's tensors list an embedder's too.

pub use strata_model::media::{
    TENSOR_DTYPE, TENSOR_NAME, TENSOR_SHAPE, TOKENIZER_MEDIA_TYPE, WEIGHT_MEDIA_TYPE,
};

/// `artifactType` of an embedder version's manifest.
pub const EMBEDDER_ARTIFACT_TYPE: &str = "application/vnd.strata.embedder.v1+json";

/// Media type of an embedder version's config document, an [`EmbedderConfig`](crate::EmbedderConfig).
pub const EMBEDDER_CONFIG_MEDIA_TYPE: &str = "application/vnd.strata.embedder.config.v1+json";

/// Media type of the model's Hugging Face `config.json`, stored byte for byte as shipped.
pub const MODEL_CONFIG_MEDIA_TYPE: &str = "application/vnd.strata.embedder.model-config.v1+json";

/// OCI annotation carrying a layer's file name.
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
