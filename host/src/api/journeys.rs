//! `GET /v1/journeys/state?customer_id=<id>` (secret key): where a customer is in the
//! shop's journeys — the timers each automation install has pending for them.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::Query;
use super::keys::SecretShop;
use super::state::AppState;
use crate::journeys::state::{self, InstallState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(journey_state))
}

/// Where a customer is in the shop's journeys.
#[derive(Serialize, ToSchema)]
struct JourneyState {
    /// Patron's customer id.
    customer_id: String,
    installs: Vec<InstallState>,
}

/// The timers each automation install has pending for a customer.
#[utoipa::path(
    get,
    path = "/v1/journeys/state",
    tag = "messages",
    params(("customer_id" = String, Query, description = "Patron's customer id", pattern = "^-?[0-9]+$")),
    responses(
        (status = 200, description = "The customer's pending timers per install", body = JourneyState),
        (status = 400, description = "No `customer_id` (`missing_customer_id`) or not an id (`invalid_customer_id`)", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn journey_state(
    State(app): State<AppState>,
    SecretShop(shop): SecretShop,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<JourneyState>> {
    let raw = query.get("customer_id").ok_or_else(|| {
        ApiError::bad_request("missing_customer_id", "customer_id (Patron's customer id) is required")
    })?;
    let customer_id: i64 = raw
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_customer_id", "customer_id must be a Patron customer id"))?;
    if app.db.customer(shop.id, customer_id).await?.is_none() {
        return Err(ApiError::NotFound("customer"));
    }
    let installs = state::pending(&app.db, shop.id, customer_id).await?;
    Ok(Json(JourneyState { customer_id: customer_id.to_string(), installs }))
}
