//! Hugging Face `tokenizer.json` documents built from a GGUF file's tokenizer metadata.
//!
//! A GGUF file stores its tokenizer as flat `tokenizer.ggml.*` arrays and ids. This module turns
//! them into the JSON that the `tokenizers` crate loads, so the runtime runs one tokenizer
//! implementation whether a model came from GGUF or from a Hugging Face directory. Only byte-level
//! BPE (`tokenizer.ggml.model = "gpt2"`) is supported. The pre-tokenizer, which GGUF names but does
//! not describe, is chosen from `tokenizer.ggml.pre`.

use std::collections::HashSet;
use std::str::FromStr;

use serde_json::{Map, Value, json};

/// GGUF token type of a control token such as `<|im_end|>`: an added token that is special.
const TOKEN_TYPE_CONTROL: i32 = 3;
/// GGUF token type of a user-defined token: an added token that is not special.
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// Qwen2's split of text into words (`PRETOKENIZE_REGEX` of transformers 5.25's Qwen2 tokenizer).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Llama 3's split of text into words, as transformers 5.25 rebuilds it for `llama-bpe` GGUF files:
/// Qwen2's, but with numbers in groups of up to 3 digits.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The tokenizer metadata of a GGUF file, one field per `tokenizer.ggml.*` key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GgufTokenizerSpec {
    /// `tokenizer.ggml.model`: the tokenizer kind, `gpt2` for byte-level BPE.
    pub model: String,
    /// `tokenizer.ggml.pre`: the name of the pre-tokenizer, for example `smollm` or `qwen2`.
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`: the token texts, indexed by id, in byte-level spelling.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.token_type`: one GGUF token type per token (1 normal, 3 control, ...).
    pub token_types: Option<Vec<i32>>,
    /// `tokenizer.ggml.merges`: BPE merges by priority, each two tokens joined by one space.
    pub merges: Vec<String>,
    /// `tokenizer.ggml.bos_token_id`: beginning-of-sequence token.
    pub bos_token_id: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`: end-of-sequence token.
    pub eos_token_id: Option<u32>,
    /// `tokenizer.ggml.eot_token_id`: end-of-turn token.
    pub eot_token_id: Option<u32>,
    /// `tokenizer.ggml.eom_token_id`: end-of-message token.
    pub eom_token_id: Option<u32>,
    /// `tokenizer.ggml.padding_token_id`: padding token.
    pub padding_token_id: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id`: unknown token.
    pub unknown_token_id: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`: whether a prompt starts with the BOS token.
    pub add_bos_token: Option<bool>,
}

/// A `tokenizer.json` document and the special tokens the model config records beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct BuiltTokenizer {
    /// The Hugging Face `tokenizer.json` document, loadable by `tokenizers::Tokenizer::from_str`.
    pub json: String,
    /// Text of the beginning-of-sequence token, when the file names one.
    pub bos_token: Option<String>,
    /// Text of the end-of-sequence token, when the file names one.
    pub eos_token: Option<String>,
    /// The end-of-sequence, end-of-turn and end-of-message ids, deduplicated, in that order.
    pub stop_token_ids: Vec<u32>,
    /// True when a prompt starts with the BOS token (`false` when the file does not set it).
    pub add_bos_token: bool,
}

/// Failure to build a `tokenizer.json` from GGUF tokenizer metadata.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerJsonError {
    /// `tokenizer.ggml.model` names a tokenizer kind this module cannot build.
    #[error(
        "unsupported tokenizer.ggml.model `{model}`: only `gpt2` (byte-level BPE) can be built; \
         import a Hugging Face directory with its tokenizer.json instead"
    )]
    UnsupportedModel {
        /// The value of `tokenizer.ggml.model`.
        model: String,
    },
    /// `tokenizer.ggml.tokens` is empty.
    #[error("invalid tokenizer.ggml.tokens: the vocabulary is empty, expected at least one token")]
    EmptyVocabulary,
    /// `tokenizer.ggml.token_type` does not have one entry per token.
    #[error(
        "invalid tokenizer.ggml.token_type: {types} entries for {tokens} entries in \
         tokenizer.ggml.tokens, expected one type per token"
    )]
    TokenTypeCount {
        /// Length of `tokenizer.ggml.token_type`.
        types: usize,
        /// Length of `tokenizer.ggml.tokens`.
        tokens: usize,
    },
    /// A special token id points past the end of the vocabulary.
    #[error(
        "invalid {key}: token id {id} is out of range for a vocabulary of {vocab_size} tokens, \
         expected an id below {vocab_size}"
    )]
    SpecialIdOutOfRange {
        /// The GGUF key, for example `tokenizer.ggml.eos_token_id`.
        key: &'static str,
        /// The id the key holds.
        id: u32,
        /// Length of `tokenizer.ggml.tokens`.
        vocab_size: usize,
    },
    /// A merge is not two tokens separated by one space.
    #[error(
        "invalid tokenizer.ggml.merges entry {index} `{merge}`: expected two tokens separated \
         by one space"
    )]
    InvalidMerge {
        /// Position of the merge in `tokenizer.ggml.merges`.
        index: usize,
        /// The merge text.
        merge: String,
    },
    /// The generated document was rejected by the `tokenizers` crate.
    #[error("failed to load the tokenizer.json built from GGUF metadata: {reason}")]
    Load {
        /// The `tokenizers` crate's error message.
        reason: String,
    },
}

/// Builds a Hugging Face `tokenizer.json` from GGUF tokenizer metadata and checks that it loads.
///
/// Control tokens (type 3) and the ids named by the special-token keys become special added
/// tokens, user-defined tokens (type 4) plain added tokens. A file without end-of-sequence,
/// end-of-turn and end-of-message ids builds with no stop ids (logged as a warning), so
/// generation from it ends only at the token limit.
pub fn build_tokenizer_json(
    spec: &GgufTokenizerSpec,
) -> Result<BuiltTokenizer, TokenizerJsonError> {
    validate(spec)?;
    let pre = pre_tokenization(spec.pre.as_deref());
    let document = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens(spec),
        "normalizer": null,
        "pre_tokenizer": pre.pre_tokenizer,
        "post_processor": null,
        "decoder": byte_level(true, true),
        "model": bpe_model(spec, pre.ignore_merges)?,
    });
    let json = document.to_string();
    if let Err(error) = tokenizers::Tokenizer::from_str(&json) {
        return Err(TokenizerJsonError::Load {
            reason: error.to_string(),
        });
    }

    let token_text = |id: Option<u32>| id.map(|id| spec.tokens[id as usize].clone());
    Ok(BuiltTokenizer {
        json,
        bos_token: token_text(spec.bos_token_id),
        eos_token: token_text(spec.eos_token_id),
        stop_token_ids: stop_token_ids(spec),
        add_bos_token: spec.add_bos_token.unwrap_or(false),
    })
}

/// Checks the tokenizer kind, the array lengths and every special id against the vocabulary.
fn validate(spec: &GgufTokenizerSpec) -> Result<(), TokenizerJsonError> {
    if spec.model != "gpt2" {
        return Err(TokenizerJsonError::UnsupportedModel {
            model: spec.model.clone(),
        });
    }
    if spec.tokens.is_empty() {
        return Err(TokenizerJsonError::EmptyVocabulary);
    }
    if let Some(types) = &spec.token_types
        && types.len() != spec.tokens.len()
    {
        return Err(TokenizerJsonError::TokenTypeCount {
            types: types.len(),
            tokens: spec.tokens.len(),
        });
    }
    let vocab_size = spec.tokens.len();
    for (key, id) in special_ids(spec) {
        if id as usize >= vocab_size {
            return Err(TokenizerJsonError::SpecialIdOutOfRange {
                key,
                id,
                vocab_size,
            });
        }
    }
    Ok(())
}

/// Lists the special-token ids the spec sets, each with its GGUF key.
fn special_ids(spec: &GgufTokenizerSpec) -> Vec<(&'static str, u32)> {
    let keys = [
        ("tokenizer.ggml.bos_token_id", spec.bos_token_id),
        ("tokenizer.ggml.eos_token_id", spec.eos_token_id),
        ("tokenizer.ggml.eot_token_id", spec.eot_token_id),
        ("tokenizer.ggml.eom_token_id", spec.eom_token_id),
        ("tokenizer.ggml.padding_token_id", spec.padding_token_id),
        ("tokenizer.ggml.unknown_token_id", spec.unknown_token_id),
    ];
    keys.into_iter()
        .filter_map(|(key, id)| id.map(|id| (key, id)))
        .collect()
}

/// Collects the end-of-sequence, end-of-turn and end-of-message ids, first occurrence kept.
fn stop_token_ids(spec: &GgufTokenizerSpec) -> Vec<u32> {
    let mut ids = Vec::new();
    for id in [spec.eos_token_id, spec.eot_token_id, spec.eom_token_id]
        .into_iter()
        .flatten()
    {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        tracing::warn!(
            "tokenizer metadata sets no eos, eot or eom token id; generation will stop only at the \
             token limit"
        );
    }
    ids
}

/// Builds the `added_tokens` array: control and user-defined tokens, and every special id.
fn added_tokens(spec: &GgufTokenizerSpec) -> Vec<Value> {
    let specials: HashSet<u32> = special_ids(spec).into_iter().map(|(_, id)| id).collect();
    let mut added = Vec::new();
    for (id, content) in spec.tokens.iter().enumerate() {
        let token_type = spec.token_types.as_ref().map(|types| types[id]);
        let special = token_type == Some(TOKEN_TYPE_CONTROL) || specials.contains(&(id as u32));
        if special || token_type == Some(TOKEN_TYPE_USER_DEFINED) {
            added.push(json!({
                "id": id,
                "content": content,
                "single_word": false,
                "lstrip": false,
                "rstrip": false,
                "normalized": false,
                "special": special,
            }));
        }
    }
    added
}

/// Builds the BPE `model` object: the vocabulary by token text and the merges as pairs.
fn bpe_model(spec: &GgufTokenizerSpec, ignore_merges: bool) -> Result<Value, TokenizerJsonError> {
    let mut vocab = Map::with_capacity(spec.tokens.len());
    let mut duplicates = 0usize;
    for (id, token) in spec.tokens.iter().enumerate() {
        // The first id of a repeated text keeps it, as the BPE vocabulary maps text to one id.
        if vocab.contains_key(token) {
            duplicates += 1;
        } else {
            vocab.insert(token.clone(), json!(id));
        }
    }
    if duplicates > 0 {
        tracing::warn!(
            duplicates,
            "tokenizer.ggml.tokens repeats token texts; first ids kept"
        );
    }

    let mut merges = Vec::with_capacity(spec.merges.len());
    for (index, merge) in spec.merges.iter().enumerate() {
        let pair = merge
            .split_once(' ')
            .filter(|(left, right)| !left.is_empty() && !right.is_empty() && !right.contains(' '));
        let Some((left, right)) = pair else {
            return Err(TokenizerJsonError::InvalidMerge {
                index,
                merge: merge.clone(),
            });
        };
        merges.push(json!([left, right]));
    }

    Ok(json!({
        "type": "BPE",
        "dropout": null,
        // Byte-level BPE can spell every byte, so it never needs an unknown token.
        "unk_token": null,
        "continuing_subword_prefix": null,
        "end_of_word_suffix": null,
        "fuse_unk": false,
        "byte_fallback": false,
        "ignore_merges": ignore_merges,
        "vocab": vocab,
        "merges": merges,
    }))
}

/// The pre-tokenizer for a `tokenizer.ggml.pre` name and whether BPE skips merges for whole words.
struct PreTokenization {
    pre_tokenizer: Value,
    ignore_merges: bool,
}

/// Chooses the pre-tokenizer that splits text the way the vocabulary's merges were learned.
fn pre_tokenization(pre: Option<&str>) -> PreTokenization {
    let (pre_tokenizer, ignore_merges) = match pre {
        // SmolLM and SmolLM2: every digit alone, then GPT-2's split, with no prefix space.
        Some("smollm") => {
            let digits = json!({"type": "Digits", "individual_digits": true});
            (sequence(vec![digits, byte_level(false, true)]), false)
        }
        Some("qwen2") => (split_then_byte_level(QWEN2_SPLIT), false),
        // Llama 3 looks up whole words in the vocabulary before merging, hence `ignore_merges`.
        Some("llama-bpe") => (split_then_byte_level(LLAMA3_SPLIT), true),
        Some(name @ ("default" | "gpt2" | "gpt-2")) => {
            tracing::info!(pre = name, "using GPT-2's byte-level pre-tokenizer");
            (byte_level(false, true), false)
        }
        None => {
            tracing::info!("tokenizer.ggml.pre is not set; using GPT-2's byte-level pre-tokenizer");
            (byte_level(false, true), false)
        }
        Some(name) => {
            tracing::warn!(
                pre = name,
                "unknown tokenizer.ggml.pre; using GPT-2's byte-level pre-tokenizer, so token ids \
                 may differ from the model's own tokenizer"
            );
            (byte_level(false, true), false)
        }
    };
    PreTokenization {
        pre_tokenizer,
        ignore_merges,
    }
}

/// Builds a `ByteLevel` pre-tokenizer or decoder object. `use_regex` applies GPT-2's split.
fn byte_level(add_prefix_space: bool, use_regex: bool) -> Value {
    json!({
        "type": "ByteLevel",
        "add_prefix_space": add_prefix_space,
        "trim_offsets": true,
        "use_regex": use_regex,
    })
}

/// Builds a `Split` on `pattern` (matches kept as words) followed by byte-level spelling.
fn split_then_byte_level(pattern: &str) -> Value {
    let split = json!({
        "type": "Split",
        "pattern": {"Regex": pattern},
        "behavior": "Isolated",
        "invert": false,
    });
    sequence(vec![split, byte_level(false, false)])
}

/// Builds a `Sequence` pre-tokenizer object.
fn sequence(pretokenizers: Vec<Value>) -> Value {
    json!({"type": "Sequence", "pretokenizers": pretokenizers})
}
