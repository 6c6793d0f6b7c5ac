//! Resemblyzer's `pretrained.pt` read into the encoder's tensors, and those tensors as bytes
//! for the store.
//!
//! The file is a legacy `torch.save` checkpoint, `{"step", "model_state", "optimizer_state"}`.
//! Only `model_state`'s LSTM and linear tensors are kept: the similarity scale and bias and
//! the optimizer state serve training only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use strata_store::Digest;

use super::embedder::AudioEmbedder;
use super::ge2e::tensor_names;
use crate::contents::SourceTensor;
use crate::error::PackageError;
use crate::package::read_file;
use crate::torch_legacy::parse_torch_legacy;

/// The name an imported speaker encoder gets.
pub(crate) const GE2E_NAME: &str = "resemblyzer-ge2e";

/// Prefix of the encoder's tensors in the checkpoint.
const STATE_PREFIX: &str = "model_state.";

/// The encoder's tensors read from `pretrained.pt`, in f32, sorted by name.
#[derive(Debug)]
pub(crate) struct AudioWeights {
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    pub(crate) file_name: String,
    pub(crate) sha256: Digest,
    tensors: Vec<(String, Tensor)>,
}

/// One tensor's little-endian f32 bytes.
#[derive(Debug)]
pub(crate) struct TensorBlob {
    name: String,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl TensorBlob {
    /// Borrows the blob as a tensor to store.
    pub(crate) fn source(&self) -> SourceTensor<'_> {
        SourceTensor {
            name: self.name.clone(),
            dtype: DType::F32,
            dtype_name: "f32",
            shape: self.shape.clone(),
            bytes: &self.bytes,
        }
    }
}

impl AudioWeights {
    /// Reads the checkpoint at `path` and keeps the encoder's tensors, failing when one is
    /// missing.
    pub(crate) fn read(path: &Path) -> Result<AudioWeights, PackageError> {
        let bytes = read_file(path)?;
        let sha256 = Digest::of(&bytes);
        let mut all: HashMap<String, Tensor> =
            parse_torch_legacy(&bytes, path)?.into_iter().collect();

        let mut tensors = Vec::new();
        for name in tensor_names() {
            let key = format!("{STATE_PREFIX}{name}");
            let tensor = all.remove(&key).ok_or_else(|| PackageError::Unsupported {
                path: path.to_path_buf(),
                reason: format!("tensor `{key}` is missing; expected Resemblyzer's pretrained.pt"),
            })?;
            let tensor = tensor
                .to_dtype(DType::F32)
                .and_then(|t| t.contiguous())
                .map_err(|source| model_error(path, source))?;
            tensors.push((name, tensor));
        }
        tensors.sort_by(|a, b| a.0.cmp(&b.0));

        let file_name = path.file_name().map_or_else(
            || "pretrained.pt".to_string(),
            |name| name.to_string_lossy().into_owned(),
        );
        Ok(AudioWeights {
            name: GE2E_NAME.to_string(),
            path: path.to_path_buf(),
            file_name,
            sha256,
            tensors,
        })
    }

    /// Builds the embedder, which checks every tensor's shape.
    pub(crate) fn build_embedder(&self) -> Result<AudioEmbedder, PackageError> {
        let tensors = self.tensors.iter().cloned().collect();
        AudioEmbedder::build(self.name.clone(), tensors, &self.path)
    }

    /// Returns every tensor's bytes, sorted by name.
    pub(crate) fn tensor_bytes(&self) -> Result<Vec<TensorBlob>, PackageError> {
        let mut blobs = Vec::with_capacity(self.tensors.len());
        for (name, tensor) in &self.tensors {
            let values = tensor
                .flatten_all()
                .and_then(|flat| flat.to_vec1::<f32>())
                .map_err(|source| model_error(&self.path, source))?;
            blobs.push(TensorBlob {
                name: name.clone(),
                shape: tensor.dims().to_vec(),
                bytes: values
                    .iter()
                    .flat_map(|value| value.to_le_bytes())
                    .collect(),
            });
        }
        Ok(blobs)
    }
}

fn model_error(path: &Path, source: candle_core::Error) -> PackageError {
    PackageError::Model {
        path: path.to_path_buf(),
        source,
    }
}
