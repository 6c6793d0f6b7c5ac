//! Live sessions: a conversation the server keeps, with its cache, so each message feeds only
//! what is new; saved as snapshots and forked from them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use strata_runtime::Sequence;
use strata_runtime::engine::Chat;
use strata_runtime::template::Message;
use strata_sessions::{SaveOptions, SessionName};
use strata_store::Digest;

use crate::error::{ApiError, ApiResult};
use crate::generation::{self, Job, finish_reason_name};
use crate::http::{App, AppState, GenerationBody, JsonBody, RequestId, blocking};
use crate::models::parse_model;
use crate::openai::chat::{encode_chat, usage};
use crate::snapshots;

/// Most live sessions one server keeps.
const MAX_SESSIONS: usize = 256;

/// One live conversation.
#[derive(Debug)]
pub struct LiveSession {
    /// The model name it runs, a tag it follows.
    pub model: String,
    /// Messages, the system message first when there is one.
    pub messages: Vec<Message>,
    /// The cache of the last turn and the version it was computed with.
    pub cache: Option<(Sequence, Digest)>,
    /// The lesson whose adapters computed that cache, `None` for the base weights.
    pub route: Option<u32>,
    /// The snapshot it was forked from or last saved as, the next save's parent.
    pub origin: Option<Digest>,
}

/// Live sessions by id.
#[derive(Debug, Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Arc<tokio::sync::Mutex<LiveSession>>>>,
}

impl Sessions {
    fn insert(&self, session: LiveSession) -> Result<String, ApiError> {
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if live.len() >= MAX_SESSIONS {
            return Err(ApiError::with_status(
                StatusCode::TOO_MANY_REQUESTS,
                format!("the server holds {MAX_SESSIONS} sessions already; delete some first"),
            ));
        }
        let id = format!("sess-{:016x}", rand::random::<u64>());
        live.insert(id.clone(), Arc::new(tokio::sync::Mutex::new(session)));
        Ok(id)
    }

    fn get(&self, id: &str) -> Result<Arc<tokio::sync::Mutex<LiveSession>>, ApiError> {
        check_id(id)?;
        let live = self
            .live
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        live.get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("no live session `{id}`")))
    }

    fn remove(&self, id: &str) -> Result<(), ApiError> {
        check_id(id)?;
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        live.remove(id)
            .map(drop)
            .ok_or_else(|| ApiError::not_found(format!("no live session `{id}`")))
    }

    fn ids(&self) -> Vec<String> {
        let live = self
            .live
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let mut ids: Vec<String> = live.keys().cloned().collect();
        ids.sort();
        ids
    }
}

/// Rejects ids that are not `sess-` and 16 hex digits before any lookup.
fn check_id(id: &str) -> Result<(), ApiError> {
    let valid = id
        .strip_prefix("sess-")
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid session id `{id}`: expected `sess-` and 16 hex digits"
        )))
    }
}

/// Body of `POST /api/sessions`.
#[derive(Debug, Deserialize)]
pub struct CreateSession {
    /// Model name.
    pub model: String,
    /// System message.
    pub system: Option<String>,
    /// A snapshot to start from.
    pub snapshot: Option<String>,
}

/// `POST /api/sessions`: starts a session, empty or from a snapshot.
pub async fn create(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
    JsonBody(body): JsonBody<CreateSession>,
) -> ApiResult<impl IntoResponse> {
    parse_model(&body.model)?;
    let worker_app = app.clone();
    let session = blocking(&id.0, move || start_session(&worker_app, body)).await?;
    let summary = describe(&session);
    let session_id = app.sessions.insert(session)?;
    Ok((StatusCode::CREATED, Json(with_id(summary, &session_id))))
}

