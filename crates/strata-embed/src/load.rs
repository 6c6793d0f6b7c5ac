//! Loading a stored embedder version back into a [`TextEmbedder`] or an [`AudioEmbedder`], and
//! the reading steps every embedder load shares.
//!
//! Tensor blobs are memory-mapped and copied into candle tensors. Like model loading, this does
//! not hash them again, so a blob damaged on disk is found by `strata fsck`, not here.

use std::collections::HashMap;

use candle_core::Tensor;
use strata_store::{Descriptor, Digest, Manifest, Reference, Store};

use crate::audio::{AudioEmbedder, expected_settings};
use crate::bert::parse_config;
use crate::config::EmbedderConfig;
use crate::embedder::Embedder;
use crate::error::{LoadError, PackageError, Result};
use crate::input::Modality;
use crate::media;
use crate::tensors;
use crate::text::{TextEmbedder, TextParts};

/// Loads the text embedder version `reference` names, for example `embedder/minilm:latest`.
pub fn load_text_embedder(store: &Store, reference: &Reference) -> Result<TextEmbedder> {
    let (context, manifest) = Context::open(store, reference)?;
    let config = context.read_config(&manifest)?;
    context.check_kind(&config, Modality::Text, "bert")?;
    let Some(settings) = config.text.clone() else {
        return Err(context
            .config_error("the config has no `text` settings".to_string())
            .into());
    };

    let model_config_layer = context.find_layer(&manifest, media::MODEL_CONFIG_MEDIA_TYPE)?;
    let model_config_json = store.read_blob(&model_config_layer.digest)?;
    let model_config = parse_config(
        &model_config_json,
        &store.blob_path(&model_config_layer.digest),
    )?;

    let tokenizer_layer = context.find_layer(&manifest, media::TOKENIZER_MEDIA_TYPE)?;
    let tokenizer_json = store.read_blob(&tokenizer_layer.digest)?;
    let tensors = context.load_tensors(&manifest)?;

    let manifest_path = store.blob_path(&context.digest);
    let embedder = TextEmbedder::build(TextParts {
        name: config.name.clone(),
        config: model_config,
        tokenizer_json: &tokenizer_json,
        settings,
        tensors,
        source: &manifest_path,
    })?;
    context.check_dim(&config, embedder.dim())?;
    tracing::debug!(%reference, digest = %context.digest, "loaded text embedder");
    Ok(embedder)
}

/// Loads the audio embedder version `reference` names, for example `embedder/ge2e:latest`.
pub fn load_audio_embedder(store: &Store, reference: &Reference) -> Result<AudioEmbedder> {
    let (context, manifest) = Context::open(store, reference)?;
    let config = context.read_config(&manifest)?;
    context.check_kind(&config, Modality::Audio, "ge2e")?;
    if config.audio.as_ref() != Some(&expected_settings()) {
        let reason = format!(
            "the audio settings are {:?}, but this embedder runs with {:?}",
            config.audio,
            expected_settings()
        );
        return Err(context.config_error(reason).into());
    }

    let tensors = context.load_tensors(&manifest)?;
    let manifest_path = store.blob_path(&context.digest);
    let embedder = AudioEmbedder::build(config.name.clone(), tensors, &manifest_path)?;
    context.check_dim(&config, embedder.dim())?;
    tracing::debug!(%reference, digest = %context.digest, "loaded audio embedder");
    Ok(embedder)
}

/// The version being loaded, for reading its blobs and naming it in errors.
pub(crate) struct Context<'a> {
    store: &'a Store,
    reference: String,
    pub(crate) digest: Digest,
}

impl<'a> Context<'a> {
    /// Resolves `reference` and reads its manifest, which must be an embedder manifest.
    pub(crate) fn open(store: &'a Store, reference: &Reference) -> Result<(Self, Manifest)> {
        let descriptor = store.resolve(reference)?;
        let manifest = store.read_manifest(&descriptor.digest)?;
        let context = Context {
            store,
            reference: reference.to_string(),
            digest: descriptor.digest,
        };
        context.check_artifact_type(&manifest)?;
        Ok((context, manifest))
    }

