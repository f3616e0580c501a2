//! The RFM grid as a heat map (a cell opens its customers, from
//! [`crate::analytics::rfm`]) and cohort retention as a heat map with its average curve
//! (from [`crate::analytics::cohorts`]).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::Signed;
use super::views::{ConsoleError, ConsoleResult, money, page, shown_email};
use super::wants_fragment;
use crate::analytics::Period;
use crate::analytics::definitions::{month_index, month_start_ms};
use crate::analytics::rfm::{RfmGrid, SCORES};
use crate::api::state::AppState;
use crate::store::now_ms;
use crate::timestamp::Timestamp;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/rfm", get(rfm))
        .route("/admin/rfm/{r}/{f}", get(rfm_cell))
        .route("/admin/cohorts", get(cohorts))
}

const CELL_PAGE: i64 = 50;

/// A heat-map cell's shade, 0 (empty) to 5 (the fullest of the grid).
fn level(value: i64, max: i64) -> i64 {
    if value <= 0 || max <= 0 { 0 } else { 1 + (4 * value) / max }
}

#[derive(Serialize)]
struct GridCell {
    r: i64,
    f: i64,
    customers: i64,
    spent: String,
    level: i64,
    selected: bool,
}

#[derive(Serialize)]
struct CellCustomerRow {
    id: String,
    name: Option<String>,
    email: Option<String>,
    orders: i64,
    spent: String,
    last_order_at: Option<String>,
}

#[derive(Serialize)]
struct CellView {
    r: i64,
    f: i64,
    customers: Vec<CellCustomerRow>,
    next: Option<String>,
}

#[derive(Serialize)]
struct RfmPage {
    customers: i64,
    /// Rows R 5 → 1, each with cells F 1 → 5.
    rows: Vec<Vec<GridCell>>,
    frequencies: Vec<i64>,
    cell: Option<CellView>,
}

fn grid_rows(grid: &RfmGrid, currency: &str, selected: Option<(i64, i64)>) -> Vec<Vec<GridCell>> {
    let max = grid.cells.iter().map(|c| c.customers).max().unwrap_or(0);
    SCORES
        .rev()
        .map(|r| {
            SCORES
                .map(|f| {
                    let cell = grid.cells.iter().find(|c| c.r == r && c.f == f);
                    let (customers, spent) = cell.map_or((0, 0), |c| (c.customers, c.spent));
                    GridCell {
                        r,
                        f,
                        customers,
                        spent: money(Some(spent), currency),
                        level: level(customers, max),
                        selected: selected == Some((r, f)),
                    }
                })
                .collect()
        })
        .collect()
}

async fn rfm(State(state): State<AppState>, signed: Signed) -> ConsoleResult<Response> {
    let grid = state.db.analytics_rfm(signed.shop.id).await?;
    let view = RfmPage {
        customers: grid.customers,
        rows: grid_rows(&grid, &signed.shop.currency, None),
        frequencies: SCORES.collect(),
        cell: None,
    };
    Ok(page(&signed, "rfm.html", "rfm", "/admin/rfm", view))
}

#[derive(Deserialize)]
struct AfterQuery {
    after: Option<String>,
}

async fn rfm_cell(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Path((r, f)): Path<(String, String)>,
    Query(query): Query<AfterQuery>,
) -> ConsoleResult<Response> {
    let score = |text: &str| text.parse::<i64>().ok().filter(|s| SCORES.contains(s)).ok_or(ConsoleError::NotFound);
    let (r, f) = (score(&r)?, score(&f)?);
    let after = query.after.as_deref().and_then(|a| a.parse::<i64>().ok());
    let cell_page = state.db.analytics_rfm_cell(signed.shop.id, r, f, after, CELL_PAGE).await?;
    let role = signed.user.role;
    let currency = signed.shop.currency.as_str();
    let cell = CellView {
        r,
        f,
        customers: cell_page
            .customers
            .into_iter()
            .map(|c| CellCustomerRow {
                email: shown_email(role, c.email.as_deref()),
                id: c.id,
                name: c.name,
                orders: c.order_count,
                spent: money(Some(c.total_spent), currency),
                last_order_at: c.last_order_at.map(|at| at.get(..10).unwrap_or(&at).to_owned()),
            })
            .collect(),
        next: cell_page.next_after.map(|after| format!("/admin/rfm/{r}/{f}?after={after}")),
    };
    if wants_fragment(&headers, "cell") {
        return Ok(page(&signed, "rfm_cell.html", "rfm", "/admin/rfm", json!({ "cell": cell })));
    }
    let grid = state.db.analytics_rfm(signed.shop.id).await?;
    let view = RfmPage {
        customers: grid.customers,
        rows: grid_rows(&grid, currency, Some((r, f))),
        frequencies: SCORES.collect(),
        cell: Some(cell),
    };
    Ok(page(&signed, "rfm.html", "rfm", "/admin/rfm", view))
}

