//! HTTP plumbing shared by every route: the application state, the JSON body extractor, request
//! ids and logging, the API key check, and running blocking work off the async threads.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use strata_store::Store;

use crate::error::ApiError;
use crate::models::Models;
use crate::native::{Jobs, Sessions};
use crate::openai::request::{GenerationFields, RequestLimits};

/// What every handler shares.
#[derive(Debug)]
pub struct App {
    /// The store models and snapshots come from.
    pub store: Store,
    /// Loaded models and their workers.
    pub models: Models,
    /// Limits on request bodies.
    pub limits: RequestLimits,
    /// The key every request must present as a bearer token, when set.
    pub api_key: Option<String>,
    /// Live sessions of the native API.
    pub sessions: Sessions,
    /// Learning jobs started through the API.
    pub jobs: Jobs,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// The text embedder, loaded on first use.
    pub embedder: std::sync::Mutex<Option<Arc<strata_embed::TextEmbedder>>>,
    /// The image embedder, loaded on first use.
    pub image_embedder: std::sync::Mutex<Option<Arc<strata_embed::ImageEmbedder>>>,
    /// The audio embedder, loaded on first use.
    pub audio_embedder: std::sync::Mutex<Option<Arc<strata_embed::AudioEmbedder>>>,
}

impl App {
    /// Returns the text embedder, loading it (and on first use fetching it) when needed.
    pub fn text_embedder(&self) -> Result<Arc<strata_embed::TextEmbedder>, ApiError> {
        loaded(&self.embedder, || {
            strata_embed::default_text_embedder(&self.store)
        })
    }

    /// Returns the image embedder, loading it (and on first use fetching it) when needed.
    pub fn image_embedder(&self) -> Result<Arc<strata_embed::ImageEmbedder>, ApiError> {
        loaded(&self.image_embedder, || {
            strata_embed::default_image_embedder(&self.store)
        })
    }

    /// Returns the audio embedder, loading it (and on first use fetching it) when needed.
    pub fn audio_embedder(&self) -> Result<Arc<strata_embed::AudioEmbedder>, ApiError> {
        loaded(&self.audio_embedder, || {
            strata_embed::default_audio_embedder(&self.store)
        })
    }
}

/// Returns the embedder in `slot`, loading it with `load` the first time.
fn loaded<T>(
    slot: &std::sync::Mutex<Option<Arc<T>>>,
    load: impl FnOnce() -> strata_embed::Result<T>,
) -> Result<Arc<T>, ApiError> {
    let mut slot = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(embedder) = slot.as_ref() {
        return Ok(embedder.clone());
    }
    let embedder = Arc::new(load().map_err(|error| ApiError::internal("-", &error))?);
    *slot = Some(embedder.clone());
    Ok(embedder)
}

/// Shared application state.
pub type AppState = State<Arc<App>>;

/// The id of one request, sent back as `x-request-id` and written in every log line about it.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

impl RequestId {
    fn new() -> RequestId {
        RequestId(format!("req-{:016x}", rand::random::<u64>()))
    }
}

/// A JSON body parsed into `T`; a body that does not parse is a 400 naming the field.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<App>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<App>) -> Result<Self, ApiError> {
        let value = read_json(request, state).await?;
        Ok(JsonBody(from_value(&value)?))
    }
}

/// A JSON body holding a route's own fields `T` and the generation settings beside them.
#[derive(Debug)]
pub struct GenerationBody<T>(pub T, pub GenerationFields);

impl<T: DeserializeOwned> FromRequest<Arc<App>> for GenerationBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<App>) -> Result<Self, ApiError> {
        let value = read_json(request, state).await?;
        Ok(GenerationBody(from_value(&value)?, from_value(&value)?))
    }
}

/// Reads the body as a JSON value; too large is a 413, not JSON is a 400.
async fn read_json<S: Send + Sync>(
    request: Request,
    state: &S,
) -> Result<serde_json::Value, ApiError> {
    let bytes = Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "the request body is larger than the server's limit".to_owned()
            } else {
                format!("cannot read the request body: {}", rejection.body_text())
            };
            ApiError::with_status(status, message)
        })?;
    serde_json::from_slice(&bytes).map_err(|error| {
        ApiError::bad_request(format!("the request body is not valid JSON: {error}"))
    })
}

/// Deserializes `T` from a body, naming the field at fault.
fn from_value<T: DeserializeOwned>(value: &serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let inner = error.inner().to_string();
        let mut path = error.path().to_string();
        // A missing field is reported at its parent; name the field itself.
        if let Some(field) = inner
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            path = if path == "." {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
        }
        let message = format!("invalid request body at `{path}`: {inner}");
        ApiError::invalid(&path, message)
    })
}

fn too_large_message(limit: usize) -> String {
    format!("the request body is larger than the server's limit of {limit} bytes (--max-body)")
}

/// Rejects a request whose declared `Content-Length` is over the limit before reading its
/// body, so a client cannot hold a connection open by announcing a huge body.
pub async fn reject_oversized(
    State(app): AppState,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > app.max_body_bytes as u64) {
        return Err(ApiError::with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            too_large_message(app.max_body_bytes),
        ));
    }
    Ok(next.run(request).await)
}

/// Rewrites error responses made by the router itself (an empty 405, a plain-text rejection of
/// a path) into the OpenAI error format every route uses.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }

    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message = if status == StatusCode::METHOD_NOT_ALLOWED {
        format!("{method} is not allowed on `{path}`; docs/api.md lists each route's methods")
    } else if text.is_empty() {
        format!(
            "{} on `{path}`",
            status.canonical_reason().unwrap_or("error")
        )
    } else {
        text
    };
    let mut rewritten = ApiError::with_status(status, message).into_response();
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        rewritten.headers_mut().insert(header::ALLOW, allow.clone());
    }
    rewritten
}

/// Gives each request an id, and logs its route, status and time.
pub async fn log_requests(mut request: Request, next: Next) -> Response {
    let id = RequestId::new();
    request.extensions_mut().insert(id.clone());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();

    let mut response = next.run(request).await;

    if let Ok(value) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert("x-request-id", value);
    }
    tracing::info!(
        request = %id.0,
        %method,
        path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

/// Rejects requests without the configured API key as a bearer token.
pub async fn require_api_key(
    State(app): AppState,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(key) = &app.api_key else {
        return Ok(next.run(request).await);
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(token.trim())
        });
    match presented {
        Some(presented) if same_secret(presented.as_bytes(), key.as_bytes()) => {
            Ok(next.run(request).await)
        }
        Some(_) => Err(ApiError::with_status(
            StatusCode::UNAUTHORIZED,
            "the API key is not valid",
        )),
        None => Err(ApiError::with_status(
            StatusCode::UNAUTHORIZED,
            "this server needs an API key: send `Authorization: Bearer KEY`",
        )),
    }
}

/// Compares two secrets in time that depends only on their lengths.
fn same_secret(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

/// Runs blocking work (loading, tokenizing, store reads) on tokio's blocking pool.
pub async fn blocking<T, F>(request_id: &str, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) => Err(ApiError::internal(request_id, &error)),
    }
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_compare_by_content_and_length() {
        assert!(same_secret(b"key-1", b"key-1"));
        assert!(!same_secret(b"key-1", b"key-2"));
        assert!(!same_secret(b"key", b"key-1"));
    }
}
