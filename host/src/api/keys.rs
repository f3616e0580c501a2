//! Who is calling: extractors that turn a publishable or secret key into the shop it
//! belongs to. Publishable keys come from browsers (`?key=pk_…` or `X-Patron-Key`);
//! secret keys from the store's back end (`Authorization: Bearer sk_…`).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri, header};

use super::error::ApiError;
use super::state::AppState;
use crate::store::shops::Shop;

/// The shop whose publishable key the request carries.
pub struct PublicShop(pub Arc<Shop>);

/// The shop whose secret key the request carries.
pub struct SecretShop(pub Arc<Shop>);

pub fn publishable_key(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(value) = headers.get("x-patron-key").and_then(|v| v.to_str().ok()) {
        return Some(value.to_owned());
    }
    uri.query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "key")
        .map(|(_, value)| value.to_owned())
}

/// Resolves the publishable key of a request to its shop.
pub async fn public_shop(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<Arc<Shop>, ApiError> {
    let key = publishable_key(headers, uri)
        .ok_or_else(|| ApiError::unauthorized("missing_key", "pass the shop's publishable key as ?key=pk_…"))?;
    if key.starts_with("sk_") {
        return Err(ApiError::forbidden(
            "secret_key_in_browser",
            "a secret key must never be sent from a browser; use the publishable key (pk_…) and rotate this secret",
        ));
    }
    state
        .shops
        .by_publishable_key(&state.db, &key)
        .await?
        .ok_or_else(|| ApiError::unauthorized("invalid_key", "unknown publishable key"))
}

impl FromRequestParts<AppState> for PublicShop {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(shop) = parts.extensions.get::<Arc<Shop>>() {
            return Ok(Self(shop.clone()));
        }
        public_shop(state, &parts.headers, &parts.uri).await.map(Self)
    }
}

impl FromRequestParts<AppState> for SecretShop {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("missing_key", "send the shop's secret key as `Authorization: Bearer sk_…`")
            })?;
        if bearer.starts_with("pk_") {
            return Err(ApiError::forbidden(
                "secret_key_required",
                "this endpoint needs the secret key, not the publishable key",
            ));
        }
        let shop = state
            .shops
            .by_secret(&state.db, bearer)
            .await?
            .ok_or_else(|| ApiError::unauthorized("invalid_key", "unknown secret key"))?;
        // A cached answer for a rotated-out key holds only until its grace period ends.
        let hash = crate::auth::secret_hash(bearer);
        if hash != shop.secret_hash && !shop.token_key_hashes(crate::store::now_ms()).contains(&hash.as_str()) {
            return Err(ApiError::unauthorized(
                "expired_key",
                "this secret key was rotated out and its grace period is over",
            ));
        }
        Ok(Self(shop))
    }
}
