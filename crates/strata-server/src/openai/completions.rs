//! `POST /v1/completions`: plain text continuation, no chat template.

use axum::extract::State;
use axum::response::{IntoResponse, Response, Sse};
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::chat::{Header, log_finished, usage};
use super::request::{CompletionRequest, single_prompt};
use crate::error::{ApiError, ApiResult};
use crate::generation::{self, ChunkRenderer, Job, finish_reason_name};
use crate::http::{AppState, GenerationBody, RequestId, blocking};
use crate::scheduler::Finished;

/// Continues a prompt, streamed or whole.
pub async fn completions(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
    GenerationBody(request, generation): GenerationBody<CompletionRequest>,
) -> ApiResult<Response> {
    let stop = generation.stop_strings()?;
    let prompt = single_prompt(&request.prompt)?.to_owned();
    if prompt.is_empty() {
        return Err(ApiError::invalid("prompt", "the prompt is empty"));
    }
    let (worker_app, model) = (app.clone(), request.model.clone());
    let (served, prompt) = blocking(&id.0, move || {
        let served = worker_app.models.get_routed(&model, Some(&prompt))?;
        let tokens = served
            .engine
            .tokenizer()
            .encode_text(&prompt)
            .map_err(|error| {
                ApiError::invalid("prompt", format!("cannot tokenize the prompt: {error}"))
            })?;
        Ok((served, tokens))
    })
    .await?;
    let engine = served.engine.clone();
    let context = engine.model().config().max_position_embeddings;
    let params = generation.sampling(prompt.len(), context)?;
    let job = Job {
        served,
        prompt,
        start: None,
        params,
        stop,
    };
    let receiver = generation::submit(job, &id.0, false)?;
    let mut header = Header::new(&id, &request.model, &engine);
    header.id = header.id.replacen("chatcmpl-", "cmpl-", 1);

    if generation.stream {
        let renderer = TextChunks {
            header,
            include_usage: generation.include_usage(),
            request_id: id.0.clone(),
        };
        let events = generation::sse_events(receiver, renderer, id.0.clone());
        return Ok(Sse::new(events).into_response());
    }
    let collected = generation::collect(receiver, &id.0).await?;
    log_finished(&id.0, &collected.finished);
    let reason = finish_reason_name(collected.finished.finish);
    let mut body = text_completion(&header, &collected.text, Some(reason));
    body["usage"] = usage(&collected.finished);
    Ok(Json(body).into_response())
}

fn text_completion(header: &Header, text: &str, finish_reason: Option<&str>) -> Value {
    json!({
        "id": header.id,
        "object": "text_completion",
        "created": header.created,
        "model": header.model,
        "system_fingerprint": header.fingerprint,
        "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": finish_reason}],
    })
}

/// Streamed `text_completion` objects.
struct TextChunks {
    header: Header,
    include_usage: bool,
    request_id: String,
}

impl TextChunks {
    fn chunk(&self, text: &str, finish_reason: Option<&str>) -> Value {
        let mut chunk = text_completion(&self.header, text, finish_reason);
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    }
}

impl ChunkRenderer for TextChunks {
    fn start(&mut self) -> Vec<Value> {
        Vec::new()
    }

    fn text(&mut self, text: String) -> Vec<Value> {
        vec![self.chunk(&text, None)]
    }

    fn done(&mut self, finished: &Finished) -> Vec<Value> {
        log_finished(&self.request_id, finished);
        let mut chunks = vec![self.chunk("", Some(finish_reason_name(finished.finish)))];
        if self.include_usage {
            let mut last = text_completion(&self.header, "", None);
            last["choices"] = json!([]);
            last["usage"] = usage(finished);
            chunks.push(last);
        }
        chunks
    }
}
