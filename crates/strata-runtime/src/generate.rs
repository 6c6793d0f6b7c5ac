//! The generation loop: prefill with prefix reuse, then sample and feed one token at a time.
//!
//! A [`Sequence`] pairs a KV cache with the token ids it holds, so a caller can keep it between
//! turns (only the new part of the next prompt is fed) and the session feature can save exactly
//! those two. [`generate`] reports each new token to a callback that may cancel the run.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use candle_core::Tensor;

use crate::error::{CacheError, Error, Result};
use crate::model::{KvCache, Llama};
use crate::sampling::{Sampler, SamplingParams};

/// A KV cache and the token ids whose keys and values it holds, one per cached position.
#[derive(Debug)]
pub struct Sequence {
    cache: KvCache,
    tokens: Vec<u32>,
}

impl Sequence {
    /// Wraps an empty cache.
    ///
    /// # Panics
    ///
    /// Panics when the cache is not empty; use [`Sequence::from_parts`] for a filled one.
    pub fn new(cache: KvCache) -> Sequence {
        assert!(cache.is_empty(), "Sequence::new takes an empty cache");
        Sequence {
            cache,
            tokens: Vec::new(),
        }
    }

    /// Pairs a filled cache with the token ids it holds, as a restored session does.
    pub fn from_parts(cache: KvCache, tokens: Vec<u32>) -> Result<Sequence> {
        if cache.len() != tokens.len() {
            let error = CacheError::TokenCount {
                tokens: tokens.len(),
                cached: cache.len(),
            };
            return Err(error.into());
        }
        Ok(Sequence { cache, tokens })
    }

    /// Splits the sequence into its cache and token ids.
    pub fn into_parts(self) -> (KvCache, Vec<u32>) {
        (self.cache, self.tokens)
    }

    /// The cache.
    pub fn cache(&self) -> &KvCache {
        &self.cache
    }

    /// The token ids of the cached positions.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Number of cached tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Keeps the first `len` tokens.
    pub fn truncate(&mut self, len: usize) {
        self.tokens.truncate(len);
        self.cache.truncate(len);
    }

    /// Drops every token, keeping the cache's allocation.
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Feeds `tokens` after the cached ones and returns the last position's logits.
    pub fn feed(&mut self, model: &Llama, tokens: &[u32]) -> Result<Tensor> {
        let logits = model.forward(tokens, &mut self.cache)?;
        self.tokens.extend_from_slice(tokens);
        Ok(logits)
    }

    /// Feeds prompt tokens through the f32 copies of quantized weights
    /// ([`Llama::forward_prompt`]) and returns the last position's logits, so they do not depend
    /// on how many of the prompt's tokens were cached.
    pub fn feed_dense(&mut self, model: &Llama, tokens: &[u32]) -> Result<Tensor> {
        let logits = model.forward_prompt(tokens, &mut self.cache)?;
        self.tokens.extend_from_slice(tokens);
        Ok(logits)
    }

    /// Feeds what of `prompt` is not cached yet and returns the logits after its last token.
    ///
    /// The cache is cut back to the longest common prefix of its tokens and `prompt`. A prompt
    /// that is entirely cached still has its last token fed again, because its logits are not
    /// kept.
    pub fn feed_prompt(&mut self, model: &Llama, prompt: &[u32]) -> Result<Tensor> {
        if prompt.is_empty() {
            return Err(Error::EmptyInput { op: "generate" });
        }
        let common = common_prefix_len(&self.tokens, prompt).min(prompt.len() - 1);
        tracing::debug!(
            cached = self.tokens.len(),
            reused = common,
            prompt = prompt.len(),
            "prefill"
        );
        self.truncate(common);
        self.feed(model, &prompt[common..])
    }
}

/// Feeds `tokens[i]` to `sequences[i]` for every `i` in one batched pass and returns their
/// next-token logits, `[sequences.len(), vocab]`.
///
/// Each row is bit for bit what [`Sequence::feed`] gives for that sequence alone.
pub fn feed_batch(
    model: &Llama,
    sequences: &mut [&mut Sequence],
    tokens: &[u32],
) -> Result<Tensor> {
    let mut caches: Vec<&mut KvCache> = sequences
        .iter_mut()
        .map(|sequence| &mut sequence.cache)
        .collect();
    let logits = model.forward_batch(tokens, &mut caches)?;
    for (sequence, &token) in sequences.iter_mut().zip(tokens) {
        sequence.tokens.push(token);
    }
    Ok(logits)
}

/// Reason generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// The model produced a stop token.
    Stop,
    /// `max_tokens` tokens were generated or the context is full.
    Length,
    /// The token callback returned `ControlFlow::Break`.
    Cancelled,
}

/// The result of one [`generate`] call.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerationOutcome {
    /// Generated token ids, without the stop token.
    pub tokens: Vec<u32>,
    /// Reason generation ended.
    pub finish: FinishReason,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys and values were already cached and not fed again.
    pub reused_tokens: usize,
    /// Time spent feeding the prompt.
    pub prefill_time: Duration,
    /// Time spent sampling and feeding generated tokens.
    pub decode_time: Duration,
}

/// Generates a continuation of `prompt` in `sequence`.
///
/// Only the part of `prompt` that `sequence` does not already hold is fed. Each generated token
/// goes to `on_token`; `ControlFlow::Break` ends the run with [`FinishReason::Cancelled`]. A
/// token for which `is_stop` is true ends it with [`FinishReason::Stop`] and is neither reported
/// nor kept. Afterwards `sequence` contains the prompt and every generated token except the last
/// one, which was sampled but never fed.
pub fn generate(
    model: &Llama,
    sequence: &mut Sequence,
    prompt: &[u32],
    params: &SamplingParams,
    is_stop: impl Fn(u32) -> bool,
    mut on_token: impl FnMut(u32) -> ControlFlow<()>,
) -> Result<GenerationOutcome> {
    // NOTE: `on_token` is first called after the prefill, so a long prompt cannot be cancelled
    // while it is being fed.
    let prefill_start = Instant::now();
    let reused_tokens =
        common_prefix_len(sequence.tokens(), prompt).min(prompt.len().saturating_sub(1));
    let mut logits = sequence.feed_prompt(model, prompt)?;
    let prefill_time = prefill_start.elapsed();

    let decode_start = Instant::now();
    let mut sampler = Sampler::new(params.clone());
    let mut generated = Vec::new();
    let max_positions = model.config().max_position_embeddings;
    let finish = loop {
        if generated.len() >= params.max_tokens {
            break FinishReason::Length;
        }
        // Every generated token but the one just sampled is fed, so the sequence's tokens are
        // the whole history the repeat penalty looks at.
        let token = sampler.sample(&logits, sequence.tokens())?;
        if is_stop(token) {
            break FinishReason::Stop;
        }
        generated.push(token);
        if on_token(token).is_break() {
            break FinishReason::Cancelled;
        }
        if generated.len() >= params.max_tokens || sequence.len() >= max_positions {
            break FinishReason::Length;
        }
        logits = sequence.feed(model, &[token])?;
    };

    let outcome = GenerationOutcome {
        tokens: generated,
        finish,
        prompt_tokens: prompt.len(),
        reused_tokens,
        prefill_time,
        decode_time: decode_start.elapsed(),
    };
    tracing::debug!(
        generated = outcome.tokens.len(),
        finish = ?outcome.finish,
        "generation finished"
    );
    Ok(outcome)
}

fn common_prefix_len(left: &[u32], right: &[u32]) -> usize {
    left.iter().zip(right).take_while(|(a, b)| a == b).count()
}
