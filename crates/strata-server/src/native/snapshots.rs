//! Saved sessions through the API: list, show, delete, and fork into a live session.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use strata_sessions::{SessionError, SessionName, Snapshot};

use super::sessions::{self, CreateSession};
use crate::error::{ApiError, ApiResult};
use crate::http::{AppState, JsonBody, RequestId, blocking};

/// `GET /api/snapshots`.
pub async fn list(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
) -> ApiResult<Json<Value>> {
    let store = app.store.clone();
    let rows = blocking(&id.0, move || {
        let listed =
            strata_sessions::list(&store).map_err(|error| ApiError::internal("-", &error))?;
        Ok(listed
            .into_iter()
            .map(|(name, snapshot)| match snapshot {
                Ok(snapshot) => summary(name.as_str(), &snapshot),
                Err(error) => json!({"name": name.as_str(), "error": error.to_string()}),
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(json!({ "snapshots": rows })))
}

/// `GET /api/snapshots/{name}`: the snapshot with its messages.
pub async fn show(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let (store, shown) = (app.store.clone(), name.clone());
    let snapshot = blocking(&id.0, move || {
        crate::snapshots::open(&store, &shown, "name")
    })
    .await?;
    let mut body = summary(&name, &snapshot);
    body["system"] = json!(snapshot.config.system);
    body["messages"] = json!(snapshot.config.messages);
    body["blocks"] = json!(snapshot.blocks.len());
    Ok(Json(body))
}

/// `DELETE /api/snapshots/{name}`: removes the name; blocks go at the next `strata gc`.
pub async fn remove(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let parsed =
        SessionName::parse(&name).map_err(|error| ApiError::invalid("name", error.to_string()))?;
    let store = app.store.clone();
    blocking(&id.0, move || {
        strata_sessions::remove(&store, &parsed).map_err(|error| match error {
            SessionError::NotFound { .. } => {
                ApiError::not_found(error.to_string()).code("snapshot_not_found")
            }
            error => ApiError::internal("-", &error),
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/snapshots/{name}/fork`.
#[derive(Debug, Default, Deserialize)]
pub struct Fork {
    /// Model to run the fork on; the snapshot's own model by default.
    pub model: Option<String>,
}

/// `POST /api/snapshots/{name}/fork`: a new live session that continues the snapshot, with
/// its cache restored rather than recomputed.
pub async fn fork(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Fork>,
) -> ApiResult<impl IntoResponse> {
    let worker_app = app.clone();
    let created = blocking(&id.0, move || {
        let snapshot = crate::snapshots::open(&worker_app.store, &name, "name")?;
        let model = body
            .model
            .unwrap_or_else(|| snapshot.model_reference().to_string());
        let request = CreateSession {
            model,
            system: None,
            snapshot: Some(snapshot.descriptor.digest.as_str().to_owned()),
        };
        let session = sessions::start_session(&worker_app, request)?;
        sessions::insert(&worker_app, session)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

fn summary(name: &str, snapshot: &Snapshot) -> Value {
    let config = &snapshot.config;
    json!({
        "name": name,
        "digest": snapshot.descriptor.digest.as_str(),
        "created": config.created,
        "model": config.model.reference,
        "model_digest": config.model.manifest.as_str(),
        "parent": config.parent.as_ref().map(|digest| digest.as_str()),
        "messages": config.messages.len(),
        "cached_tokens": config.cached_tokens,
        "cache_bytes": snapshot.cache_bytes(),
    })
}
