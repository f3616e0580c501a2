//! Secret-key API for orders and refunds, idempotent by the store's ids.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::customers::{Upsert, upsert_status};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::Path;
use super::json::JsonBody;
use super::keys::SecretShop;
use super::state::AppState;
use crate::plugins::hooks::LoyaltyOutcome;
use crate::store::orders::{Order, OrderInput, OrderOutcome, RefundInput};
use crate::store::shops::Shop;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upsert_order)).routes(routes!(get_order)).routes(routes!(refund_order))
}

/// Creates or updates an order by the store's `id` (a re-post of the same order changes
/// nothing), with its customer upserted from `customer`. Loyalty plugins hear of it and the
/// customer is re-segmented; `loyalty` says what the plugins did.
#[utoipa::path(
    post,
    path = "/v1/orders",
    tag = "catalogue",
    request_body = OrderInput,
    responses(
        (status = 201, description = "A new order", body = Upsert<Order>),
        (status = 200, description = "An existing order, updated or unchanged (`result`)", body = Upsert<Order>),
        (status = 409, description = "The order conflicts with what is stored (`conflict`)", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
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

/// One order by the store's id.
#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    tag = "catalogue",
    params(("id" = String, Path, description = "The store's order id")),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 404, description = "No such order", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn get_order(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    state.db.order(shop.id, &id).await?.map(Json).ok_or(ApiError::NotFound("order"))
}

/// Records a refund of an order, idempotent by the refund's `id`; the points the refunded
/// part earned are reversed.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/refunds",
    tag = "catalogue",
    params(("id" = String, Path, description = "The store's order id")),
    request_body = RefundInput,
    responses(
        (status = 200, description = "The order after the refund", body = Upsert<Order>),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "The refund's id belongs to another order (`conflict`)", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
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
