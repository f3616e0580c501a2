//! Secret-key API for the shop's contact policy: frequency caps, quiet hours, holdout.
//! Fields left out keep their defaults.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::error::ApiResult;
use super::json::JsonBody;
use super::keys::SecretShop;
use super::state::AppState;
use crate::delivery::policy::PolicySettings;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/contact-policy", get(show).put(replace))
}

async fn show(State(state): State<AppState>, SecretShop(shop): SecretShop) -> ApiResult<Json<PolicySettings>> {
    let stored = state.db.delivery_settings(shop.id).await?;
    Ok(Json(stored.and_then(|s| serde_json::from_value(s).ok()).unwrap_or_default()))
}

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
