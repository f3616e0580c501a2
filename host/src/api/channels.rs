//! Secret-key API for a shop's delivery channels: email over SMTP and signed webhooks.
//! Settings are checked before they are stored (a bad one is a 422 naming its field);
//! a webhook's `whsec_` secret is shown once, when it is made, and can be rotated with
//! the old one still valid for an overlap.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::Path;
use super::json::JsonBody;
use super::keys::SecretShop;
use super::state::AppState;
use crate::delivery::channels::{self, ChannelSettings};
use crate::store::customers::InvalidInput;
use crate::store::delivery::StoredChannel;
use crate::store::now_ms;

const HOUR_MS: i64 = 60 * 60 * 1000;
const DEFAULT_OVERLAP_HOURS: i64 = 24;
const MAX_OVERLAP_HOURS: i64 = 24 * 7;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(configure, one, remove)).routes(routes!(rotate))
}

/// A delivery channel; its secrets (SMTP password, webhook secret) are never shown again.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Channel)]
struct ChannelView {
    name: String,
    /// `smtp` or `webhook`.
    kind: String,
    /// The channel's settings without its password.
    #[schema(value_type = Object)]
    settings: serde_json::Value,
    /// Until when the secret replaced by the last rotation still signs (unix ms).
    previous_secret_valid_until: Option<i64>,
    updated_at: i64,
    /// The signing secret: only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl ChannelView {
    fn of(stored: StoredChannel, secret: Option<String>) -> Self {
        let now = now_ms();
        Self {
            settings: channels::public_settings(&stored.kind, &stored.settings),
            name: stored.name,
            kind: stored.kind,
            previous_secret_valid_until: stored.previous_secret_until.filter(|u| *u > now),
            updated_at: stored.updated_at,
            secret,
        }
    }
}

/// The shop's delivery channels.
#[utoipa::path(
    get,
    operation_id = "list_channels",
    path = "/v1/channels",
    tag = "messages",
    responses((status = 200, description = "The channels", body = Vec<ChannelView>)),
    security(("secret_key" = [])),
)]
async fn list(State(state): State<AppState>, SecretShop(shop): SecretShop) -> ApiResult<Json<Vec<ChannelView>>> {
    let stored = state.db.channels(shop.id).await?;
    Ok(Json(stored.into_iter().map(|c| ChannelView::of(c, None)).collect()))
}

/// One delivery channel.
#[utoipa::path(
    get,
    operation_id = "get_channel",
    path = "/v1/channels/{name}",
    tag = "messages",
    params(("name" = String, Path, description = "The channel's name: lower-case letters, digits, `-` and `_`")),
    responses(
        (status = 200, description = "The channel", body = ChannelView),
        (status = 404, description = "No such channel", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn one(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
) -> ApiResult<Json<ChannelView>> {
    let stored = state.db.channel(shop.id, &name).await?.ok_or(ApiError::NotFound("channel"))?;
    Ok(Json(ChannelView::of(stored, None)))
}

/// Creates or replaces a channel: `{"kind": "smtp", "host", "port", "tls", "username",
/// "password", "from"}` or `{"kind": "webhook", "url"}`. Settings are checked (a target
/// must resolve, and to a public address unless the host allows private ones) before they
/// are stored. A new webhook's signing secret is in this answer only.
#[utoipa::path(
    put,
    operation_id = "configure_channel",
    path = "/v1/channels/{name}",
    tag = "messages",
    params(("name" = String, Path, description = "The channel's name: lower-case letters, digits, `-` and `_`")),
    request_body = crate::delivery::channels::ChannelSettings,
    responses(
        (status = 201, description = "A new channel", body = ChannelView),
        (status = 200, description = "The channel, replaced", body = ChannelView),
    ),
    security(("secret_key" = [])),
)]
async fn configure(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<ChannelView>)> {
    channels::check_name(&name)?;
    let kind = body
        .get("kind")
        .and_then(|k| k.as_str())
        .ok_or_else(|| InvalidInput::new("kind", "`smtp` or `webhook` is required"))?
        .to_owned();
    let settings = ChannelSettings::from_json(&kind, body)?;
    channels::check(&settings, state.delivery.allow_private_targets).await?;
    let existing = state.db.channel(shop.id, &name).await?;
    let keeps_secret = existing.as_ref().is_some_and(|e| e.kind == settings.kind() && e.secret.is_some());
    let new_secret =
        (matches!(settings, ChannelSettings::Webhook(_)) && !keeps_secret).then(channels::new_webhook_secret);
    let stored =
        state.db.put_channel(shop.id, &name, settings.kind(), &settings.to_json(), new_secret.as_deref()).await?;
    let status = if existing.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(ChannelView::of(stored, new_secret))))
}

/// Deletes a channel.
#[utoipa::path(
    delete,
    path = "/v1/channels/{name}",
    tag = "messages",
    params(("name" = String, Path, description = "The channel's name: lower-case letters, digits, `-` and `_`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such channel", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn remove(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if state.db.delete_channel(shop.id, &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("channel"))
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    /// How long the old secret keeps signing, in hours (default 24, at most 168).
    #[schema(minimum = 0, maximum = 168)]
    overlap_hours: Option<i64>,
}

/// A webhook channel's new signing secret, shown once.
#[derive(Debug, Serialize, ToSchema)]
struct Rotated {
    /// The new `whsec_…` secret.
    secret: String,
    /// Until when the old secret still signs too (unix ms).
    previous_secret_valid_until: i64,
}

/// A new secret for a webhook channel; during the overlap every webhook carries two
/// signatures, so receivers can switch secrets without losing a message. The body is
/// optional.
#[utoipa::path(
    post,
    path = "/v1/channels/{name}/rotate-secret",
    tag = "messages",
    params(("name" = String, Path, description = "The channel's name: lower-case letters, digits, `-` and `_`")),
    request_body(content = Option<RotateBody>, description = "Optional; an empty body keeps the defaults"),
    responses(
        (status = 200, description = "The new secret", body = Rotated),
        (status = 404, description = "No such webhook channel", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn rotate(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Rotated>> {
    let body: RotateBody = if body.is_empty() {
        RotateBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| InvalidInput::new("body", e.to_string()))?
    };
    let overlap = body.overlap_hours.unwrap_or(DEFAULT_OVERLAP_HOURS);
    if !(0..=MAX_OVERLAP_HOURS).contains(&overlap) {
        return Err(InvalidInput::new("overlap_hours", format!("must be 0 to {MAX_OVERLAP_HOURS}")).into());
    }
    let secret = channels::new_webhook_secret();
    let until = now_ms() + overlap * HOUR_MS;
    state.db.rotate_channel_secret(shop.id, &name, &secret, until).await?;
    Ok(Json(Rotated { secret, previous_secret_valid_until: until }))
}
