//! Secret-key `GET /v1/journeys/report?days=&window_days=`: per journey and step, sent
//! and suppressed messages (by reason), clicks, conversions (orders within the window
//! after a message) and their revenue per currency, and uplift against the holdout.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
use super::keys::SecretShop;
use super::state::AppState;
use crate::delivery::report::{self, StepReport};
use crate::store::customers::InvalidInput;
use crate::store::now_ms;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/journeys/report", get(show))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// Messages queued in the last this many days (default 90).
    days: Option<i64>,
    /// An order counts as a conversion this many days after a message (default 7).
    window_days: Option<i64>,
}

#[derive(Debug, Serialize)]
struct Report {
    days: i64,
    window_days: i64,
    steps: Vec<StepReport>,
}

async fn show(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> ApiResult<Json<Report>> {
    let Query(q) = query.map_err(|e| ApiError::from(InvalidInput::new("query", e.body_text())))?;
    let days = q.days.unwrap_or(90);
    let window_days = q.window_days.unwrap_or(7);
    if !(1..=3650).contains(&days) {
        return Err(InvalidInput::new("days", "must be 1 to 3650").into());
    }
    if !(1..=90).contains(&window_days) {
        return Err(InvalidInput::new("window_days", "must be 1 to 90").into());
    }
    let (since, window) = (now_ms() - days * DAY_MS, window_days * DAY_MS);
    let messages = state.db.journey_messages(shop.id, since, window).await?;
    let revenue = state.db.journey_revenue(shop.id, since, window).await?;
    Ok(Json(Report { days, window_days, steps: report::build(&messages, &revenue) }))
}