#[derive(Serialize)]
struct CohortCell {
    share: String,
    level: i64,
    customers: i64,
}

#[derive(Serialize)]
struct CohortRow {
    month: String,
    customers: i64,
    cells: Vec<CohortCell>,
}

#[derive(Serialize)]
struct CohortsPage {
    months: Vec<i64>,
    rows: Vec<CohortRow>,
    curve: String,
}

const COHORT_MONTHS: i64 = 12;

#[derive(Deserialize)]
struct CohortQuery {
    since: Option<String>,
    until: Option<String>,
}

/// The cohorts of the months from `since` to `until` (dates), by default the last 12
/// months; a period that is not valid falls back to the default.
async fn cohorts(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<CohortQuery>,
) -> ConsoleResult<Response> {
    let asked = query
        .since
        .as_deref()
        .and_then(Timestamp::parse)
        .zip(query.until.as_deref().and_then(Timestamp::parse))
        .and_then(|(since, until)| Period::new(since.0, until.0, None).ok());
    let until = now_ms();
    let default_since = month_start_ms(month_index(until - 1) - (COHORT_MONTHS - 1));
    let period = match asked {
        Some(period) => period,
        None => Period::new(default_since, until, None).map_err(|_| ConsoleError::NotFound)?,
    };
    let cohorts = state.db.analytics_cohorts(signed.shop.id, period).await?;
    let width = cohorts.cohorts.iter().map(|c| c.retention.len()).max().unwrap_or(0);
    let rows = cohorts
        .cohorts
        .iter()
        .map(|cohort| CohortRow {
            month: cohort.month.clone(),
            customers: cohort.customers,
            cells: cohort
                .retention
                .iter()
                .map(|rate| CohortCell {
                    share: super::views::pct(rate.rate),
                    // Month 0 is always 100%; shade the rest against 50% as full.
                    level: rate.rate.map_or(0, |r| if r <= 0.0 { 0 } else { 1 + ((r * 8.0).min(4.0)) as i64 }),
                    customers: rate.numerator,
                })
                .collect(),
        })
        .collect();
    // The customer-weighted retention k months after the first purchase, over the
    // cohorts old enough to have a month k.
    let curve: Vec<serde_json::Value> = (0..width)
        .map(|k| {
            let (bought, size) = cohorts
                .cohorts
                .iter()
                .filter_map(|c| c.retention.get(k))
                .fold((0_i64, 0_i64), |(n, d), rate| (n + rate.numerator, d + rate.denominator));
            #[allow(clippy::cast_precision_loss)] // display only
            let share = (size > 0).then(|| ((bought as f64 / size as f64) * 1000.0).round() / 10.0);
            json!(share)
        })
        .collect();
    let months: Vec<i64> = (0..i64::try_from(width).unwrap_or(0)).collect();
    let curve = json!({
        "animation": false,
        "color": ["#4f46e5"],
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 48, "right": 16, "top": 16, "bottom": 28},
        "xAxis": {"type": "category", "data": months.iter().map(|m| format!("M{m}")).collect::<Vec<_>>()},
        "yAxis": {"type": "value", "max": 100, "axisLabel": {"formatter": "{value}%"}, "splitLine": {"lineStyle": {"color": "#eef0f4"}}},
        "series": [{"type": "line", "data": curve, "smooth": true, "areaStyle": {"opacity": 0.12}}],
    });
    let view = CohortsPage { months, rows, curve: curve.to_string() };
    Ok(page(&signed, "cohorts.html", "cohorts", "/admin/cohorts", view))
}
