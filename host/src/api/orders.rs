//! Secret-key API for orders and refunds, idempotent by the store's ids.

use axum::extract::State;

use super::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::customers::{Upsert, upsert_status};
use super::error::{ApiError, ApiResult};
use super::json::JsonBody;
use super::keys::SecretShop;
use super::state::AppState;
use crate::plugins::hooks::LoyaltyOutcome;
use crate::store::orders::{Order, OrderInput, OrderOutcome, RefundInput};
use crate::store::shops::Shop;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orders", post(upsert_order))
        .route("/v1/orders/{id}", get(get_order))
        .route("/v1/orders/{id}/refunds", post(refund_order))
}

async fn upsert_order(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    JsonBody(input): JsonBody<OrderInput>,
) -> ApiResult<(StatusCode, Json<Upsert<Order>>)> {
    let (order, customer) = input.validate(&shop.currency)?;
    let outcome = state.db.upsert_order(shop.id, order, customer.as_ref()).await?;
    let loyalty = settle(&state, &shop, &outcome).await;
    Ok((upsert_status(outcome.result), Json(Upsert { result: outcome.result, record: outcome.order, loyalty })))
}

async fn get_order(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    state.db.order(shop.id, &id).await?.map(Json).ok_or(ApiError::NotFound("order"))
}

async fn refund_order(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(id): Path<String>,
    JsonBody(refund): JsonBody<RefundInput>,
) -> ApiResult<Json<Upsert<Order>>> {
    let outcome = state.db.refund_order(shop.id, &id, &refund).await?;
    let loyalty = settle(&state, &shop, &outcome).await;
    Ok(Json(Upsert { result: outcome.result, record: outcome.order, loyalty }))
}

/// After an order changed: loyalty plugins hear of it (its job, queued with the change,
/// covers a crash or a failed plugin call) and its customer's segments follow their new
/// stats. The order is stored whatever the plugins do, so hook failures are logged, not
/// returned.
async fn settle(state: &AppState, shop: &Shop, outcome: &OrderOutcome) -> Option<LoyaltyOutcome> {
    let loyalty = match &outcome.loyalty {
        Some(work) => Some(state.plugins.order_changed(shop, &outcome.order, work).await),
        None => None,
    };
    if let Some(customer_id) = outcome.order.customer_id
        && let Err(error) = state.plugins.segment_customer(shop, customer_id).await
    {
        tracing::error!(%error, "re-segmenting after an order failed");
    }
    match loyalty? {
        Ok(outcome) => Some(outcome),
        Err(error) => {
            tracing::error!(%error, "loyalty hooks failed after an order");
            None
        }
    }
}
