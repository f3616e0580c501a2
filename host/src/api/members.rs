//! Secret-key API for loyalty members: status and points history, for the store's back
//! office and customer service.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Path, Query};
use super::keys::SecretShop;
use super::state::AppState;
use crate::loyalty::MemberView;
use crate::store::points::LedgerRow;
use crate::store::predictions::CustomerPrediction;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(member))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// How many of the newest ledger rows (default 50; clamped to 1 to 1000).
    #[serde(default = "default_history")]
    history: i64,
}

fn default_history() -> i64 {
    50
}

/// A loyalty member: status, points history and predictions.
#[derive(Serialize, ToSchema)]
#[schema(as = Member)]
struct MemberWithHistory {
    #[serde(flatten)]
    member: MemberView,
    ledger: Vec<LedgerRow>,
    /// The customer's latest predictions (`null` until a predictor has run).
    predictions: Option<CustomerPrediction>,
}

/// A customer's loyalty status, their newest points history and their predictions.
#[utoipa::path(
    get,
    path = "/v1/members/{external_id}",
    tag = "loyalty",
    params(("external_id" = String, Path, description = "The store's customer id"), HistoryQuery),
    responses(
        (status = 200, description = "The member", body = MemberWithHistory),
        (status = 404, description = "No such customer", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
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
