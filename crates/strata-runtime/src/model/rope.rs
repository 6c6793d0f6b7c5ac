//! Rotary position embedding: precomputed cos/sin tables and the two pairings.
//!
//! The tables cover every position up to the context length, so a forward pass only narrows
//! them. GGUF files of llama models pair adjacent dimensions (their converter permuted the query
//! and key weights), Hugging Face checkpoints and Qwen2 files pair the two halves of a head.

use candle_core::{DType, Device, Tensor};
use strata_model::RopeStyle;

use crate::error::Result;

/// cos/sin tables for positions `0..max_positions`, each `[max_positions, head_dim / 2]`.
#[derive(Clone, Debug)]
pub(crate) struct RotaryEmbedding {
    cos: Tensor,
    sin: Tensor,
    style: RopeStyle,
}

impl RotaryEmbedding {
    pub(crate) fn new(
        head_dim: usize,
        theta: f64,
        max_positions: usize,
        style: RopeStyle,
        device: &Device,
    ) -> Result<RotaryEmbedding> {
        let inverse_frequencies: Vec<f32> = (0..head_dim / 2)
            .map(|i| 1.0 / theta.powf(2.0 * i as f64 / head_dim as f64) as f32)
            .collect();
        let frequency_count = inverse_frequencies.len();
        let inverse_frequencies =
            Tensor::from_vec(inverse_frequencies, (1, frequency_count), device)?;
        let positions = Tensor::arange(0u32, max_positions as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((max_positions, 1))?;
        let angles = positions.matmul(&inverse_frequencies)?;
        Ok(RotaryEmbedding {
            cos: angles.cos()?,
            sin: angles.sin()?,
            style,
        })
    }

    /// The cos and sin tables and the pairing they are applied with.
    pub(crate) fn tables(&self) -> (&Tensor, &Tensor, RopeStyle) {
        (&self.cos, &self.sin, self.style)
    }

    /// Rotates `x` of shape `[batch, heads, seq, head_dim]` whose rows are positions
    /// `start..start + seq`.
    pub(crate) fn apply(&self, x: &Tensor, start: usize) -> Result<Tensor> {
        let (_batch, _heads, seq_len, _head_dim) = x.dims4()?;
        let cos = self.cos.narrow(0, start, seq_len)?;
        let sin = self.sin.narrow(0, start, seq_len)?;
        let x = x.contiguous()?;
        let rotated = match self.style {
            RopeStyle::Interleaved => candle_nn::rotary_emb::rope_i(&x, &cos, &sin)?,
            RopeStyle::Half => candle_nn::rotary_emb::rope(&x, &cos, &sin)?,
        };
        Ok(rotated)
    }
}
