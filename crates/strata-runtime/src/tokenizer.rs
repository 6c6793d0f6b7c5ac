//! The tokenizer used for generation: a Hugging Face `tokenizer.json` plus the special tokens the
//! model config records, and chat encoding that keeps user text out of the control tokens.
//!
//! Text given to [`ChatTokenizer::encode_text`] and message contents given to
//! [`ChatTokenizer::encode_chat`] never become control tokens: `<|im_end|>` typed by a user
//! encodes as the characters `<`, `|`, ... For a chat, the template is rendered with every
//! message's content replaced by a sentinel and the rendering is cut at the sentinels. Only the
//! template's own text (the scaffolding) is encoded with special tokens recognised.

use std::collections::{HashMap, HashSet};

use strata_model::config::TokenizerInfo;
use tokenizers::{DecoderWrapper, Tokenizer};

use crate::template::{ChatTemplate, Message, TemplateError};

/// First and last character of a content sentinel, from Supplementary Private Use Area-A. A
/// template or content that contains them itself makes encoding fall back to search.
const SENTINEL_OPEN: char = '\u{F0000}';
const SENTINEL_CLOSE: char = '\u{F0001}';

/// Failure to load a tokenizer or to encode or decode with it.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The `tokenizer.json` document was rejected by the `tokenizers` crate.
    #[error("failed to load tokenizer.json: {reason}")]
    Load {
        /// The `tokenizers` crate's error message.
        reason: String,
    },
    /// A special token named by the model config is not in the tokenizer's vocabulary.
    #[error("{kind} token `{token}` from the model config is not in the tokenizer vocabulary")]
    UnknownSpecialToken {
        /// `bos` or `eos`.
        kind: &'static str,
        /// The token text.
        token: String,
    },
    /// A stop id from the model config is outside the tokenizer's vocabulary.
    #[error("stop token id {id} is out of range for a tokenizer vocabulary of {vocab_size}")]
    StopIdOutOfRange {
        /// The stop id.
        id: u32,
        /// Vocabulary size of the tokenizer, added tokens included.
        vocab_size: usize,
    },
    /// The `tokenizers` crate failed to encode text.
    #[error("failed to encode {len} bytes of text: {reason}")]
    Encode {
        /// Length of the text in bytes.
        len: usize,
        /// The `tokenizers` crate's error message.
        reason: String,
    },
    /// The `tokenizers` crate failed to decode ids.
    #[error("failed to decode {count} token ids: {reason}")]
    Decode {
        /// Number of ids.
        count: usize,
        /// The `tokenizers` crate's error message.
        reason: String,
    },
    /// The chat template failed to render.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The message contents could not be separated from the template's own text.
    #[error(
        "failed to encode the chat: {reason}; the template transforms message contents in a way \
         that cannot be separated from its control tokens"
    )]
    ContentNotSeparable {
        /// The message or the check that failed.
        reason: String,
    },
}

/// Result of a tokenizer operation.
pub type Result<T> = std::result::Result<T, TokenizerError>;

/// A tokenizer with its stop ids, BOS handling and, for byte-level BPE, each token's bytes.
#[derive(Debug, Clone)]
pub struct ChatTokenizer {
    /// Matches special-token text in its input; used for template scaffolding only.
    with_specials: Tokenizer,
    /// Encodes special-token text as plain text; used for everything a user wrote.
    plain: Tokenizer,
    special_ids: HashSet<u32>,
    /// The bytes of every id, when the decoder is byte-level (GPT-2's byte-to-character table).
    token_bytes: Option<Vec<Vec<u8>>>,
    stop_ids: Vec<u32>,
    bos_id: Option<u32>,
    add_bos_token: bool,
    vocab_size: usize,
}

