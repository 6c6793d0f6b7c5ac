//! `POST /v1/chat/completions`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response, Sse};
use serde_json::{Value, json};
use strata_runtime::Sequence;
use strata_runtime::engine::Engine;
use strata_runtime::template::Message;

use super::request::{ChatRequest, template_messages};
use crate::error::{ApiError, ApiResult};
use crate::generation::{self, ChunkRenderer, Job, finish_reason_name};
use crate::http::{App, AppState, GenerationBody, RequestId, blocking};
use crate::models::Served;
use crate::scheduler::Finished;
use crate::snapshots;

/// A chat request's conversation, tokenized, with the cache it may start from.
struct Prepared {
    served: Served,
    prompt: Vec<u32>,
    start: Option<Sequence>,
}

/// Handles a chat request, streamed or whole.
pub async fn completions(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
    GenerationBody(request, generation): GenerationBody<ChatRequest>,
) -> ApiResult<Response> {
    let stop = generation.stop_strings()?;
    let messages = template_messages(&request.messages, &app.limits)?;
    let (model, snapshot) = (request.model.clone(), request.snapshot.clone());
    let worker_app = app.clone();
    let prepared = blocking(&id.0, move || {
        prepare(&worker_app, &model, snapshot.as_deref(), messages)
    })
    .await?;
    let engine = prepared.served.engine.clone();
    let context = engine.model().config().max_position_embeddings;
    let params = generation.sampling(prepared.prompt.len(), context)?;
    let job = Job {
        served: prepared.served,
        prompt: prepared.prompt,
        start: prepared.start,
        params,
        stop,
    };
    let receiver = generation::submit(job, &id.0, false)?;
    let header = Header::new(&id, &request.model, &engine);

    if generation.stream {
        let renderer = ChatChunks {
            header,
            include_usage: generation.include_usage(),
            request_id: id.0.clone(),
        };
        let events = generation::sse_events(receiver, renderer, id.0.clone());
        return Ok(Sse::new(events).into_response());
    }
    let collected = generation::collect(receiver, &id.0).await?;
    log_finished(&id.0, &collected.finished);
    let body = json!({
        "id": header.id,
        "object": "chat.completion",
        "created": header.created,
        "model": header.model,
        "system_fingerprint": header.fingerprint,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": collected.text},
            "logprobs": null,
            "finish_reason": finish_reason_name(collected.finished.finish),
        }],
        "usage": usage(&collected.finished),
    });
    Ok(Json(body).into_response())
}

/// Loads the model, continues the snapshot when one is named, and tokenizes the conversation.
fn prepare(
    app: &Arc<App>,
    model: &str,
    snapshot: Option<&str>,
    messages: Vec<Message>,
) -> Result<Prepared, ApiError> {
    let last_user = messages
        .iter()
        .rev()
        .find(|message| message.role == "user")
        .map(|message| message.content.clone());
    let served = app.models.get_routed(model, last_user.as_deref())?;
    let (messages, start) = match snapshot {
        Some(name) => {
            let snapshot = snapshots::open(&app.store, name, "snapshot")?;
            let (saved, sequence) = snapshots::restore(&app.store, &snapshot, &served.engine)?;
            (snapshots::continue_messages(saved, messages), sequence)
        }
        None => (messages, None),
    };
    let prompt = encode_chat(&served.engine, &messages)?;
    // Saved snapshots hold the base weights' cache, which a lesson's engine cannot continue.
    let start = match served.route {
        None => start.or_else(|| snapshots::longest_prefix(&app.store, &served.engine, &prompt)),
        Some(_) => None,
    };
    Ok(Prepared {
        served,
        prompt,
        start,
    })
}

/// Renders and tokenizes a conversation; a template's own error is the client's 400.
pub fn encode_chat(engine: &Engine, messages: &[Message]) -> Result<Vec<u32>, ApiError> {
    engine
        .tokenizer()
        .encode_chat(engine.template(), messages, true)
        .map_err(|error| {
            ApiError::invalid(
                "messages",
                format!("the chat template rejected the messages: {error}"),
            )
        })
}

/// Fields every chunk and response of one request repeat.
#[derive(Clone, Debug)]
pub struct Header {
    /// `chatcmpl-…` or `cmpl-…` id.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model name as the request gave it.
    pub model: String,
    /// The model version's short digest.
    pub fingerprint: String,
}

impl Header {
    /// Builds the header of request `id` for `model`.
    pub fn new(id: &RequestId, model: &str, engine: &Engine) -> Header {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        Header {
            id: format!("chatcmpl-{}", id.0.trim_start_matches("req-")),
            created,
            model: model.to_owned(),
            fingerprint: format!("strata-{}", engine.manifest_digest().short()),
        }
    }
}

/// Builds the `usage` object.
pub fn usage(finished: &Finished) -> Value {
    json!({
        "prompt_tokens": finished.prompt_tokens,
        "completion_tokens": finished.completion_tokens,
        "total_tokens": finished.prompt_tokens + finished.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": finished.reused_tokens},
    })
}

/// Logs a finished request's token counts and timing.
pub fn log_finished(request_id: &str, finished: &Finished) {
    tracing::info!(
        request = request_id,
        prompt_tokens = finished.prompt_tokens,
        cached_tokens = finished.reused_tokens,
        completion_tokens = finished.completion_tokens,
        ttft_ms = finished.time_to_first_token.as_millis() as u64,
        finish = ?finished.finish,
        "generation finished"
    );
}

/// `chat.completion.chunk` objects.
struct ChatChunks {
    header: Header,
    include_usage: bool,
    request_id: String,
}

impl ChatChunks {
    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        let mut chunk = json!({
            "id": self.header.id,
            "object": "chat.completion.chunk",
            "created": self.header.created,
            "model": self.header.model,
            "system_fingerprint": self.header.fingerprint,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    }
}

impl ChunkRenderer for ChatChunks {
    fn start(&mut self) -> Vec<Value> {
        vec![self.chunk(json!({"role": "assistant", "content": ""}), None)]
    }

    fn text(&mut self, text: String) -> Vec<Value> {
        vec![self.chunk(json!({"content": text}), None)]
    }

    fn done(&mut self, finished: &Finished) -> Vec<Value> {
        log_finished(&self.request_id, finished);
        let reason = finish_reason_name(finished.finish);
        let mut chunks = vec![self.chunk(json!({}), Some(reason))];
        if self.include_usage {
            chunks.push(json!({
                "id": self.header.id,
                "object": "chat.completion.chunk",
                "created": self.header.created,
                "model": self.header.model,
                "system_fingerprint": self.header.fingerprint,
                "choices": [],
                "usage": usage(finished),
            }));
        }
        chunks
    }
}
