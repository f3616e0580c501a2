//! Secret-key API for the merchant's figures — the same functions the console shows.
//! Periods are `since`/`until` (RFC 3339 / ISO 8601 dates or unix ms; until excluded),
//! by default the last 30 days (cohorts: the last 12 months).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiResult;
use super::extract::{Path, Query};
use super::keys::SecretShop;
use super::recommendations::time;
use super::state::AppState;
use crate::analytics::Period;
use crate::analytics::cohorts::Cohorts;
use crate::analytics::definitions::{Bucket, DAY_MS, DEFINITIONS, Definition, month_index, month_start_ms};
use crate::analytics::loyalty::LoyaltyFigures;
use crate::analytics::overview::Overview;
use crate::analytics::rfm::{CellPage, RfmGrid, SCORES};
use crate::analytics::segments::SegmentHistory;
use crate::store::customers::InvalidInput;
use crate::store::now_ms;

const DEFAULT_DAYS: i64 = 30;
const DEFAULT_COHORT_MONTHS: i64 = 12;
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(definitions))
        .routes(routes!(overview))
        .routes(routes!(cohorts))
        .routes(routes!(rfm))
        .routes(routes!(rfm_cell))
        .routes(routes!(loyalty))
        .routes(routes!(segment_history))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PeriodQuery {
    /// From this time (RFC 3339, ISO 8601 date or unix ms).
    since: Option<String>,
    /// Until this time, excluded (default now).
    until: Option<String>,
    /// How trends are grouped: `day`, `week` or `month` (default by the period's length).
    #[param(pattern = "^(day|week|month)$")]
    bucket: Option<String>,
}

impl PeriodQuery {
    /// The period asked for; without `since`, the `default_since` before `until`.
    fn period(&self, default_since: impl FnOnce(i64) -> i64) -> Result<Period, InvalidInput> {
        let until = time("until", self.until.as_deref())?.unwrap_or_else(now_ms);
        let since = time("since", self.since.as_deref())?.unwrap_or_else(|| default_since(until));
        let bucket = self
            .bucket
            .as_deref()
            .map(|text| {
                Bucket::parse(text)
                    .ok_or_else(|| InvalidInput::new("bucket", format!("`{text}` is not day, week or month")))
            })
            .transpose()?;
        Period::new(since, until, bucket)
    }
}

#[derive(Serialize, ToSchema)]
struct DefinitionList {
    definitions: &'static [Definition],
}

/// What each figure means, as shown beside it.
#[utoipa::path(
    get,
    path = "/v1/analytics/definitions",
    tag = "analytics",
    responses((status = 200, description = "The definitions", body = DefinitionList)),
    security(("secret_key" = [])),
)]
async fn definitions(SecretShop(_): SecretShop) -> Json<DefinitionList> {
    Json(DefinitionList { definitions: DEFINITIONS })
}

/// Revenue, orders, customers, repurchase and churn, lifetime value and points liability
/// over a period (default the last 30 days) against the period before, with a trend.
#[utoipa::path(
    get,
    path = "/v1/analytics/overview",
    tag = "analytics",
    params(PeriodQuery),
    responses((status = 200, description = "The figures", body = Overview)),
    security(("secret_key" = [])),
)]
async fn overview(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Query(query): Query<PeriodQuery>,
) -> ApiResult<Json<Overview>> {
    let period = query.period(|until| until - DEFAULT_DAYS * DAY_MS)?;
    Ok(Json(state.db.analytics_overview(shop.id, &shop.currency, period).await?))
}

/// Monthly cohorts of first purchase and their retention (default the last 12 months).
#[utoipa::path(
    get,
    path = "/v1/analytics/cohorts",
    tag = "analytics",
    params(PeriodQuery),
    responses((status = 200, description = "The cohorts", body = Cohorts)),
    security(("secret_key" = [])),
)]
async fn cohorts(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Query(query): Query<PeriodQuery>,
) -> ApiResult<Json<Cohorts>> {
    let period = query.period(|until| month_start_ms(month_index(until - 1) - (DEFAULT_COHORT_MONTHS - 1)))?;
    Ok(Json(state.db.analytics_cohorts(shop.id, period).await?))
}

/// The recency × frequency grid of the shop's customers.
#[utoipa::path(
    get,
    path = "/v1/analytics/rfm",
    tag = "analytics",
    responses((status = 200, description = "The grid", body = RfmGrid)),
    security(("secret_key" = [])),
)]
async fn rfm(State(state): State<AppState>, SecretShop(shop): SecretShop) -> ApiResult<Json<RfmGrid>> {
    Ok(Json(state.db.analytics_rfm(shop.id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// The `next_after` of the previous page.
    #[param(pattern = "^-?[0-9]+$")]
    after: Option<String>,
    /// Customers per page, 1 to 500 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
}

/// The customers of one cell of the grid, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/analytics/rfm/cells/{r}/{f}/customers",
    tag = "analytics",
    params(
        ("r" = i64, Path, description = "Recency score", minimum = 1, maximum = 5),
        ("f" = i64, Path, description = "Frequency score", minimum = 1, maximum = 5),
        PageQuery,
    ),
    responses((status = 200, description = "A page of the cell's customers", body = CellPage)),
    security(("secret_key" = [])),
)]
async fn rfm_cell(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path((r, f)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<CellPage>> {
    let score = |field: &'static str, text: &str| {
        text.parse::<i64>()
            .ok()
            .filter(|s| SCORES.contains(s))
            .ok_or_else(|| InvalidInput::new(field, "must be a score from 1 to 5"))
    };
    let (r, f) = (score("r", &r)?, score("f", &f)?);
    let after = query
        .after
        .as_deref()
        .map(|text| text.parse::<i64>().map_err(|_| InvalidInput::new("after", "must be a customer id")))
        .transpose()?;
    let limit = query
        .limit
        .as_deref()
        .map(|text| {
            text.parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| InvalidInput::new("limit", format!("must be from 1 to {MAX_PAGE}")))
        })
        .transpose()?
        .unwrap_or(DEFAULT_PAGE);
    Ok(Json(state.db.analytics_rfm_cell(shop.id, r, f, after, limit).await?))
}

/// Members per tier, points earned, redeemed, expired and reversed, and coupons issued and
/// redeemed over a period (default the last 30 days) against the period before.
#[utoipa::path(
    get,
    path = "/v1/analytics/loyalty",
    tag = "analytics",
    params(PeriodQuery),
    responses((status = 200, description = "The figures", body = LoyaltyFigures)),
    security(("secret_key" = [])),
)]
async fn loyalty(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Query(query): Query<PeriodQuery>,
) -> ApiResult<Json<LoyaltyFigures>> {
    let period = query.period(|until| until - DEFAULT_DAYS * DAY_MS)?;
    Ok(Json(state.db.analytics_loyalty(shop.id, period).await?))
}

/// A segment's size over a period (default the last 30 days), per bucket, with the
/// stints that began and ended: what the console's segment chart draws.
#[utoipa::path(
    get,
    path = "/v1/analytics/segments/{segment}",
    tag = "analytics",
    params(("segment" = String, Path, description = "The segment's name"), PeriodQuery),
    responses((status = 200, description = "The segment's size over time", body = SegmentHistory)),
    security(("secret_key" = [])),
)]
async fn segment_history(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(segment): Path<String>,
    Query(query): Query<PeriodQuery>,
) -> ApiResult<Json<SegmentHistory>> {
    let period = query.period(|until| until - DEFAULT_DAYS * DAY_MS)?;
    Ok(Json(state.db.analytics_segment_history(shop.id, &segment, period).await?))
}
