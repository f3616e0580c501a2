//! The recommendations page: the attribution report ([`Db::recommendation_report`], the
//! same as `GET /v1/recommendations/report`) for a chosen period — impressions, clicks,
//! click-through rate, and the orders and revenue that followed a click, by placement
//! and strategy — as figures, a chart and a table.
//!
//! [`Db::recommendation_report`]: crate::store::Db::recommendation_report

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;
use serde_json::json;

use super::auth::Signed;
use super::overview::{PeriodChoice, PeriodQuery, choose_period, major};
use super::views::{ConsoleResult, money, num, page, pct};
use crate::api::state::AppState;
use crate::store::recommendation_report::{AttributionRow, DEFAULT_WINDOW_DAYS, ReportPeriod};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/admin/recommendations", get(recommendations))
}

#[derive(Serialize)]
struct Row {
    placement: String,
    strategy: String,
    impressions: String,
    clicks: String,
    ctr: String,
    orders: String,
    revenue: String,
    item_revenue: String,
}

fn shown(row: &AttributionRow, currency: &str) -> Row {
    let count = |n: u64| num(i64::try_from(n).ok());
    Row {
        placement: row.placement.clone(),
        strategy: row.strategy.clone(),
        impressions: count(row.impressions),
        clicks: count(row.clicks),
        ctr: pct(Some(row.click_through_rate)),
        orders: count(row.orders),
        revenue: money(Some(row.revenue), currency),
        item_revenue: money(Some(row.item_revenue), currency),
    }
}

#[derive(Serialize)]
struct Card {
    key: &'static str,
    value: String,
    /// As the API gives it.
    raw: String,
}

#[derive(Serialize)]
struct RecommendationsPage {
    choice: PeriodChoice,
    since: i64,
    until: i64,
    window_days: i64,
    cards: Vec<Card>,
    rows: Vec<Row>,
    total: Row,
    chart: String,
    other_currency_orders: u64,
}

async fn recommendations(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<PeriodQuery>,
) -> ConsoleResult<Response> {
    let (period, choice) = choose_period(&query, "/admin/recommendations");
    let currency = signed.shop.currency.clone();
    let report_period = ReportPeriod { since: period.since, until: period.until, window_days: DEFAULT_WINDOW_DAYS };
    let report = state.db.recommendation_report(signed.shop.id, &currency, report_period).await?;
    let t = signed.locale.strings();
    let word = |key: &str| t.get(key).copied().unwrap_or_default();
    let labels: Vec<String> = report.rows.iter().map(|r| format!("{} · {}", r.placement, r.strategy)).collect();
    let chart = json!({
        "animation": false,
        "color": ["#c7d2fe", "#4f46e5", "#10b981"],
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0, "right": 0},
        "grid": {"left": 200, "right": 56, "top": 36, "bottom": 24},
        "xAxis": [{"type": "value", "splitLine": {"lineStyle": {"color": "#eef0f4"}}}],
        "yAxis": {"type": "category", "inverse": true, "data": labels},
        "series": [
            {"name": word("rec_clicks"), "type": "bar", "barMaxWidth": 14, "data": report.rows.iter().map(|r| r.clicks).collect::<Vec<_>>()},
            {"name": word("rec_orders"), "type": "bar", "barMaxWidth": 14, "data": report.rows.iter().map(|r| r.orders).collect::<Vec<_>>()},
            {"name": format!("{} ({currency})", word("revenue")), "type": "bar", "barMaxWidth": 14,
             "data": report.rows.iter().map(|r| major(r.revenue, &currency)).collect::<Vec<_>>()},
        ],
    });
    let total = &report.total;
    let count = |n: u64| num(i64::try_from(n).ok());
    let cards = vec![
        Card { key: "rec_impressions", value: count(total.impressions), raw: total.impressions.to_string() },
        Card { key: "rec_clicks", value: count(total.clicks), raw: total.clicks.to_string() },
        Card { key: "rec_ctr", value: pct(Some(total.click_through_rate)), raw: total.click_through_rate.to_string() },
        Card { key: "rec_orders", value: count(total.orders), raw: total.orders.to_string() },
        Card { key: "rec_revenue", value: money(Some(total.revenue), &currency), raw: total.revenue.to_string() },
    ];
    let view = RecommendationsPage {
        choice,
        since: report.since,
        until: report.until,
        window_days: report.window_days,
        cards,
        rows: report.rows.iter().map(|r| shown(r, &currency)).collect(),
        total: shown(&report.total, &currency),
        chart: chart.to_string(),
        other_currency_orders: report.orders_in_other_currencies,
    };
    Ok(page(&signed, "recommendations.html", "recommendations", "/admin/recommendations", view))
}
