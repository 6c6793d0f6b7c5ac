//! One request inside the worker: its sequence, sampler, streaming decoder and stop strings.

use std::time::{Duration, Instant};

use candle_core::Tensor;
use strata_runtime::engine::Engine;
use strata_runtime::stream::StreamDecoder;
use strata_runtime::{FinishReason, Sampler, Sequence};
use tokio::sync::mpsc::UnboundedSender;

use super::{Event, Failure, Finished, Request};
use crate::stop::StopMatcher;

/// The stage of a slot's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Prompt tokens remain to be fed.
    Prefill,
    /// The token sampled last waits to be fed in the next batched step.
    Decode(u32),
    /// The request ended.
    Done(FinishReason),
}

/// An admitted request.
pub(super) struct Slot<'e> {
    pub(super) id: String,
    engine: &'e Engine,
    events: UnboundedSender<Event>,
    pub(super) sequence: Sequence,
    sampler: Sampler,
    decoder: StreamDecoder<'e>,
    stop: StopMatcher,
    prompt: Vec<u32>,
    reused: usize,
    generated: usize,
    max_tokens: usize,
    keep_sequence: bool,
    admitted: Instant,
    first_token: Option<Duration>,
    /// True when a stop string ended the text, so the text held back is dropped, not sent.
    hit_stop_string: bool,
    stage: Stage,
}

impl<'e> Slot<'e> {
    /// Admits `request` with `sequence`, whose first `reused` tokens equal the prompt's.
    pub(super) fn new(
        engine: &'e Engine,
        request: Request,
        mut sequence: Sequence,
        reused: usize,
    ) -> Slot<'e> {
        // The prompt's last token is always fed, because the logits after it are not cached.
        let reused = reused.min(request.prompt.len().saturating_sub(1));
        sequence.truncate(reused);
        Slot {
            id: request.id,
            engine,
            events: request.events,
            sequence,
            sampler: Sampler::new(request.params.clone()),
            decoder: StreamDecoder::new(engine.tokenizer()),
            stop: StopMatcher::new(request.stop),
            prompt: request.prompt,
            reused,
            generated: 0,
            max_tokens: request.params.max_tokens,
            keep_sequence: request.keep_sequence,
            admitted: Instant::now(),
            first_token: None,
            hit_stop_string: false,
            stage: Stage::Prefill,
        }
    }

    /// True while prompt tokens remain to be fed.
    pub(super) fn is_prefilling(&self) -> bool {
        self.stage == Stage::Prefill
    }

    /// Returns the token to feed in the next batched step, if the slot is decoding.
    pub(super) fn pending_token(&self) -> Option<u32> {
        match self.stage {
            Stage::Decode(token) => Some(token),
            _ => None,
        }
    }

    /// True once the request has ended.
    pub(super) fn is_done(&self) -> bool {
        matches!(self.stage, Stage::Done(_))
    }

    /// Tokens generated so far.
    pub(super) fn generated(&self) -> usize {
        self.generated
    }

    /// True when the client stopped listening.
    pub(super) fn is_abandoned(&self) -> bool {
        self.events.is_closed()
    }

    /// Prompt tokens not fed yet.
    pub(super) fn remaining_prompt(&self) -> usize {
        self.prompt.len().saturating_sub(self.sequence.len())
    }

    /// Feeds the next `count` prompt tokens; after the last one, samples the first answer
    /// token. Prompt tokens take the f32 path however few there are, so the first answer token
    /// does not depend on how much of the prompt a pooled cache held.
    pub(super) fn prefill(&mut self, count: usize) -> strata_runtime::Result<()> {
        let start = self.sequence.len();
        let end = (start + count.max(1)).min(self.prompt.len());
        let logits = self
            .sequence
            .feed_dense(self.engine.model(), &self.prompt[start..end])?;
        if end == self.prompt.len() {
            self.accept(&logits)?;
        }
        Ok(())
    }

    /// Samples the next token from `logits` (the sequence's next-token logits, `[vocab]`) and
    /// sends the text it completes.
    pub(super) fn accept(&mut self, logits: &Tensor) -> strata_runtime::Result<()> {
        let token = self.sampler.sample(logits, self.sequence.tokens())?;
        self.first_token
            .get_or_insert_with(|| self.admitted.elapsed());
        if self.engine.tokenizer().is_stop(token) {
            self.stage = Stage::Done(FinishReason::Stop);
            return Ok(());
        }
        self.generated += 1;

        if let Some(piece) = self.decoder.push(token)? {
            let released = self.stop.push(&piece);
            if !self.send_text(released.text) {
                tracing::info!(request = %self.id, generated = self.generated, "client left; generation stopped");
                self.stage = Stage::Done(FinishReason::Cancelled);
                return Ok(());
            }
            if released.stopped {
                self.hit_stop_string = true;
                self.stage = Stage::Done(FinishReason::Stop);
                return Ok(());
            }
        }

        let max_positions = self.engine.model().config().max_position_embeddings;
        self.stage = if self.generated >= self.max_tokens || self.sequence.len() >= max_positions {
            Stage::Done(FinishReason::Length)
        } else {
            Stage::Decode(token)
        };
        Ok(())
    }

    /// Ends the request with `finish` unless it already ended.
    pub(super) fn end(&mut self, finish: FinishReason) {
        if !self.is_done() {
            self.stage = Stage::Done(finish);
        }
    }

    /// Sends the failure and ends the request.
    pub(super) fn fail(&mut self, failure: Failure) {
        let _ = self.events.send(Event::Failed(failure));
        self.stage = Stage::Done(FinishReason::Cancelled);
    }

    /// Sends what is still held back and the end of the request; returns the sequence when the
    /// request did not ask to keep it, so it can be pooled.
    pub(super) fn retire(mut self) -> Option<Sequence> {
        let Stage::Done(finish) = self.stage else {
            unreachable!("only finished slots retire")
        };
        if finish != FinishReason::Cancelled && !self.hit_stop_string {
            let mut tail = match self.decoder.finish() {
                Ok(tail) => tail.unwrap_or_default(),
                Err(error) => {
                    tracing::warn!(request = %self.id, %error, "could not decode the answer's tail");
                    String::new()
                }
            };
            if !tail.is_empty() {
                tail = self.stop.push(&tail).text;
            }
            tail.push_str(&self.stop.finish());
            self.send_text(tail);
        }

        let (sequence, kept) = if self.keep_sequence {
            (Some(self.sequence), None)
        } else {
            (None, Some(self.sequence))
        };
        let finished = Finished {
            finish,
            prompt_tokens: self.prompt.len(),
            reused_tokens: self.reused,
            completion_tokens: self.generated,
            time_to_first_token: self.first_token.unwrap_or_default(),
            sequence,
        };
        let _ = self.events.send(Event::Done(Box::new(finished)));
        kept
    }

    /// Sends a piece of text; false when the client is gone.
    fn send_text(&self, text: String) -> bool {
        text.is_empty() || self.events.send(Event::Text(text)).is_ok()
    }
}