/// Builds a session from a create request, restoring its snapshot when it names one.
pub fn start_session(app: &App, body: CreateSession) -> Result<LiveSession, ApiError> {
    let mut messages: Vec<Message> = body
        .system
        .map(|text| Message::new("system", text))
        .into_iter()
        .collect();
    let (mut cache, mut origin) = (None, None);
    let served = app.models.get(&body.model)?;
    if let Some(name) = &body.snapshot {
        let snapshot = snapshots::open(&app.store, name, "snapshot")?;
        let (saved, sequence) = snapshots::restore(&app.store, &snapshot, &served.engine)?;
        messages = snapshots::continue_messages(saved, messages);
        let version = served.engine.manifest_digest().clone();
        cache = sequence.map(|sequence| (sequence, version));
        origin = Some(snapshot.descriptor.digest.clone());
    }
    Ok(LiveSession {
        model: body.model,
        messages,
        cache,
        route: None,
        origin,
    })
}

/// `GET /api/sessions`.
pub async fn list(State(app): AppState) -> Json<Value> {
    Json(json!({ "sessions": app.sessions.ids() }))
}

/// `GET /api/sessions/{id}`.
pub async fn show(State(app): AppState, Path(session_id): Path<String>) -> ApiResult<Json<Value>> {
    let session = app.sessions.get(&session_id)?;
    let session = session.lock().await;
    Ok(Json(with_id(describe(&session), &session_id)))
}

