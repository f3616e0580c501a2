//! The overview dashboard: [`crate::analytics::overview`] for a chosen period beside the
//! period before, each figure's definition one click away, and the trends as charts.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::Signed;
use super::views::{ConsoleResult, money, num, page, pct};
use crate::analytics::definitions::{DAY_MS, DEFINITIONS};
use crate::analytics::overview::{Figures, Overview};
use crate::analytics::{Period, Rate};
use crate::api::state::AppState;
use crate::store::now_ms;
use crate::timestamp::Timestamp;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/admin/overview", get(overview)).route("/admin/definitions", get(definitions))
}

/// The presets offered, in days.
const PRESETS: [(&str, i64); 4] = [("7d", 7), ("30d", 30), ("90d", 90), ("365d", 365)];
const DEFAULT_RANGE: &str = "30d";

#[derive(Deserialize, Default)]
pub(super) struct PeriodQuery {
    range: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

/// The period asked for: `since`/`until` when both are given, else a preset ending now.
/// Returns it, the preset chosen (if any) and whether the request was invalid.
fn period(query: &PeriodQuery, now: i64) -> (Period, Option<&'static str>, bool) {
    let custom = match (query.since.as_deref(), query.until.as_deref()) {
        (Some(since), Some(until)) if !since.is_empty() && !until.is_empty() => Some(
            Timestamp::parse(since).zip(Timestamp::parse(until)).and_then(|(s, u)| Period::new(s.0, u.0, None).ok()),
        ),
        _ => None,
    };
    let preset = |name: &str| PRESETS.iter().find(|(n, _)| *n == name).copied();
    let fallback = preset(DEFAULT_RANGE).map_or(30, |(_, days)| days);
    match custom {
        Some(Some(period)) => (period, None, false),
        Some(None) => (last_days(now, fallback), Some(DEFAULT_RANGE), true),
        None => {
            let chosen = query.range.as_deref().and_then(preset);
            let invalid = query.range.is_some() && chosen.is_none();
            let (name, days) = chosen.unwrap_or((DEFAULT_RANGE, fallback));
            (last_days(now, days), Some(name), invalid)
        }
    }
}

/// The period a page shows and the form that changes it.
#[derive(Serialize)]
pub(super) struct PeriodChoice {
    /// The page the form submits to.
    pub(super) action: String,
    range: Option<&'static str>,
    presets: Vec<&'static str>,
    since: String,
    until: String,
    invalid: bool,
}

/// The period `query` asks for on the page at `action`, and its form.
pub(super) fn choose_period(query: &PeriodQuery, action: &str) -> (Period, PeriodChoice) {
    let (period, range, invalid) = period(query, now_ms());
    let day = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default()
    };
    let choice = PeriodChoice {
        action: action.to_owned(),
        range,
        presets: PRESETS.iter().map(|(name, _)| *name).collect(),
        since: day(period.since),
        until: day(period.until),
        invalid,
    };
    (period, choice)
}

impl PeriodChoice {
    /// The query string that asks for this period again.
    pub(super) fn query(&self) -> String {
        match self.range {
            Some(range) => format!("range={range}"),
            None => format!("since={}&until={}", self.since, self.until),
        }
    }
}

fn last_days(now: i64, days: i64) -> Period {
    Period::new(now - days * DAY_MS, now, None).unwrap_or(Period {
        since: now - 30 * DAY_MS,
        until: now,
        bucket: crate::analytics::definitions::Bucket::Day,
    })
}

/// One figure's card.
#[derive(Serialize)]
pub(super) struct Card {
    key: &'static str,
    value: String,
    previous: String,
    change: Option<String>,
    /// good, bad or flat, for the change's colour.
    tone: &'static str,
    /// The figure exactly as its `/v1/analytics/…` JSON gives it (tests compare the two).
    raw: String,
    /// The entry of `definitions::DEFINITIONS` that defines it.
    defined_as: &'static str,
    definition: &'static str,
}

pub(super) fn definition(name: &str) -> &'static str {
    DEFINITIONS.iter().find(|d| d.name == name).map_or("", |d| d.definition)
}

