//! Segments: every segment with its members now and the stints that began and ended in
//! the last 30 days; one segment's size over a chosen period as a chart (from
//! [`crate::analytics::segments`], derived from the membership stints), its members a
//! page at a time, and a CSV export of them.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::Signed;
use super::customers::{CustomerRow, encode, full_name, row};
use super::overview::{PeriodChoice, PeriodQuery, choose_period};
use super::views::{ConsoleError, ConsoleResult, page, secure_headers, shown_email, shown_phone};
use super::wants_fragment;
use crate::analytics::Period;
use crate::analytics::definitions::DAY_MS;
use crate::api::segments::csv_field;
use crate::api::state::AppState;
use crate::store::now_ms;
use crate::store::predictions::{EXPORT_COLUMNS, export_cells};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/segments", get(segments))
        .route("/admin/segments/{name}", get(segment))
        .route("/admin/segments/{name}/members.csv", get(export))
}

/// Members per page.
const MEMBERS_PAGE: i64 = 50;
/// Members read per query while writing a CSV export.
const EXPORT_PAGE: i64 = 1_000;
/// The window of the joined and left counts of the segments list.
const FLOW_DAYS: i64 = 30;

#[derive(Serialize)]
struct SegmentRow {
    name: String,
    members: i64,
    joined: i64,
    left: i64,
    href: String,
}

#[derive(Serialize)]
struct SegmentsPage {
    segments: Vec<SegmentRow>,
    flow_days: i64,
    chart: String,
}

async fn segments(State(state): State<AppState>, signed: Signed) -> ConsoleResult<Response> {
    let now = now_ms();
    let window = Period::new(now - FLOW_DAYS * DAY_MS, now, None).map_err(|_| ConsoleError::NotFound)?;
    let (sizes, flows) = tokio::try_join!(
        state.db.segment_sizes(signed.shop.id, now),
        state.db.analytics_segment_flows(signed.shop.id, window),
    )?;
    let mut sizes = sizes;
    sizes.sort_by(|a, b| b.members.cmp(&a.members).then_with(|| a.segment.cmp(&b.segment)));
    let chart = json!({
        "animation": false,
        "color": ["#4f46e5"],
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 140, "right": 24, "top": 8, "bottom": 24},
        "xAxis": {"type": "value", "splitLine": {"lineStyle": {"color": "#eef0f4"}}},
        "yAxis": {"type": "category", "inverse": true, "data": sizes.iter().map(|s| s.segment.clone()).collect::<Vec<_>>()},
        "series": [{"type": "bar", "barMaxWidth": 16, "data": sizes.iter().map(|s| s.members).collect::<Vec<_>>()}],
    });
    let view = SegmentsPage {
        segments: sizes
            .into_iter()
            .map(|s| {
                let flow = flows.iter().find(|f| f.segment == s.segment);
                SegmentRow {
                    href: format!("/admin/segments/{}", encode(&s.segment)),
                    joined: flow.map_or(0, |f| f.joined),
                    left: flow.map_or(0, |f| f.left),
                    name: s.segment,
                    members: s.members,
                }
            })
            .collect(),
        flow_days: FLOW_DAYS,
        chart: chart.to_string(),
    };
    Ok(page(&signed, "segments.html", "segments", "/admin/segments", view))
}

#[derive(Deserialize)]
struct SegmentQuery {
    #[serde(flatten)]
    period: PeriodQuery,
    after: Option<String>,
}

#[derive(Serialize)]
struct SegmentPage {
    choice: PeriodChoice,
    name: String,
    members: i64,
    history: crate::analytics::segments::SegmentHistory,
    chart: String,
    export: String,
    rows: Vec<CustomerRow>,
    next: Option<String>,
}

/// ECharts option: members per bucket as a line, stints begun and ended as bars.
fn size_chart(history: &crate::analytics::segments::SegmentHistory, words: [&str; 3]) -> String {
    let labels: Vec<&str> = history.trend.iter().map(|p| p.at.get(..10).unwrap_or(&p.at)).collect();
    json!({
        "animation": false,
        "color": ["#4f46e5", "#10b981", "#f43f5e"],
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0, "right": 0},
        "grid": {"left": 56, "right": 48, "top": 36, "bottom": 28},
        "xAxis": {"type": "category", "data": labels},
        "yAxis": [
            {"type": "value", "splitLine": {"lineStyle": {"color": "#eef0f4"}}},
            {"type": "value", "splitLine": {"show": false}},
        ],
        "series": [
            {"name": words[0], "type": "line", "smooth": true, "symbol": "none", "areaStyle": {"opacity": 0.12},
             "lineStyle": {"width": 2}, "data": history.trend.iter().map(|p| p.members).collect::<Vec<_>>()},
            {"name": words[1], "type": "bar", "yAxisIndex": 1, "stack": "flow", "barMaxWidth": 14,
             "data": history.trend.iter().map(|p| p.joined).collect::<Vec<_>>()},
            {"name": words[2], "type": "bar", "yAxisIndex": 1, "stack": "flow", "barMaxWidth": 14,
             "data": history.trend.iter().map(|p| -p.left).collect::<Vec<_>>()},
        ],
    })
    .to_string()
}

