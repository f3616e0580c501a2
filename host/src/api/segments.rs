//! Secret-key API for segments: sizes now or at any past moment, members (paged JSON or
//! a CSV export), and a recompute on demand.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Path, Query};
use super::keys::SecretShop;
use super::state::AppState;
use crate::scheduler::RECOMPUTE_SEGMENTS;
use crate::store::customers::{Customer, InvalidInput};
use crate::store::segments::SegmentSize;
use crate::store::{now_ms, predictions};
use crate::timestamp::Timestamp;

const MAX_PAGE: i64 = 1_000;
/// Rows per query while streaming a CSV export.
const EXPORT_PAGE: i64 = 1_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sizes)).routes(routes!(recompute)).routes(routes!(members))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SizesQuery {
    /// The moment (RFC 3339); now when absent.
    #[param(format = DateTime)]
    at: Option<String>,
}

/// Every segment's size now, or at a past moment.
#[utoipa::path(
    get,
    path = "/v1/segments",
    tag = "segments",
    params(SizesQuery),
    responses((status = 200, description = "The sizes", body = Vec<SegmentSize>)),
    security(("secret_key" = [])),
)]
async fn sizes(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Query(query): Query<SizesQuery>,
) -> ApiResult<Json<Vec<SegmentSize>>> {
    let at = match query.at {
        Some(text) => {
            Timestamp::parse(&text)
                .ok_or_else(|| InvalidInput::new("at", format!("`{text}` is not an RFC 3339 time")))?
                .0
        }
        None => now_ms(),
    };
    Ok(Json(state.db.segment_sizes(shop.id, at).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct MembersQuery {
    /// The `next_after` of the previous page.
    after: Option<i64>,
    /// Members per page (default 100; clamped to 1 to 1000).
    limit: Option<i64>,
    /// `json` (default: a page) or `csv` (every member, as a spreadsheet).
    #[param(pattern = "^(json|csv)$")]
    format: Option<String>,
}

/// A page of a segment's members, in id order.
#[derive(Serialize, ToSchema)]
struct MembersPage {
    members: Vec<Customer>,
    /// Pass as `after` for the next page; null on the last.
    #[serde(serialize_with = "crate::api::ids::option_string")]
    #[schema(value_type = Option<String>)]
    next_after: Option<i64>,
}

/// One CSV cell. A cell a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab or
/// carriage return first) is prefixed with `'`, so a customer's name cannot run code in the
/// merchant's spreadsheet.
pub(crate) fn csv_field(value: &str) -> String {
    let value =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_owned() };
    if value.contains([',', '"', '\n', '\r']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
}

/// A segment's members: a page of JSON, or every member as CSV (`format=csv`; cells a
/// spreadsheet would read as formulas are neutralised).
#[utoipa::path(
    get,
    path = "/v1/segments/{name}/members",
    tag = "segments",
    params(("name" = String, Path, description = "The segment"), MembersQuery),
    responses(
        (status = 200, description = "A page of members, or the CSV export",
            content(
                (MembersPage = "application/json"),
                (String = "text/csv", example = "external_id,email,first_name,last_name,order_count,total_spent,last_order_at,p_alive,expected_purchases_365d,clv"),
            ),
            headers(("Content-Disposition" = String, description = "With `format=csv`: `attachment; filename=\"<segment>.csv\"`"))),
    ),
    security(("secret_key" = [])),
)]
async fn members(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
    Query(query): Query<MembersQuery>,
) -> ApiResult<Response> {
    match query.format.as_deref() {
        None | Some("json") => {
            let limit = query.limit.unwrap_or(100).clamp(1, MAX_PAGE);
            let ids = state.db.segment_members(shop.id, &name, query.after, limit).await?;
            let next_after = (ids.len() as i64 == limit).then(|| ids.last().copied()).flatten();
            let members = state.db.customers_by_ids(shop.id, &ids).await?;
            Ok(Json(MembersPage { members, next_after }).into_response())
        }
        Some("csv") => {
            // The predictions' columns are empty for a customer without any.
            let mut csv = format!(
                "external_id,email,first_name,last_name,order_count,total_spent,last_order_at,{}
",
                predictions::EXPORT_COLUMNS
            );
            let mut after = None;
            loop {
                let ids = state.db.segment_members(shop.id, &name, after, EXPORT_PAGE).await?;
                let predictions = state.db.predictions_of_customers(shop.id, &ids).await?;
                for c in state.db.customers_by_ids(shop.id, &ids).await? {
                    let fields = [
                        c.external_id.unwrap_or_default(),
                        c.email.unwrap_or_default(),
                        c.first_name.unwrap_or_default(),
                        c.last_name.unwrap_or_default(),
                        c.stats.order_count.to_string(),
                        c.stats.total_spent.to_string(),
                        c.stats.last_order_at.map(crate::timestamp::to_rfc3339).unwrap_or_default(),
                    ];
                    let cells = fields.into_iter().chain(predictions::export_cells(predictions.get(&c.id)));
                    csv.push_str(&cells.map(|f| csv_field(&f)).collect::<Vec<_>>().join(","));
                    csv.push('\n');
                }
                match ids.last() {
                    Some(last) if ids.len() as i64 == EXPORT_PAGE => after = Some(*last),
                    _ => break,
                }
            }
            let disposition = format!(
                "attachment; filename=\"{}.csv\"",
                name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
            );
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                csv,
            )
                .into_response())
        }
        Some(other) => Err(InvalidInput::new("format", format!("`{other}` is not json or csv")).into()),
    }
}

/// Queues a recompute of every segment of the shop.
#[utoipa::path(
    post,
    path = "/v1/segments/recompute",
    tag = "segments",
    responses(
        (status = 202, description = "Queued", body = RecomputeQueued),
        (status = 409, description = "A recompute is already queued (`conflict`)", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn recompute(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
) -> ApiResult<(StatusCode, Json<RecomputeQueued>)> {
    let now = now_ms();
    let queued = state
        .db
        .enqueue_job_unless_due(
            shop.id,
            RECOMPUTE_SEGMENTS,
            &serde_json::json!({}),
            &format!("{RECOMPUTE_SEGMENTS}:manual:{now}"),
        )
        .await?;
    if !queued {
        return Err(ApiError::Conflict("a recompute is already queued".into()));
    }
    Ok((StatusCode::ACCEPTED, Json(RecomputeQueued { queued: RECOMPUTE_SEGMENTS })))
}

/// The job a recompute queued.
#[derive(Serialize, ToSchema)]
struct RecomputeQueued {
    /// The job's kind: `segments.recompute`.
    queued: &'static str,
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn formula_cells_are_neutralised_and_quoting_still_applies() {
        assert_eq!(csv_field("=HYPERLINK(\"http://x\")"), "\"'=HYPERLINK(\"\"http://x\"\")\"");
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("-2"), "'-2");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(csv_field("\rx"), "\"'\rx\"");
        assert_eq!(csv_field("Ada, Lovelace"), "\"Ada, Lovelace\"");
        assert_eq!(csv_field("ada@example.com"), "ada@example.com");
    }
}
