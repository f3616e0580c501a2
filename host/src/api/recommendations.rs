//! `GET /v1/recommendations`: a placement's list of products for a storefront page,
//! with the publishable key. Personal only with a customer token that verifies; a
//! token that does not verify gets the anonymous list, never anyone's history.
//!
//! Bad input: an unknown `placement`, `product` without `product_id`, `cart` without
//! `cart` or a `limit` outside 1..=50 is 422. A `product_id` or cart item the shop does
//! not know is not an error: the plugin falls back to best sellers (a product page of a
//! product not yet synced still gets a strip). A shop with no sales or no enabled
//! recommender gets an empty list.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ApiResult;
use super::keys::PublicShop;
use super::state::AppState;
use super::widget_state::verified_shopper;
use crate::plugins::recommendations::{MAX_LIMIT, Placement, Recommendation, RecsRequest};
use crate::store::customers::InvalidInput;

/// Items returned when the request names no limit.
pub const DEFAULT_LIMIT: usize = 8;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/recommendations", get(recommendations))
}

#[derive(Deserialize)]
struct RecsQuery {
    placement: String,
    product_id: Option<String>,
    /// Comma-separated product ids.
    cart: Option<String>,
    customer_id: Option<String>,
    customer_token: Option<String>,
    limit: Option<usize>,
}

/// The answer: the placement and its products, best first.
#[derive(Debug, Serialize)]
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
    let cart: Vec<String> =
        query.cart.as_deref().unwrap_or_default().split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect();
    let context = match placement {
        Placement::Product => vec![product.ok_or_else(|| InvalidInput::new("product_id", "the product placement needs the page's product"))?],
        Placement::Cart if cart.is_empty() => return Err(InvalidInput::new("cart", "the cart placement needs the cart's product ids")),
        Placement::Cart => cart.clone(),
        Placement::Home | Placement::ForYou => Vec::new(),
    };
    let mut exclude = cart;
    exclude.extend(context.iter().cloned());
    Ok(RecsRequest { placement, context, exclude, customer_id, limit })
}

async fn recommendations(
    State(state): State<AppState>,
    PublicShop(shop): PublicShop,
    Query(query): Query<RecsQuery>,
) -> ApiResult<impl IntoResponse> {
    let customer_id = verified_shopper(&state, &shop, query.customer_id.as_deref(), query.customer_token.as_deref()).await?;
    let request = request(&query, customer_id)?;
    let items = state.plugins.recommend(&shop, &request).await?;
    let body = RecsResponse { placement: request.placement.name(), items };
    Ok(([(header::CACHE_CONTROL, "private, no-store")], Json(body)))
}
