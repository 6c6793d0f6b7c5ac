//! The GE2E speaker encoder of Resemblyzer on candle: three LSTM layers over 40 mel channels,
//! then the last layer's final hidden state through a linear layer, a ReLU and L2
//! normalisation, giving a 256-dimensional vector.
//!
//! Tensor names and shapes are those of `pretrained.pt`'s `model_state`, written by PyTorch's
//! `nn.LSTM` (with `batch_first=True`) and `nn.Linear`. Its `similarity_weight` and
//! `similarity_bias` serve training only and are not read. The LSTM gates are ordered input,
//! forget, cell, output, as in PyTorch.

use std::collections::HashMap;

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::mel::N_MELS;
use crate::pooling::l2_normalize;

/// Width of every LSTM layer's hidden state.
pub(crate) const HIDDEN: usize = 256;

/// Length of an embedding.
pub(crate) const EMBEDDING_DIM: usize = 256;

/// Stacked LSTM layers.
const LAYERS: usize = 3;

/// Names of the tensors the encoder reads.
pub(crate) fn tensor_names() -> Vec<String> {
    let mut names = Vec::new();
    for layer in 0..LAYERS {
        for kind in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] {
            names.push(format!("lstm.{kind}_l{layer}"));
        }
    }
    names.push("linear.weight".to_string());
    names.push("linear.bias".to_string());
    names
}

/// One LSTM layer, with its weights transposed for `x · W` and its two biases summed.
#[derive(Debug)]
struct LstmLayer {
    input_weight: Tensor,
    hidden_weight: Tensor,
    bias: Tensor,
}

impl LstmLayer {
    fn new(layer: usize, input_size: usize, vb: &VarBuilder<'_>) -> Result<LstmLayer> {
        let gates = 4 * HIDDEN;
        let input_weight = vb.get((gates, input_size), &format!("lstm.weight_ih_l{layer}"))?;
        let hidden_weight = vb.get((gates, HIDDEN), &format!("lstm.weight_hh_l{layer}"))?;
        let bias_ih = vb.get(gates, &format!("lstm.bias_ih_l{layer}"))?;
        let bias_hh = vb.get(gates, &format!("lstm.bias_hh_l{layer}"))?;
        Ok(LstmLayer {
            input_weight: input_weight.t()?.contiguous()?,
            hidden_weight: hidden_weight.t()?.contiguous()?,
            bias: (bias_ih + bias_hh)?,
        })
    }

    /// Runs the layer over `input`, `[time, batch, features]`, from zero state. Returns every
    /// step's hidden state, `[time, batch, HIDDEN]`.
    fn forward(&self, input: &Tensor) -> Result<Tensor> {
        let (steps, batch, features) = input.dims3()?;

        let projected = input
            .reshape((steps * batch, features))?
            .matmul(&self.input_weight)?
            .broadcast_add(&self.bias)?
            .reshape((steps, batch, 4 * HIDDEN))?;

        let mut hidden = Tensor::zeros((batch, HIDDEN), DType::F32, input.device())?;
        let mut cell = hidden.clone();
        let mut outputs = Vec::with_capacity(steps);
        for step in 0..steps {
            let gates = (projected.get(step)? + hidden.matmul(&self.hidden_weight)?)?;
            let input_gate = candle_nn::ops::sigmoid(&gates.narrow(1, 0, HIDDEN)?)?;
            let forget_gate = candle_nn::ops::sigmoid(&gates.narrow(1, HIDDEN, HIDDEN)?)?;
            let candidate = gates.narrow(1, 2 * HIDDEN, HIDDEN)?.tanh()?;
            let output_gate = candle_nn::ops::sigmoid(&gates.narrow(1, 3 * HIDDEN, HIDDEN)?)?;

            cell = ((forget_gate * &cell)? + (input_gate * candidate)?)?;
            hidden = (output_gate * cell.tanh()?)?;
            outputs.push(hidden.clone());
        }
        Tensor::stack(&outputs, 0)
    }
}

/// The speaker encoder.
#[derive(Debug)]
pub(crate) struct Ge2e {
    layers: Vec<LstmLayer>,
    linear: Linear,
}

impl Ge2e {
    /// Builds the encoder from `tensors`, checking each one's shape. Any dtype is read as f32.
    pub(crate) fn new(tensors: HashMap<String, Tensor>) -> Result<Ge2e> {
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let mut layers = Vec::with_capacity(LAYERS);
        for layer in 0..LAYERS {
            let input_size = if layer == 0 { N_MELS } else { HIDDEN };
            layers.push(LstmLayer::new(layer, input_size, &vb)?);
        }
        let linear = candle_nn::linear(HIDDEN, EMBEDDING_DIM, vb.pp("linear"))?;
        Ok(Ge2e { layers, linear })
    }

    /// Embeds a batch of partial utterances, `[batch, frames, N_MELS]`, as unit vectors
    /// `[batch, EMBEDDING_DIM]`.
    pub(crate) fn forward(&self, mels: &Tensor) -> Result<Tensor> {
        let mut sequence = mels.transpose(0, 1)?.contiguous()?;
        for layer in &self.layers {
            sequence = layer.forward(&sequence)?;
        }
        let last_hidden = sequence.get(sequence.dim(0)? - 1)?;

        let raw = self.linear.forward(&last_hidden)?.relu()?;
        l2_normalize(&raw)
    }
}

/// Averages unit vectors `[count, dim]` and scales the mean to unit length, as
/// `embed_utterance` combines its partial embeddings.
pub(crate) fn mean_direction(vectors: &Tensor) -> Result<Tensor> {
    let mean = vectors.mean_keepdim(0)?;
    l2_normalize(&mean)?.squeeze(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tensor_is_named() {
        let mut tensors = HashMap::new();
        for name in tensor_names() {
            if name != "lstm.bias_hh_l1" {
                let shape: &[usize] = match name.as_str() {
                    "lstm.weight_ih_l0" => &[4 * HIDDEN, N_MELS],
                    n if n.contains("weight") => &[4 * HIDDEN.max(EMBEDDING_DIM), HIDDEN],
                    _ => &[4 * HIDDEN],
                };
                let tensor = Tensor::zeros(shape, DType::F32, &Device::Cpu).unwrap();
                tensors.insert(name, tensor);
            }
        }

        let message = Ge2e::new(tensors).unwrap_err().to_string();

        assert!(message.contains("lstm.bias_hh_l1"), "{message}");
    }

    #[test]
    fn mean_direction_is_a_unit_vector() {
        let vectors = Tensor::new(&[[1f32, 0.0], [0.0, 1.0]], &Device::Cpu).unwrap();

        let mean = mean_direction(&vectors).unwrap().to_vec1::<f32>().unwrap();

        let half = 0.5f32.sqrt();
        assert!((mean[0] - half).abs() < 1e-6 && (mean[1] - half).abs() < 1e-6);
    }
}
