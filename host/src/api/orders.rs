//! Secret-key API for orders and refunds, idempotent by the store's ids.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::customers::{Upsert, upsert_status};
use super::error::{ApiError, ApiResult};
use super::json::JsonBody;
use super::keys::SecretShop;
use super::state::AppState;
use crate::store::orders::{Order, OrderInput, RefundInput};

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
    Ok((upsert_status(outcome.result), Json(Upsert { result: outcome.result, record: outcome.order })))
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
    Ok(Json(Upsert { result: outcome.result, record: outcome.order }))
}
