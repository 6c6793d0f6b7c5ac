//! Training LoRA adapters on the decoder.
//!
//! candle's quantized matmul and its fused norm, softmax and rotary kernels have no backward
//! pass, so training runs a second, differentiable copy of the upper layers: f32 weights that
//! stay frozen (their gradient is never computed), slow-path norm, softmax and rotary ops, and
//! adapter matrices held as candle `Var`s. The layers below the first adapter run once per
//! example through the normal quantized forward, because nothing in them changes.

pub mod adapter;
mod decoder;
mod frozen;
pub mod trainer;

pub use adapter::{AdapterSet, AdapterWeights, LoraConfig};
pub use trainer::{PreparedExample, TrainExample, TrainSettings, Trainer};
