//! Loading a model version from the store as memory-mapped tensor views.

use strata_store::{Descriptor, Digest, Reference, Store};

use crate::config::ModelConfig;
use crate::dtype::GgmlType;
use crate::error::{LoadError, ModelError, Result};
use crate::media;
use crate::tensor::{TensorSet, TensorView};

/// A model version read back from the store.
#[derive(Debug)]
pub struct LoadedModel {
    /// Digest of the version's manifest.
    pub manifest_digest: Digest,
    /// The reference the version was loaded by.
    pub reference: Reference,
    /// The config document.
    pub config: ModelConfig,
    /// Every tensor, its bytes mapped from its blob.
    pub tensors: TensorSet,
    /// The `tokenizer.json` bytes.
    pub tokenizer_json: Vec<u8>,
    /// The chat template source, when the version has one.
    pub chat_template: Option<String>,
}

impl LoadedModel {
    /// Resolves `reference` and loads the version it names.
    pub fn open(store: &Store, reference: &Reference) -> Result<LoadedModel> {
        let descriptor = store.resolve(reference)?;
        let manifest = store.read_manifest(&descriptor.digest)?;
        let name = reference.to_string();
        let artifact_type = manifest.artifact_type.as_deref();
        if artifact_type.is_some_and(|kind| kind != media::MODEL_ARTIFACT_TYPE) {
            return Err(LoadError::NotAModel {
                reference: name,
                field: "artifact type",
                media_type: artifact_type.unwrap_or_default().to_string(),
            }
            .into());
        }
        if manifest.config.media_type != media::MODEL_CONFIG_MEDIA_TYPE {
            return Err(LoadError::NotAModel {
                reference: name,
                field: "config media type",
                media_type: manifest.config.media_type.clone(),
            }
            .into());
        }
        let config: ModelConfig = serde_json::from_slice(
            &store.read_blob(&manifest.config.digest)?,
        )
        .map_err(|error| LoadError::BadConfig {
            reference: name.clone(),
            message: error.to_string(),
        })?;

        let mut tensors = TensorSet::default();
        let mut tokenizer_json = None;
        let mut chat_template = None;
        for layer in &manifest.layers {
            match layer.media_type.as_str() {
                media::WEIGHT_MEDIA_TYPE => {
                    let view = tensor_view(store, &name, layer)?;
                    if tensors.get(&view.name).is_some() {
                        return Err(LoadError::DuplicateTensor {
                            reference: name,
                            tensor: view.name,
                        }
                        .into());
                    }
                    tensors.insert(view);
                }
                media::TOKENIZER_MEDIA_TYPE => {
                    if tokenizer_json.is_some() {
                        return Err(duplicate_layer(name, media::TOKENIZER_MEDIA_TYPE));
                    }
                    tokenizer_json = Some(store.read_blob(&layer.digest)?)
                }
                media::CHAT_TEMPLATE_MEDIA_TYPE => {
                    if chat_template.is_some() {
                        return Err(duplicate_layer(name, media::CHAT_TEMPLATE_MEDIA_TYPE));
                    }
                    let bytes = store.read_blob(&layer.digest)?;
                    let text = String::from_utf8(bytes).map_err(|_| LoadError::BadTemplate {
                        reference: name.clone(),
                        digest: layer.digest.to_string(),
                    })?;
                    chat_template = Some(text);
                }
                other => {
                    return Err(LoadError::UnknownLayer {
                        reference: name,
                        digest: layer.digest.to_string(),
                        media_type: other.to_string(),
                    }
                    .into());
                }
            }
        }
        let tokenizer_json = tokenizer_json.ok_or_else(|| LoadError::MissingTokenizer {
            reference: name.clone(),
        })?;
        tracing::debug!(%reference, tensors = tensors.len(), "loaded model version");
        Ok(LoadedModel {
            manifest_digest: descriptor.digest,
            reference: reference.clone(),
            config,
            tensors,
            tokenizer_json,
            chat_template,
        })
    }
}

/// Builds the error for a second tokenizer or chat template layer, which would make the choice
/// between the two arbitrary.
fn duplicate_layer(reference: String, media_type: &'static str) -> ModelError {
    LoadError::DuplicateLayer {
        reference,
        media_type,
    }
    .into()
}

/// Maps one tensor layer, checking its annotations against its size.
fn tensor_view(store: &Store, reference: &str, layer: &Descriptor) -> Result<TensorView> {
    let annotation_error = |annotation| LoadError::BadAnnotation {
        reference: reference.to_string(),
        digest: layer.digest.to_string(),
        annotation,
    };
    let name = layer
        .annotations
        .get(media::TENSOR_NAME)
        .ok_or_else(|| annotation_error(media::TENSOR_NAME))?
        .clone();
    let dtype = layer
        .annotations
        .get(media::TENSOR_DTYPE)
        .and_then(|text| GgmlType::from_name(text))
        .ok_or_else(|| annotation_error(media::TENSOR_DTYPE))?;
    let shape: Vec<usize> = layer
        .annotations
        .get(media::TENSOR_SHAPE)
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or_else(|| annotation_error(media::TENSOR_SHAPE))?;

    let elements = shape
        .iter()
        .try_fold(1u64, |acc, &dim| acc.checked_mul(dim as u64));
    let expected = elements.and_then(|elements| dtype.byte_len(elements));
    let map = store.map_blob(&layer.digest)?;
    let actual = map.len() as u64;
    if layer.size != actual {
        return Err(LoadError::BlobSize {
            reference: reference.to_string(),
            digest: layer.digest.to_string(),
            declared: layer.size,
            actual,
        }
        .into());
    }
    if expected != Some(actual) {
        return Err(LoadError::TensorSize {
            reference: reference.to_string(),
            tensor: name,
            expected: expected.unwrap_or(u64::MAX),
            actual,
        }
        .into());
    }
    Ok(TensorView::new(name, dtype, shape, map))
}
