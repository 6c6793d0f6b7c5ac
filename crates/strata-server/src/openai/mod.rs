//! The OpenAI-compatible routes under `/v1`.

pub mod chat;
pub mod completions;
pub mod embeddings;
pub mod request;

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use crate::error::ApiResult;
use crate::http::{App, AppState, RequestId, blocking};

/// The `/v1` routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/chat/completions", post(chat::completions))
        .route("/v1/completions", post(completions::completions))
        .route("/v1/models", get(models))
        .route("/v1/embeddings", post(embeddings::embeddings))
}

/// `GET /v1/models`: the model tags in the store.
async fn models(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
) -> ApiResult<Json<Value>> {
    let store = app.store.clone();
    let tags = blocking(&id.0, move || crate::native::versions::model_tags(&store)).await?;
    let data: Vec<Value> = tags
        .iter()
        .map(|tag| {
            json!({
                "id": tag["name"],
                "object": "model",
                "created": 0,
                "owned_by": "strata",
            })
        })
        .collect();
    Ok(Json(json!({ "object": "list", "data": data })))
}