/// `DELETE /api/sessions/{id}`.
pub async fn remove(State(app): AppState, Path(session_id): Path<String>) -> ApiResult<StatusCode> {
    app.sessions.remove(&session_id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/sessions/{id}/messages`, besides the sampling settings of chat
/// completions (`stream` is not supported here).
#[derive(Debug, Deserialize)]
pub struct SendMessage {
    /// The user's message.
    pub content: String,
}

/// `POST /api/sessions/{id}/messages`: adds a user message and returns the answer.
pub async fn send(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
    Path(session_id): Path<String>,
    GenerationBody(body, generation): GenerationBody<SendMessage>,
) -> ApiResult<Json<Value>> {
    if generation.stream {
        return Err(ApiError::invalid(
            "stream",
            "session messages are answered whole; stream with /v1/chat/completions and `snapshot`",
        ));
    }
    let stop = generation.stop_strings()?;
    let session = app.sessions.get(&session_id)?;
    let mut session = session.lock().await;

    let mut messages = session.messages.clone();
    messages.push(Message::new("user", body.content));
    let (model, worker_app, rendered) = (session.model.clone(), app.clone(), messages.clone());
    let (served, prompt) = blocking(&id.0, move || {
        let message = rendered.last().map(|message| message.content.as_str());
        let served = worker_app.models.get_routed(&model, message)?;
        let prompt = encode_chat(&served.engine, &rendered)?;
        Ok((served, prompt))
    })
    .await?;
    let engine = served.engine.clone();
    let context = engine.model().config().max_position_embeddings;
    let params = generation.sampling(prompt.len(), context)?;
    let same_weights = session.route == served.route;
    let start = match session.cache.take() {
        Some((sequence, version)) if &version == engine.manifest_digest() && same_weights => {
            Some(sequence)
        }
        _ => None,
    };
    session.route = served.route;
    let job = Job {
        served,
        prompt,
        start,
        params,
        stop,
    };
    let receiver = generation::submit(job, &id.0, true)?;
    let mut collected = generation::collect(receiver, &id.0).await?;

    messages.push(Message::new("assistant", &collected.text));
    session.messages = messages;
    let version = engine.manifest_digest().clone();
    session.cache = collected
        .finished
        .sequence
        .take()
        .map(|sequence| (sequence, version));
    Ok(Json(json!({
        "message": {"role": "assistant", "content": collected.text},
        "finish_reason": finish_reason_name(collected.finished.finish),
        "usage": usage(&collected.finished),
    })))
}

/// Body of `POST /api/sessions/{id}/save`.
#[derive(Debug, Deserialize)]
pub struct SaveSession {
    /// Snapshot name.
    pub name: String,
}

/// `POST /api/sessions/{id}/save`: saves the session as a snapshot.
pub async fn save(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
    Path(session_id): Path<String>,
    JsonBody(body): JsonBody<SaveSession>,
) -> ApiResult<impl IntoResponse> {
    let name = SessionName::parse(&body.name)
        .map_err(|error| ApiError::invalid("name", error.to_string()))?;
    let session = app.sessions.get(&session_id)?;
    let mut guard = session.lock_owned().await;
    let worker_app = app.clone();
    let saved = blocking(&id.0, move || {
        let result = save_session(&worker_app, &mut guard, &name);
        result.map(|saved| (saved, guard))
    })
    .await;
    let (saved, _guard) = saved?;
    Ok((StatusCode::CREATED, Json(saved)))
}

/// Writes the session as snapshot `name`, reusing its parent's blocks.
fn save_session(
    app: &App,
    session: &mut LiveSession,
    name: &SessionName,
) -> Result<Value, ApiError> {
    let served = app.models.get(&session.model)?;
    let engine = &served.engine;
    let (system, messages) = split_system(&session.messages);
    let sequence = match session.cache.take() {
        Some((sequence, version))
            if &version == engine.manifest_digest() && session.route.is_none() =>
        {
            Some(sequence)
        }
        _ => None,
    };
    let parent = match &session.origin {
        Some(digest) => snapshots::open(&app.store, digest.as_str(), "name").ok(),
        None => None,
    };
    let chat = Chat::from_parts(system, messages, sequence);
    let options = SaveOptions {
        parent: parent.as_ref(),
        ..SaveOptions::default()
    };
    let params = strata_runtime::SamplingParams::default();
    let result = strata_sessions::save(&app.store, name, engine, &chat, &params, &options);
    let (_, _, sequence) = chat.into_parts();
    session.cache = sequence.map(|sequence| (sequence, engine.manifest_digest().clone()));
    session.route = None;

    let saved =
        result.map_err(|error| ApiError::invalid("name", format!("cannot save: {error}")))?;
    session.origin = Some(saved.snapshot.descriptor.digest.clone());
    Ok(json!({
        "name": name.as_str(),
        "digest": saved.snapshot.descriptor.digest.as_str(),
        "cached_tokens": saved.snapshot.config.cached_tokens,
        "blocks_written": saved.blocks_written,
        "blocks_reused": saved.blocks_reused,
        "bytes_written": saved.bytes_written,
    }))
}

/// Splits off a leading system message.
fn split_system(messages: &[Message]) -> (Option<String>, Vec<Message>) {
    match messages.split_first() {
        Some((first, rest)) if first.role == "system" => {
            (Some(first.content.clone()), rest.to_vec())
        }
        _ => (None, messages.to_vec()),
    }
}

fn describe(session: &LiveSession) -> Value {
    json!({
        "model": session.model,
        "messages": session.messages,
        "cached_tokens": session.cache.as_ref().map_or(0, |(sequence, _)| sequence.len()),
        "version": session.cache.as_ref().map(|(_, version)| version.as_str()),
        "origin": session.origin.as_ref().map(Digest::as_str),
    })
}

fn with_id(mut summary: Value, id: &str) -> Value {
    summary["id"] = Value::String(id.to_owned());
    summary
}

/// Starts a live session from `session` (used by the snapshot fork route).
pub fn insert(app: &App, session: LiveSession) -> Result<Value, ApiError> {
    let summary = describe(&session);
    let id = app.sessions.insert(session)?;
    Ok(with_id(summary, &id))
}

/// The messages of live session `id`, system message excluded, for learning.
pub async fn messages(app: &App, id: &str) -> Result<Vec<Message>, ApiError> {
    let session = app.sessions.get(id)?;
    let session = session.lock().await;
    Ok(split_system(&session.messages).1)
}
