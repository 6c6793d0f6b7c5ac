//! Errors of reading, importing and loading models, one enum per family of operations.

use std::path::PathBuf;

use strata_store::StoreError;

use crate::tokenizer_json::TokenizerJsonError;

/// A GGUF file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("gguf: not a GGUF file: the magic is {found:02x?}, expected \"GGUF\"")]
    BadMagic { found: Vec<u8> },
    #[error("gguf: version {version} is not supported; versions 2 and 3 are")]
    UnsupportedVersion { version: u32 },
    #[error("gguf: truncated: {field} needs {needed} bytes at offset {offset}, {left} are left")]
    Truncated {
        field: String,
        needed: u64,
        left: u64,
        offset: u64,
    },
    #[error(
        "gguf: {field} {count} exceeds the {left} bytes left in the file: each entry takes at \
         least {item_bytes} bytes, so at most {} fit", left / item_bytes
    )]
    CountTooLarge {
        field: String,
        count: u64,
        left: u64,
        item_bytes: u64,
    },
    #[error("gguf: {field} length {len} exceeds the {left} bytes left in the file")]
    LengthTooLarge { field: String, len: u64, left: u64 },
    #[error("gguf: {field} is not valid UTF-8")]
    InvalidUtf8 { field: String },
    #[error("gguf: key {key:?} appears twice")]
    DuplicateKey { key: String },
    #[error("gguf: key {key:?} has value type id {type_id}; known ids are 0-12")]
    UnknownValueType { key: String, type_id: u32 },
    #[error("gguf: key {key:?} has boolean byte {value}; expected 0 or 1")]
    BadBool { key: String, value: u8 },
    #[error("gguf: key {key:?} nests arrays more than one level deep")]
    NestedTooDeep { key: String },
    #[error("gguf: tensor {tensor:?} has {dims} dimensions; at most {max} are supported")]
    TooManyDims { tensor: String, dims: u32, max: u32 },
    #[error("gguf: tensor {tensor:?} has type id {type_id}; supported ids are 0-3, 6-15 and 30")]
    UnknownType { tensor: String, type_id: u32 },
    #[error(
        "gguf: tensor {tensor:?} of shape {shape:?} has {elements} elements, not a whole number \
         of {block}-element {dtype} blocks"
    )]
    BadShape {
        tensor: String,
        shape: Vec<u64>,
        elements: u64,
        dtype: &'static str,
        block: usize,
    },
    #[error("gguf: tensor {tensor:?} of shape {shape:?} is larger than 2^64 bytes")]
    TooManyElements { tensor: String, shape: Vec<u64> },
    #[error("gguf: general.alignment is {value}; expected a power of two up to 1 MiB")]
    BadAlignment { value: String },
    #[error(
        "gguf: tensor {tensor:?} offset {offset} is not a multiple of the alignment {alignment}"
    )]
    Misaligned {
        tensor: String,
        offset: u64,
        alignment: u64,
    },
    #[error("gguf: tensor {tensor:?} ends at byte {end}, past the end of the {file_len}-byte file")]
    OutOfBounds {
        tensor: String,
        end: u64,
        file_len: usize,
    },
    #[error("gguf: tensors {first:?} and {second:?} overlap")]
    Overlap { first: String, second: String },
    #[error("gguf: tensor {tensor:?} appears twice")]
    DuplicateTensor { tensor: String },
    #[error("gguf: key {key:?} is missing; it is required for {architecture} models")]
    MissingKey { key: String, architecture: String },
    #[error("gguf: key {key:?} is a {found}, expected {expected}")]
    WrongType {
        key: String,
        found: &'static str,
        expected: &'static str,
    },
    #[error("gguf: key {key:?} has value {value}, {reason}")]
    BadValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("gguf: architecture {architecture:?} is not supported; llama and qwen2 are")]
    UnsupportedArchitecture { architecture: String },
}

/// A safetensors file or Hugging Face directory that cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SafetensorsError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{}: header length {declared} does not fit: the file has {file_len} bytes and headers \
         are limited to {limit} bytes",
        path.display()
    )]
    HeaderLength {
        path: PathBuf,
        declared: u64,
        file_len: u64,
        limit: u64,
    },
    #[error("{}: invalid safetensors file: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{}: tensor {tensor:?} has dtype {dtype}; strata imports F32, F16 and BF16", path.display())]
    UnsupportedDtype {
        path: PathBuf,
        tensor: String,
        dtype: String,
    },
    #[error("{}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    #[error("{}: no *.safetensors file found; export the model with safetensors", dir.display())]
    NoWeights { dir: PathBuf },
}

/// A model that cannot be imported into the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    #[error("tensor {tensor:?} is missing; a {architecture} model needs it")]
    MissingTensor {
        tensor: String,
        architecture: String,
    },
    #[error("tensor {tensor:?} has shape {actual:?}, expected {expected:?}")]
    TensorShape {
        tensor: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("hyperparameter {name} is {value}; {reason}")]
    Hyperparameter {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("tensor {tensor:?} appears twice")]
    DuplicateTensor { tensor: String },
    #[error("the tokenizer does not load: {message}")]
    InvalidTokenizer { message: String },
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] TokenizerJsonError),
    #[error("cannot hash the source file {}", path.display())]
    Hash {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A stored model version that cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("{reference} is not a model: its {field} is {media_type:?}")]
    NotAModel {
        reference: String,
        field: &'static str,
        media_type: String,
    },
    #[error("{reference}: tensor {tensor:?} appears in two layers")]
    DuplicateTensor { reference: String, tensor: String },
    #[error("{reference}: the chat template blob {digest} is not valid UTF-8")]
    BadTemplate { reference: String, digest: String },
    #[error("{reference}: blob {digest} is {actual} bytes, but its descriptor says {declared}")]
    BlobSize {
        reference: String,
        digest: String,
        declared: u64,
        actual: u64,
    },
    #[error("{reference}: the config blob is not a valid model config: {message}")]
    BadConfig { reference: String, message: String },
    #[error("{reference}: layer {digest} has unknown media type {media_type:?}")]
    UnknownLayer {
        reference: String,
        digest: String,
        media_type: String,
    },
    #[error("{reference}: tensor layer {digest} has a missing or invalid {annotation} annotation")]
    BadAnnotation {
        reference: String,
        digest: String,
        annotation: &'static str,
    },
    #[error(
        "{reference}: tensor {tensor:?} is {actual} bytes, but its dtype and shape need {expected}"
    )]
    TensorSize {
        reference: String,
        tensor: String,
        expected: u64,
        actual: u64,
    },
    #[error("{reference}: the tokenizer layer is missing")]
    MissingTokenizer { reference: String },
    #[error("{reference}: the manifest has more than one layer of media type {media_type:?}")]
    DuplicateLayer {
        reference: String,
        media_type: &'static str,
    },
}

/// Any error of this crate.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(transparent)]
    Safetensors(#[from] SafetensorsError),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TokenizerJsonError> for ModelError {
    fn from(error: TokenizerJsonError) -> Self {
        ModelError::Import(ImportError::Tokenizer(error))
    }
}

/// Result of this crate's operations.
pub type Result<T> = std::result::Result<T, ModelError>;