/// A count or amount card; a rise is shown as good.
pub(super) fn amount_card(
    key: &'static str,
    def: &'static str,
    current: Option<i64>,
    previous: Option<i64>,
    shown: impl Fn(Option<i64>) -> String,
) -> Card {
    let (change, tone) = match (current, previous) {
        (Some(c), Some(p)) if p != 0 => {
            #[allow(clippy::cast_precision_loss)] // display only
            let ratio = (c - p) as f64 / p.abs() as f64;
            let tone = if c > p {
                "good"
            } else if c < p {
                "bad"
            } else {
                "flat"
            };
            (Some(format!("{}{:.1}%", if ratio >= 0.0 { "+" } else { "" }, ratio * 100.0)), tone)
        }
        _ => (None, "flat"),
    };
    Card {
        key,
        value: shown(current),
        previous: shown(previous),
        change,
        tone,
        raw: current.map_or_else(|| "null".to_owned(), |v| v.to_string()),
        defined_as: def,
        definition: definition(def),
    }
}

/// A rate card; the change is in percentage points.
fn rate_card(key: &'static str, current: Rate, previous: Rate, higher_is_better: bool) -> Card {
    let (change, tone) = match (current.rate, previous.rate) {
        (Some(c), Some(p)) => {
            let points = (c - p) * 100.0;
            let better = if higher_is_better { points > 0.0 } else { points < 0.0 };
            let tone = if points.abs() < 0.05 {
                "flat"
            } else if better {
                "good"
            } else {
                "bad"
            };
            (Some(format!("{}{points:.1} pp", if points >= 0.0 { "+" } else { "" })), tone)
        }
        _ => (None, "flat"),
    };
    Card {
        key,
        value: pct(current.rate),
        previous: pct(previous.rate),
        change,
        tone,
        raw: current.rate.map_or_else(|| "null".to_owned(), |r| r.to_string()),
        defined_as: key,
        definition: definition(key),
    }
}

fn cards(overview: &Overview) -> Vec<Card> {
    let (c, p): (&Figures, &Figures) = (&overview.current, &overview.previous);
    let currency = overview.currency.as_str();
    let cash = |v: Option<i64>| money(v, currency);
    vec![
        amount_card("revenue", "revenue", Some(c.revenue), Some(p.revenue), cash),
        amount_card("orders", "orders", Some(c.orders), Some(p.orders), num),
        amount_card("aov", "aov", c.aov, p.aov, cash),
        amount_card("active_customers", "active_customers", Some(c.active_customers), Some(p.active_customers), num),
        amount_card("new_customers", "new_customers", Some(c.new_customers), Some(p.new_customers), num),
        amount_card(
            "returning_customers",
            "new_customers",
            Some(c.returning_customers),
            Some(p.returning_customers),
            num,
        ),
        rate_card("repurchase_rate", c.repurchase_rate, p.repurchase_rate, true),
        rate_card("churn_rate", c.churn_rate, p.churn_rate, false),
        amount_card("ltv_average", "ltv", c.ltv.average, p.ltv.average, cash),
        amount_card("ltv_median", "ltv", c.ltv.median, p.ltv.median, cash),
        amount_card(
            "points_liability",
            "points_liability",
            Some(c.points_liability.points),
            Some(p.points_liability.points),
            num,
        ),
    ]
}

/// Minor units as a number of major units, for chart axes.
#[allow(clippy::cast_precision_loss)] // display only
pub(super) fn major(minor: i64, currency: &str) -> f64 {
    minor as f64 / 10_f64.powi(i32::try_from(crate::import::money::minor_unit_exponent(currency)).unwrap_or(2))
}

