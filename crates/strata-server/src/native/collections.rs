//! Embedding collections through the API: create, list, show, delete, upsert points (vectors,
//! or texts, images or audio clips the collection's embedder turns into vectors), delete
//! points, and search. Images and audio clips travel as the base64 of their file's bytes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use strata_collections::{
    CollectionError, CollectionInfo, CollectionSpec, Collections, Filter, Metric, Point,
    SearchOptions,
};
use strata_embed::Embedder;

use crate::error::{ApiError, ApiResult};
use crate::http::{App, AppState, JsonBody, RequestId, blocking};
use crate::native::media::{Media, embed_media};

/// The text embedder, all-MiniLM-L6-v2.
const TEXT: &str = "text";

/// The image embedder, EfficientNet-Lite0.
const IMAGE: &str = "image";

/// The audio embedder, Resemblyzer's GE2E speaker encoder.
const AUDIO: &str = "audio";

/// A video collection, filled by the CLI: its frames are image vectors.
const VIDEO: &str = "video";

/// Body of `POST /api/collections`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCollection {
    /// Collection name.
    pub name: String,
    /// `text` (the default), `image`, `audio` or `none`.
    #[serde(default)]
    pub embedder: Option<String>,
    /// Vector length; required with `none`.
    #[serde(default)]
    pub dim: Option<usize>,
    /// `cosine` (the default), `dot` or `l2`.
    #[serde(default)]
    pub metric: Option<String>,
}

/// One point of `POST /api/collections/{name}/points`: a vector, or a text, an image or an
/// audio clip to embed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPoint {
    /// The point's id.
    pub id: String,
    /// The vector, for a collection without an embedder.
    #[serde(default)]
    pub vector: Option<Vec<f32>>,
    /// Text, for a text collection.
    #[serde(default)]
    pub text: Option<String>,
    /// A PNG or JPEG file as base64, for an image collection.
    #[serde(default)]
    pub image: Option<String>,
    /// A WAV file as base64, for an audio collection; the whole clip becomes one vector.
    #[serde(default)]
    pub audio: Option<String>,
    /// The payload.
    #[serde(default)]
    pub payload: Map<String, Value>,
}

/// Body of `POST /api/collections/{name}/points`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upsert {
    /// Points to add or replace.
    pub points: Vec<NewPoint>,
}

/// Body of `POST /api/collections/{name}/points/delete`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletePoints {
    /// Ids to remove.
    pub ids: Vec<String>,
}

/// Body of `POST /api/collections/{name}/search`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    /// Text query, for a text collection.
    #[serde(default)]
    pub text: Option<String>,
    /// A PNG or JPEG file as base64, for an image or video collection.
    #[serde(default)]
    pub image: Option<String>,
    /// A WAV file as base64, for an audio collection.
    #[serde(default)]
    pub audio: Option<String>,
    /// Vector query.
    #[serde(default)]
    pub vector: Option<Vec<f32>>,
    /// Payload filter expression.
    #[serde(default)]
    pub filter: Option<String>,
    /// Number of hits; 10 by default.
    #[serde(default)]
    pub top_k: Option<usize>,
    /// Score every point instead of walking the index.
    #[serde(default)]
    pub exact: bool,
}

