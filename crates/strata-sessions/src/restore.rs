//! Restoring a chat from a snapshot: map its blocks into a cache, or recompute the cache when
//! the snapshot was saved with other weights.

use std::fmt;

use strata_runtime::engine::{Chat, Engine};
use strata_runtime::model::{BlockBytes, KvCache};
use strata_runtime::template::Message;
use strata_runtime::{Error as RuntimeError, Sequence};
use strata_store::{Digest, Store};

use crate::error::{Result, SessionError};
use crate::snapshot::{Snapshot, check_stored};

/// Positions of room a restored cache gets past the saved ones before its first growth.
const HEADROOM: usize = 512;

/// Reason a restore computed the cache again instead of reading the snapshot's blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recompute {
    /// The caller asked for it, on the snapshot's own model.
    Requested,
    /// The snapshot was saved with other weights.
    OtherModel {
        /// Model manifest the snapshot records.
        saved: Digest,
        /// Model manifest of the engine restored onto.
        loaded: Digest,
        /// True when the tokenizers differ too, so the messages were tokenized again.
        retokenized: bool,
    },
}

impl fmt::Display for Recompute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recompute::Requested => {
                f.write_str("the cache was recomputed from the saved token ids")
            }
            Recompute::OtherModel {
                saved,
                loaded,
                retokenized,
            } => {
                let what = if *retokenized {
                    "the messages were tokenized again and their cache recomputed"
                } else {
                    "the cache was recomputed from the saved token ids"
                };
                let (saved, loaded) = (saved.short(), loaded.short());
                write!(
                    f,
                    "the session was saved with model {saved}, not {loaded}: {what}"
                )
            }
        }
    }
}

/// A chat rebuilt from a snapshot.
#[derive(Debug)]
pub struct Restored {
    /// The chat, with the snapshot's messages, tokens and cache.
    pub chat: Chat,
    /// Set when the cache was computed again rather than read.
    pub recomputed: Option<Recompute>,
}

/// Rebuilds the chat saved in `snapshot` on `engine`.
///
/// When `engine` runs the model the snapshot records, the blocks are read into a new cache and
/// the next logits equal those of the saved session (bit for bit with f32 blocks). Otherwise the
/// cache is recomputed, which [`Restored::recomputed`] reports. Nothing outside the returned
/// chat changes, so a failed restore leaves the caller's own chat as it was.
pub fn restore(store: &Store, snapshot: &Snapshot, engine: &Engine) -> Result<Restored> {
    let config = &snapshot.config;
    let max = engine.model().config().max_position_embeddings;
    if config.cached_tokens > max {
        let tokens = config.cached_tokens;
        return Err(SessionError::ContextLength { tokens, max });
    }

    let same_model = config.model.manifest == *engine.manifest_digest();
    let (sequence, recomputed) = if same_model {
        (read_blocks(store, snapshot, engine)?, None)
    } else {
        let other_model = Recompute::OtherModel {
            saved: config.model.manifest.clone(),
            loaded: engine.manifest_digest().clone(),
            retokenized: config.model.tokenizer != engine.config().strata.tokenizer.digest,
        };
        (
            recompute_cache(snapshot, engine, &other_model)?,
            Some(other_model),
        )
    };
    let chat = Chat::from_parts(config.system.clone(), config.messages.clone(), sequence);
    Ok(Restored { chat, recomputed })
}

/// Rebuilds the chat saved in `snapshot` on `engine` without reading its blocks: the cache is
/// computed again from the token ids (or the messages, when the tokenizer differs). This
/// recovers a session whose blocks are damaged, and moves one to another model version.
pub fn recompute(snapshot: &Snapshot, engine: &Engine) -> Result<Restored> {
    let config = &snapshot.config;
    let reason = if config.model.manifest == *engine.manifest_digest() {
        Recompute::Requested
    } else {
        Recompute::OtherModel {
            saved: config.model.manifest.clone(),
            loaded: engine.manifest_digest().clone(),
            retokenized: config.model.tokenizer != engine.config().strata.tokenizer.digest,
        }
    };
    let sequence = recompute_cache(snapshot, engine, &reason)?;
    let chat = Chat::from_parts(config.system.clone(), config.messages.clone(), sequence);
    Ok(Restored {
        chat,
        recomputed: Some(reason),
    })
}

