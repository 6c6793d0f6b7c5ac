//! Model versions in the strata store.
//!
//! This crate owns the model config schema, the readers for GGUF and safetensors files, the
//! import of a GGUF file or a Hugging Face directory into the store (one blob per tensor), the
//! tokenizer built from GGUF metadata, and loading a version back as memory-mapped tensor views.

pub mod config;
pub mod dtype;
pub mod error;
pub mod gguf;
pub mod hf;
pub mod import;
pub mod layout;
pub mod load;
mod mapped;
pub mod media;
pub mod tensor;
pub mod tokenizer_json;

pub use config::{AdapterInfo, Architecture, Hyperparameters, ModelConfig, RopeStyle, RoutesInfo};
pub use dtype::GgmlType;
pub use error::{ModelError, Result};
pub use tensor::{SharedBytes, TensorSet, TensorView};
