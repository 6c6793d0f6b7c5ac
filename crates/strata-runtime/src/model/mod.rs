//! The decoder and the pieces it is built from.
//!
//! [`Llama`] runs Llama, SmolLM2 and Qwen2 weights; [`KvCache`] is the per-sequence state it
//! reads and extends; [`Linear`] is the weight kernel that can carry a LoRA adapter.

pub mod kv_blocks;
pub mod kv_cache;
pub mod linear;
pub mod llama;
mod rope;

pub use kv_blocks::{BlockBytes, BlockDtype, block_len};
pub use kv_cache::{CacheLayout, KvCache};
pub use linear::{Linear, LoraAdapter};
pub use llama::{LayerParts, Llama, Projection};
