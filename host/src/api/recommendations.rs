//! `GET /v1/recommendations`: a placement's list of products for a storefront page,
//! with the publishable key. Personal only with a customer token that verifies; a
//! token that does not verify gets the anonymous list, never anyone's history.
//!
//! Bad input: an unknown `placement`, `product` without `product_id`, `cart` without
//! `cart` or a `limit` outside 1..=50 is 422. A `product_id` or cart item the shop does
//! not know is not an error: the plugin falls back to best sellers (a product page of a
//! product not yet synced still gets a strip). A shop with no sales or no enabled
//! recommender gets an empty list.
//!
//! `GET /v1/recommendations/report` (secret key): impressions, clicks, click-through rate
//! and attributed orders per placement and strategy, over `since`..`until` (RFC 3339 or
//! unix ms; default the last 30 days) with an attribution `window_days` (default 7).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::Query;

use super::error::ApiResult;
use super::keys::{PublicShop, SecretShop};
use super::state::AppState;
use super::widget_state::verified_shopper;
use crate::plugins::recommendations::{MAX_LIMIT, Placement, Recommendation, RecsRequest};
use crate::store::customers::InvalidInput;
use crate::store::now_ms;
use crate::store::recommendation_report::{AttributionReport, DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS, ReportPeriod};
use crate::timestamp::Timestamp;

/// Items returned when the request names no limit.
pub const DEFAULT_LIMIT: usize = 8;
/// The period a report covers when the request names none.
pub const DEFAULT_REPORT_DAYS: i64 = 30;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(recommendations)).routes(routes!(report))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RecsQuery {
    /// Where the list is shown: `product`, `cart`, `home` or `for-you`.
    #[param(value_type = String, pattern = "^(product|cart|home|for-you)$")]
    placement: String,
    /// The page's product (the `product` placement needs it).
    product_id: Option<String>,
    /// Comma-separated product ids (the `cart` placement needs them).
    cart: Option<String>,
    /// The signed-in shopper's customer id (the store's); with `customer_token`.
    customer_id: Option<String>,
    /// The customer token the store's back end signed for `customer_id`.
    customer_token: Option<String>,
    /// How many products, 1 to 50 (default 8).
    #[param(minimum = 1, maximum = 50)]
    limit: Option<usize>,
}

/// The answer: the placement and its products, best first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Recommendations)]
pub struct RecsResponse {
    pub placement: &'static str,
    pub items: Vec<Recommendation>,
}

fn request(query: &RecsQuery, customer_id: Option<i64>) -> Result<RecsRequest, InvalidInput> {
    let placement = Placement::parse(&query.placement).ok_or_else(|| {
        InvalidInput::new("placement", format!("`{}` is not one of {}", query.placement, Placement::NAMES.join(", ")))
    })?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(InvalidInput::new("limit", format!("must be between 1 and {MAX_LIMIT}")));
    }
    let product = query.product_id.as_deref().map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned);
    let cart: Vec<String> = query
        .cart
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    let context = match placement {
        Placement::Product => vec![
            product.ok_or_else(|| InvalidInput::new("product_id", "the product placement needs the page's product"))?,
        ],
        Placement::Cart if cart.is_empty() => {
            return Err(InvalidInput::new("cart", "the cart placement needs the cart's product ids"));
        }
        Placement::Cart => cart.clone(),
        Placement::Home | Placement::ForYou => Vec::new(),
    };
    let mut exclude = cart;
    exclude.extend(context.iter().cloned());
    Ok(RecsRequest { placement, context, exclude, customer_id, limit })
}

/// A placement's list of products for a storefront page, best first. Personal only with
/// a customer token that verifies (otherwise the anonymous list). A product the shop does
/// not know falls back to best sellers; a shop with no sales or no enabled recommender
/// gets an empty list.
#[utoipa::path(
    get,
    path = "/v1/recommendations",
    tag = "storefront",
    params(RecsQuery),
    responses(
        (status = 200, description = "The products", body = RecsResponse,
            headers(("Cache-Control" = String, description = "`private, no-store`"))),
    ),
    security(("publishable_key" = []), ("publishable_key_query" = [])),
)]
async fn recommendations(
    State(state): State<AppState>,
    PublicShop(shop): PublicShop,
    Query(query): Query<RecsQuery>,
) -> ApiResult<impl IntoResponse> {
    let customer_id =
        verified_shopper(&state, &shop, query.customer_id.as_deref(), query.customer_token.as_deref()).await?;
    let request = request(&query, customer_id)?;
    let items = state.plugins.recommend(&shop, &request).await?;
    let body = RecsResponse { placement: request.placement.name(), items };
    Ok(([(header::CACHE_CONTROL, "private, no-store")], Json(body)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReportQuery {
    /// From this time (RFC 3339 or unix ms; default 30 days before `until`).
    since: Option<String>,
    /// Until this time, excluded (RFC 3339 or unix ms; default now).
    until: Option<String>,
    /// How many days after a click an order still counts (0 to 90, default 7).
    #[param(minimum = 0, maximum = 90)]
    window_days: Option<i64>,
}

pub(super) fn time(field: &'static str, text: Option<&str>) -> Result<Option<i64>, InvalidInput> {
    let Some(text) = text else { return Ok(None) };
    text.trim()
        .parse::<i64>()
        .ok()
        .or_else(|| Timestamp::parse(text).map(|t| t.0))
        .filter(|ms| crate::timestamp::in_range(*ms))
        .map(Some)
        .ok_or_else(|| {
            InvalidInput::new(
                field,
                format!("`{text}` is not an RFC 3339 time or unix milliseconds between 1970 and 9999"),
            )
        })
}

fn period(query: &ReportQuery, now: i64) -> Result<ReportPeriod, InvalidInput> {
    let window_days = query.window_days.unwrap_or(DEFAULT_WINDOW_DAYS);
    if !(0..=MAX_WINDOW_DAYS).contains(&window_days) {
        return Err(InvalidInput::new("window_days", format!("must be between 0 and {MAX_WINDOW_DAYS}")));
    }
    let default = ReportPeriod::last_days(DEFAULT_REPORT_DAYS, window_days, now);
    let until = time("until", query.until.as_deref())?.unwrap_or(default.until);
    let since = time("since", query.since.as_deref())?.unwrap_or(until - (default.until - default.since));
    if since >= until {
        return Err(InvalidInput::new("since", "must be before `until`"));
    }
    Ok(ReportPeriod { since, until, window_days })
}

/// Impressions, clicks, click-through rate and attributed orders per placement and
/// strategy over a period.
#[utoipa::path(
    get,
    path = "/v1/recommendations/report",
    tag = "analytics",
    params(ReportQuery),
    responses((status = 200, description = "The report", body = AttributionReport)),
    security(("secret_key" = [])),
)]
async fn report(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Query(query): Query<ReportQuery>,
) -> ApiResult<Json<AttributionReport>> {
    let period = period(&query, now_ms())?;
    Ok(Json(state.db.recommendation_report(shop.id, &shop.currency, period).await?))
}
