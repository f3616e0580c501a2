//! Secret-key API for the product catalogue.

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
use crate::store::products::Product;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/products", post(upsert_product)).route("/v1/products/{id}", get(get_product))
}

async fn upsert_product(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    JsonBody(product): JsonBody<Product>,
) -> ApiResult<(StatusCode, Json<Upsert<Product>>)> {
    let product = product.validate()?;
    let result = state.db.upsert_product(shop.id, &shop.currency, &product).await?;
    let stored = state.db.product(shop.id, &product.id).await?.ok_or(ApiError::NotFound("product"))?;
    Ok((upsert_status(result), Json(Upsert::new(result, stored))))
}

async fn get_product(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(id): Path<String>,
) -> ApiResult<Json<Product>> {
    state.db.product(shop.id, &id).await?.map(Json).ok_or(ApiError::NotFound("product"))
}
