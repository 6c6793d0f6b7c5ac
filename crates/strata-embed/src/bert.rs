//! The BERT encoder of a text embedder: `candle_transformers`' `BertModel` built from a Hugging
//! Face `config.json` and a map of named tensors.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};

use crate::error::PackageError;
use crate::tokenizer::TokenBatch;

/// A BERT encoder and the config it was built from.
pub(crate) struct BertEncoder {
    model: BertModel,
    config: Config,
}

impl fmt::Debug for BertEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BertEncoder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl BertEncoder {
    /// Builds the encoder from `tensors`, named as in the checkpoint (`embeddings.…`,
    /// `encoder.layer.N.…`, optionally under `bert.`), in f32 on the CPU whatever their dtype.
    ///
    /// `source` names the weights in errors.
    pub(crate) fn new(
        config: Config,
        tensors: HashMap<String, Tensor>,
        source: &Path,
    ) -> Result<BertEncoder, PackageError> {
        let builder = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let model =
            BertModel::load(builder, &config).map_err(|source_error| PackageError::Model {
                path: source.to_path_buf(),
                source: source_error,
            })?;
        Ok(BertEncoder { model, config })
    }

    /// Returns the width of the hidden states, the dimension of a pooled vector.
    pub(crate) fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    /// Runs the encoder and returns the last hidden states, `[batch, seq, hidden]`.
    pub(crate) fn forward(&self, batch: &TokenBatch) -> candle_core::Result<Tensor> {
        self.model.forward(
            &batch.input_ids,
            &batch.token_type_ids,
            Some(&batch.attention_mask),
        )
    }
}

/// Parses a Hugging Face BERT `config.json`, read from `path`.
pub(crate) fn parse_config(json: &[u8], path: &Path) -> Result<Config, PackageError> {
    serde_json::from_slice(json).map_err(|source| PackageError::Json {
        path: path.to_path_buf(),
        expected: "a Hugging Face BERT config.json",
        source,
    })
}
