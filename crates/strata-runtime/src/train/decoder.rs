//! The differentiable copy of the decoder's upper layers that training runs.

use candle_core::{D, Tensor, Var};
use strata_model::RopeStyle;

use super::frozen::FrozenMatmul;
use crate::error::Result;
use crate::model::{LayerParts, Projection};

/// One projection: a frozen weight, its bias, and the trainable adapter when it has one.
#[derive(Debug)]
pub(crate) struct TrainLinear {
    weight: FrozenMatmul,
    bias: Option<Tensor>,
    pub(crate) adapter: Option<(Var, Var)>,
}

impl TrainLinear {
    fn forward(&self, x: &Tensor, scale: f64) -> Result<Tensor> {
        let mut output = self.weight.forward(x)?;
        if let Some(bias) = &self.bias {
            output = output.broadcast_add(bias)?;
        }
        if let Some((a, b)) = &self.adapter {
            let update = x.matmul(&a.as_tensor().t()?)?.matmul(&b.as_tensor().t()?)?;
            output = (output + (update * scale)?)?;
        }
        Ok(output)
    }
}

/// Geometry shared by every layer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    pub(crate) num_heads: usize,
    pub(crate) num_kv_heads: usize,
    pub(crate) head_dim: usize,
    pub(crate) rope_style: RopeStyle,
}

/// One decoder layer with f32 weights and differentiable ops.
#[derive(Debug)]
pub(crate) struct TrainLayer {
    pub(crate) index: usize,
    attention_norm: Tensor,
    ffn_norm: Tensor,
    rms_norm_eps: f64,
    /// In [`Projection::ALL`] order.
    pub(crate) projections: Vec<TrainLinear>,
}

impl TrainLayer {
    /// Copies a layer's weights to f32 and gives `adapters` to the projections they name.
    pub(crate) fn new(
        index: usize,
        parts: &LayerParts<'_>,
        mut adapters: impl FnMut(Projection) -> Option<(Var, Var)>,
    ) -> Result<TrainLayer> {
        let device = parts.attention_norm.device();
        let mut projections = Vec::with_capacity(Projection::ALL.len());
        for (projection, linear) in Projection::ALL.into_iter().zip(parts.projections) {
            projections.push(TrainLinear {
                weight: FrozenMatmul::new(linear.dense_weight(device)?)?,
                bias: linear.bias().cloned(),
                adapter: adapters(projection),
            });
        }
        Ok(TrainLayer {
            index,
            attention_norm: parts.attention_norm.clone(),
            ffn_norm: parts.ffn_norm.clone(),
            rms_norm_eps: parts.rms_norm_eps,
            projections,
        })
    }

    fn projection(&self, projection: Projection) -> &TrainLinear {
        let index = Projection::ALL
            .iter()
            .position(|candidate| *candidate == projection)
            .expect("every projection is in Projection::ALL");
        &self.projections[index]
    }

    /// Runs the layer over `x`, `[seq, hidden]`, for positions `0..seq`.
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        mask: &Tensor,
        rope: (&Tensor, &Tensor),
        geometry: Geometry,
        scale: f64,
    ) -> Result<Tensor> {
        let normed = rms_norm(x, &self.attention_norm, self.rms_norm_eps)?;
        let attention = self.attention(&normed, mask, rope, geometry, scale)?;
        let x = (x + attention)?;

        let normed = rms_norm(&x, &self.ffn_norm, self.rms_norm_eps)?;
        let gate = self
            .projection(Projection::Gate)
            .forward(&normed, scale)?
            .silu()?;
        let up = self.projection(Projection::Up).forward(&normed, scale)?;
        let down = self
            .projection(Projection::Down)
            .forward(&(gate * up)?, scale)?;
        Ok((x + down)?)
    }

    fn attention(
        &self,
        x: &Tensor,
        mask: &Tensor,
        rope: (&Tensor, &Tensor),
        geometry: Geometry,
        scale: f64,
    ) -> Result<Tensor> {
        let (seq_len, _) = x.dims2()?;
        let Geometry {
            num_heads,
            num_kv_heads,
            head_dim,
            rope_style,
        } = geometry;

        let queries = self.projection(Projection::Query).forward(x, scale)?;
        let keys = self.projection(Projection::Key).forward(x, scale)?;
        let values = self.projection(Projection::Value).forward(x, scale)?;

        let queries = heads_first(&queries, seq_len, num_heads, head_dim)?;
        let keys = heads_first(&keys, seq_len, num_kv_heads, head_dim)?;
        let values = heads_first(&values, seq_len, num_kv_heads, head_dim)?.squeeze(0)?;
        let (cos, sin) = (rope.0.narrow(0, 0, seq_len)?, rope.1.narrow(0, 0, seq_len)?);
        let (queries, keys) = match rope_style {
            RopeStyle::Interleaved => (
                candle_nn::rotary_emb::rope_i_slow(&queries, &cos, &sin)?,
                candle_nn::rotary_emb::rope_i_slow(&keys, &cos, &sin)?,
            ),
            RopeStyle::Half => (
                candle_nn::rotary_emb::rope_slow(&queries, &cos, &sin)?,
                candle_nn::rotary_emb::rope_slow(&keys, &cos, &sin)?,
            ),
        };
        let keys = keys.squeeze(0)?;

        // Query heads that share a key head are adjacent, so folding them into rows gives one
        // matmul per key head, as in the inference path.
        let groups = num_heads / num_kv_heads;
        let grouped = queries.squeeze(0)?.contiguous()?.reshape((
            num_kv_heads,
            groups * seq_len,
            head_dim,
        ))?;
        let scores = (grouped.matmul(&keys.t()?)? / (head_dim as f64).sqrt())?;
        let scores = scores
            .reshape((num_heads, seq_len, seq_len))?
            .broadcast_add(mask)?;
        let probabilities = candle_nn::ops::softmax(&scores, D::Minus1)?.reshape((
            num_kv_heads,
            groups * seq_len,
            seq_len,
        ))?;
        let attention = probabilities
            .matmul(&values.contiguous()?)?
            .reshape((num_heads, seq_len, head_dim))?
            .transpose(0, 1)?
            .contiguous()?
            .reshape((seq_len, num_heads * head_dim))?;
        self.projection(Projection::Output)
            .forward(&attention, scale)
    }
}

/// Reshapes `[seq, heads · head_dim]` to `[1, heads, seq, head_dim]`.
fn heads_first(x: &Tensor, seq_len: usize, heads: usize, head_dim: usize) -> Result<Tensor> {
    Ok(x.reshape((1, seq_len, heads, head_dim))?
        .transpose(1, 2)?
        .contiguous()?)
}

/// RMS norm built from differentiable ops.
pub(crate) fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    Ok(candle_nn::ops::rms_norm_slow(x, weight, eps as f32)?)
}

/// Builds the additive causal mask `[seq, seq]`.
pub(crate) fn causal_mask(seq_len: usize, device: &candle_core::Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..seq_len)
        .flat_map(|row| {
            (0..seq_len).map(move |column| if column > row { f32::NEG_INFINITY } else { 0.0 })
        })
        .collect();
    Ok(Tensor::from_vec(mask, (seq_len, seq_len), device)?)
}