    fn check_artifact_type(&self, manifest: &Manifest) -> Result<(), LoadError> {
        let actual = manifest.artifact_type.as_deref();
        if actual == Some(media::EMBEDDER_ARTIFACT_TYPE) {
            return Ok(());
        }
        Err(LoadError::ArtifactType {
            reference: self.reference.clone(),
            digest: self.digest.clone(),
            actual: actual.map_or_else(|| "none".to_string(), |t| format!("`{t}`")),
            expected: media::EMBEDDER_ARTIFACT_TYPE,
        })
    }

    /// Reads the embedder config.
    pub(crate) fn read_config(&self, manifest: &Manifest) -> Result<EmbedderConfig> {
        let digest = &manifest.config.digest;
        let bytes = self.store.read_blob(digest)?;
        let config: EmbedderConfig =
            serde_json::from_slice(&bytes).map_err(|source| PackageError::Json {
                path: self.store.blob_path(digest),
                expected: "an embedder config",
                source,
            })?;
        Ok(config)
    }

    /// Checks that the config describes an embedder of `modality` and `architecture`.
    pub(crate) fn check_kind(
        &self,
        config: &EmbedderConfig,
        modality: Modality,
        architecture: &str,
    ) -> Result<(), LoadError> {
        if config.modality == modality && config.architecture == architecture {
            return Ok(());
        }
        let reason = format!(
            "the embedder has architecture `{}` for {} input, expected `{architecture}` for \
             {modality} input",
            config.architecture, config.modality
        );
        Err(self.config_error(reason))
    }

    /// Checks the config's `dim` against the dimension of the built model.
    pub(crate) fn check_dim(&self, config: &EmbedderConfig, dim: usize) -> Result<(), LoadError> {
        if config.dim == dim {
            return Ok(());
        }
        let reason = format!(
            "the config says dim {}, but the model's vectors have {dim}",
            config.dim
        );
        Err(self.config_error(reason))
    }

    fn find_layer<'m>(
        &self,
        manifest: &'m Manifest,
        media_type: &'static str,
    ) -> Result<&'m Descriptor, LoadError> {
        let found = manifest
            .layers
            .iter()
            .find(|layer| layer.media_type == media_type);
        found.ok_or_else(|| LoadError::MissingLayer {
            reference: self.reference.clone(),
            digest: self.digest.clone(),
            media_type,
        })
    }

    /// Maps every tensor layer and copies it into a candle tensor, keyed by tensor name.
    pub(crate) fn load_tensors(&self, manifest: &Manifest) -> Result<HashMap<String, Tensor>> {
        let mut loaded = HashMap::new();
        let layers = manifest.layers.iter();
        for layer in layers.filter(|layer| layer.media_type == media::WEIGHT_MEDIA_TYPE) {
            let (name, tensor) = self.load_tensor(layer)?;
            loaded.insert(name, tensor);
        }
        Ok(loaded)
    }

    fn load_tensor(&self, layer: &Descriptor) -> Result<(String, Tensor)> {
        let annotation = |key: &str| {
            layer
                .annotations
                .get(key)
                .ok_or_else(|| self.tensor_error(layer, format!("annotation `{key}` is missing")))
        };
        let name = annotation(media::TENSOR_NAME)?.clone();
        let dtype_name = annotation(media::TENSOR_DTYPE)?;
        let dtype = tensors::from_name(dtype_name).ok_or_else(|| {
            self.tensor_error(layer, format!("dtype `{dtype_name}` is not supported"))
        })?;
        let shape_json = annotation(media::TENSOR_SHAPE)?;
        let shape: Vec<usize> = serde_json::from_str(shape_json).map_err(|_| {
            self.tensor_error(
                layer,
                format!("shape `{shape_json}` is not a JSON array of sizes"),
            )
        })?;

        let bytes = self.store.map_blob(&layer.digest)?;
        let tensor = tensors::tensor_from_bytes(&bytes, dtype, &shape)
            .map_err(|error| self.tensor_error(layer, format!("tensor `{name}`: {error}")))?;
        Ok((name, tensor))
    }

    pub(crate) fn config_error(&self, reason: String) -> LoadError {
        LoadError::Config {
            reference: self.reference.clone(),
            digest: self.digest.clone(),
            reason,
        }
    }

    fn tensor_error(&self, layer: &Descriptor, reason: String) -> LoadError {
        LoadError::TensorLayer {
            reference: self.reference.clone(),
            digest: layer.digest.clone(),
            reason,
        }
    }
}
