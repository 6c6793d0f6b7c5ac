//! Errors of the embedders, one enum per family of operations, converting into [`EmbedError`].

use std::path::PathBuf;

use strata_store::{Digest, StoreError};

use crate::input::Modality;
use crate::torch_legacy::TorchLegacyError;

/// Result type of this crate.
pub type Result<T, E = EmbedError> = std::result::Result<T, E>;

/// Any error of this crate.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// An input of a kind the embedder does not embed, such as an image given to a text embedder.
    #[error("embedder `{embedder}` embeds {expected} input, but got {actual} input `{input}`")]
    UnsupportedInput {
        /// Name of the embedder.
        embedder: String,
        /// The modality the embedder embeds.
        expected: Modality,
        /// The modality of the input.
        actual: Modality,
        /// The input's path, or its text shortened.
        input: String,
    },

    /// A text that is empty or whitespace only, which has no tokens to pool.
    #[error("embedder `{embedder}`: text {index} is empty or whitespace only; pass some words")]
    EmptyText {
        /// Name of the embedder.
        embedder: String,
        /// Position of the text in the batch, 0 for a single input.
        index: usize,
    },

    /// The tokenizer failed on an input.
    #[error("embedder `{embedder}`: tokenize failed: {message}")]
    Tokenize {
        /// Name of the embedder.
        embedder: String,
        /// The tokenizer's message.
        message: String,
    },

    /// A tensor operation of the model failed.
    #[error("embedder `{embedder}`: {operation} failed")]
    Model {
        /// Name of the embedder.
        embedder: String,
        /// The step that failed, for example `forward pass`.
        operation: &'static str,
        /// The candle error.
        #[source]
        source: candle_core::Error,
    },

    /// An audio input could not be read or is unusable.
    #[error(transparent)]
    Audio(#[from] AudioError),

    /// An image input could not be read or decoded.
    #[error(transparent)]
    ImageInput(#[from] ImageInputError),

    /// An embedder package or checkpoint could not be read.
    #[error(transparent)]
    Package(#[from] PackageError),

    /// An embedder could not be loaded from the store.
    #[error(transparent)]
    Load(#[from] LoadError),

    /// A package could not be fetched from PyPI.
    #[error(transparent)]
    Fetch(#[from] FetchError),

    /// A video could not be read.
    #[error(transparent)]
    Video(#[from] crate::video::VideoError),

    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors reading or checking an audio input.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file is not a WAV file this crate reads, or it is cut short.
    #[error(
        "read audio `{path}` failed: {reason}; strata reads WAV files (integer PCM or float); \
         convert other formats with `ffmpeg -i FILE -ar 16000 -ac 1 OUT.wav`"
    )]
    Decode {
        /// The file.
        path: PathBuf,
        /// What the WAV reader reported.
        reason: String,
    },

    /// A file or a sample buffer without samples.
    #[error("{input} has no samples; pass a clip with some sound")]
    NoSamples {
        /// The input: ``audio `PATH` `` or `the sample buffer`.
        input: String,
    },

    /// A sample rate of 0 Hz.
    #[error("{input} has sample rate 0 Hz; pass the rate the samples were recorded at")]
    SampleRate {
        /// The input: ``audio `PATH` `` or `the sample buffer`.
        input: String,
    },

    /// A sample that is NaN or infinite.
    #[error("{input}: sample {index} is NaN or infinite; pass finite samples")]
    NotFinite {
        /// The input: ``audio `PATH` `` or `the sample buffer`.
        input: String,
        /// Position of the first such sample.
        index: usize,
    },
}

/// Errors reading an embedder package from its files: a sentence-transformers text package or
/// a PyTorch checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// A legacy PyTorch checkpoint could not be read. Boxed because the error is large.
    #[error(transparent)]
    Checkpoint(Box<TorchLegacyError>),

    /// A file could not be read.
    #[error("read `{path}` failed")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },

    /// A JSON file does not match what the embedder expects.
    #[error("parse `{path}` failed: expected {expected}")]
    Json {
        /// The file, or the blob path when it was read from the store.
        path: PathBuf,
        /// What the file should contain.
        expected: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },

    /// The weights file is not a valid safetensors file.
    #[error("parse `{path}` failed: expected a safetensors file")]
    Safetensors {
        /// The weights file.
        path: PathBuf,
        /// The safetensors error.
        #[source]
        source: safetensors::SafeTensorError,
    },

    /// A tensor has a dtype the embedder cannot load.
    #[error(
        "`{path}`: tensor `{tensor}` has dtype {dtype}, expected f32, f16, bf16, f64, i64, u32 or u8"
    )]
    UnsupportedDtype {
        /// The weights file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The dtype as safetensors names it.
        dtype: String,
    },

    /// The package configures something this crate does not implement.
    #[error("`{path}`: {reason}")]
    Unsupported {
        /// The configuration file.
        path: PathBuf,
        /// What is configured and what is supported.
        reason: String,
    },

    /// The tokenizer file could not be parsed.
    #[error("parse `{path}` failed: expected a Hugging Face tokenizer.json: {message}")]
    Tokenizer {
        /// The tokenizer file, or its blob path.
        path: PathBuf,
        /// The tokenizer library's message.
        message: String,
    },

    /// The weights do not build the model the config describes.
    #[error("build the model from `{path}` failed")]
    Model {
        /// The weights file, or the manifest it was loaded from.
        path: PathBuf,
        /// The candle error, which names the missing or misshapen tensor.
        #[source]
        source: candle_core::Error,
    },
}

