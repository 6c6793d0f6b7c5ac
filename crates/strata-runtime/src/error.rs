//! Errors of the runtime, one enum per family of operations, converting into [`Error`].
//!
//! Loading weights fails with a [`LoadError`] naming the tensor, running the decoder fails with a
//! [`CacheError`] when the KV cache cannot take the tokens, and candle's own errors pass through
//! unchanged as [`Error::Candle`].

use strata_model::GgmlType;

/// Result of a runtime operation.
pub type Result<T> = std::result::Result<T, Error>;

/// Any error of the runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Weights could not be turned into a model.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The KV cache could not take or return the requested tokens.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A LoRA adapter does not fit the linear layer it was attached to.
    #[error(
        "invalid lora adapter: a has shape {a:?} and b has shape {b:?}, expected [r, {in_features}] \
         and [{out_features}, r]"
    )]
    LoraShape {
        /// Shape of the down projection `a`.
        a: Vec<usize>,
        /// Shape of the up projection `b`.
        b: Vec<usize>,
        /// Input width of the linear layer.
        in_features: usize,
        /// Output width of the linear layer.
        out_features: usize,
    },
    /// Invalid LoRA settings or adapter tensors.
    #[error("invalid LoRA adapter: {reason}")]
    Lora {
        /// The problem.
        reason: String,
    },
    /// An operation that needs at least one token received none.
    #[error("{op} requires at least one token, got none")]
    EmptyInput {
        /// The operation that was called.
        op: &'static str,
    },
    /// A batched step received a different number of tokens and caches.
    #[error("a batched step needs one token per cache, got {tokens} tokens for {caches} caches")]
    BatchSize {
        /// Number of tokens.
        tokens: usize,
        /// Number of caches.
        caches: usize,
    },
    /// A token id is outside the vocabulary.
    #[error("token id {token} is out of range for a vocabulary of {vocab_size}")]
    TokenOutOfRange {
        /// The offending id.
        token: u32,
        /// Vocabulary size of the model.
        vocab_size: usize,
    },
    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Text could not be encoded or token ids decoded.
    #[error(transparent)]
    Tokenizer(#[from] crate::tokenizer::TokenizerError),
    /// The chat template failed to compile or render.
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
}

/// Failure to build a model or a layer from stored tensors.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A tensor the architecture needs is not in the tensor set.
    #[error("missing tensor `{name}`, expected shape {expected:?}")]
    MissingTensor {
        /// GGUF name of the tensor.
        name: String,
        /// Shape the model needs, outermost first.
        expected: Vec<usize>,
    },
    /// A tensor has another shape than the hyperparameters imply.
    #[error("tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    ShapeMismatch {
        /// GGUF name of the tensor.
        name: String,
        /// Shape the model needs, outermost first.
        expected: Vec<usize>,
        /// Shape found in the tensor set.
        actual: Vec<usize>,
    },
    /// The hyperparameters describe a model the decoder cannot build.
    #[error("invalid hyperparameters: {reason}")]
    Hyperparameters {
        /// Description of the conflicting values.
        reason: String,
    },
    /// A tensor's byte length does not match its dtype and shape.
    #[error("tensor `{name}` has {actual} bytes, expected {expected} for {dtype:?} {shape:?}")]
    ByteLength {
        /// GGUF name of the tensor.
        name: String,
        /// Element type of the tensor.
        dtype: GgmlType,
        /// Shape of the tensor, outermost first.
        shape: Vec<usize>,
        /// Byte length the dtype and shape imply.
        expected: usize,
        /// Byte length of the data.
        actual: usize,
    },
    /// A quantized tensor's rows are not a whole number of blocks.
    #[error(
        "tensor `{name}` of dtype {dtype:?} has rows of {row} elements, not a multiple of the \
         block size {block}"
    )]
    PartialBlock {
        /// GGUF name of the tensor.
        name: String,
        /// Element type of the tensor.
        dtype: GgmlType,
        /// Elements per row (the innermost dimension).
        row: usize,
        /// Elements per block of the dtype.
        block: usize,
    },
}

/// Failure of a KV cache operation.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The tokens would not fit in the model's context.
    #[error("context length exceeded: {cached} cached + {requested} new tokens > {max} positions")]
    ContextLength {
        /// Tokens already in the cache.
        cached: usize,
        /// Tokens the forward pass was given.
        requested: usize,
        /// Context length of the model.
        max: usize,
    },
    /// A cache was built for another model shape than the one it is used with.
    #[error("kv cache layout mismatch: {field} is {actual}, expected {expected}")]
    LayoutMismatch {
        /// The field that differs (`layers`, `kv heads`, …).
        field: &'static str,
        /// Value the model or cache needs.
        expected: usize,
        /// Value found.
        actual: usize,
    },
    /// A layer tensor handed to [`crate::model::KvCache::from_layers`] has the wrong shape.
    #[error("kv cache layer {layer} has {tensor} shape {actual:?}, expected {expected:?}")]
    LayerShape {
        /// Layer index.
        layer: usize,
        /// `keys` or `values`.
        tensor: &'static str,
        /// Shape `[num_kv_heads, len, head_dim]`.
        expected: Vec<usize>,
        /// Shape found.
        actual: Vec<usize>,
    },
    /// A token list does not match the number of cached positions.
    #[error("sequence has {tokens} token ids but its kv cache holds {cached} positions")]
    TokenCount {
        /// Number of token ids.
        tokens: usize,
        /// Number of cached positions.
        cached: usize,
    },
    /// A cache block's byte length does not match its token count and the cache layout.
    #[error(
        "kv cache block {block} (positions {start}..{end}) has {actual} bytes, expected {expected} \
         for the cache layout"
    )]
    BlockSize {
        /// Index of the block in its list.
        block: usize,
        /// First position the block covers.
        start: usize,
        /// Position after the last one it covers.
        end: usize,
        /// Bytes the layout and token count call for.
        expected: usize,
        /// Bytes found.
        actual: usize,
    },
    /// The cache is not in a form blocks can be read from (another device or dtype).
    #[error("cannot encode the kv cache: {what}")]
    Unsupported {
        /// What the cache is.
        what: String,
    },
}