/// Maps every block and decodes them into a cache.
fn read_blocks(store: &Store, snapshot: &Snapshot, engine: &Engine) -> Result<Option<Sequence>> {
    let config = &snapshot.config;
    let layout = engine.model().cache_layout();
    config.kv.check_layout(&layout)?;
    if snapshot.blocks.is_empty() {
        return Ok(None);
    }
    check_stored(store, snapshot)?;

    let mut maps = Vec::with_capacity(snapshot.blocks.len());
    for (index, block) in snapshot.blocks.iter().enumerate() {
        let digest = &block.descriptor.digest;
        let map = store
            .map_blob(digest)
            .map_err(|source| SessionError::MissingBlock {
                index,
                digest: digest.clone(),
                source,
            })?;
        if map.len() as u64 != block.descriptor.size {
            return Err(SessionError::BlockSize {
                index,
                digest: digest.clone(),
                tokens: block.tokens,
                expected: block.descriptor.size,
                actual: map.len() as u64,
            });
        }
        maps.push(map);
    }
    let blocks: Vec<BlockBytes<'_>> = snapshot
        .blocks
        .iter()
        .zip(&maps)
        .map(|(block, map)| BlockBytes {
            tokens: block.tokens,
            bytes: &map[..],
        })
        .collect();

    let capacity = config.cached_tokens + HEADROOM;
    let dtype = config.kv.block_dtype()?;
    let device = engine.model().device();
    let cache = KvCache::from_blocks(layout, &blocks, dtype, capacity, device)?;
    Ok(Some(Sequence::from_parts(cache, config.tokens.clone())?))
}

/// Feeds the saved tokens (or the messages, tokenized again) through `engine`'s model.
fn recompute_cache(
    snapshot: &Snapshot,
    engine: &Engine,
    reason: &Recompute,
) -> Result<Option<Sequence>> {
    let config = &snapshot.config;
    let retokenized = matches!(
        reason,
        Recompute::OtherModel {
            retokenized: true,
            ..
        }
    );
    let tokens = if retokenized {
        render_messages(engine, config.system.as_deref(), &config.messages)?
    } else {
        config.tokens.clone()
    };
    tracing::info!(%reason, tokens = tokens.len(), "recomputing session cache");

    if tokens.is_empty() {
        return Ok(None);
    }
    let max = engine.model().config().max_position_embeddings;
    if tokens.len() > max {
        return Err(SessionError::ContextLength {
            tokens: tokens.len(),
            max,
        });
    }
    let vocab = engine.vocab_size();
    if let Some(&token) = tokens.iter().find(|&&token| token as usize >= vocab) {
        let what = format!("token id {token} is outside the model's vocabulary of {vocab}");
        return Err(SessionError::Invalid { what });
    }
    let cache = engine.model().new_cache(tokens.len() + HEADROOM)?;
    let mut sequence = Sequence::new(cache);
    sequence.feed(engine.model(), &tokens)?;
    Ok(Some(sequence))
}

/// Tokenizes the conversation with `engine`'s template, without a generation prompt.
fn render_messages(
    engine: &Engine,
    system: Option<&str>,
    messages: &[Message],
) -> Result<Vec<u32>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let system = system.map(|text| Message::new("system", text));
    let rendered: Vec<Message> = system.into_iter().chain(messages.iter().cloned()).collect();
    let tokens = engine
        .tokenizer()
        .encode_chat(engine.template(), &rendered, false)
        .map_err(RuntimeError::from)?;
    Ok(tokens)
}
