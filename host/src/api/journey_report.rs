//! Secret-key `GET /v1/journeys/report?days=&window_days=`: per journey and step, sent
//! and suppressed messages (by reason), clicks, conversions (orders within the window
//! after a message) and their revenue per currency, and uplift against the holdout.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult};
use super::keys::SecretShop;
use super::state::AppState;
use crate::delivery::report::{self, JourneyReport};
use crate::store::customers::InvalidInput;
use crate::store::now_ms;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// Messages queued in the last this many days (default 90).
    #[param(minimum = 1, maximum = 3650)]
    days: Option<i64>,
    /// An order counts as a conversion this many days after a message (default 7).
    #[param(minimum = 1, maximum = 90)]
    window_days: Option<i64>,
}

/// Per journey and step: messages sent and suppressed (by reason), clicks, conversions
/// and their revenue per currency, and uplift against the holdout.
#[utoipa::path(
    get,
    operation_id = "journey_report",
    path = "/v1/journeys/report",
    tag = "messages",
    params(ReportQuery),
    responses((status = 200, description = "The report", body = JourneyReport)),
    security(("secret_key" = [])),
)]
async fn show(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> ApiResult<Json<JourneyReport>> {
    let Query(q) = query.map_err(|e| ApiError::from(InvalidInput::new("query", e.body_text())))?;
    let days = q.days.unwrap_or(90);
    let window_days = q.window_days.unwrap_or(report::DEFAULT_WINDOW_DAYS);
    for (name, value, range) in [("days", days, report::DAYS), ("window_days", window_days, report::WINDOW_DAYS)] {
        if !range.contains(&value) {
            return Err(InvalidInput::new(name, format!("must be {} to {}", range.start(), range.end())).into());
        }
    }
    Ok(Json(report::for_shop(&state.db, shop.id, days, window_days, now_ms()).await?))
}
