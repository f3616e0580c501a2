//! The recommendations page: the attribution report ([`Db::recommendation_report`], the
//! same as `GET /v1/recommendations/report`) for a chosen period — impressions, clicks,
//! click-through rate, and the orders and revenue that followed a click, by placement
//! and strategy — as figures, a chart and a table; and the last offline evaluation of
//! each recommender install (`patron recs evaluate`), when one was run.
//!
//! [`Db::recommendation_report`]: crate::store::Db::recommendation_report

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::Signed;
use super::overview::{PeriodChoice, PeriodQuery, choose_period, major};
use super::views::{ConsoleResult, money, num, page, pct};
use crate::api::state::AppState;
use crate::store::recommendation_report::{AttributionRow, DEFAULT_WINDOW_DAYS, ReportPeriod};
use crate::store::recommendations::StoredEvaluation;

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

/// An evaluation report as stored (`plugins::recommendation_evaluation::EvaluationReport`).
#[derive(Deserialize)]
struct StoredReport {
    plugin: String,
    k: u64,
    training_orders: u64,
    held_out_orders: u64,
    customers: u64,
    strategies: Vec<StoredScore>,
}

#[derive(Deserialize)]
struct StoredScore {
    strategy: String,
    hit_rate: f64,
    recall: f64,
    ndcg: f64,
    empty_lists: u64,
}

#[derive(Serialize)]
struct Evaluation {
    plugin: String,
    evaluated_at: i64,
    k: u64,
    customers: String,
    training_orders: String,
    held_out_orders: String,
    scores: Vec<Score>,
}

#[derive(Serialize)]
struct Score {
    strategy: String,
    /// The popularity baseline the others are read against.
    baseline: bool,
    hit_rate: String,
    recall: String,
    ndcg: String,
    empty_lists: String,
    /// As stored.
    raw_hit_rate: f64,
}

/// The stored evaluations as shown; a report that no longer reads is left out (logged).
fn evaluations(stored: Vec<StoredEvaluation>) -> Vec<Evaluation> {
    let count = |n: u64| num(i64::try_from(n).ok());
    stored
        .into_iter()
        .filter_map(|stored| match serde_json::from_str::<StoredReport>(&stored.report) {
            Ok(report) => Some(Evaluation {
                plugin: report.plugin,
                evaluated_at: stored.evaluated_at,
                k: report.k,
                customers: count(report.customers),
                training_orders: count(report.training_orders),
                held_out_orders: count(report.held_out_orders),
                scores: report
                    .strategies
                    .into_iter()
                    .map(|s| Score {
                        baseline: s.strategy == "popular",
                        strategy: s.strategy,
                        hit_rate: pct(Some(s.hit_rate)),
                        recall: pct(Some(s.recall)),
                        ndcg: format!("{:.3}", s.ndcg),
                        empty_lists: count(s.empty_lists),
                        raw_hit_rate: s.hit_rate,
                    })
                    .collect(),
            }),
            Err(error) => {
                tracing::warn!(plugin = stored.plugin, %error, "an offline evaluation report does not read");
                None
            }
        })
        .collect()
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
    evaluations: Vec<Evaluation>,
}

async fn recommendations(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<PeriodQuery>,
) -> ConsoleResult<Response> {
    let (period, choice) = choose_period(&query, "/admin/recommendations");
    let currency = signed.shop.currency.clone();
    let report_period = ReportPeriod { since: period.since, until: period.until, window_days: DEFAULT_WINDOW_DAYS };
    let (report, stored) = tokio::try_join!(
        state.db.recommendation_report(signed.shop.id, &currency, report_period),
        state.db.recommendation_evaluations(signed.shop.id),
    )?;
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
        evaluations: evaluations(stored),
    };
    Ok(page(&signed, "recommendations.html", "recommendations", "/admin/recommendations", view))
}