/// Errors reading an image input: a file that is missing, not an image, or damaged, or raw
/// pixels of the wrong size.
#[derive(Debug, thiserror::Error)]
pub enum ImageInputError {
    /// The file could not be opened or read.
    #[error("read image `{path}` failed")]
    Read {
        /// The image file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },

    /// The file's content is not a known image format.
    #[error("`{path}` is not a PNG or JPEG image; pass a PNG or JPEG file")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },

    /// The file is an image in a format this build does not decode.
    #[error("`{path}` is a {format} image, which is not supported; convert it to PNG or JPEG")]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// The detected format, for example `Gif`.
        format: String,
    },

    /// The decoder failed, usually because the file is truncated or damaged.
    #[error("decode image `{path}` failed; the file is damaged or truncated")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },

    /// Raw pixels whose length does not match their width and height.
    #[error("RGB8 pixels of {width}x{height} need {expected} bytes, got {actual}")]
    PixelCount {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// `width * height * 3`.
        expected: usize,
        /// Length of the buffer passed.
        actual: usize,
    },

    /// An image with no pixels.
    #[error("image `{input}` is {width}x{height}; it needs at least one pixel")]
    Empty {
        /// The path, or `RGB8 pixels`.
        input: String,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
}

impl From<TorchLegacyError> for PackageError {
    fn from(error: TorchLegacyError) -> PackageError {
        PackageError::Checkpoint(Box::new(error))
    }
}

/// Errors loading an embedder version from the store.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The manifest is not an embedder manifest.
    #[error(
        "load `{reference}`: manifest {digest} has artifact type {actual}, expected `{expected}`"
    )]
    ArtifactType {
        /// The reference being loaded.
        reference: String,
        /// The manifest's digest.
        digest: Digest,
        /// The artifact type found, or `none`.
        actual: String,
        /// The embedder artifact type.
        expected: &'static str,
    },

    /// The manifest has no layer of a required media type.
    #[error("load `{reference}`: manifest {digest} has no layer of media type `{media_type}`")]
    MissingLayer {
        /// The reference being loaded.
        reference: String,
        /// The manifest's digest.
        digest: Digest,
        /// The media type that is missing.
        media_type: &'static str,
    },

    /// The config document describes an embedder this crate cannot load.
    #[error("load `{reference}`: manifest {digest}: {reason}")]
    Config {
        /// The reference being loaded.
        reference: String,
        /// The manifest's digest.
        digest: Digest,
        /// What the config contains and what is supported.
        reason: String,
    },

    /// A tensor layer lacks an annotation, or an annotation is invalid.
    #[error("load `{reference}`: tensor layer {digest}: {reason}")]
    TensorLayer {
        /// The reference being loaded.
        reference: String,
        /// The layer's digest.
        digest: Digest,
        /// What is wrong with it.
        reason: String,
    },
}

/// Errors fetching a package from PyPI with pip.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A file or directory of the cache could not be written or read.
    #[error("{operation} `{path}` failed")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },

    /// `python3` could not be started.
    #[error("start `python3` failed; install Python 3 with pip and retry")]
    Python {
        /// The IO error.
        #[source]
        source: std::io::Error,
    },

    /// `pip download` exited with an error.
    #[error(
        "`python3 -m pip download {requirement}` failed ({status}); check the network or the \
         pip index settings: {stderr}"
    )]
    Download {
        /// The requirement, `package==version`.
        requirement: String,
        /// The exit status.
        status: std::process::ExitStatus,
        /// What pip wrote to stderr.
        stderr: String,
    },

    /// pip succeeded but left no wheel of the package in the cache.
    #[error("pip reported success but no wheel of `{requirement}` is in `{dir}`")]
    WheelNotFound {
        /// The requirement, `package==version`.
        requirement: String,
        /// The cache directory.
        dir: PathBuf,
    },

    /// Unpacking the wheel failed.
    #[error("unpack `{wheel}` failed ({status}): {stderr}")]
    Unpack {
        /// The wheel file.
        wheel: PathBuf,
        /// The exit status of the Python unpacker.
        status: std::process::ExitStatus,
        /// What the unpacker wrote to stderr.
        stderr: String,
    },

    /// The unpacked weights do not have the pinned sha256.
    #[error(
        "`{path}` has sha256 {actual}, expected {expected}; the download is corrupt or the \
         package changed; delete `{wheel}` and retry"
    )]
    Checksum {
        /// The unpacked weights file.
        path: PathBuf,
        /// The wheel it came from.
        wheel: PathBuf,
        /// The pinned sha256, lowercase hex.
        expected: &'static str,
        /// The sha256 of the unpacked file, lowercase hex.
        actual: String,
    },
}
