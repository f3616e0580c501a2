//! Secret-key API for the product catalogue.

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
use crate::store::products::Product;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upsert_product)).routes(routes!(get_product))
}

/// Creates or replaces a product of the catalogue by the store's `id`.
#[utoipa::path(
    post,
    path = "/v1/products",
    tag = "catalogue",
    request_body = Product,
    responses(
        (status = 201, description = "A new product", body = Upsert<Product>),
        (status = 200, description = "An existing product, updated or unchanged (`result`)", body = Upsert<Product>),
    ),
    security(("secret_key" = [])),
)]
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

/// One product by the store's id.
#[utoipa::path(
    get,
    path = "/v1/products/{id}",
    tag = "catalogue",
    params(("id" = String, Path, description = "The store's product id")),
    responses(
        (status = 200, description = "The product", body = Product),
        (status = 404, description = "No such product", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn get_product(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(id): Path<String>,
) -> ApiResult<Json<Product>> {
    state.db.product(shop.id, &id).await?.map(Json).ok_or(ApiError::NotFound("product"))
}
