//! `POST /v1/identify`: a browser's anonymous id joins a known customer, but only with a
//! customer token signed by the store's back end, so no one can claim another shopper.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
use super::json::JsonBody;
use super::keys::PublicShop;
use super::state::AppState;
use crate::auth::TokenCheck;
use crate::store::customers::CustomerInput;
use crate::store::shops::Shop;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/identify", post(identify))
}

/// Checks a customer token and returns the customer's internal id. A customer the
/// store vouches for but has not synced yet is created from the external id.
pub async fn verified_customer(state: &AppState, shop: &Shop, external_id: &str, token: &str) -> ApiResult<i64> {
    match shop.check_customer_token(external_id, token, state.token_secret.as_deref()) {
        TokenCheck::Valid => {}
        TokenCheck::Expired => {
            return Err(ApiError::forbidden(
                "expired_customer_token",
                "the customer token has expired: the store's back end signs a new one",
            ));
        }
        TokenCheck::Invalid => {
            return Err(ApiError::forbidden(
                "invalid_customer_token",
                "the customer token does not verify: compute it on the store's back end as hex HMAC-SHA256 of the customer id keyed with the shop's secret key",
            ));
        }
    }
    if let Some(customer) = state.db.customer_by_external_id(shop.id, external_id).await? {
        return Ok(customer.id);
    }
    let input = CustomerInput { external_id: Some(external_id.to_owned()), ..CustomerInput::default() }.validate()?;
    Ok(state.db.upsert_customer(shop.id, &input).await?.0.id)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentifyRequest {
    anonymous_id: String,
    customer_id: String,
    customer_token: String,
}

#[derive(Serialize)]
struct IdentifyResponse {
    customer_id: String,
    events_attributed: u64,
}

async fn identify(
    State(state): State<AppState>,
    PublicShop(shop): PublicShop,
    JsonBody(request): JsonBody<IdentifyRequest>,
) -> ApiResult<Json<IdentifyResponse>> {
    if request.anonymous_id.is_empty() || request.anonymous_id.len() > 128 {
        return Err(ApiError::bad_request("invalid_anonymous_id", "anonymous_id must be 1 to 128 characters"));
    }
    let customer_id = verified_customer(&state, &shop, &request.customer_id, &request.customer_token).await?;
    let identified = state.db.identify(shop.id, &request.anonymous_id, customer_id).await?;
    Ok(Json(IdentifyResponse { customer_id: request.customer_id, events_attributed: identified.events_attributed }))
}
