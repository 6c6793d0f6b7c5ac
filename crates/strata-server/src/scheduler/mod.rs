//! Continuous batching: one worker thread per loaded model runs every active request together.
//!
//! Handlers tokenize a request and [`Scheduler::submit`] it; the worker admits it into a free
//! slot, feeds its prompt (a chunk per iteration, so long prompts do not stall the others) and
//! then decodes one token for every active slot in a single batched pass over the weights.
//! Text goes back to the handler as [`Event`]s on the request's own channel; a handler that
//! drops its receiver (the client went away) frees the slot at the next step.

mod pool;
mod slot;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use strata_runtime::engine::Engine;
use strata_runtime::{FinishReason, SamplingParams, Sequence};
use tokio::sync::mpsc::UnboundedSender;

/// Limits of one worker.
#[derive(Clone, Copy, Debug)]
pub struct SchedulerLimits {
    /// Requests decoded together.
    pub slots: usize,
    /// Requests waiting for a slot before new ones are refused.
    pub queue: usize,
    /// Prompt tokens fed per iteration for one request.
    pub prefill_chunk: usize,
}

impl Default for SchedulerLimits {
    /// 16 slots, 64 waiting requests, 512-token prefill chunks.
    fn default() -> Self {
        SchedulerLimits {
            slots: 16,
            queue: 64,
            prefill_chunk: 512,
        }
    }
}

/// One generation request, tokenized.
#[derive(Debug)]
pub struct Request {
    /// Id used in logs.
    pub id: String,
    /// The whole prompt's token ids.
    pub prompt: Vec<u32>,
    /// A cache to continue, such as a restored snapshot; the worker may prefer a pooled one
    /// that shares a longer prefix with the prompt.
    pub start: Option<Sequence>,
    /// Sampling settings; `max_tokens` is the cap on generated tokens.
    pub params: SamplingParams,
    /// Stop strings.
    pub stop: Vec<String>,
    /// Return the sequence in [`Finished::sequence`] instead of pooling it.
    pub keep_sequence: bool,
    /// The channel for text and the end of the request.
    pub events: UnboundedSender<Event>,
}

/// A worker's report about a request.
#[derive(Debug)]
pub enum Event {
    /// A piece of generated text: whole characters, never part of a stop string.
    Text(String),
    /// The request ended.
    Done(Box<Finished>),
    /// The request failed; the worker logged why.
    Failed(Failure),
}

/// The cause of a request's failure inside the worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The model or the cache failed; the log has the details under the request id.
    Internal,
    /// The server is shutting down.
    ShuttingDown,
}

/// The end of a request.
#[derive(Debug)]
pub struct Finished {
    /// Why generation ended.
    pub finish: FinishReason,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens whose cache was reused instead of computed.
    pub reused_tokens: usize,
    /// Tokens generated, the stop token excluded.
    pub completion_tokens: usize,
    /// From admission to the first generated token.
    pub time_to_first_token: Duration,
    /// The prompt and answer's cache, when the request asked to keep it.
    pub sequence: Option<Sequence>,
}

/// The reason a request was not queued.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Every slot is busy and the queue is full.
    #[error("the server is busy: {queued} requests are waiting (limit {limit}); retry later")]
    Busy {
        /// Requests waiting.
        queued: usize,
        /// The queue limit.
        limit: usize,
    },
    /// The worker has stopped.
    #[error("the model worker has stopped")]
    Stopped,
}

/// Handle to a model's worker; clones share it. The worker ends when the last handle drops
/// and its requests are done.
#[derive(Clone, Debug)]
pub struct Scheduler {
    sender: mpsc::Sender<Request>,
    shared: Arc<Shared>,
    limits: SchedulerLimits,
}

/// State the handles and the worker share.
#[derive(Debug, Default)]
struct Shared {
    /// Requests submitted and not yet admitted.
    queued: AtomicUsize,
    /// Requests in slots.
    active: AtomicUsize,
    /// Requests accepted and not yet finished, queued or active: the one count admission
    /// checks, so a request moving from the queue to a slot never opens a gap.
    accepted: AtomicUsize,
    /// Set at shutdown: every request ends at the next step.
    cancel_all: AtomicBool,
}

impl Scheduler {
    /// Starts a worker thread for `engine`.
    pub fn start(engine: Arc<Engine>, limits: SchedulerLimits) -> std::io::Result<Scheduler> {
        let (sender, receiver) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let worker_shared = shared.clone();
        let name = format!("strata-worker-{}", engine.manifest_digest().short());
        std::thread::Builder::new().name(name).spawn(move || {
            worker::run(&engine, receiver, limits, &worker_shared);
        })?;
        Ok(Scheduler {
            sender,
            shared,
            limits,
        })
    }

    /// Queues a request, or refuses it at once when `slots + queue` requests are already
    /// accepted and not finished, so a burst of up to that many is always taken.
    pub fn submit(&self, request: Request) -> Result<(), SubmitError> {
        let capacity = self.limits.slots + self.limits.queue;
        let claimed =
            self.shared
                .accepted
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |accepted| {
                    (accepted < capacity).then_some(accepted + 1)
                });
        if let Err(accepted) = claimed {
            return Err(SubmitError::Busy {
                queued: accepted.saturating_sub(self.limits.slots),
                limit: self.limits.queue,
            });
        }
        self.shared.queued.fetch_add(1, Ordering::SeqCst);
        self.sender.send(request).map_err(|_| {
            self.shared.queued.fetch_sub(1, Ordering::SeqCst);
            self.shared.accepted.fetch_sub(1, Ordering::SeqCst);
            SubmitError::Stopped
        })
    }

    /// Requests waiting for a slot.
    pub fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::SeqCst)
    }

    /// Requests being served.
    pub fn active(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// Ends every request at the next step, as at shutdown.
    pub fn cancel_all(&self) {
        self.shared.cancel_all.store(true, Ordering::SeqCst);
    }
}
