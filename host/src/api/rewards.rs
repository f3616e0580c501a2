//! `POST /v1/rewards/redeem`: a shopper spends points on a reward, proving who they are
//! with the customer token the store signed.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
use super::json::JsonBody;
use super::keys::PublicShop;
use super::state::AppState;
use super::widget_state::verified_shopper;
use crate::loyalty::{CouponView, MemberView, RedeemError, coupon_view};
use crate::store::points::PointsError;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/rewards/redeem", post(redeem))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemRequest {
    customer_id: String,
    customer_token: String,
    reward_id: String,
}

#[derive(Serialize)]
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

async fn redeem(
    State(state): State<AppState>,
    PublicShop(shop): PublicShop,
    JsonBody(request): JsonBody<RedeemRequest>,
) -> ApiResult<Json<Redeemed>> {
    let customer_id =
        verified_shopper(&state, &shop, Some(&request.customer_id), Some(&request.customer_token)).await?.ok_or_else(
            || ApiError::forbidden("invalid_customer_token", "the customer token does not verify for this customer"),
        )?;
    let coupon = state.plugins.redeem(&shop, customer_id, &request.reward_id).await?;
    state.widget_states.forget(shop.id, customer_id);
    let member = state.plugins.member_view(&shop, customer_id).await?;
    Ok(Json(Redeemed { coupon: coupon_view(&coupon), member }))
}
