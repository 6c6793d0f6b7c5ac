//! Streaming detokenization: turns generated ids into text pieces as they arrive, without ever
//! cutting a multibyte UTF-8 character in two.
//!
//! For byte-level tokenizers each id's bytes are appended to a buffer, and everything up to the
//! last complete character is emitted. An incomplete tail (at most 3 bytes) waits for the next
//! id. Other tokenizers (SentencePiece `▁` spaces, byte fallback) are decoded over a short window
//! of recent ids, and the new text is the difference from the previous decode. Both cost O(1)
//! per id, independent of the length of the generated text.

use crate::tokenizer::{ChatTokenizer, Result};

/// Ids kept in the decode window of a non-byte-level tokenizer before it is shortened.
const WINDOW_IDS: usize = 8;

/// Incremental decoder for the ids of one generated response.
#[derive(Debug)]
pub struct StreamDecoder<'t> {
    tokenizer: &'t ChatTokenizer,
    /// Bytes not yet emitted because they end inside a character (byte-level tokenizers).
    pending: Vec<u8>,
    /// Recent ids, decoded together so spacing rules see their neighbours (other tokenizers).
    window: Vec<u32>,
    /// Text of `window` already emitted.
    window_text: String,
}

impl<'t> StreamDecoder<'t> {
    /// Starts decoding a response with `tokenizer`.
    pub fn new(tokenizer: &'t ChatTokenizer) -> StreamDecoder<'t> {
        StreamDecoder {
            tokenizer,
            pending: Vec::new(),
            window: Vec::new(),
            window_text: String::new(),
        }
    }

    /// Adds one id and returns the text it completes, or `None` while a character is incomplete.
    pub fn push(&mut self, id: u32) -> Result<Option<String>> {
        let piece = match self.tokenizer.token_bytes(id) {
            Some(bytes) => {
                self.pending.extend_from_slice(bytes);
                take_complete_utf8(&mut self.pending)
            }
            None if self.tokenizer.is_byte_level() => {
                tracing::debug!(id, "stream decoder skipped an id outside the vocabulary");
                String::new()
            }
            None => self.push_windowed(id)?,
        };
        Ok(Some(piece).filter(|piece| !piece.is_empty()))
    }

    /// Returns what remains at the end of the response. Bytes that never formed a character
    /// become U+FFFD.
    pub fn finish(&mut self) -> Result<Option<String>> {
        let mut piece = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        if !self.window.is_empty() {
            let text = self.tokenizer.decode(&self.window)?;
            piece.push_str(text.get(self.window_text.len()..).unwrap_or_default());
            self.window.clear();
            self.window_text.clear();
        }
        Ok(Some(piece).filter(|piece| !piece.is_empty()))
    }

    /// Decodes the window with `id` added and returns the new text, unless it ends in an
    /// incomplete character (decoded as U+FFFD), which is held back for the next id.
    fn push_windowed(&mut self, id: u32) -> Result<String> {
        self.window.push(id);
        let text = self.tokenizer.decode(&self.window)?;
        if text.ends_with(char::REPLACEMENT_CHARACTER) || !text.starts_with(&self.window_text) {
            return Ok(String::new());
        }
        let piece = text[self.window_text.len()..].to_owned();
        self.window_text = text;
        if self.window.len() >= WINDOW_IDS {
            // Keep the last id as context: SentencePiece decoders drop the leading space of the
            // first token only, so the next id's space survives.
            let last = *self.window.last().expect("window is not empty");
            self.window = vec![last];
            self.window_text = self.tokenizer.decode(&self.window)?;
        }
        Ok(piece)
    }
}

/// Removes and returns the longest prefix of `bytes` that ends on a character boundary.
///
/// Invalid sequences inside the buffer become U+FFFD; only a tail that could still become a
/// valid character stays in `bytes`.
fn take_complete_utf8(bytes: &mut Vec<u8>) -> String {
    let mut text = String::new();
    let mut start = 0;
    loop {
        match std::str::from_utf8(&bytes[start..]) {
            Ok(valid) => {
                text.push_str(valid);
                start = bytes.len();
                break;
            }
            Err(error) => {
                let valid_end = start + error.valid_up_to();
                let valid = std::str::from_utf8(&bytes[start..valid_end]).expect("checked prefix");
                text.push_str(valid);
                let Some(invalid_len) = error.error_len() else {
                    start = valid_end;
                    break;
                };
                text.push(char::REPLACEMENT_CHARACTER);
                start = valid_end + invalid_len;
            }
        }
    }
    bytes.drain(..start);
    text
}
