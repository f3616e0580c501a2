//! Secret-key API for customers: the store's back end upserts them by external id.

use axum::extract::State;

use super::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use super::error::{ApiError, ApiResult};
use super::json::JsonBody;
use super::keys::SecretShop;
use super::state::AppState;
use crate::plugins::hooks::LoyaltyOutcome;
use crate::store::customers::{Customer, CustomerInput, Upserted};
use crate::store::predictions::CustomerPrediction;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/customers", post(upsert_customer))
        .route("/v1/customers/{external_id}", get(get_customer).delete(super::identity::erase))
}

#[derive(Serialize)]
pub struct Upsert<T> {
    pub result: Upserted,
    #[serde(flatten)]
    pub record: T,
    /// What the loyalty plugins did about an order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loyalty: Option<LoyaltyOutcome>,
}

impl<T> Upsert<T> {
    pub fn new(result: Upserted, record: T) -> Self {
        Self { result, record, loyalty: None }
    }
}

/// 201 for a new record, 200 otherwise.
pub fn upsert_status(result: Upserted) -> StatusCode {
    if result == Upserted::Created { StatusCode::CREATED } else { StatusCode::OK }
}

async fn upsert_customer(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    JsonBody(input): JsonBody<CustomerInput>,
) -> ApiResult<(StatusCode, Json<Upsert<Customer>>)> {
    let input = input.validate()?;
    let (customer, result) = state.db.upsert_customer(shop.id, &input).await?;
    if result != Upserted::Unchanged
        && let Err(error) = state.plugins.segment_customer(&shop, customer.id).await
    {
        tracing::error!(%error, "re-segmenting a changed customer failed");
    }
    Ok((upsert_status(result), Json(Upsert::new(result, customer))))
}

/// A customer with their latest predictions (`null` until a predictor has run).
#[derive(Serialize)]
pub struct CustomerRecord {
    #[serde(flatten)]
    pub customer: Customer,
    pub predictions: Option<CustomerPrediction>,
}

async fn get_customer(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(external_id): Path<String>,
) -> ApiResult<Json<CustomerRecord>> {
    let customer =
        state.db.customer_by_external_id(shop.id, &external_id).await?.ok_or(ApiError::NotFound("customer"))?;
    let predictions = state.db.customer_prediction(shop.id, customer.id).await?;
    Ok(Json(CustomerRecord { customer, predictions }))
}