impl ChatTokenizer {
    /// Loads a `tokenizer.json` document and checks the config's special tokens against it.
    pub fn from_json(bytes: &[u8], info: &TokenizerInfo) -> Result<ChatTokenizer> {
        let with_specials = Tokenizer::from_bytes(bytes).map_err(|error| TokenizerError::Load {
            reason: error.to_string(),
        })?;
        let mut plain = with_specials.clone();
        plain.set_encode_special_tokens(true);

        let vocab_size = with_specials.get_vocab_size(true);
        let bos_id = special_token_id(&with_specials, "bos", info.bos_token.as_deref())?;
        special_token_id(&with_specials, "eos", info.eos_token.as_deref())?;
        if let Some(&id) = info
            .stop_token_ids
            .iter()
            .find(|&&id| id as usize >= vocab_size)
        {
            return Err(TokenizerError::StopIdOutOfRange { id, vocab_size });
        }

        let added = with_specials.get_added_tokens_decoder();
        let special_ids = added
            .iter()
            .filter(|(_, token)| token.special)
            .map(|(id, _)| *id);
        Ok(ChatTokenizer {
            token_bytes: byte_level_table(&with_specials, vocab_size),
            special_ids: special_ids.collect(),
            with_specials,
            plain,
            stop_ids: info.stop_token_ids.clone(),
            bos_id,
            add_bos_token: info.add_bos_token,
            vocab_size,
        })
    }

    /// Encodes text a user or a tool wrote: special-token text such as `<|im_end|>` stays text.
    pub fn encode_text(&self, text: &str) -> Result<Vec<u32>> {
        encode(&self.plain, text)
    }

    /// Encodes template scaffolding, turning special-token text into the special ids.
    pub fn encode_with_specials(&self, text: &str) -> Result<Vec<u32>> {
        encode(&self.with_specials, text)
    }

    /// Decodes ids to text, special tokens included; invalid UTF-8 becomes U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.with_specials
            .decode(ids, false)
            .map_err(|error| TokenizerError::Decode {
                count: ids.len(),
                reason: error.to_string(),
            })
    }

    /// Returns the bytes `id` decodes to, for byte-level tokenizers. Returns `None` for other
    /// tokenizers and for ids outside the vocabulary.
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        let table = self.token_bytes.as_ref()?;
        table.get(id as usize).map(Vec::as_slice)
    }

    /// True when the tokenizer is byte-level, so [`ChatTokenizer::token_bytes`] returns bytes.
    pub fn is_byte_level(&self) -> bool {
        self.token_bytes.is_some()
    }

    /// Number of ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// True when generation should stop after `id`.
    pub fn is_stop(&self, id: u32) -> bool {
        self.stop_ids.contains(&id)
    }

    /// Returns the ids that end generation.
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop_ids
    }

    /// Returns the beginning-of-sequence id, when the model has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    /// True when `id` is a special added token such as `<|im_start|>`.
    pub fn is_special(&self, id: u32) -> bool {
        self.special_ids.contains(&id)
    }

    /// Renders and encodes a conversation, with message contents encoded as plain text.
    ///
    /// The BOS id is prepended when the model config sets `add_bos_token` and the template did
    /// not write it. When the template changes the sentinels that stand for the contents, the
    /// real rendering is cut at the contents found by search instead. When that fails too, or
    /// could turn message text into special tokens, this returns
    /// [`TokenizerError::ContentNotSeparable`].
    pub fn encode_chat(
        &self,
        template: &ChatTemplate,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<Vec<u32>> {
        let rendered = template.render(messages, add_generation_prompt)?;
        let segments = match sentinel_segments(template, messages, add_generation_prompt) {
            Some(segments) if joined_text(&segments, messages) == rendered => segments,
            _ => {
                tracing::debug!("chat template changed the content sentinels; searching contents");
                self.searched_segments_checked(
                    template,
                    &rendered,
                    messages,
                    add_generation_prompt,
                )?
            }
        };
        let mut ids = self.encode_segments(&segments, messages)?;
        self.prepend_bos(&mut ids);
        Ok(ids)
    }

    /// Encodes scaffolding with special tokens and contents as plain text, in order.
    fn encode_segments(&self, segments: &[Segment], messages: &[Message]) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for segment in segments {
            match segment {
                Segment::Scaffold(text) => ids.extend(self.encode_with_specials(text)?),
                Segment::Content(index) => ids.extend(self.encode_text(&messages[*index].content)?),
            }
        }
        Ok(ids)
    }

    /// Cuts the real rendering at contents found by search.
    ///
    /// A search can pick an earlier copy of a content's text, so the cut is rejected when a
    /// content contains special-token text, or when the scaffolding contains more special tokens
    /// than the template writes for empty contents.
    fn searched_segments_checked(
        &self,
        template: &ChatTemplate,
        rendered: &str,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<Vec<Segment>> {
        for (index, message) in messages.iter().enumerate() {
            if self.special_count(&message.content)? > 0 {
                let reason = format!("the content of message {index} contains special-token text");
                return Err(TokenizerError::ContentNotSeparable { reason });
            }
        }
        let segments = searched_segments(rendered, messages)?;
        let blanks: Vec<Message> = messages
            .iter()
            .map(|message| Message::new(message.role.clone(), ""))
            .collect();
        let Ok(blank_rendering) = template.render(&blanks, add_generation_prompt) else {
            let reason = "the template rejects empty contents, so its own control tokens \
                          cannot be counted"
                .to_owned();
            return Err(TokenizerError::ContentNotSeparable { reason });
        };

        let limit = self.special_count(&blank_rendering)?;
        let mut count = 0;
        for segment in &segments {
            if let Segment::Scaffold(text) = segment {
                count += self.special_count(text)?;
            }
        }
        if count > limit {
            let reason = format!(
                "the scaffolding found by search holds {count} special tokens, but the template \
                 writes {limit}, so message text would become control tokens"
            );
            return Err(TokenizerError::ContentNotSeparable { reason });
        }
        Ok(segments)
    }

    /// Number of special ids `text` encodes to when special tokens are recognised.
    fn special_count(&self, text: &str) -> Result<usize> {
        let ids = self.encode_with_specials(text)?;
        Ok(ids.iter().filter(|id| self.is_special(**id)).count())
    }

    fn prepend_bos(&self, ids: &mut Vec<u32>) {
        if let Some(bos) = self.bos_id.filter(|_| self.add_bos_token)
            && ids.first() != Some(&bos)
        {
            ids.insert(0, bos);
        }
    }
}

