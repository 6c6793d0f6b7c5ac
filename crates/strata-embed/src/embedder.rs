//! The [`Embedder`] trait that every embedder implements, whatever its modality.

use std::fmt::Debug;

use crate::error::{EmbedError, Result};
use crate::input::{Embedded, Input, Modality};

/// A model that turns inputs of one modality into vectors of a fixed dimension.
///
/// Implementations are shared between threads, so `embed` takes `&self`. A text or an image
/// gives one vector; a video or an audio input may give several, each with its time offset.
pub trait Embedder: Send + Sync + Debug {
    /// Returns the embedder's name, for example `all-MiniLM-L6-v2`.
    fn name(&self) -> &str;

    /// Returns the length of every vector the embedder returns.
    fn dim(&self) -> usize;

    /// Returns the modality of the inputs the embedder accepts.
    fn modality(&self) -> Modality;

    /// Embeds one input.
    ///
    /// Returns [`EmbedError::UnsupportedInput`] when the input's modality is not the embedder's.
    fn embed(&self, input: &Input) -> Result<Vec<Embedded>>;

    /// Embeds several texts and returns one vector per text, in order.
    ///
    /// The default embeds the texts one at a time; a text embedder overrides it to run them
    /// through the model together.
    fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut vectors = Vec::with_capacity(texts.len());
        for text in texts {
            let embedded = self.embed(&Input::Text(text.to_string()))?;
            vectors.extend(embedded.into_iter().map(|e| e.vector));
        }
        Ok(vectors)
    }
}

/// Builds the error for an input whose modality `embedder` does not accept.
pub fn unsupported_input(embedder: &dyn Embedder, input: &Input) -> EmbedError {
    EmbedError::UnsupportedInput {
        embedder: embedder.name().to_string(),
        expected: embedder.modality(),
        actual: input.modality(),
        input: input.describe(),
    }
}
