//! Liveness, readiness and Prometheus metrics.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use super::error::{ApiError, ApiResult};
use super::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(|| async { Json(serde_json::json!({ "status": "ok" })) }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({ "status": "ready" }))),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "status": "database unavailable" })))
        }
    }
}

/// Prometheus text, for the bearer of the configured metrics token, or without one
/// configured, for callers on this machine only.
async fn metrics(State(state): State<AppState>, request: Request) -> ApiResult<impl IntoResponse> {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>();
    let allowed = match &state.metrics_token {
        Some(token) => request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|given| same_token(given, token)),
        None => peer.is_some_and(|ConnectInfo(address)| address.ip().is_loopback()),
    };
    if !allowed {
        return Err(ApiError::unauthorized(
            "metrics_token_required",
            "metrics need the metrics token (or, without one configured, a call from this machine)",
        ));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()))
}

/// Compares digests, so how long the comparison takes says nothing about the token.
fn same_token(given: &str, token: &str) -> bool {
    use sha2::{Digest, Sha256};
    Sha256::digest(given.as_bytes()) == Sha256::digest(token.as_bytes())
}
