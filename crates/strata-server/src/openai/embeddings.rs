//! `POST /v1/embeddings`: texts turned into vectors by the text embedder, all-MiniLM-L6-v2.

use axum::extract::State;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::http::{AppState, JsonBody, RequestId, blocking};

/// Names the `model` field may take for the text embedder.
const MODEL_NAMES: [&str; 4] = [
    "all-minilm-l6-v2",
    "all-MiniLM-L6-v2",
    "embedder/minilm",
    "minilm",
];

/// Maximum number of texts in one request.
const MAX_INPUTS: usize = 2048;

/// One text or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// A single text.
    One(String),
    /// Several texts, embedded in order.
    Many(Vec<String>),
}

/// Body of `POST /v1/embeddings`.
#[derive(Debug, Deserialize)]
pub struct EmbeddingsRequest {
    /// The embedder; see [`MODEL_NAMES`].
    pub model: String,
    /// The text or texts.
    pub input: EmbeddingInput,
    /// Only `float` is supported.
    #[serde(default)]
    pub encoding_format: Option<String>,
}

/// `POST /v1/embeddings`.
pub async fn embeddings(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
    JsonBody(body): JsonBody<EmbeddingsRequest>,
) -> ApiResult<Json<Value>> {
    if !MODEL_NAMES.contains(&body.model.as_str()) {
        return Err(ApiError::invalid(
            "model",
            format!(
                "`{}` is not an embedding model; use `all-minilm-l6-v2`",
                body.model
            ),
        )
        .code("model_not_found"));
    }
    if body
        .encoding_format
        .as_deref()
        .is_some_and(|f| f != "float")
    {
        return Err(ApiError::invalid(
            "encoding_format",
            "only `float` is supported",
        ));
    }
    let texts = match body.input {
        EmbeddingInput::One(text) => vec![text],
        EmbeddingInput::Many(texts) => texts,
    };
    if texts.is_empty() || texts.len() > MAX_INPUTS {
        return Err(ApiError::invalid(
            "input",
            format!("give 1 to {MAX_INPUTS} texts, not {}", texts.len()),
        ));
    }
    let model = body.model.clone();
    let (vectors, tokens) = blocking(&id.0, move || {
        let embedder = app.text_embedder()?;
        let mut tokens = 0;
        for text in &texts {
            tokens += embedder.token_ids(text).map_or(0, |ids| ids.len());
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = embedder
            .embed_batch(&refs)
            .map_err(|error| ApiError::invalid("input", error.to_string()))?;
        Ok((vectors, tokens))
    })
    .await?;
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| json!({"object": "embedding", "index": index, "embedding": vector}))
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })))
}
