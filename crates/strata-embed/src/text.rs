//! [`TextEmbedder`]: a sentence-transformers BERT model (all-MiniLM-L6-v2 and its kind) that
//! embeds a text as the mean of its token vectors, optionally scaled to unit length.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use candle_transformers::models::bert::Config;

use crate::bert::BertEncoder;
use crate::config::TextSettings;
use crate::contents::PackageContents;
use crate::embedder::{Embedder, unsupported_input};
use crate::error::{EmbedError, PackageError, Result};
use crate::input::{Embedded, Input, Modality};
use crate::package::PackageFiles;
use crate::pooling::{l2_normalize, mean_pool};
use crate::tokenizer::TextTokenizer;

/// Texts run through the model in one forward pass; longer batches are split.
const CHUNK_TEXTS: usize = 32;

/// A BERT text embedder with its tokenizer and sentence-transformers settings.
#[derive(Debug)]
pub struct TextEmbedder {
    name: String,
    encoder: BertEncoder,
    tokenizer: TextTokenizer,
    settings: TextSettings,
}

/// The parts a [`TextEmbedder`] is built from, whether read from a package or from the store.
pub(crate) struct TextParts<'a> {
    pub(crate) name: String,
    pub(crate) config: Config,
    pub(crate) tokenizer_json: &'a [u8],
    pub(crate) settings: TextSettings,
    pub(crate) tensors: HashMap<String, Tensor>,
    /// Where the parts come from, for error messages.
    pub(crate) source: &'a Path,
}

impl TextEmbedder {
    /// Reads a sentence-transformers package from its files, without the store.
    pub fn from_package(files: &PackageFiles) -> Result<TextEmbedder> {
        let contents = PackageContents::read(files)?;
        Ok(contents.build_embedder()?)
    }

    /// Builds the embedder, checking the settings against the model config.
    pub(crate) fn build(parts: TextParts<'_>) -> Result<TextEmbedder, PackageError> {
        let max_positions = parts.config.max_position_embeddings;
        if parts.settings.max_seq_length > max_positions {
            return Err(PackageError::Unsupported {
                path: parts.source.to_path_buf(),
                reason: format!(
                    "max_seq_length is {}, more than max_position_embeddings ({max_positions})",
                    parts.settings.max_seq_length
                ),
            });
        }
        let tokenizer = TextTokenizer::from_json(
            parts.tokenizer_json,
            parts.settings.max_seq_length,
            parts.source,
        )?;
        let encoder = BertEncoder::new(parts.config, parts.tensors, parts.source)?;
        tracing::debug!(
            name = %parts.name,
            dim = encoder.hidden_size(),
            max_seq_length = parts.settings.max_seq_length,
            "built text embedder"
        );
        Ok(TextEmbedder {
            name: parts.name,
            encoder,
            tokenizer,
            settings: parts.settings,
        })
    }

    /// Returns the tokenization, pooling and normalisation settings.
    pub fn settings(&self) -> &TextSettings {
        &self.settings
    }

    /// Returns the token ids the model reads for `text`: `[CLS]`, the word pieces truncated to
    /// `max_seq_length` in all, and `[SEP]`.
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer
            .token_ids(text)
            .map_err(|message| self.tokenize_error(message))
    }

    /// Embeds `texts` and returns one vector per text, in order.
    ///
    /// Texts run through the model in chunks of 32, each padded to its longest text; padding
    /// is masked out of attention and pooling, so a text's vector does not depend on its chunk
    /// beyond float rounding. An empty or whitespace-only text is an error.
    pub fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        for (index, text) in texts.iter().enumerate() {
            self.check_text(index, text)?;
        }
        let mut vectors = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(CHUNK_TEXTS) {
            vectors.extend(self.embed_chunk(chunk)?);
        }
        Ok(vectors)
    }

    /// Tokenizes, encodes, pools and normalises one chunk of texts.
    fn embed_chunk(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let batch = self
            .tokenizer
            .encode_batch(texts, &Device::Cpu)
            .map_err(|message| self.tokenize_error(message))?;

        let hidden = self
            .encoder
            .forward(&batch)
            .map_err(|e| self.model_error("forward pass", e))?;

        let mut pooled = mean_pool(&hidden, &batch.attention_mask)
            .map_err(|e| self.model_error("mean pooling", e))?;
        if self.settings.normalize {
            pooled = l2_normalize(&pooled).map_err(|e| self.model_error("normalisation", e))?;
        }

        pooled
            .to_vec2::<f32>()
            .map_err(|e| self.model_error("copy vectors out", e))
    }

    fn check_text(&self, index: usize, text: &str) -> Result<()> {
        if text.trim().is_empty() {
            return Err(EmbedError::EmptyText {
                embedder: self.name.clone(),
                index,
            });
        }
        Ok(())
    }

    fn tokenize_error(&self, message: String) -> EmbedError {
        EmbedError::Tokenize {
            embedder: self.name.clone(),
            message,
        }
    }

    fn model_error(&self, operation: &'static str, source: candle_core::Error) -> EmbedError {
        EmbedError::Model {
            embedder: self.name.clone(),
            operation,
            source,
        }
    }
}

impl Embedder for TextEmbedder {
    fn name(&self) -> &str {
        &self.name
    }

    fn dim(&self) -> usize {
        self.encoder.hidden_size()
    }

    fn modality(&self) -> Modality {
        Modality::Text
    }

    fn embed(&self, input: &Input) -> Result<Vec<Embedded>> {
        let Input::Text(text) = input else {
            return Err(unsupported_input(self, input));
        };
        let vectors = self.embed_batch(&[text.as_str()])?;
        Ok(vectors.into_iter().map(Embedded::whole).collect())
    }

    fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_batch(texts)
    }
}
