//! A bound on every request: one that takes longer is answered `503` with
//! `{"error":{"code":"timeout",...}}` and dropped (a plugin call it started ends at
//! its own limit on its blocking thread).

use std::time::Duration;

use axum::Json;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// How long a request may take unless configured otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Middleware: run the request under `limit`.
pub async fn bounded(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => timed_out(limit),
    }
}

fn timed_out(limit: Duration) -> Response {
    let message = format!("the request did not finish within {} ms; try again later", limit.as_millis());
    let body = super::error::ErrorBody::new("timeout", message);
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}
