//! Secret-key API for customers: the store's back end upserts them by external id.

use axum::extract::State;

use super::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
use super::json::JsonBody;
use super::keys::SecretShop;
use super::state::AppState;
use crate::plugins::hooks::LoyaltyOutcome;
use crate::store::customer_search::CustomerSearch;
use crate::store::customers::{Customer, CustomerInput, InvalidInput, Upserted};
use crate::store::predictions::CustomerPrediction;

/// Customers per search page by default, and at most.
const DEFAULT_SEARCH_LIMIT: i64 = 50;
const MAX_SEARCH_LIMIT: i64 = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/customers", post(upsert_customer).get(search_customers))
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

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /v1/customers?q=&limit=&cursor=`: customers matching `q` (email or name containing
/// it, external id equal to it, phone containing its digits; everyone when absent), in id
/// order, a page at a time (`next_cursor` → `cursor`).
async fn search_customers(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Query(query): Query<SearchQuery>,
) -> ApiResult<Json<CustomerSearch>> {
    let limit = query
        .limit
        .as_deref()
        .map(|text| {
            text.parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_SEARCH_LIMIT).contains(n))
                .ok_or_else(|| InvalidInput::new("limit", format!("must be from 1 to {MAX_SEARCH_LIMIT}")))
        })
        .transpose()?
        .unwrap_or(DEFAULT_SEARCH_LIMIT);
    let cursor = query
        .cursor
        .as_deref()
        .map(|text| text.parse::<i64>().map_err(|_| InvalidInput::new("cursor", "must be the next_cursor of a page")))
        .transpose()?;
    let q = query.q.unwrap_or_default();
    if q.len() > 255 {
        return Err(InvalidInput::new("q", "longer than 255 characters").into());
    }
    Ok(Json(state.db.search_customers(shop.id, &q, cursor, limit).await?))
}
