//! Secret-key API for customers: the store's back end upserts them by external id.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Path, Query};
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

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upsert_customer, search_customers))
        .routes(routes!(get_customer, super::identity::erase))
}

/// A record as an upsert left it, with what the upsert did.
#[derive(Serialize, ToSchema)]
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

/// Creates or updates a customer by `external_id` (or, without one, by `email`); fields
/// left out stay as they are. A customer whose data changed is re-segmented.
#[utoipa::path(
    post,
    path = "/v1/customers",
    tag = "customers",
    request_body = CustomerInput,
    responses(
        (status = 201, description = "A new customer", body = Upsert<Customer>),
        (status = 200, description = "An existing customer, updated or unchanged (`result`)", body = Upsert<Customer>),
        (status = 409, description = "The input conflicts with another customer (`conflict`)", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
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
#[derive(Serialize, ToSchema)]
pub struct CustomerRecord {
    #[serde(flatten)]
    pub customer: Customer,
    pub predictions: Option<CustomerPrediction>,
}

/// One customer by the store's id, with their latest predictions.
#[utoipa::path(
    get,
    path = "/v1/customers/{external_id}",
    tag = "customers",
    params(("external_id" = String, Path, description = "The store's customer id")),
    responses(
        (status = 200, description = "The customer", body = CustomerRecord),
        (status = 404, description = "No such customer", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    /// Email or name containing it, external id equal to it, phone containing its digits;
    /// everyone when absent. At most 255 characters.
    #[param(max_length = 255)]
    q: Option<String>,
    /// Customers per page, 1 to 200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(value_type = Option<String>, pattern = "^-?[0-9]+$")]
    cursor: Option<String>,
}

/// Customers matching `q`, in id order, a page at a time (`next_cursor` → `cursor`).
#[utoipa::path(
    get,
    path = "/v1/customers",
    tag = "customers",
    params(SearchQuery),
    responses((status = 200, description = "A page of customers", body = CustomerSearch)),
    security(("secret_key" = [])),
)]
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
    if q.chars().count() > 255 {
        return Err(InvalidInput::new("q", "longer than 255 characters").into());
    }
    Ok(Json(state.db.search_customers(shop.id, &q, cursor, limit).await?))
}
