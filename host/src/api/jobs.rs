//! Secret-key API for the shop's jobs, newest first: queued, running (a retry waiting
//! included), done, or failed for good with its last error — where an order whose
//! loyalty plugins never heard of it shows. A failed job can be run again once what made
//! it fail is fixed.

use axum::extract::State;

use super::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::error::{ApiError, ApiResult};
use super::keys::SecretShop;
use super::state::AppState;
use crate::store::jobs::JobStatus;

/// How many of the newest jobs are listed.
const LISTED: i64 = 500;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/jobs", get(list)).route("/v1/jobs/{id}/retry", post(retry))
}

async fn list(State(state): State<AppState>, SecretShop(shop): SecretShop) -> ApiResult<Json<Vec<JobStatus>>> {
    Ok(Json(state.db.jobs(shop.id, LISTED).await?))
}

/// 202: the job is due again with all its attempts; the scheduler runs it. 404 for no
/// such job of this shop, 409 for one that has not failed for good.
async fn retry(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("job"))?;
    state.db.retry_failed_job(shop.id, id).await?;
    Ok(StatusCode::ACCEPTED)
}