/// ECharts options: revenue (this period and the previous one, aligned by bucket) and orders.
fn charts(overview: &Overview, this_period: &str, previous: &str) -> (String, String) {
    let labels: Vec<&str> = overview.current.trend.iter().map(|p| p.at.get(..10).unwrap_or(&p.at)).collect();
    let currency = overview.currency.as_str();
    let revenue: Vec<f64> = overview.current.trend.iter().map(|p| major(p.revenue, currency)).collect();
    let revenue_before: Vec<f64> = overview.previous.trend.iter().map(|p| major(p.revenue, currency)).collect();
    let orders: Vec<i64> = overview.current.trend.iter().map(|p| p.orders).collect();
    let orders_before: Vec<i64> = overview.previous.trend.iter().map(|p| p.orders).collect();
    let base = |series: serde_json::Value| {
        json!({
            "animation": false,
            "color": ["#4f46e5", "#a5b4fc"],
            "tooltip": {"trigger": "axis"},
            "legend": {"top": 0, "right": 0, "data": [this_period, previous]},
            "grid": {"left": 56, "right": 16, "top": 36, "bottom": 28},
            "xAxis": {"type": "category", "data": labels, "boundaryGap": false},
            "yAxis": {"type": "value", "splitLine": {"lineStyle": {"color": "#eef0f4"}}},
            "series": series,
        })
    };
    let revenue_chart = base(json!([
        {"name": this_period, "type": "line", "smooth": true, "symbol": "none", "data": revenue,
         "areaStyle": {"opacity": 0.12}, "lineStyle": {"width": 2}},
        {"name": previous, "type": "line", "smooth": true, "symbol": "none", "data": revenue_before,
         "lineStyle": {"type": "dashed", "width": 1.5}},
    ]));
    let mut orders_chart = base(json!([
        {"name": this_period, "type": "bar", "data": orders, "barMaxWidth": 18},
        {"name": previous, "type": "bar", "data": orders_before, "barMaxWidth": 18},
    ]));
    orders_chart["xAxis"]["boundaryGap"] = json!(true);
    (revenue_chart.to_string(), orders_chart.to_string())
}

#[derive(Serialize)]
struct OverviewPage {
    choice: PeriodChoice,
    period: crate::analytics::PeriodView,
    previous_period: crate::analytics::PeriodView,
    bucket: crate::analytics::definitions::Bucket,
    other_currency_orders: i64,
    points_liability_value: Option<i64>,
    cards: Vec<Card>,
    revenue_chart: String,
    orders_chart: String,
}

async fn overview(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<PeriodQuery>,
) -> ConsoleResult<Response> {
    let (period, choice) = choose_period(&query, "/admin/overview");
    let overview = state.db.analytics_overview(signed.shop.id, &signed.shop.currency, period).await?;
    let t = signed.locale.strings();
    let (revenue_chart, orders_chart) = charts(
        &overview,
        t.get("this_period").copied().unwrap_or_default(),
        t.get("previous").copied().unwrap_or_default(),
    );
    let view = OverviewPage {
        choice,
        period: overview.period.clone(),
        previous_period: overview.previous_period.clone(),
        bucket: overview.bucket,
        other_currency_orders: overview.current.other_currency_orders,
        points_liability_value: overview.current.points_liability.value,
        cards: cards(&overview),
        revenue_chart,
        orders_chart,
    };
    Ok(page(&signed, "overview.html", "overview", "/admin/overview", view))
}

#[derive(Serialize)]
struct DefinitionsPage {
    definitions: &'static [crate::analytics::definitions::Definition],
}

async fn definitions(signed: Signed) -> Response {
    page(&signed, "definitions.html", "definitions", "/admin/definitions", DefinitionsPage { definitions: DEFINITIONS })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_come_from_presets_or_dates() {
        let now = 1_709_730_000_000;
        let (p, range, invalid) = period(&PeriodQuery::default(), now);
        assert_eq!((p.until - p.since, range, invalid), (30 * DAY_MS, Some("30d"), false));
        let custom = PeriodQuery { since: Some("2024-03-01".into()), until: Some("2024-04-01".into()), range: None };
        let (p, range, invalid) = period(&custom, now);
        assert_eq!((p.since, range, invalid), (Timestamp::parse("2024-03-01").expect("date").0, None, false));
        let bad = PeriodQuery { since: Some("2024-04-01".into()), until: Some("2024-03-01".into()), range: None };
        assert!(period(&bad, now).2);
        let unknown = PeriodQuery { range: Some("5y".into()), ..PeriodQuery::default() };
        assert!(period(&unknown, now).2);
    }
}
