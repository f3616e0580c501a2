//! `POST /v1/rewards/redeem`: a shopper spends points on a reward, proving who they are
//! with the customer token the store signed.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::json::JsonBody;
use super::keys::PublicShop;
use super::state::AppState;
use super::widget_state::verified_shopper;
use crate::loyalty::{CouponView, MemberView, RedeemError, coupon_view};
use crate::store::customers::InvalidInput;
use crate::store::points::PointsError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(redeem))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RedeemRequest {
    /// The store's customer id.
    customer_id: String,
    /// The customer token the store's back end signed for `customer_id`.
    customer_token: String,
    /// A reward of the shop's loyalty program (`member.rewards[].id`).
    reward_id: String,
    /// Makes a retry safe: redeeming again with the same key spends nothing more and
    /// answers with the first coupon. The `Idempotency-Key` header works too. 1 to 255
    /// printable ASCII characters.
    #[schema(min_length = 1, max_length = 255, pattern = "^[!-~]+$")]
    idempotency_key: Option<String>,
}

/// Longest idempotency key accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The client's idempotency key, from the body or the `Idempotency-Key` header.
fn idempotency_key(headers: &HeaderMap, body: Option<String>) -> Result<Option<String>, InvalidInput> {
    let header = match headers.get("idempotency-key") {
        Some(value) => Some(
            value.to_str().map_err(|_| InvalidInput::new("idempotency_key", "must be printable ASCII"))?.to_owned(),
        ),
        None => None,
    };
    let Some(key) = body.or(header) else { return Ok(None) };
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InvalidInput::new(
            "idempotency_key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"),
        ));
    }
    Ok(Some(key))
}

/// The coupon the points bought, and the member as they now are.
#[derive(Serialize, ToSchema)]
struct Redeemed {
    coupon: CouponView,
    member: MemberView,
}

impl From<RedeemError> for ApiError {
    fn from(error: RedeemError) -> Self {
        match error {
            RedeemError::UnknownReward(_) => ApiError::NotFound("reward"),
            RedeemError::NoProgram => ApiError::Conflict(error.to_string()),
            RedeemError::Points(PointsError::Insufficient { .. }) => {
                ApiError::Refused { code: "insufficient_points", message: error.to_string() }
            }
            RedeemError::Points(PointsError::Store(store)) | RedeemError::Store(store) => store.into(),
        }
    }
}

/// Spends a shopper's points on a reward: the shopper proves who they are with the
/// customer token the store's back end signed, and gets a coupon.
#[utoipa::path(
    post,
    path = "/v1/rewards/redeem",
    tag = "storefront",
    request_body = RedeemRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Like the body's `idempotency_key`; the body's wins")),
    responses(
        (status = 200, description = "The coupon and the member's new balance", body = Redeemed),
        (status = 403, description = "The customer token does not verify for this customer (`invalid_customer_token`), \
            or the wrong kind of key", body = ErrorBody),
        (status = 404, description = "No such reward (`not_found`)", body = ErrorBody),
        (status = 409, description = "Not enough points (`insufficient_points`), or no loyalty program (`conflict`)", body = ErrorBody),
    ),
    security(("publishable_key" = []), ("publishable_key_query" = [])),
)]
async fn redeem(
    State(state): State<AppState>,
    PublicShop(shop): PublicShop,
    headers: HeaderMap,
    JsonBody(request): JsonBody<RedeemRequest>,
) -> ApiResult<Json<Redeemed>> {
    let key = idempotency_key(&headers, request.idempotency_key)?;
    let customer_id =
        verified_shopper(&state, &shop, Some(&request.customer_id), Some(&request.customer_token)).await?.ok_or_else(
            || ApiError::forbidden("invalid_customer_token", "the customer token does not verify for this customer"),
        )?;
    let coupon = state.plugins.redeem(&shop, customer_id, &request.reward_id, key.as_deref()).await?;
    state.widget_states.forget(shop.id, customer_id);
    let member = state.plugins.member_view(&shop, customer_id).await?;
    Ok(Json(Redeemed { coupon: coupon_view(&coupon), member }))
}
