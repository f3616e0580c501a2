//! Secret-key API for the merchant's plugins: install (or upgrade), list, enable,
//! disable, configure, roll back, uninstall, and dry-run.

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use base64::Engine as _;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::Path;
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

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, install).layer(DefaultBodyLimit::max(BODY_LIMIT)))
        .routes(routes!(show, uninstall))
        .routes(routes!(enable))
        .routes(routes!(disable))
        .routes(routes!(rollback))
        .routes(routes!(configure))
        .routes(routes!(dry_run))
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

/// A plugin to install, or a new version of an installed one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct InstallRequest {
    manifest: Manifest,
    /// The WebAssembly component, base64 (at most 48 MiB with the rest of the body).
    wasm_base64: String,
    /// Capabilities granted: any of the manifest's `imports`.
    #[serde(default)]
    grants: Vec<String>,
    /// The install's configuration, checked against the manifest's `config-schema`.
    #[schema(value_type = Option<Object>)]
    config: Option<serde_json::Value>,
    /// Enable it at once.
    #[serde(default)]
    enable: bool,
}

/// Installs a plugin (or upgrades it: the previous version is kept for a rollback). The
/// component is checked against its world and the grants against its imports.
#[utoipa::path(
    post,
    path = "/v1/plugins",
    tag = "plugins",
    request_body = InstallRequest,
    responses(
        (status = 201, description = "Installed", body = PluginInstall),
        (status = 409, description = "This name and version is already installed with other contents (`conflict`)", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
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

/// The shop's plugins.
#[utoipa::path(
    get,
    operation_id = "list_plugins",
    path = "/v1/plugins",
    tag = "plugins",
    responses((status = 200, description = "The installs", body = Vec<PluginInstall>)),
    security(("secret_key" = [])),
)]
async fn list(State(state): State<AppState>, SecretShop(shop): SecretShop) -> ApiResult<Json<Vec<PluginInstall>>> {
    Ok(Json(state.db.plugin_installs(shop.id).await?))
}

/// One plugin install.
#[utoipa::path(
    get,
    operation_id = "get_plugin",
    path = "/v1/plugins/{name}",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name")),
    responses(
        (status = 200, description = "The install", body = PluginInstall),
        (status = 404, description = "No such plugin installed", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn show(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginInstall>> {
    state.db.plugin_install(shop.id, &name).await?.map(Json).ok_or(ApiError::NotFound("plugin"))
}

/// Enables a plugin (and resets its circuit breaker).
#[utoipa::path(
    post,
    path = "/v1/plugins/{name}/enable",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name")),
    responses(
        (status = 200, description = "The install", body = PluginInstall),
        (status = 404, description = "No such plugin installed", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn enable(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginInstall>> {
    Ok(Json(state.plugins.set_enabled(shop.id, &name, true).await?))
}

/// Disables a plugin.
#[utoipa::path(
    post,
    path = "/v1/plugins/{name}/disable",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name")),
    responses(
        (status = 200, description = "The install", body = PluginInstall),
        (status = 404, description = "No such plugin installed", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn disable(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginInstall>> {
    Ok(Json(state.plugins.set_enabled(shop.id, &name, false).await?))
}

/// Makes the previous version the active one again.
#[utoipa::path(
    post,
    path = "/v1/plugins/{name}/rollback",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name")),
    responses(
        (status = 200, description = "The install", body = PluginInstall),
        (status = 404, description = "No such plugin installed", body = ErrorBody),
        (status = 409, description = "No previous version (`conflict`)", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn rollback(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginInstall>> {
    Ok(Json(state.plugins.rollback(shop.id, &name).await?))
}

/// Replaces a plugin install's configuration; it is checked against the manifest's `config-schema`.
#[utoipa::path(
    put,
    operation_id = "configure_plugin",
    path = "/v1/plugins/{name}/config",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name")),
    request_body(content = Object, description = "The configuration"),
    responses(
        (status = 200, description = "The install", body = PluginInstall),
        (status = 404, description = "No such plugin installed", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn configure(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
    JsonBody(config): JsonBody<serde_json::Value>,
) -> ApiResult<Json<PluginInstall>> {
    Ok(Json(state.plugins.configure(shop.id, &name, config).await?))
}

/// Uninstalls a plugin with every version of it.
#[utoipa::path(
    delete,
    path = "/v1/plugins/{name}",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name")),
    responses(
        (status = 204, description = "Uninstalled"),
        (status = 404, description = "No such plugin installed", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn uninstall(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.plugins.uninstall(shop.id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a segmenter or loyalty plugin would do across the shop, without doing it.
#[utoipa::path(
    post,
    path = "/v1/plugins/{name}/dry-run",
    tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name")),
    responses(
        (status = 200, description = "The findings", body = DryRunReport),
        (status = 404, description = "No such plugin installed", body = ErrorBody),
        (status = 409, description = "Dry runs cover segmenters and loyalty plugins only (`conflict`)", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn dry_run(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
) -> ApiResult<Json<DryRunReport>> {
    Ok(Json(crate::plugins::dry_run::run(&state.plugins, &shop, &name).await?))
}
