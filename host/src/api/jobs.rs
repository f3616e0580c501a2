//! Secret-key API for the shop's jobs, newest first: queued, running (a retry waiting
//! included), done, or failed for good with its last error — where an order whose
//! loyalty plugins never heard of it shows. A failed job can be run again once what made
//! it fail is fixed.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::Path;
use super::keys::SecretShop;
use super::state::AppState;
use crate::store::jobs::JobStatus;

/// How many of the newest jobs are listed.
const LISTED: i64 = 500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(retry))
}

/// The shop's 500 newest jobs, newest first.
#[utoipa::path(
    get,
    operation_id = "list_jobs",
    path = "/v1/jobs",
    tag = "segments",
    responses((status = 200, description = "The jobs", body = Vec<JobStatus>)),
    security(("secret_key" = [])),
)]
async fn list(State(state): State<AppState>, SecretShop(shop): SecretShop) -> ApiResult<Json<Vec<JobStatus>>> {
    Ok(Json(state.db.jobs(shop.id, LISTED).await?))
}

/// Runs a job that failed for good again: it is due at once with all its attempts.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/retry",
    tag = "segments",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 202, description = "The job is queued again; the scheduler runs it"),
        (status = 404, description = "No such job of this shop", body = ErrorBody),
        (status = 409, description = "The job has not failed for good (`conflict`)", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn retry(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("job"))?;
    state.db.retry_failed_job(shop.id, id).await?;
    Ok(StatusCode::ACCEPTED)
}
