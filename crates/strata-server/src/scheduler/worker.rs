//! The worker loop: admit requests, feed one prompt chunk, decode every active slot at once.

use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

use strata_runtime::engine::Engine;
use strata_runtime::generate::feed_batch;
use strata_runtime::{FinishReason, Sequence};

use super::pool::{POOL_POSITIONS, SequencePool, shared_prefix};
use super::slot::Slot;
use super::{Event, Failure, Request, SchedulerLimits, Shared};

/// Positions a new cache has room for before its first growth, past the prompt.
const NEW_CACHE_HEADROOM: usize = 256;

struct Worker<'e> {
    engine: &'e Engine,
    limits: SchedulerLimits,
    shared: &'e Shared,
    slots: Vec<Slot<'e>>,
    pool: SequencePool,
}

/// Serves requests from `receiver` until every handle is dropped and no request is left.
pub(super) fn run(
    engine: &Engine,
    receiver: Receiver<Request>,
    limits: SchedulerLimits,
    shared: &Shared,
) {
    tracing::debug!(model = %engine.reference(), slots = limits.slots, "worker started");
    let mut worker = Worker {
        engine,
        limits,
        shared,
        slots: Vec::new(),
        pool: SequencePool::new(limits.slots, POOL_POSITIONS),
    };
    while worker.admit(&receiver) {
        worker.end_abandoned();
        worker.prefill();
        worker.decode();
        worker.retire();
    }
    tracing::debug!(model = %engine.reference(), "worker stopped");
}

impl<'e> Worker<'e> {
    /// Moves queued requests into free slots, waiting for one when nothing is active. Returns
    /// false once every handle is gone and nothing is active.
    fn admit(&mut self, receiver: &Receiver<Request>) -> bool {
        if self.slots.is_empty() {
            match receiver.recv() {
                Ok(request) => self.start(request),
                Err(_) => return false,
            }
        }
        while self.slots.len() < self.limits.slots {
            match receiver.try_recv() {
                Ok(request) => self.start(request),
                Err(_) => break,
            }
        }
        true
    }

    /// Admits one request into a slot, on the cache that shares the most of its prompt.
    fn start(&mut self, mut request: Request) {
        self.shared.queued.fetch_sub(1, Ordering::SeqCst);
        let prompt = &request.prompt;
        let given = request.start.take().map(|sequence| {
            let shared = shared_prefix(sequence.tokens(), prompt);
            (sequence, shared)
        });
        let floor = given.as_ref().map_or(1, |(_, shared)| shared + 1);
        let (sequence, reused) = match (self.pool.take_best(prompt, floor), given) {
            (Some(pooled), _) => pooled,
            (None, Some(given)) => given,
            (None, None) => match self.fresh_sequence(prompt.len()) {
                Ok(sequence) => (sequence, 0),
                Err(error) => {
                    self.shared.accepted.fetch_sub(1, Ordering::SeqCst);
                    tracing::error!(request = %request.id, %error, "cannot allocate a cache");
                    let _ = request.events.send(Event::Failed(Failure::Internal));
                    return;
                }
            },
        };
        // A prompt the cache contains whole is fed again from its last chunk boundary, so its
        // logits come from the same rows in one pass as a fresh prompt's, bit for bit.
        let chunk = self.limits.prefill_chunk.max(1);
        let reused = match reused >= prompt.len() {
            true => prompt.len().saturating_sub(1) / chunk * chunk,
            false => reused,
        };
        tracing::debug!(request = %request.id, prompt = prompt.len(), reused, "admitted");
        self.slots
            .push(Slot::new(self.engine, request, sequence, reused));
        self.shared.active.store(self.slots.len(), Ordering::SeqCst);
    }

    /// Returns a cleared pooled sequence, or a new one with room for the prompt.
    fn fresh_sequence(&mut self, prompt_len: usize) -> strata_runtime::Result<Sequence> {
        if let Some(mut sequence) = self.pool.take_oldest() {
            sequence.clear();
            return Ok(sequence);
        }
        let cache = self
            .engine
            .model()
            .new_cache(prompt_len + NEW_CACHE_HEADROOM)?;
        Ok(Sequence::new(cache))
    }

    /// Ends requests whose client left, and every request at shutdown.
    fn end_abandoned(&mut self) {
        let shutting_down = self.shared.cancel_all.load(Ordering::SeqCst);
        for slot in &mut self.slots {
            if shutting_down && !slot.is_done() {
                slot.fail(Failure::ShuttingDown);
            } else if slot.is_abandoned() && !slot.is_done() {
                tracing::info!(
                    request = %slot.id,
                    generated = slot.generated(),
                    "client left; generation stopped"
                );
                slot.end(FinishReason::Cancelled);
            }
        }
    }

    /// Feeds prompts, oldest first, while this iteration's budget of `prefill_chunk` tokens
    /// lasts, so a burst of new requests reaches its first tokens in a few iterations while
    /// the decoding slots wait at most one budget's worth of prefill per step.
    ///
    /// A prompt is always fed in chunks of `prefill_chunk` tokens from where its cache ends
    /// (one that does not fit the rest of the budget waits for the next iteration), so how
    /// a prompt is split, and with it its cache, never depends on the other requests.
    fn prefill(&mut self) {
        let chunk = self.limits.prefill_chunk.max(1);
        let mut budget = chunk;
        for slot in self.slots.iter_mut().filter(|slot| slot.is_prefilling()) {
            let wanted = slot.remaining_prompt().min(chunk);
            if wanted > budget {
                break;
            }
            budget -= wanted;
            if let Err(error) = slot.prefill(wanted) {
                tracing::error!(request = %slot.id, %error, "prefill failed");
                slot.fail(Failure::Internal);
            }
        }
    }

    /// Feeds every decoding slot's pending token in one batched pass and samples the next.
    fn decode(&mut self) {
        let mut batch: Vec<&mut Slot<'e>> = self
            .slots
            .iter_mut()
            .filter(|slot| slot.pending_token().is_some())
            .collect();
        if batch.is_empty() {
            return;
        }
        let tokens: Vec<u32> = batch
            .iter()
            .filter_map(|slot| slot.pending_token())
            .collect();
        let mut sequences: Vec<&mut Sequence> =
            batch.iter_mut().map(|slot| &mut slot.sequence).collect();
        let logits = feed_batch(self.engine.model(), &mut sequences, &tokens);
        drop(sequences);

        let logits = match logits {
            Ok(logits) => logits,
            Err(error) => {
                tracing::error!(%error, batch = batch.len(), "batched decode step failed");
                for slot in batch {
                    slot.fail(Failure::Internal);
                }
                return;
            }
        };
        for (row, slot) in batch.into_iter().enumerate() {
            let accepted = logits.get(row).map_err(strata_runtime::Error::from);
            if let Err(error) = accepted.and_then(|row| slot.accept(&row)) {
                tracing::error!(request = %slot.id, %error, "sampling failed");
                slot.fail(Failure::Internal);
            }
        }
    }

    /// Sends the end of finished requests and pools their caches.
    fn retire(&mut self) {
        if !self.slots.iter().any(Slot::is_done) {
            return;
        }
        let (done, active): (Vec<_>, Vec<_>) = self.slots.drain(..).partition(Slot::is_done);
        self.slots = active;
        self.shared.accepted.fetch_sub(done.len(), Ordering::SeqCst);
        for slot in done {
            if let Some(sequence) = slot.retire() {
                self.pool.put(sequence);
            }
        }
        self.shared.active.store(self.slots.len(), Ordering::SeqCst);
    }
}
