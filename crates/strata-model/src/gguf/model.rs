//! What a GGUF file's metadata says about the model: architecture, hyperparameters, tokenizer
//! and chat template.

use std::collections::BTreeMap;

use super::{GgufFile, GgufValue};
use crate::config::{Architecture, Hyperparameters, RopeStyle};
use crate::error::GgufError;
use crate::tokenizer_json::GgufTokenizerSpec;

/// Rotary base when `{arch}.rope.freq_base` is absent.
const DEFAULT_ROPE_THETA: f64 = 10_000.0;
/// RMS norm epsilon when the file omits it.
const DEFAULT_RMS_EPS: f64 = 1e-5;

/// Typed access to the metadata map with errors naming the key.
struct Metadata<'a> {
    map: &'a BTreeMap<String, GgufValue>,
    architecture: &'a str,
}

impl Metadata<'_> {
    fn get(&self, key: &str) -> Option<&GgufValue> {
        self.map.get(key)
    }

    fn missing(&self, key: &str) -> GgufError {
        GgufError::MissingKey {
            key: key.to_string(),
            architecture: self.architecture.to_string(),
        }
    }

    fn wrong(key: &str, value: &GgufValue, expected: &'static str) -> GgufError {
        GgufError::WrongType {
            key: key.to_string(),
            found: value.type_name(),
            expected,
        }
    }

    fn usize(&self, key: &str) -> Result<usize, GgufError> {
        let value = self.get(key).ok_or_else(|| self.missing(key))?;
        let number = value
            .as_u64()
            .ok_or_else(|| Self::wrong(key, value, "an integer"))?;
        usize::try_from(number).map_err(|_| GgufError::BadValue {
            key: key.to_string(),
            value: number.to_string(),
            reason: "too large".to_string(),
        })
    }

    fn f64_or(&self, key: &str, default: f64) -> Result<f64, GgufError> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => value
                .as_f64()
                .ok_or_else(|| Self::wrong(key, value, "a number")),
        }
    }

    fn opt_u32(&self, key: &str) -> Result<Option<u32>, GgufError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let number = value
            .as_u64()
            .ok_or_else(|| Self::wrong(key, value, "an integer"))?;
        u32::try_from(number)
            .map(Some)
            .map_err(|_| GgufError::BadValue {
                key: key.to_string(),
                value: number.to_string(),
                reason: "token ids must fit in 32 bits".to_string(),
            })
    }

    fn opt_str(&self, key: &str) -> Result<Option<String>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => value
                .as_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| Self::wrong(key, value, "a string")),
        }
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => value
                .as_bool()
                .map(Some)
                .ok_or_else(|| Self::wrong(key, value, "a bool")),
        }
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<String>>, GgufError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        value
            .as_array()
            .and_then(|array| array.as_strings())
            .map(|items| Some(items.to_vec()))
            .ok_or_else(|| Self::wrong(key, value, "an array of strings"))
    }

    fn ints(&self, key: &str) -> Result<Option<Vec<i32>>, GgufError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let wrong = || Self::wrong(key, value, "an array of integers");
        let items = value
            .as_array()
            .and_then(|a| a.to_i64s())
            .ok_or_else(wrong)?;
        items
            .into_iter()
            .map(|item| {
                i32::try_from(item).map_err(|_| GgufError::BadValue {
                    key: key.to_string(),
                    value: item.to_string(),
                    reason: "token types must fit in 32 bits".to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// The model described by a GGUF file's metadata.
#[derive(Clone, Debug)]
pub struct GgufModel {
    /// Decoder variant.
    pub architecture: Architecture,
    /// Decoder shapes and constants.
    pub hyperparameters: Hyperparameters,
    /// Tokenizer metadata, ready for `build_tokenizer_json`.
    pub tokenizer: GgufTokenizerSpec,
    /// Jinja chat template, when the file has one.
    pub chat_template: Option<String>,
    /// `general.name`, when present.
    pub name: Option<String>,
}

impl GgufFile {
    /// Reads the architecture, hyperparameters, tokenizer and chat template from the metadata.
    pub fn model(&self) -> Result<GgufModel, GgufError> {
        let arch_value = self.metadata.get("general.architecture");
        let arch_name = match arch_value {
            Some(value) => value
                .as_str()
                .ok_or_else(|| Metadata::wrong("general.architecture", value, "a string"))?,
            None => {
                return Err(GgufError::MissingKey {
                    key: "general.architecture".to_string(),
                    architecture: "any".to_string(),
                });
            }
        };
        let (architecture, rope_style) = match arch_name {
            "llama" => (Architecture::Llama, RopeStyle::Interleaved),
            "qwen2" => (Architecture::Qwen2, RopeStyle::Half),
            other => {
                return Err(GgufError::UnsupportedArchitecture {
                    architecture: other.to_string(),
                });
            }
        };
        let meta = Metadata {
            map: &self.metadata,
            architecture: arch_name,
        };
        let tokenizer = tokenizer_spec(&meta)?;
        let hyperparameters = self.hyperparameters(&meta, rope_style, tokenizer.tokens.len())?;
        Ok(GgufModel {
            architecture,
            hyperparameters,
            tokenizer,
            chat_template: meta.opt_str("tokenizer.chat_template")?,
            name: meta.opt_str("general.name")?,
        })
    }

    fn hyperparameters(
        &self,
        meta: &Metadata<'_>,
        rope_style: RopeStyle,
        vocab_size: usize,
    ) -> Result<Hyperparameters, GgufError> {
        let arch = meta.architecture;
        let key = |suffix: &str| format!("{arch}.{suffix}");
        let hidden_size = meta.usize(&key("embedding_length"))?;
        let num_attention_heads = meta.usize(&key("attention.head_count"))?;
        let num_key_value_heads = match meta.get(&key("attention.head_count_kv")) {
            Some(_) => meta.usize(&key("attention.head_count_kv"))?,
            None => num_attention_heads,
        };
        let head_dim = match meta.get(&key("attention.key_length")) {
            Some(_) => meta.usize(&key("attention.key_length"))?,
            None => hidden_size.checked_div(num_attention_heads).unwrap_or(0),
        };
        let has = |name: &str| self.tensors.iter().any(|tensor| tensor.name == name);
        Ok(Hyperparameters {
            vocab_size,
            hidden_size,
            intermediate_size: meta.usize(&key("feed_forward_length"))?,
            num_hidden_layers: meta.usize(&key("block_count"))?,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: meta.f64_or(&key("attention.layer_norm_rms_epsilon"), DEFAULT_RMS_EPS)?,
            rope_theta: meta.f64_or(&key("rope.freq_base"), DEFAULT_ROPE_THETA)?,
            rope_style,
            max_position_embeddings: meta.usize(&key("context_length"))?,
            tie_word_embeddings: !has("output.weight"),
            attention_bias: has("blk.0.attn_q.bias"),
        })
    }
}

fn tokenizer_spec(meta: &Metadata<'_>) -> Result<GgufTokenizerSpec, GgufError> {
    let model_key = "tokenizer.ggml.model";
    let model = meta
        .opt_str(model_key)?
        .ok_or_else(|| meta.missing(model_key))?;
    let tokens_key = "tokenizer.ggml.tokens";
    let tokens = meta
        .strings(tokens_key)?
        .ok_or_else(|| meta.missing(tokens_key))?;
    Ok(GgufTokenizerSpec {
        model,
        pre: meta.opt_str("tokenizer.ggml.pre")?,
        tokens,
        token_types: meta.ints("tokenizer.ggml.token_type")?,
        merges: meta.strings("tokenizer.ggml.merges")?.unwrap_or_default(),
        bos_token_id: meta.opt_u32("tokenizer.ggml.bos_token_id")?,
        eos_token_id: meta.opt_u32("tokenizer.ggml.eos_token_id")?,
        eot_token_id: meta.opt_u32("tokenizer.ggml.eot_token_id")?,
        eom_token_id: meta.opt_u32("tokenizer.ggml.eom_token_id")?,
        padding_token_id: meta.opt_u32("tokenizer.ggml.padding_token_id")?,
        unknown_token_id: meta.opt_u32("tokenizer.ggml.unknown_token_id")?,
        add_bos_token: meta.opt_bool("tokenizer.ggml.add_bos_token")?,
    })
}
