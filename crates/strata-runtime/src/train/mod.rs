//! Training LoRA adapters on the decoder.
//!
//! candle's quantized matmul and its fused norm, softmax and rotary kernels have no backward
//! pass. Training therefore runs a second, differentiable copy of the upper layers. Its f32
//! weights stay frozen and their gradient is never computed, its norm, softmax and rotary ops
//! are candle's slow-path ones, and the adapter matrices are candle `Var`s. The layers below the first adapter run once per
//! example through the normal quantized forward, because nothing in them changes.

pub mod adapter;
mod decoder;
mod frozen;
pub mod trainer;

pub use adapter::{AdapterSet, AdapterWeights, LoraConfig};
pub use trainer::{PreparedExample, TrainExample, TrainSettings, Trainer};
