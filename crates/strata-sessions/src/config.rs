//! The snapshot config document: everything about a session except its cache bytes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use strata_runtime::SamplingParams;
use strata_runtime::model::{BlockDtype, CacheLayout};
use strata_runtime::template::Message;
use strata_store::Digest;

use crate::error::{Result, SessionError};

/// The config document of a snapshot manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotConfig {
    /// When the snapshot was saved.
    pub created: DateTime<Utc>,
    /// The model version the cache was computed with.
    pub model: ModelBinding,
    /// Manifest digest of the snapshot this one continues, if any.
    pub parent: Option<Digest>,
    /// The system message, when the chat has one.
    pub system: Option<String>,
    /// The conversation, without the system message.
    pub messages: Vec<Message>,
    /// Token ids of the cached positions, in order.
    pub tokens: Vec<u32>,
    /// Number of cached positions; equal to the length of `tokens`.
    pub cached_tokens: usize,
    /// Sampling settings the session used.
    pub sampling: SamplingParams,
    /// Geometry and element type of the cache blocks.
    pub kv: KvInfo,
}

/// The model version a snapshot is bound to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelBinding {
    /// The reference the model was loaded by, for display and for loading it again.
    pub reference: String,
    /// Digest of the model manifest; the cache is valid for these weights only.
    pub manifest: Digest,
    /// Digest of the model's `tokenizer.json`; token ids are valid for it only.
    pub tokenizer: Digest,
    /// Digest of the chat template, when the model has one.
    pub chat_template: Option<Digest>,
}

/// Geometry of the cache blocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvInfo {
    /// Element type on disk: `f16` or `f32`.
    pub dtype: String,
    /// Decoder layers.
    pub layers: usize,
    /// Key and value heads per layer.
    pub kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Positions per full block; the last block of a save may hold fewer.
    pub block_tokens: usize,
}

impl KvInfo {
    /// Describes blocks of `layout` in `dtype`.
    pub fn new(layout: &CacheLayout, dtype: BlockDtype, block_tokens: usize) -> KvInfo {
        KvInfo {
            dtype: dtype.as_str().to_string(),
            layers: layout.num_layers,
            kv_heads: layout.num_kv_heads,
            head_dim: layout.head_dim,
            block_tokens,
        }
    }

    /// Returns the element type, or an error naming the value.
    pub fn block_dtype(&self) -> Result<BlockDtype> {
        BlockDtype::parse(&self.dtype).ok_or_else(|| SessionError::Invalid {
            what: format!("kv.dtype is `{}`, expected `f16` or `f32`", self.dtype),
        })
    }

    /// Bytes of a block of `tokens` positions.
    pub fn block_bytes(&self, tokens: usize) -> Result<u64> {
        let size = self.block_dtype()?.size();
        let elements = self.layers * 2 * self.kv_heads * tokens * self.head_dim;
        Ok((elements * size) as u64)
    }

    /// Checks that the blocks fit a cache of `layout`.
    pub fn check_layout(&self, layout: &CacheLayout) -> Result<()> {
        let fields = [
            ("kv.layers", self.layers, layout.num_layers),
            ("kv.kv_heads", self.kv_heads, layout.num_kv_heads),
            ("kv.head_dim", self.head_dim, layout.head_dim),
        ];
        for (field, saved, model) in fields {
            if saved != model {
                let what = format!("{field} is {saved} but the model has {model}");
                return Err(SessionError::Invalid { what });
            }
        }
        Ok(())
    }
}

impl SnapshotConfig {
    /// Checks the fields that must agree with each other.
    pub fn check(&self) -> Result<()> {
        if self.tokens.len() != self.cached_tokens {
            let what = format!(
                "it lists {} token ids but cached_tokens is {}",
                self.tokens.len(),
                self.cached_tokens
            );
            return Err(SessionError::Invalid { what });
        }
        self.kv.block_dtype()?;
        if self.kv.block_tokens == 0 {
            let what = "kv.block_tokens is 0".to_string();
            return Err(SessionError::Invalid { what });
        }
        Ok(())
    }
}