async fn segment(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(query): Query<SegmentQuery>,
) -> ConsoleResult<Response> {
    let sizes = state.db.segment_sizes(signed.shop.id, now_ms()).await?;
    let members = sizes.iter().find(|s| s.segment == name).map(|s| s.members).ok_or(ConsoleError::NotFound)?;
    let base = format!("/admin/segments/{}", encode(&name));
    let (period, choice) = choose_period(&query.period, &base);
    let after = query.after.as_deref().and_then(|a| a.parse::<i64>().ok());
    let ids = state.db.segment_members(signed.shop.id, &name, after, MEMBERS_PAGE).await?;
    let customers = state.db.customers_by_ids(signed.shop.id, &ids).await?;
    let next = (i64::try_from(ids.len()).unwrap_or(0) == MEMBERS_PAGE)
        .then(|| ids.last().map(|last| format!("{base}?{}&after={last}", choice.query())))
        .flatten();
    let rows = customers.iter().map(|c| row(c, signed.user.role, &signed.shop.currency)).collect();
    if wants_fragment(&headers, "results") {
        return Ok(page(&signed, "customer_rows.html", "segments", &base, json!({ "rows": rows, "next": next })));
    }
    let history = state.db.analytics_segment_history(signed.shop.id, &name, period).await?;
    let t = signed.locale.strings();
    let word = |key: &str| t.get(key).copied().unwrap_or_default();
    let chart = size_chart(&history, [word("members"), word("joined"), word("left")]);
    let view = SegmentPage { choice, export: format!("{base}/members.csv"), name, members, history, chart, rows, next };
    Ok(page(&signed, "segment.html", "segments", &base, view))
}

/// The segment's current members as CSV, personal data as the role may see it; a cell
/// a spreadsheet would run as a formula is neutralised ([`csv_field`]). Recorded in the
/// audit log: it takes customers' data out of Patron.
async fn export(State(state): State<AppState>, signed: Signed, Path(name): Path<String>) -> ConsoleResult<Response> {
    let sizes = state.db.segment_sizes(signed.shop.id, now_ms()).await?;
    if !sizes.iter().any(|s| s.segment == name) {
        return Err(ConsoleError::NotFound);
    }
    let role = signed.user.role;
    let mut csv = format!(
        "id,external_id,email,phone,name,order_count,total_spent,currency,first_order_at,last_order_at,{EXPORT_COLUMNS}
"
    );
    let mut after = None;
    let mut exported = 0_usize;
    loop {
        let ids = state.db.segment_members(signed.shop.id, &name, after, EXPORT_PAGE).await?;
        let predictions = state.db.predictions_of_customers(signed.shop.id, &ids).await?;
        for c in state.db.customers_by_ids(signed.shop.id, &ids).await? {
            let fields = [
                c.id.to_string(),
                c.external_id.clone().unwrap_or_default(),
                shown_email(role, c.email.as_deref()).unwrap_or_default(),
                shown_phone(role, c.phone.as_deref()).unwrap_or_default(),
                full_name(c.first_name.as_deref(), c.last_name.as_deref()).unwrap_or_default(),
                c.stats.order_count.to_string(),
                c.stats.total_spent.to_string(),
                signed.shop.currency.clone(),
                c.stats.first_order_at.map(crate::timestamp::to_rfc3339).unwrap_or_default(),
                c.stats.last_order_at.map(crate::timestamp::to_rfc3339).unwrap_or_default(),
            ];
            let cells = fields.into_iter().chain(export_cells(predictions.get(&c.id)));
            csv.push_str(&cells.map(|f| csv_field(&f)).collect::<Vec<_>>().join(","));
            csv.push('\n');
            exported += 1;
        }
        match ids.last() {
            Some(last) if i64::try_from(ids.len()).unwrap_or(0) == EXPORT_PAGE => after = Some(*last),
            _ => break,
        }
    }
    state
        .db
        .audit(
            signed.shop.id,
            Some(&signed.user),
            &signed.user.email,
            "segment_exported",
            Some(&format!("segment {name}")),
            &format!("{exported} members"),
        )
        .await?;
    let file = name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_");
    let mut response = csv.into_response();
    secure_headers(response.headers_mut());
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"segment-{file}.csv\"")) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
