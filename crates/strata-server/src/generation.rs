//! From a prepared prompt to an answer: queue it on the model's worker, then either collect
//! the whole text or relay it as server-sent events.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::http::StatusCode;
use axum::response::sse;
use futures_util::Stream;
use strata_runtime::{FinishReason, SamplingParams, Sequence};
use tokio::sync::mpsc::{self, UnboundedReceiver};

use crate::error::ApiError;
use crate::models::Served;
use crate::scheduler::{Event, Failure, Finished, Request, SubmitError};

/// A tokenized request, ready for the worker.
#[derive(Debug)]
pub struct Job {
    /// The model's engine and worker.
    pub served: Served,
    /// Prompt token ids.
    pub prompt: Vec<u32>,
    /// A cache to continue, such as a restored snapshot.
    pub start: Option<Sequence>,
    /// Sampler settings, with the token cap.
    pub params: SamplingParams,
    /// Stop strings.
    pub stop: Vec<String>,
}

/// Queues `job` and returns the channel its events arrive on.
pub fn submit(
    job: Job,
    request_id: &str,
    keep_sequence: bool,
) -> Result<UnboundedReceiver<Event>, ApiError> {
    let (events, receiver) = mpsc::unbounded_channel();
    let request = Request {
        id: request_id.to_owned(),
        prompt: job.prompt,
        start: job.start,
        params: job.params,
        stop: job.stop,
        keep_sequence,
        events,
    };
    job.served
        .scheduler
        .submit(request)
        .map_err(|error| match error {
            SubmitError::Busy { .. } => {
                ApiError::with_status(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
                    .code("server_busy")
            }
            SubmitError::Stopped => ApiError::internal(request_id, &error),
        })?;
    Ok(receiver)
}

/// The whole generated text of a request.
#[derive(Debug)]
pub struct Collected {
    /// The text, stop strings removed.
    pub text: String,
    /// Counts and the finish reason.
    pub finished: Box<Finished>,
}

/// Waits for the whole generated text.
pub async fn collect(
    mut receiver: UnboundedReceiver<Event>,
    request_id: &str,
) -> Result<Collected, ApiError> {
    let mut text = String::new();
    loop {
        match receiver.recv().await {
            Some(Event::Text(piece)) => text.push_str(&piece),
            Some(Event::Done(finished)) => return Ok(Collected { text, finished }),
            Some(Event::Failed(failure)) => return Err(failure_error(failure, request_id)),
            None => {
                return Err(ApiError::internal(
                    request_id,
                    &"the worker dropped the request",
                ));
            }
        }
    }
}

/// Builds the error response of a request that failed in the worker.
pub fn failure_error(failure: Failure, request_id: &str) -> ApiError {
    match failure {
        Failure::ShuttingDown => ApiError::with_status(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down; retry on another instance or after it restarts",
        ),
        Failure::Internal => ApiError::with_status(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "generation failed; the server log has the details under request id {request_id}"
            ),
        ),
    }
}

/// Returns the OpenAI name of a finish reason.
pub fn finish_reason_name(finish: FinishReason) -> &'static str {
    match finish {
        FinishReason::Length => "length",
        FinishReason::Stop | FinishReason::Cancelled => "stop",
    }
}

/// Turns worker events into the JSON chunks of one streaming format.
pub trait ChunkRenderer: Send + 'static {
    /// Chunks sent before any text.
    fn start(&mut self) -> Vec<serde_json::Value>;
    /// Chunks carrying a piece of text.
    fn text(&mut self, text: String) -> Vec<serde_json::Value>;
    /// Chunks that end the answer.
    fn done(&mut self, finished: &Finished) -> Vec<serde_json::Value>;
}

struct SseState<R> {
    receiver: UnboundedReceiver<Event>,
    renderer: R,
    request_id: String,
    pending: VecDeque<sse::Event>,
    ended: bool,
}

/// Relays a request's events as server-sent events, ending with `data: [DONE]`. Dropping the
/// stream (the client left) drops the receiver, which stops the generation.
pub fn sse_events<R: ChunkRenderer>(
    receiver: UnboundedReceiver<Event>,
    mut renderer: R,
    request_id: String,
) -> impl Stream<Item = Result<sse::Event, Infallible>> {
    let pending = renderer.start().into_iter().map(json_event).collect();
    let state = SseState {
        receiver,
        renderer,
        request_id,
        pending,
        ended: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.pending.pop_front() {
                return Some((Ok(event), state));
            }
            if state.ended {
                return None;
            }
            state.next_events().await;
        }
    })
}

impl<R: ChunkRenderer> SseState<R> {
    /// Waits for the next worker event and queues its chunks.
    async fn next_events(&mut self) {
        let chunks = match self.receiver.recv().await {
            Some(Event::Text(text)) => self.renderer.text(text),
            Some(Event::Done(finished)) => {
                self.ended = true;
                self.renderer.done(&finished)
            }
            Some(Event::Failed(failure)) => {
                self.ended = true;
                vec![failure_error(failure, &self.request_id).body()]
            }
            None => {
                self.ended = true;
                let error = ApiError::internal(&self.request_id, &"the worker dropped the request");
                vec![error.body()]
            }
        };
        self.pending.extend(chunks.into_iter().map(json_event));
        if self.ended {
            self.pending.push_back(sse::Event::default().data("[DONE]"));
        }
    }
}

fn json_event(value: serde_json::Value) -> sse::Event {
    sse::Event::default().data(value.to_string())
}
