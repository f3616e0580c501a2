//! Secret-key API for the shop's contact policy: frequency caps, quiet hours, holdout.
//! Fields left out keep their defaults.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiResult;
use super::json::JsonBody;
use super::keys::SecretShop;
use super::state::AppState;
use crate::delivery::policy::PolicySettings;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, replace))
}

/// The shop's contact policy (the defaults until it sets one).
#[utoipa::path(
    get,
    operation_id = "get_contact_policy",
    path = "/v1/contact-policy",
    tag = "messages",
    responses((status = 200, description = "The policy", body = PolicySettings)),
    security(("secret_key" = [])),
)]
async fn show(State(state): State<AppState>, SecretShop(shop): SecretShop) -> ApiResult<Json<PolicySettings>> {
    let stored = state.db.delivery_settings(shop.id).await?;
    Ok(Json(stored.and_then(|s| serde_json::from_value(s).ok()).unwrap_or_default()))
}

/// Replaces the shop's contact policy; fields left out take their defaults.
#[utoipa::path(
    put,
    operation_id = "replace_contact_policy",
    path = "/v1/contact-policy",
    tag = "messages",
    request_body = PolicySettings,
    responses((status = 200, description = "The policy now", body = PolicySettings)),
    security(("secret_key" = [])),
)]
async fn replace(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    JsonBody(settings): JsonBody<PolicySettings>,
) -> ApiResult<Json<PolicySettings>> {
    settings.validate()?;
    let value = serde_json::to_value(&settings).map_err(anyhow::Error::from)?;
    state.db.put_delivery_settings(shop.id, &value).await?;
    Ok(Json(settings))
}