/// A piece of a rendered chat: the template's own text, or the content of message `index`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Scaffold(String),
    Content(usize),
}

/// Renders with sentinels in place of the contents and cuts the rendering at them. Returns
/// `None` when a content already contains a sentinel character or the template rejects them.
fn sentinel_segments(
    template: &ChatTemplate,
    messages: &[Message],
    add_generation_prompt: bool,
) -> Option<Vec<Segment>> {
    let has_marker = |text: &str| text.contains([SENTINEL_OPEN, SENTINEL_CLOSE]);
    if messages.iter().any(|message| has_marker(&message.content)) {
        return None;
    }
    let stand_ins: Vec<Message> = (0..messages.len())
        .map(|index| Message::new(messages[index].role.clone(), sentinel(index)))
        .collect();
    let rendered = template.render(&stand_ins, add_generation_prompt).ok()?;
    split_at_sentinels(&rendered, messages.len())
}

fn sentinel(index: usize) -> String {
    format!("{SENTINEL_OPEN}{index}{SENTINEL_CLOSE}")
}

/// Cuts `rendered` at every well-formed sentinel; `None` when a sentinel is mangled.
fn split_at_sentinels(rendered: &str, count: usize) -> Option<Vec<Segment>> {
    let mut segments = Vec::new();
    let mut rest = rendered;
    while let Some(open) = rest.find(SENTINEL_OPEN) {
        push_scaffold(&mut segments, &rest[..open]);
        let after_open = &rest[open + SENTINEL_OPEN.len_utf8()..];
        let close = after_open.find(SENTINEL_CLOSE)?;
        let index: usize = after_open[..close]
            .parse()
            .ok()
            .filter(|index| *index < count)?;
        segments.push(Segment::Content(index));
        rest = &after_open[close + SENTINEL_CLOSE.len_utf8()..];
    }
    if rest.contains(SENTINEL_CLOSE) {
        return None;
    }
    push_scaffold(&mut segments, rest);
    Some(segments)
}

