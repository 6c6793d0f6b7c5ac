//! The strata runtime: a llama-family decoder on candle.
//!
//! This crate owns the decoder (SmolLM2, Llama and Qwen2 variants), its explicit KV cache, linear
//! layers that can carry LoRA adapters, the quantized kernels, sampling, the chat template and
//! the tokenizer wrapper used for generation and streaming, and the LoRA training path.

pub mod engine;
pub mod error;
pub mod generate;
pub mod kernels;
pub mod model;
pub mod sampling;
pub mod stream;
pub mod template;
pub mod tokenizer;
pub mod train;

pub use error::{Error, Result};
pub use generate::{FinishReason, GenerationOutcome, Sequence, generate};
pub use model::{KvCache, Linear, Llama, LoraAdapter};
pub use sampling::{Sampler, SamplingParams};
