//! `POST /v1/identify`: a browser's anonymous id joins a known customer, but only with a
//! customer token signed by the store's back end, so no one can claim another shopper.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::json::JsonBody;
use super::keys::PublicShop;
use super::state::AppState;
use crate::auth::TokenCheck;
use crate::store::customers::CustomerInput;
use crate::store::shops::Shop;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(identify))
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct IdentifyRequest {
    /// The browser's id, 1 to 128 characters.
    #[schema(min_length = 1, max_length = 128)]
    anonymous_id: String,
    /// The store's customer id.
    customer_id: String,
    /// The customer token the store's back end signed for `customer_id`.
    customer_token: String,
}

#[derive(Serialize, ToSchema)]
struct IdentifyResponse {
    /// The store's customer id, as sent.
    customer_id: String,
    /// The browser's earlier anonymous events now attributed to the customer.
    events_attributed: u64,
}

/// Joins a browser's anonymous id to a customer the store's back end vouches for with a
/// customer token; the browser's anonymous events become the customer's. A customer the
/// store has not synced yet is created from the id.
#[utoipa::path(
    post,
    path = "/v1/identify",
    tag = "storefront",
    request_body = IdentifyRequest,
    responses(
        (status = 200, description = "The browser now belongs to the customer", body = IdentifyResponse),
        (status = 400, description = "A bad `anonymous_id` (`invalid_anonymous_id`) or a malformed body", body = ErrorBody),
        (status = 403, description = "The customer token does not verify or has expired, or the wrong kind of key", body = ErrorBody),
    ),
    security(("publishable_key" = []), ("publishable_key_query" = [])),
)]
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
