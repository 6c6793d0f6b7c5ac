//! A sentence-transformers package read into memory and checked: its configs, tokenizer and
//! the tensors of its safetensors file, before anything is stored or built.

use std::collections::HashMap;

use candle_transformers::models::bert::Config;
use safetensors::SafeTensors;
use strata_store::Digest;

use crate::bert::parse_config;
use crate::config::TextSettings;
use crate::error::PackageError;
use crate::package::{PackageFiles, read_file};
use crate::tensors;
use crate::text::{TextEmbedder, TextParts};

/// One tensor of the weights file, as raw little-endian bytes.
#[derive(Debug)]
pub(crate) struct SourceTensor<'a> {
    pub(crate) name: String,
    pub(crate) dtype: candle_core::DType,
    /// Lowercase dtype name, as written in layer annotations.
    pub(crate) dtype_name: &'static str,
    pub(crate) shape: Vec<usize>,
    pub(crate) bytes: &'a [u8],
}

/// The files of a package, read and parsed.
#[derive(Debug)]
pub(crate) struct PackageContents {
    pub(crate) files: PackageFiles,
    pub(crate) config_json: Vec<u8>,
    pub(crate) config: Config,
    pub(crate) tokenizer_json: Vec<u8>,
    pub(crate) weights: Vec<u8>,
    pub(crate) settings: TextSettings,
}

impl PackageContents {
    /// Reads every file of `files` and checks the configs against each other.
    pub(crate) fn read(files: &PackageFiles) -> Result<PackageContents, PackageError> {
        let config_json = read_file(&files.config)?;
        let config = parse_config(&config_json, &files.config)?;
        let settings = files.read_settings(config.hidden_size, config.max_position_embeddings)?;
        let tokenizer_json = read_file(&files.tokenizer)?;
        let weights = read_file(&files.weights)?;
        Ok(PackageContents {
            files: files.clone(),
            config_json,
            config,
            tokenizer_json,
            weights,
            settings,
        })
    }

    /// Returns the sha256 of the weights file.
    pub(crate) fn weights_digest(&self) -> Digest {
        Digest::of(&self.weights)
    }

    /// Parses the safetensors header and returns every tensor, sorted by name.
    pub(crate) fn tensors(&self) -> Result<Vec<SourceTensor<'_>>, PackageError> {
        let path = &self.files.weights;
        let file = SafeTensors::deserialize(&self.weights).map_err(|source| {
            PackageError::Safetensors {
                path: path.clone(),
                source,
            }
        })?;

        let mut tensors = Vec::new();
        for (name, view) in file.tensors() {
            let Some((dtype, dtype_name)) = tensors::from_safetensors(view.dtype()) else {
                return Err(PackageError::UnsupportedDtype {
                    path: path.clone(),
                    tensor: name,
                    dtype: format!("{:?}", view.dtype()),
                });
            };
            tensors.push(SourceTensor {
                name,
                dtype,
                dtype_name,
                shape: view.shape().to_vec(),
                bytes: view.data(),
            });
        }
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tensors)
    }

    /// Builds the embedder from the package, which also checks every tensor's name and shape.
    pub(crate) fn build_embedder(&self) -> Result<TextEmbedder, PackageError> {
        let mut model_tensors = HashMap::new();
        for tensor in self.tensors()? {
            let value = tensors::tensor_from_bytes(tensor.bytes, tensor.dtype, &tensor.shape)
                .map_err(|source| PackageError::Model {
                    path: self.files.weights.clone(),
                    source,
                })?;
            model_tensors.insert(tensor.name, value);
        }
        TextEmbedder::build(TextParts {
            name: self.files.name.clone(),
            config: self.config.clone(),
            tokenizer_json: &self.tokenizer_json,
            settings: self.settings.clone(),
            tensors: model_tensors,
            source: &self.files.weights,
        })
    }
}