/// `GET /api/collections`.
pub async fn list(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
) -> ApiResult<Json<Value>> {
    let store = app.store.clone();
    let rows = blocking(&id.0, move || {
        let listed = Collections::open(&store).list().map_err(error)?;
        Ok(listed.iter().map(summary).collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(json!({ "collections": rows })))
}

/// `POST /api/collections`.
pub async fn create(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
    JsonBody(body): JsonBody<CreateCollection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let metric: Metric = body
        .metric
        .as_deref()
        .unwrap_or("cosine")
        .parse()
        .map_err(|e: CollectionError| ApiError::invalid("metric", e.to_string()))?;
    let embedder = body.embedder.clone().unwrap_or_else(|| TEXT.to_owned());
    let info = blocking(&id.0, move || {
        let dim = match (embedder.as_str(), body.dim) {
            ("none", Some(dim)) => dim,
            ("none", None) => {
                return Err(ApiError::invalid("dim", "`embedder: none` needs `dim`"));
            }
            (kind @ (TEXT | IMAGE | AUDIO), dim) => {
                let own = match kind {
                    TEXT => app.text_embedder()?.dim(),
                    IMAGE => app.image_embedder()?.dim(),
                    _ => app.audio_embedder()?.dim(),
                };
                if dim.is_some_and(|dim| dim != own) {
                    return Err(ApiError::invalid(
                        "dim",
                        format!("the {kind} embedder makes {own}-value vectors; leave `dim` out"),
                    ));
                }
                own
            }
            (other, _) => {
                return Err(ApiError::invalid(
                    "embedder",
                    format!(
                        "`{other}` is not `text`, `image`, `audio` or `none`; create video collections with `strata collection create`"
                    ),
                ));
            }
        };
        let mut spec = CollectionSpec::new(dim, metric);
        if embedder != "none" {
            spec = spec.with_embedder(embedder.as_str());
        }
        Collections::open(&app.store)
            .create(&body.name, spec)
            .map_err(error)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(summary(&info))))
}

/// `GET /api/collections/{name}`.
pub async fn show(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let info = blocking(&id.0, move || {
        Collections::open(&app.store).info(&name).map_err(error)
    })
    .await?;
    Ok(Json(summary(&info)))
}

/// `DELETE /api/collections/{name}`: removes the name; blobs go at the next `strata gc`.
pub async fn remove(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    blocking(&id.0, move || {
        Collections::open(&app.store).remove(&name).map_err(error)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/collections/{name}/points`: adds or replaces points in one new version.
pub async fn upsert(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Upsert>,
) -> ApiResult<Json<Value>> {
    let (digest, points) = blocking(&id.0, move || {
        let collections = Collections::open(&app.store);
        let info = collections.info(&name).map_err(error)?;
        let points = points_of(&app, &info, body.points)?;
        let count = points.len();
        let digest = collections.upsert(&name, points).map_err(error)?;
        Ok((digest, count))
    })
    .await?;
    Ok(Json(
        json!({ "version": digest.as_str(), "points": points }),
    ))
}

/// `POST /api/collections/{name}/points/delete`.
pub async fn delete_points(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<DeletePoints>,
) -> ApiResult<Json<Value>> {
    let digest = blocking(&id.0, move || {
        Collections::open(&app.store)
            .delete(&name, body.ids)
            .map_err(error)
    })
    .await?;
    Ok(Json(json!({ "version": digest.as_str() })))
}

/// `POST /api/collections/{name}/search`.
pub async fn search(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Search>,
) -> ApiResult<Json<Value>> {
    let filter = match &body.filter {
        Some(text) => Some(
            text.parse::<Filter>()
                .map_err(|e| ApiError::invalid("filter", e.to_string()))?,
        ),
        None => None,
    };
    let results = blocking(&id.0, move || {
        let collections = Collections::open(&app.store);
        let info = collections.info(&name).map_err(error)?;
        let source = VectorSource {
            vector: body.vector,
            text: body.text,
            image: body.image,
            audio: body.audio,
        };
        let query = vector_of(&app, &info, source, "query")?;
        let options = SearchOptions {
            top_k: body.top_k.unwrap_or(10),
            filter,
            exact: body.exact,
            ef: None,
        };
        collections.search(&name, &query, &options).map_err(error)
    })
    .await?;
    let hits: Vec<Value> = results
        .hits
        .iter()
        .map(|hit| json!({"id": hit.id, "score": hit.score, "payload": hit.payload}))
        .collect();
    Ok(Json(json!({
        "hits": hits,
        "method": format!("{:?}", results.method),
        "candidates": results.candidates,
    })))
}

/// Turns the request's points into collection points, embedding texts, images and clips.
fn points_of(app: &App, info: &CollectionInfo, points: Vec<NewPoint>) -> ApiResult<Vec<Point>> {
    let mut out = Vec::with_capacity(points.len());
    for (index, point) in points.into_iter().enumerate() {
        let field = format!("points[{index}]");
        let source = VectorSource {
            vector: point.vector,
            text: point.text,
            image: point.image,
            audio: point.audio,
        };
        let vector = vector_of(app, info, source, &field)?;
        out.push(Point::new(point.id, vector).with_payload(point.payload));
    }
    Ok(out)
}

/// The forms a point or a query may take. A request sets exactly one of them.
struct VectorSource {
    vector: Option<Vec<f32>>,
    text: Option<String>,
    image: Option<String>,
    audio: Option<String>,
}

/// Returns the vector of a point or query, embedding it with the collection's embedder.
fn vector_of(
    app: &App,
    info: &CollectionInfo,
    source: VectorSource,
    field: &str,
) -> ApiResult<Vec<f32>> {
    let embedder = info.embedder.as_deref().unwrap_or("none");
    let accepts = |kinds: &[&str]| kinds.contains(&embedder);
    match source {
        VectorSource {
            vector: Some(vector),
            text: None,
            image: None,
            audio: None,
        } => Ok(vector),
        VectorSource {
            vector: None,
            text: Some(text),
            image: None,
            audio: None,
        } if accepts(&[TEXT]) => embed(app, &text, field),
        VectorSource {
            vector: None,
            text: None,
            image: Some(image),
            audio: None,
        } if accepts(&[IMAGE, VIDEO]) => embed_media(app, Media::Image, &image, field),
        VectorSource {
            vector: None,
            text: None,
            image: None,
            audio: Some(audio),
        } if accepts(&[AUDIO]) => embed_media(app, Media::Audio, &audio, field),
        _ => Err(ApiError::invalid(
            field,
            format!(
                "collection `{}` (embedder {embedder}) takes {}",
                info.name,
                accepted_forms(embedder)
            ),
        )),
    }
}

/// Names the forms a collection embedded by `embedder` accepts.
fn accepted_forms(embedder: &str) -> &'static str {
    match embedder {
        TEXT => "one of `vector` and `text`",
        IMAGE | VIDEO => "one of `vector` and `image` (base64 of a PNG or JPEG file)",
        AUDIO => "one of `vector` and `audio` (base64 of a WAV file)",
        _ => "`vector`",
    }
}

fn embed(app: &App, text: &str, field: &str) -> ApiResult<Vec<f32>> {
    let embedder = app.text_embedder()?;
    let mut vectors = embedder
        .embed_batch(&[text])
        .map_err(|e| ApiError::invalid(field, e.to_string()))?;
    Ok(vectors.remove(0))
}

/// Maps a collection error: a missing collection or point is a 404, a name taken a 409, a
/// refused input a 400, and a failure of the store or its files a 500.
fn error(error: CollectionError) -> ApiError {
    match error {
        CollectionError::NotFound { .. } | CollectionError::PointNotFound { .. } => {
            ApiError::not_found(error.to_string()).code("collection_not_found")
        }
        CollectionError::AlreadyExists { .. } | CollectionError::Moved { .. } => {
            ApiError::with_status(StatusCode::CONFLICT, error.to_string())
        }
        CollectionError::Corrupt { .. }
        | CollectionError::InvalidVersion { .. }
        | CollectionError::Index { .. }
        | CollectionError::Database { .. }
        | CollectionError::Io { .. }
        | CollectionError::Json { .. }
        | CollectionError::Store(_) => ApiError::internal("-", &error),
        other => ApiError::bad_request(other.to_string()),
    }
}

fn summary(info: &CollectionInfo) -> Value {
    json!({
        "name": info.name,
        "version": info.digest.as_str(),
        "dim": info.dim,
        "metric": info.metric.to_string(),
        "embedder": info.embedder,
        "points": info.points,
        "segments": info.segments,
    })
}
