//! Secret-key API for the shop's jobs, newest first: queued, running (a retry waiting
//! included), done, or failed for good with its last error — where an order whose
//! loyalty plugins never heard of it shows.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::error::ApiResult;
use super::keys::SecretShop;
use super::state::AppState;
use crate::store::jobs::JobStatus;

/// How many of the newest jobs are listed.
const LISTED: i64 = 500;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/jobs", get(list))
}

async fn list(State(state): State<AppState>, SecretShop(shop): SecretShop) -> ApiResult<Json<Vec<JobStatus>>> {
    Ok(Json(state.db.jobs(shop.id, LISTED).await?))
}
