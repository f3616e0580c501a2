//! Secret-key API for the merchant's figures — the same functions the console shows.
//! Periods are `since`/`until` (RFC 3339 / ISO 8601 dates or unix ms; until excluded),
//! by default the last 30 days (cohorts: the last 12 months).

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ApiResult;
use super::keys::SecretShop;
use super::recommendations::time;
use super::state::AppState;
use crate::analytics::Period;
use crate::analytics::cohorts::Cohorts;
use crate::analytics::definitions::{Bucket, DAY_MS, DEFINITIONS, Definition, month_index, month_start_ms};
use crate::analytics::loyalty::LoyaltyFigures;
use crate::analytics::overview::Overview;
use crate::analytics::rfm::{CellPage, RfmGrid, SCORES};
use crate::store::customers::InvalidInput;
use crate::store::now_ms;

const DEFAULT_DAYS: i64 = 30;
const DEFAULT_COHORT_MONTHS: i64 = 12;
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/analytics/definitions", get(definitions))
        .route("/v1/analytics/overview", get(overview))
        .route("/v1/analytics/cohorts", get(cohorts))
        .route("/v1/analytics/rfm", get(rfm))
        .route("/v1/analytics/rfm/cells/{r}/{f}/customers", get(rfm_cell))
        .route("/v1/analytics/loyalty", get(loyalty))
}

#[derive(Deserialize)]
struct PeriodQuery {
    since: Option<String>,
    until: Option<String>,
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

#[derive(Serialize)]
struct DefinitionList {
    definitions: &'static [Definition],
}

async fn definitions(SecretShop(_): SecretShop) -> Json<DefinitionList> {
    Json(DefinitionList { definitions: DEFINITIONS })
}

async fn overview(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Query(query): Query<PeriodQuery>,
) -> ApiResult<Json<Overview>> {
    let period = query.period(|until| until - DEFAULT_DAYS * DAY_MS)?;
    Ok(Json(state.db.analytics_overview(shop.id, &shop.currency, period).await?))
}

async fn cohorts(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Query(query): Query<PeriodQuery>,
) -> ApiResult<Json<Cohorts>> {
    let period = query.period(|until| month_start_ms(month_index(until - 1) - (DEFAULT_COHORT_MONTHS - 1)))?;
    Ok(Json(state.db.analytics_cohorts(shop.id, period).await?))
}

async fn rfm(State(state): State<AppState>, SecretShop(shop): SecretShop) -> ApiResult<Json<RfmGrid>> {
    Ok(Json(state.db.analytics_rfm(shop.id).await?))
}

#[derive(Deserialize)]
struct PageQuery {
    after: Option<String>,
    limit: Option<String>,
}

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

async fn loyalty(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Query(query): Query<PeriodQuery>,
) -> ApiResult<Json<LoyaltyFigures>> {
    let period = query.period(|until| until - DEFAULT_DAYS * DAY_MS)?;
    Ok(Json(state.db.analytics_loyalty(shop.id, period).await?))
}
