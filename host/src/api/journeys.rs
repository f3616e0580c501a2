//! `GET /v1/journeys/state?customer_id=<id>` (secret key): where a customer is in the
//! shop's journeys — the timers each automation install has pending for them.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::error::{ApiError, ApiResult};
use super::keys::SecretShop;
use super::state::AppState;
use crate::journeys::state::{self, InstallState};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/journeys/state", get(journey_state))
}

#[derive(Serialize)]
struct JourneyState {
    customer_id: String,
    installs: Vec<InstallState>,
}

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
