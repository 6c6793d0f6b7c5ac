//! The config document of a stored embedder version, the blob its manifest's `config` names.
//!
//! It contains no timestamp, so importing the same files twice gives the same config digest,
//! the same manifest digest, and no new blob.

use serde::{Deserialize, Serialize};

use crate::input::Modality;

/// How token vectors become one vector per text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The mean over the real tokens (attention mask 1), `[CLS]` and `[SEP]` included.
    Mean,
}

/// The sentence-transformers settings a text embedder runs with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextSettings {
    /// Word pieces a text is truncated to, `[CLS]` and `[SEP]` included.
    pub max_seq_length: usize,
    /// How token vectors are pooled.
    pub pooling: Pooling,
    /// Whether pooled vectors are scaled to unit L2 norm.
    pub normalize: bool,
}

/// Where a stored embedder came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedderSource {
    /// The kind of package, `sentence-transformers`.
    pub kind: String,
    /// File name of the weights, for example `model.safetensors`.
    pub weights_file: String,
    /// sha256 of the weights file, lowercase hex.
    pub weights_sha256: String,
}

/// The config document of an embedder version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedderConfig {
    /// The embedder's name, for example `all-MiniLM-L6-v2`.
    pub name: String,
    /// The modality it embeds.
    pub modality: Modality,
    /// The model architecture, `bert`.
    pub architecture: String,
    /// Length of every vector.
    pub dim: usize,
    /// Tokenization, pooling and normalisation.
    pub text: TextSettings,
    /// The package it was imported from.
    pub source: EmbedderSource,
}
