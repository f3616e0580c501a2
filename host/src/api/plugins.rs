//! Secret-key API for the merchant's plugins: install (or upgrade), list, enable,
//! disable, configure, roll back, uninstall, and dry-run.

use axum::extract::{DefaultBodyLimit, State};

use super::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::json::JsonBody;
use super::keys::SecretShop;
use super::state::AppState;
use crate::plugins::PluginAdminError;
use crate::plugins::dry_run::DryRunReport;
use crate::store::customers::InvalidInput;
use crate::store::plugins::PluginInstall;
use patron_runtime::Manifest;

/// The largest plugin upload (base64 inside JSON).
pub const BODY_LIMIT: usize = 48 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/plugins", get(list).post(install).layer(DefaultBodyLimit::max(BODY_LIMIT)))
        .route("/v1/plugins/{name}", get(show).delete(uninstall))
        .route("/v1/plugins/{name}/enable", post(enable))
        .route("/v1/plugins/{name}/disable", post(disable))
        .route("/v1/plugins/{name}/rollback", post(rollback))
        .route("/v1/plugins/{name}/config", put(configure))
        .route("/v1/plugins/{name}/dry-run", post(dry_run))
}

impl From<PluginAdminError> for ApiError {
    fn from(error: PluginAdminError) -> Self {
        match error {
            PluginAdminError::NotInstalled(_) => ApiError::NotFound("plugin"),
            PluginAdminError::Store(store) => store.into(),
            PluginAdminError::NoPreviousVersion(_) => ApiError::Conflict(error.to_string()),
            PluginAdminError::Config(mismatch) => ApiError::Invalid(InvalidInput::new("config", mismatch.to_string())),
            other => ApiError::Invalid(InvalidInput::new("plugin", other.to_string())),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstallRequest {
    manifest: Manifest,
    /// The component, base64.
    wasm_base64: String,
    /// Capabilities granted: any of log, clock, config, kv.
    #[serde(default)]
    grants: Vec<String>,
    config: Option<serde_json::Value>,
    #[serde(default)]
    enable: bool,
}

async fn install(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    JsonBody(request): JsonBody<InstallRequest>,
) -> ApiResult<(StatusCode, Json<PluginInstall>)> {
    let wasm = base64::engine::general_purpose::STANDARD
        .decode(request.wasm_base64.trim())
        .map_err(|e| InvalidInput::new("wasm_base64", e.to_string()))?;
    let install =
        state.plugins.install(shop.id, wasm, request.manifest, request.grants, request.config, request.enable).await?;
    Ok((StatusCode::CREATED, Json(install)))
}

async fn list(State(state): State<AppState>, SecretShop(shop): SecretShop) -> ApiResult<Json<Vec<PluginInstall>>> {
    Ok(Json(state.db.plugin_installs(shop.id).await?))
}

async fn show(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginInstall>> {
    state.db.plugin_install(shop.id, &name).await?.map(Json).ok_or(ApiError::NotFound("plugin"))
}

async fn enable(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginInstall>> {
    Ok(Json(state.plugins.set_enabled(shop.id, &name, true).await?))
}

async fn disable(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginInstall>> {
    Ok(Json(state.plugins.set_enabled(shop.id, &name, false).await?))
}

async fn rollback(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginInstall>> {
    Ok(Json(state.plugins.rollback(shop.id, &name).await?))
}

async fn configure(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
    JsonBody(config): JsonBody<serde_json::Value>,
) -> ApiResult<Json<PluginInstall>> {
    Ok(Json(state.plugins.configure(shop.id, &name, config).await?))
}

async fn uninstall(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.plugins.uninstall(shop.id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn dry_run(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
) -> ApiResult<Json<DryRunReport>> {
    Ok(Json(crate::plugins::dry_run::run(&state.plugins, &shop, &name).await?))
}
