//! The model config document: the JSON blob a model manifest points to as its config.
//!
//! The document follows the CNCF ModelPack config layout (`descriptor`, `config`, `modelfs`) so
//! ModelPack-aware tools can read the basics, and keeps everything the runtime needs under
//! `strata`: hyperparameters, tokenizer and chat template blobs, the parent version and the
//! source. See `docs/format.md` for every field.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use strata_store::Digest;

/// The whole config document of one model version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// ModelPack's descriptive block.
    pub descriptor: ModelDescriptor,
    /// ModelPack's summary of the model's format.
    pub config: ModelFormat,
    /// ModelPack's list of layer digests, in manifest order.
    pub modelfs: ModelFs,
    /// strata's run-time settings: hyperparameters, tokenizer, template, parent and source.
    pub strata: StrataConfig,
}

/// ModelPack `descriptor`: names and dates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelDescriptor {
    /// Creation time of this version.
    pub created_at: DateTime<Utc>,
    /// Model family, for example `llama` or `qwen2`.
    pub family: String,
    /// Human-readable model name from the source file, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// ModelPack `config`: architecture, file format and quantization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelFormat {
    /// Always `transformer` for the decoders strata runs.
    pub architecture: String,
    /// Source format: `gguf` or `safetensors`.
    pub format: String,
    /// Parameter count, for example `135M`.
    pub param_size: String,
    /// Dominant tensor dtype, for example `q4_1` or `bf16`.
    pub quantization: String,
}

/// ModelPack `modelfs`: the layer digests (uncompressed, so equal to the layer digests).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// One digest per layer of the manifest, in order.
    pub diff_ids: Vec<Digest>,
}

/// strata's own part of the config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrataConfig {
    /// Decoder variant.
    pub architecture: Architecture,
    /// Shapes and constants of the decoder.
    pub hyperparameters: Hyperparameters,
    /// The tokenizer blob and its special tokens.
    pub tokenizer: TokenizerInfo,
    /// The chat template blob (Jinja source), when the model ships one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template: Option<BlobRef>,
    /// Manifest digest of the version this one was derived from; `None` for an import.
    pub parent: Option<Digest>,
    /// Provenance of the weights.
    pub source: Source,
    /// The LoRA adapters the version's `*.lora_a` and `*.lora_b` tensors form, when it has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<AdapterInfo>,
    /// The lessons whose adapters (`lesson.N.*` tensors) run only on messages close to the
    /// lesson's questions, when the version has learned any that way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<RoutesInfo>,
    /// What produced a learned version: its lesson, training settings and gate figures, as the
    /// learning crate writes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning: Option<serde_json::Value>,
}

/// Placement and size of a version's LoRA adapters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdapterInfo {
    /// Rank of every adapter.
    pub rank: usize,
    /// Scaling numerator: each adapter adds `alpha / rank · B·A` to its weight.
    pub alpha: f64,
    /// First decoder layer with adapters; every later layer has them too.
    pub first_layer: usize,
    /// Adapted projections of each layer: `q`, `k`, `v`, `o`, `gate`, `up`, `down`.
    pub targets: Vec<String>,
}

/// Lesson adapters chosen per message by comparing the message's embedding with each lesson's
/// keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoutesInfo {
    /// Name of the text embedder the keys were made with.
    pub embedder: String,
    /// Lowest cosine similarity between a message and a key for the key's lesson to run.
    pub threshold: f32,
    /// Placement and size shared by every lesson's adapters.
    pub adapter: AdapterInfo,
    /// The lessons, oldest first: lesson `N` has the adapters `lesson.N.blk.*` and the unit
    /// key vectors `lesson.N.keys`, `[keys, dim]`.
    pub lessons: Vec<u32>,
}

/// A blob the config refers to; gc treats every `digest` field in a config as reachable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    /// Digest of the blob.
    pub digest: Digest,
    /// Size of the blob in bytes.
    pub size: u64,
}

/// Decoder variant: the two differ only in biases and defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// Llama and SmolLM2: no attention biases.
    Llama,
    /// Qwen2: biases on the query, key and value projections.
    Qwen2,
}

/// Pairing of a head's dimensions in the rotary embedding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RopeStyle {
    /// Adjacent pairs `(2i, 2i+1)`: llama GGUF files, whose converter permuted Q and K.
    Interleaved,
    /// Halves `(i, i + d/2)`: Hugging Face checkpoints and Qwen2 GGUF files.
    Half,
}

/// Shapes and constants of the decoder, named as in Hugging Face `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hyperparameters {
    /// Number of token ids.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the feed-forward block.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads per layer.
    pub num_attention_heads: usize,
    /// Key and value heads per layer (grouped-query attention when fewer than query heads).
    pub num_key_value_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Epsilon of the RMS norms.
    pub rms_norm_eps: f64,
    /// Base of the rotary embedding frequencies.
    pub rope_theta: f64,
    /// Pairing of the rotary embedding.
    pub rope_style: RopeStyle,
    /// Context length the model was trained for, in tokens.
    pub max_position_embeddings: usize,
    /// True when the output projection reuses the token embedding.
    pub tie_word_embeddings: bool,
    /// True when the query, key and value projections have biases.
    pub attention_bias: bool,
}

/// The tokenizer blob (a Hugging Face `tokenizer.json`) and the special tokens it uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenizerInfo {
    /// Digest of the `tokenizer.json` blob.
    pub digest: Digest,
    /// Size of the blob in bytes.
    pub size: u64,
    /// Beginning-of-sequence token text, exposed to chat templates as `bos_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token: Option<String>,
    /// End-of-sequence token text, exposed to chat templates as `eos_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token: Option<String>,
    /// Token ids that end a turn; generation stops on any of them.
    pub stop_token_ids: Vec<u32>,
    /// True when a prompt starts with the beginning-of-sequence token.
    pub add_bos_token: bool,
}

/// Provenance of imported weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// `gguf`, `safetensors` or, for derived versions, what derived them.
    pub kind: String,
    /// File or directory name the weights came from (no absolute path).
    pub file: String,
    /// sha256 of the source file, when it was a single file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Digest>,
}
