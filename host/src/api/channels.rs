//! Secret-key API for a shop's delivery channels: email over SMTP and signed webhooks.
//! Settings are checked before they are stored (a bad one is a 422 naming its field);
//! a webhook's `whsec_` secret is shown once, when it is made, and can be rotated with
//! the old one still valid for an overlap.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
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

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/channels", get(list))
        .route("/v1/channels/{name}", put(configure).get(one).delete(remove))
        .route("/v1/channels/{name}/rotate-secret", post(rotate))
}

#[derive(Debug, Serialize)]
struct ChannelView {
    name: String,
    kind: String,
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

async fn list(State(state): State<AppState>, SecretShop(shop): SecretShop) -> ApiResult<Json<Vec<ChannelView>>> {
    let stored = state.db.channels(shop.id).await?;
    Ok(Json(stored.into_iter().map(|c| ChannelView::of(c, None)).collect()))
}

async fn one(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(name): Path<String>,
) -> ApiResult<Json<ChannelView>> {
    let stored = state.db.channel(shop.id, &name).await?.ok_or(ApiError::NotFound("channel"))?;
    Ok(Json(ChannelView::of(stored, None)))
}

/// Creates or replaces a channel: `{"kind": "smtp", "host", "port", "tls", "username",
/// "password", "from"}` or `{"kind": "webhook", "url"}`.
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    /// How long the old secret keeps signing, in hours (default 24, at most 168).
    overlap_hours: Option<i64>,
}

#[derive(Debug, Serialize)]
struct Rotated {
    secret: String,
    previous_secret_valid_until: i64,
}

/// A new secret for a webhook channel; during the overlap every webhook carries two
/// signatures, so receivers can switch secrets without losing a message.
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
