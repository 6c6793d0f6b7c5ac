//! Storing an EfficientNet-Lite0 checkpoint in the store as an embedder version, and loading it
//! back into an [`ImageEmbedder`].
//!
//! Import reads the legacy `.pth` file and builds the network from it first, so a damaged or
//! foreign checkpoint never touches the store. Each floating-point tensor becomes one f32
//! blob, its values in row-major order whatever the strides in the checkpoint were (the
//! converted TensorFlow weights are stored channels-last), under the checkpoint's name. The
//! batch norms' `num_batches_tracked` counters, the only integer tensors, are training state
//! and are not stored. The bytes depend only on the checkpoint, so importing it again writes
//! no blob.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Tensor};
use strata_store::{Reference, Store};

use crate::config::{EmbedderConfig, EmbedderSource};
use crate::contents::SourceTensor;
use crate::embedder::Embedder;
use crate::error::{PackageError, Result};
use crate::image_embedder::{
    EFFICIENTNET_LITE0_ARCHITECTURE, EFFICIENTNET_LITE0_NAME, ImageEmbedder,
    efficientnet_lite0_settings,
};
use crate::import::{EmbedderImport, write_version};
use crate::input::Modality;
use crate::load::Context;
use crate::torch_legacy::parse_torch_legacy;

/// The package kind written in the config of an embedder imported from a legacy checkpoint.
const TORCH_LEGACY_KIND: &str = "torch-legacy";

/// A checkpoint tensor as the f32 bytes to store.
struct StoredTensor {
    name: String,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// Imports the EfficientNet-Lite0 checkpoint at `checkpoint` (a legacy PyTorch `.pth` file)
/// and tags it `reference`, for example `embedder/efficientnet-lite0:latest`.
pub fn import_image_embedder(
    store: &Store,
    checkpoint: &Path,
    reference: &Reference,
) -> Result<EmbedderImport> {
    let bytes = std::fs::read(checkpoint).map_err(|source| PackageError::Read {
        path: checkpoint.to_path_buf(),
        source,
    })?;
    let tensors = parse_torch_legacy(&bytes, checkpoint).map_err(PackageError::from)?;
    let settings = efficientnet_lite0_settings();
    let by_name: HashMap<String, Tensor> = tensors.iter().cloned().collect();
    let embedder = ImageEmbedder::build(
        EFFICIENTNET_LITE0_NAME.to_string(),
        settings.clone(),
        &by_name,
        checkpoint,
    )?;

    let stored = stored_tensors(&tensors, checkpoint)?;
    let sources: Vec<SourceTensor<'_>> = stored
        .iter()
        .map(|tensor| SourceTensor {
            name: tensor.name.clone(),
            dtype: DType::F32,
            dtype_name: "f32",
            shape: tensor.shape.clone(),
            bytes: &tensor.bytes,
        })
        .collect();
    let config = EmbedderConfig {
        name: EFFICIENTNET_LITE0_NAME.to_string(),
        modality: Modality::Image,
        architecture: EFFICIENTNET_LITE0_ARCHITECTURE.to_string(),
        dim: embedder.dim(),
        text: None,
        audio: None,
        image: Some(settings),
        source: EmbedderSource {
            kind: TORCH_LEGACY_KIND.to_string(),
            weights_file: file_name(checkpoint),
            weights_sha256: strata_store::Digest::of(&bytes).hex().to_string(),
        },
    };
    write_version(store, reference, &sources, &[], &config)
}

/// Converts the floating-point tensors to f32 bytes, sorted by name.
fn stored_tensors(
    tensors: &[(String, Tensor)],
    checkpoint: &Path,
) -> Result<Vec<StoredTensor>, PackageError> {
    let model_error = |source| PackageError::Model {
        path: checkpoint.to_path_buf(),
        source,
    };
    let mut stored = Vec::new();
    for (name, tensor) in tensors {
        if !tensor.dtype().is_float() {
            continue;
        }
        let values = tensor
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(model_error)?;
        stored.push(StoredTensor {
            name: name.clone(),
            shape: tensor.dims().to_vec(),
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
    }
    stored.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(stored)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || "checkpoint.pth".to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// Loads the image embedder version `reference` names, for example
/// `embedder/efficientnet-lite0:latest`.
pub fn load_image_embedder(store: &Store, reference: &Reference) -> Result<ImageEmbedder> {
    let (context, manifest) = Context::open(store, reference)?;
    let config = context.read_config(&manifest)?;
    context.check_kind(&config, Modality::Image, EFFICIENTNET_LITE0_ARCHITECTURE)?;
    let Some(settings) = config.image.clone() else {
        return Err(context
            .config_error("the config has no `image` settings".to_string())
            .into());
    };

    let tensors = context.load_tensors(&manifest)?;
    let manifest_path = store.blob_path(&context.digest);
    let embedder = ImageEmbedder::build(config.name.clone(), settings, &tensors, &manifest_path)?;
    context.check_dim(&config, embedder.dim())?;
    tracing::debug!(%reference, digest = %context.digest, "loaded image embedder");
    Ok(embedder)
}
