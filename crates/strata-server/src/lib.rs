//! strata's HTTP server.
//!
//! This crate owns `strata serve`: the OpenAI-compatible routes (`/v1/chat/completions`,
//! `/v1/completions`, `/v1/models`), strata's own routes for sessions, snapshots, learning jobs
//! and versions (`/api/…`), and the continuous-batching scheduler that runs every active
//! request of a model in one decode step. Requests are checked before they reach the store or
//! the model, errors use OpenAI's format, and shutdown lets in-flight requests finish.

pub mod error;
pub mod generation;
pub mod http;
pub mod models;
pub mod native;
pub mod openai;
pub mod scheduler;
pub mod snapshots;
mod stop;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use strata_store::Store;
use tokio::net::TcpListener;

use crate::http::App;
use crate::models::Models;
use crate::openai::request::RequestLimits;
use crate::scheduler::SchedulerLimits;

/// The server's address, key and limits.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to bind; loopback unless an API key is set.
    pub address: SocketAddr,
    /// Bearer token every request must present.
    pub api_key: Option<String>,
    /// Batching and queue limits of each model's worker.
    pub scheduler: SchedulerLimits,
    /// Limits on request contents.
    pub requests: RequestLimits,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// How long requests in flight may run after a shutdown signal before they are cancelled.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    /// 127.0.0.1:11435, no key, default limits, 4 MiB bodies, 10 s grace.
    fn default() -> Self {
        ServerConfig {
            address: SocketAddr::from(([127, 0, 0, 1], 11435)),
            api_key: None,
            scheduler: SchedulerLimits::default(),
            requests: RequestLimits::default(),
            max_body_bytes: 4 << 20,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The reason the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A non-loopback address without an API key.
    #[error(
        "refusing to listen on {address} without an API key: anyone who can reach it could use \
         and change your models; pass --api-key KEY (or set STRATA_API_KEY), or bind 127.0.0.1"
    )]
    KeyRequired {
        /// The address asked for.
        address: SocketAddr,
    },
    /// The address could not be bound, or serving failed.
    #[error("cannot serve on {address}: {source}")]
    Io {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Builds the router over `app`.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .merge(openai::routes())
        .merge(native::routes())
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(app.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            http::reject_oversized,
        ))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            http::require_api_key,
        ))
        .layer(middleware::from_fn(http::json_errors))
        .layer(middleware::from_fn(http::log_requests))
        .with_state(app)
}

/// Responds to routes that do not exist in the same error format as the others.
async fn unknown_route(uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::not_found(format!(
        "no route `{}`; see docs/api.md for the routes strata serves",
        uri.path()
    ))
}

/// Serves `store` until Ctrl-C or SIGTERM; `on_ready` receives the bound address.
pub async fn serve(
    store: Store,
    config: ServerConfig,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    let address = config.address;
    if !address.ip().is_loopback() && config.api_key.is_none() {
        return Err(ServerError::KeyRequired { address });
    }
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| ServerError::Io { address, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServerError::Io { address, source })?;

    let app = Arc::new(App {
        models: Models::new(store.clone(), config.scheduler),
        jobs: native::Jobs::start(store.clone()),
        sessions: native::Sessions::default(),
        store,
        limits: config.requests,
        api_key: config.api_key.clone(),
        max_body_bytes: config.max_body_bytes,
        embedder: std::sync::Mutex::new(None),
        image_embedder: std::sync::Mutex::new(None),
        audio_embedder: std::sync::Mutex::new(None),
    });
    let router = router(app.clone());
    tracing::info!(address = %bound, "strata server listening");
    on_ready(bound);

    let grace = config.shutdown_grace;
    let shutdown = async move {
        shutdown_signal().await;
        tracing::info!(
            grace_s = grace.as_secs_f64(),
            "shutting down: finishing requests in flight"
        );
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            tracing::info!("grace period over: cancelling requests in flight");
            app.models.cancel_all();
        });
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| ServerError::Io { address, source })?;
    tracing::info!("strata server stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
