//! strata's own endpoints under `/api`: live sessions, snapshots and forks, learning jobs, and
//! model versions, and embedding collections. `docs/api.md` documents each.

pub mod collections;
pub mod learning;
pub mod media;
pub mod sessions;
pub mod snapshots;
pub mod versions;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub use learning::Jobs;
pub use sessions::Sessions;

use crate::http::App;

/// The `/api` routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/sessions", post(sessions::create).get(sessions::list))
        .route(
            "/api/sessions/{id}",
            get(sessions::show).delete(sessions::remove),
        )
        .route("/api/sessions/{id}/messages", post(sessions::send))
        .route("/api/sessions/{id}/save", post(sessions::save))
        .route("/api/snapshots", get(snapshots::list))
        .route(
            "/api/snapshots/{name}",
            get(snapshots::show).delete(snapshots::remove),
        )
        .route("/api/snapshots/{name}/fork", post(snapshots::fork))
        .route("/api/models", get(versions::list))
        .route("/api/models/{name}/log", get(versions::log))
        .route("/api/models/{name}/tag", post(versions::tag))
        .route("/api/models/{name}/rollback", post(versions::rollback))
        .route("/api/models/{name}/learn", post(learning::learn))
        .route("/api/jobs/{id}", get(learning::job))
        .route(
            "/api/collections",
            get(collections::list).post(collections::create),
        )
        .route(
            "/api/collections/{name}",
            get(collections::show).delete(collections::remove),
        )
        .route("/api/collections/{name}/points", post(collections::upsert))
        .route(
            "/api/collections/{name}/points/delete",
            post(collections::delete_points),
        )
        .route("/api/collections/{name}/search", post(collections::search))
}
