//! Model versions through the API: list the tags, show a lineage, point a tag, roll back.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use strata_learning::lineage;
use strata_store::{Reference, Store};

use crate::error::{ApiError, ApiResult};
use crate::http::{AppState, JsonBody, RequestId, blocking};
use crate::models::parse_model;

/// `GET /api/models`: every model tag with its version.
pub async fn list(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
) -> ApiResult<Json<Value>> {
    let store = app.store.clone();
    let models = blocking(&id.0, move || model_tags(&store)).await?;
    Ok(Json(json!({ "models": models })))
}

/// Model tags (not session tags) with their manifest digest and size.
pub fn model_tags(store: &Store) -> Result<Vec<Value>, ApiError> {
    let tags = store
        .list_tags()
        .map_err(|error| ApiError::internal("-", &error))?;
    Ok(tags
        .into_iter()
        .filter(|entry| {
            !entry
                .reference
                .name
                .starts_with(strata_sessions::TAG_PREFIX)
        })
        .map(|entry| {
            let size: u64 = store
                .read_manifest(&entry.descriptor.digest)
                .map_or(0, |manifest| {
                    manifest.layers.iter().map(|layer| layer.size).sum()
                });
            json!({
                "name": entry.reference.to_string(),
                "digest": entry.descriptor.digest.as_str(),
                "size": size,
            })
        })
        .collect())
}

/// `GET /api/models/{name}/log`: the lineage, newest first, with each lesson and gate.
pub async fn log(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let reference = parse_model(&name)?;
    let store = app.store.clone();
    let versions = blocking(&id.0, move || {
        let head = resolve(&store, &reference)?;
        let versions =
            lineage::lineage(&store, &head).map_err(|error| ApiError::internal("-", &error))?;
        Ok(versions
            .iter()
            .map(|version| {
                json!({
                    "digest": version.digest.as_str(),
                    "parent": version.config.strata.parent.as_ref().map(|digest| digest.as_str()),
                    "learning": version.record,
                })
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(json!({ "model": name, "versions": versions })))
}

/// Body of `POST /api/models/{name}/tag`.
#[derive(Debug, Deserialize)]
pub struct TagRequest {
    /// The tag to point at this model's version, `NAME:TAG`.
    pub tag: String,
}

/// `POST /api/models/{name}/tag`: points another tag at the version `name` resolves to.
pub async fn tag(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<TagRequest>,
) -> ApiResult<Json<Value>> {
    let source = parse_model(&name)?;
    let target = parse_model(&body.tag)?;
    if target.tag().is_none() {
        return Err(ApiError::invalid(
            "tag",
            "give the new tag as NAME or NAME:TAG, not a digest",
        ));
    }
    let store = app.store.clone();
    let digest = blocking(&id.0, move || {
        let descriptor = store
            .resolve(&source)
            .map_err(|_| ApiError::not_found(format!("model `{source}` is not in the store")))?;
        store
            .set_tag(&target, &descriptor)
            .map_err(|error| ApiError::internal("-", &error))?;
        Ok(descriptor.digest)
    })
    .await?;
    Ok(Json(json!({ "tag": body.tag, "digest": digest.as_str() })))
}

/// Body of `POST /api/models/{name}/rollback`.
#[derive(Debug, Default, Deserialize)]
pub struct RollbackRequest {
    /// `~N` (N versions back) or a digest prefix; `~1` by default.
    pub version: Option<String>,
}

/// `POST /api/models/{name}/rollback`: moves the tag back along its lineage; deletes nothing.
pub async fn rollback(
    State(app): AppState,
    Extension(id): Extension<RequestId>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<RollbackRequest>,
) -> ApiResult<Json<Value>> {
    let reference = parse_model(&name)?;
    if reference.tag().is_none() {
        return Err(ApiError::bad_request(format!(
            "`{name}` is a digest; roll back a tag"
        )));
    }
    let version = body.version.unwrap_or_else(|| "~1".to_owned());
    let store = app.store.clone();
    let (before, after) = blocking(&id.0, move || {
        resolve(&store, &reference)?;
        lineage::rollback(&store, &reference, &version)
            .map_err(|error| ApiError::invalid("version", error.to_string()))
    })
    .await?;
    Ok(Json(
        json!({ "model": name, "from": before.as_str(), "to": after.as_str() }),
    ))
}

fn resolve(store: &Store, reference: &Reference) -> Result<strata_store::Digest, ApiError> {
    store
        .resolve(reference)
        .map(|descriptor| descriptor.digest)
        .map_err(|_| ApiError::not_found(format!("model `{reference}` is not in the store")))
}
