//! Media types and annotation keys of model manifests.

/// Artifact type of a model manifest (CNCF ModelPack).
pub const MODEL_ARTIFACT_TYPE: &str = "application/vnd.cncf.model.manifest.v1+json";
/// Media type of the model config blob (CNCF ModelPack).
pub const MODEL_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.model.config.v1+json";
/// Media type of one tensor's raw bytes (CNCF ModelPack weight, uncompressed).
pub const WEIGHT_MEDIA_TYPE: &str = "application/vnd.cncf.model.weight.v1.raw";
/// Media type of the tokenizer blob, a Hugging Face `tokenizer.json`.
pub const TOKENIZER_MEDIA_TYPE: &str = "application/vnd.strata.tokenizer.v1+json";
/// Media type of the chat template blob, Jinja source text.
pub const CHAT_TEMPLATE_MEDIA_TYPE: &str = "application/vnd.strata.chat-template.v1+jinja";

/// Annotation carrying a tensor's name, for example `blk.0.attn_q.weight`.
pub const TENSOR_NAME: &str = "org.strata.tensor.name";
/// Annotation carrying a tensor's dtype, for example `q4_1`.
pub const TENSOR_DTYPE: &str = "org.strata.tensor.dtype";
/// Annotation carrying a tensor's shape as a JSON array, outermost dimension first.
pub const TENSOR_SHAPE: &str = "org.strata.tensor.shape";

/// Builds the layer descriptor of a stored tensor: the weight media type with the tensor's name,
/// dtype and shape as annotations.
pub fn tensor_layer(
    digest: strata_store::Digest,
    size: u64,
    name: &str,
    dtype: crate::GgmlType,
    shape: &[usize],
) -> strata_store::Descriptor {
    let mut descriptor = strata_store::Descriptor::new(WEIGHT_MEDIA_TYPE, digest, size);
    let shape = serde_json::to_string(shape).expect("a shape serializes");
    let annotations = &mut descriptor.annotations;
    annotations.insert(TENSOR_NAME.to_string(), name.to_string());
    annotations.insert(TENSOR_DTYPE.to_string(), dtype.name().to_string());
    annotations.insert(TENSOR_SHAPE.to_string(), shape);
    descriptor
}
