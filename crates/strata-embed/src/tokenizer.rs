//! The word-piece tokenizer of a text embedder, set up as sentence-transformers uses it.
//!
//! A package's `tokenizer.json` may carry its own truncation and padding (all-MiniLM-L6-v2's
//! truncates to 128 and pads every text to 128). sentence-transformers overrides both, so this
//! wrapper does too: it truncates to the package's `max_seq_length` word pieces, counting
//! `[CLS]` and `[SEP]`, and pads a batch only to its longest text.

use std::path::Path;

use candle_core::{Device, Tensor};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::error::PackageError;

/// Token ids of a batch of texts, padded to one length.
#[derive(Debug)]
pub(crate) struct TokenBatch {
    /// Token ids, `[batch, seq]`.
    pub(crate) input_ids: Tensor,
    /// Segment ids, all 0 for single texts, `[batch, seq]`.
    pub(crate) token_type_ids: Tensor,
    /// 1 for a real token, 0 for padding, `[batch, seq]`.
    pub(crate) attention_mask: Tensor,
}

/// A tokenizer that truncates to `max_seq_length` and pads to the longest text of a batch.
#[derive(Clone, Debug)]
pub(crate) struct TextTokenizer {
    tokenizer: Tokenizer,
}

impl TextTokenizer {
    /// Parses `json`, the contents of a `tokenizer.json` read from `path`, and sets its
    /// truncation and padding.
    pub(crate) fn from_json(
        json: &[u8],
        max_seq_length: usize,
        path: &Path,
    ) -> Result<TextTokenizer, PackageError> {
        let invalid = |message: String| PackageError::Tokenizer {
            path: path.to_path_buf(),
            message,
        };
        let mut tokenizer = Tokenizer::from_bytes(json).map_err(|e| invalid(e.to_string()))?;

        let truncation = TruncationParams {
            max_length: max_seq_length,
            ..TruncationParams::default()
        };
        tokenizer
            .with_truncation(Some(truncation))
            .map_err(|e| invalid(e.to_string()))?;

        let padding = batch_padding(&tokenizer).ok_or_else(|| {
            invalid("it names no padding token and has no `[PAD]` token".to_string())
        })?;
        tokenizer.with_padding(Some(padding));
        Ok(TextTokenizer { tokenizer })
    }

    /// Tokenizes `texts` with `[CLS]` and `[SEP]` added, into tensors on `device`.
    pub(crate) fn encode_batch(
        &self,
        texts: &[&str],
        device: &Device,
    ) -> Result<TokenBatch, String> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| e.to_string())?;
        let seq_len = encodings.first().map_or(0, |encoding| encoding.len());

        let mut input_ids = Vec::with_capacity(texts.len() * seq_len);
        let mut token_type_ids = Vec::with_capacity(texts.len() * seq_len);
        let mut attention_mask = Vec::with_capacity(texts.len() * seq_len);
        for encoding in &encodings {
            input_ids.extend_from_slice(encoding.get_ids());
            token_type_ids.extend_from_slice(encoding.get_type_ids());
            attention_mask.extend_from_slice(encoding.get_attention_mask());
        }

        let shape = (encodings.len(), seq_len);
        let tensor = |values: Vec<u32>| Tensor::from_vec(values, shape, device);
        let batch = TokenBatch {
            input_ids: tensor(input_ids).map_err(|e| e.to_string())?,
            token_type_ids: tensor(token_type_ids).map_err(|e| e.to_string())?,
            attention_mask: tensor(attention_mask).map_err(|e| e.to_string())?,
        };
        Ok(batch)
    }

    /// Returns the ids of `text` after truncation, with `[CLS]` and `[SEP]`, without padding.
    pub(crate) fn token_ids(&self, text: &str) -> Result<Vec<u32>, String> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| e.to_string())?;
        Ok(encoding.get_ids().to_vec())
    }
}

/// Builds padding to the longest text of a batch, keeping the package's padding token, or
/// `[PAD]` when the package sets no padding.
fn batch_padding(tokenizer: &Tokenizer) -> Option<PaddingParams> {
    let mut padding = match tokenizer.get_padding() {
        Some(padding) => padding.clone(),
        None => PaddingParams {
            pad_id: tokenizer.token_to_id("[PAD]")?,
            pad_token: "[PAD]".to_string(),
            ..PaddingParams::default()
        },
    };
    padding.strategy = PaddingStrategy::BatchLongest;
    padding.pad_to_multiple_of = None;
    Some(padding)
}