/// Cuts the real rendering at each message's content, searched for in message order.
fn searched_segments(rendered: &str, messages: &[Message]) -> Result<Vec<Segment>> {
    let mut segments = Vec::new();
    let mut cursor = 0;
    for (index, message) in messages.iter().enumerate() {
        if message.content.is_empty() {
            continue;
        }
        let Some(offset) = rendered[cursor..].find(&message.content) else {
            let reason = format!("the content of message {index} is not in the rendered template");
            return Err(TokenizerError::ContentNotSeparable { reason });
        };
        push_scaffold(&mut segments, &rendered[cursor..cursor + offset]);
        segments.push(Segment::Content(index));
        cursor += offset + message.content.len();
    }
    push_scaffold(&mut segments, &rendered[cursor..]);
    Ok(segments)
}

fn push_scaffold(segments: &mut Vec<Segment>, text: &str) {
    if !text.is_empty() {
        segments.push(Segment::Scaffold(text.to_owned()));
    }
}

/// Joins the segments' text, with the real contents in place of the sentinels.
fn joined_text(segments: &[Segment], messages: &[Message]) -> String {
    let mut text = String::new();
    for segment in segments {
        match segment {
            Segment::Scaffold(scaffold) => text.push_str(scaffold),
            Segment::Content(index) => text.push_str(&messages[*index].content),
        }
    }
    text
}

fn encode(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    let encoding = tokenizer
        .encode(text, false)
        .map_err(|error| TokenizerError::Encode {
            len: text.len(),
            reason: error.to_string(),
        })?;
    Ok(encoding.get_ids().to_vec())
}

/// Looks up a special token named by the config, failing when the vocabulary lacks it.
fn special_token_id(
    tokenizer: &Tokenizer,
    kind: &'static str,
    token: Option<&str>,
) -> Result<Option<u32>> {
    let Some(token) = token else { return Ok(None) };
    match tokenizer.token_to_id(token) {
        Some(id) => Ok(Some(id)),
        None => Err(TokenizerError::UnknownSpecialToken {
            kind,
            token: token.to_owned(),
        }),
    }
}

/// Maps each id to its bytes when the decoder is byte-level, and returns `None` otherwise.
///
/// A token is mapped character by character through GPT-2's table. A token with a character
/// outside the table (an added token such as `a b`) is its own UTF-8 bytes, because that is how
/// the `ByteLevel` decoder of tokenizers 0.22 treats it.
fn byte_level_table(tokenizer: &Tokenizer, vocab_size: usize) -> Option<Vec<Vec<u8>>> {
    if !matches!(tokenizer.get_decoder(), Some(DecoderWrapper::ByteLevel(_))) {
        return None;
    }
    let char_to_byte = gpt2_char_to_byte();
    let table = (0..vocab_size as u32).map(|id| {
        let token = tokenizer.id_to_token(id).unwrap_or_default();
        let bytes: Option<Vec<u8>> = token
            .chars()
            .map(|c| char_to_byte.get(&c).copied())
            .collect();
        bytes.unwrap_or_else(|| token.into_bytes())
    });
    Some(table.collect())
}

/// GPT-2's inverse byte table: printable Latin-1 bytes spell themselves, and the other 68 bytes
/// are spelled from U+0100 upwards in byte order.
fn gpt2_char_to_byte() -> HashMap<char, u8> {
    let mut table = HashMap::with_capacity(256);
    let mut next = 0x100u32;
    for byte in 0..=255u8 {
        let printable = matches!(byte, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let spelling = if printable {
            char::from(byte)
        } else {
            next += 1;
            char::from_u32(next - 1).expect("U+0100..U+0143 are valid characters")
        };
        table.insert(spelling, byte);
    }
    table
}
