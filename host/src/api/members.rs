//! Secret-key API for loyalty members: status and points history, for the store's back
//! office and customer service.

use axum::extract::State;

use super::extract::{Path, Query};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
use super::keys::SecretShop;
use super::state::AppState;
use crate::loyalty::MemberView;
use crate::store::points::LedgerRow;
use crate::store::predictions::CustomerPrediction;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/members/{external_id}", get(member))
}

#[derive(Deserialize)]
struct HistoryQuery {
    #[serde(default = "default_history")]
    history: i64,
}

fn default_history() -> i64 {
    50
}

#[derive(Serialize)]
struct MemberWithHistory {
    #[serde(flatten)]
    member: MemberView,
    ledger: Vec<LedgerRow>,
    /// The customer's latest predictions (`null` until a predictor has run).
    predictions: Option<CustomerPrediction>,
}

async fn member(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(external_id): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<Json<MemberWithHistory>> {
    let customer =
        state.db.customer_by_external_id(shop.id, &external_id).await?.ok_or(ApiError::NotFound("customer"))?;
    let member = state.plugins.member_view(&shop, customer.id).await?;
    let ledger = state.db.ledger(shop.id, customer.id, query.history.clamp(1, 1000)).await?;
    let predictions = state.db.customer_prediction(shop.id, customer.id).await?;
    Ok(Json(MemberWithHistory { member, ledger, predictions }))
}
