//! `POST /v1/events`: behaviour events from storefronts, in batches.
//!
//! Each event is validated on its own: a bad one is rejected with its reason while the
//! good ones are stored. Accepted events are durable before the response; a client id
//! already stored is reported as a duplicate, so retried batches count once.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
use super::identify::verified_customer;
use super::json::JsonBody;
use super::keys::PublicShop;
use super::state::AppState;
use crate::store::events::NewEvent;
use crate::store::now_ms;
use crate::timestamp::Timestamp;

/// The most events one batch may carry.
pub const MAX_BATCH: usize = 100;
/// The largest body `POST /v1/events` accepts.
pub const BODY_LIMIT: usize = 512 * 1024;
const MAX_PROPERTIES_BYTES: usize = 8 * 1024;
const MAX_ID_LEN: usize = 128;
/// How far in the future a browser clock may be.
const MAX_CLOCK_SKEW_MS: i64 = 60 * 60 * 1000;
/// How long an offline browser may hold events before they are too stale to take.
const MAX_EVENT_AGE_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// Event kinds every storefront may send; others must be `custom:<name>`.
pub const STANDARD_KINDS: &[&str] = patron_runtime::EVENT_KINDS;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/events", post(post_events))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBatch {
    anonymous_id: Option<String>,
    customer_id: Option<String>,
    customer_token: Option<String>,
    events: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventInput {
    id: String,
    kind: String,
    time: Option<Timestamp>,
    url: Option<String>,
    #[serde(default)]
    properties: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Status {
    Accepted,
    Duplicate,
    Rejected,
}

#[derive(Debug, Serialize)]
struct EventResult {
    id: Option<String>,
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize)]
struct BatchResponse {
    accepted: usize,
    duplicates: usize,
    rejected: usize,
    results: Vec<EventResult>,
}

pub fn is_valid_kind(kind: &str) -> bool {
    patron_runtime::is_event_kind(kind)
}

fn check_id(field: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_ID_LEN {
        return Err(format!("{field} must be 1 to {MAX_ID_LEN} characters"));
    }
    Ok(())
}

/// Validates one event of a batch; the error is the reason it is rejected.
fn validate_event(
    raw: serde_json::Value,
    now: i64,
    anonymous_id: &Option<String>,
    customer_id: Option<i64>,
) -> Result<NewEvent, String> {
    let input: EventInput = serde_json::from_value(raw).map_err(|e| e.to_string())?;
    check_id("id", &input.id)?;
    if !is_valid_kind(&input.kind) {
        return Err(format!(
            "unknown kind `{}`: use one of {} or `custom:<name>`",
            input.kind,
            STANDARD_KINDS.join(", ")
        ));
    }
    let occurred_at = input.time.map_or(now, |t| t.0);
    if occurred_at > now + MAX_CLOCK_SKEW_MS {
        return Err("time is in the future".into());
    }
    if occurred_at < now - MAX_EVENT_AGE_MS {
        return Err("time is more than 30 days ago".into());
    }
    let properties = serde_json::Value::Object(input.properties).to_string();
    if properties.len() > MAX_PROPERTIES_BYTES {
        return Err(format!("properties exceed {MAX_PROPERTIES_BYTES} bytes"));
    }
    if input.url.as_ref().is_some_and(|u| u.len() > 2048) {
        return Err("url exceeds 2048 characters".into());
    }
    Ok(NewEvent {
        event_id: input.id,
        kind: input.kind,
        occurred_at,
        anonymous_id: anonymous_id.clone(),
        customer_id,
        url: input.url,
        properties,
    })
}

/// Whether the request carries a privacy signal: `Sec-GPC: 1` (Global Privacy Control)
/// or `DNT: 1` (Do Not Track).
pub fn privacy_signal(headers: &HeaderMap) -> bool {
    ["sec-gpc", "dnt"].iter().any(|name| headers.get(*name).is_some_and(|v| v.as_bytes().trim_ascii() == b"1"))
}

/// Refuses a batch the shopper has not agreed to be tracked by: on a shop that requires
/// consent, without an explicit tracking consent of the browser (or its customer); from
/// a browser sending GPC or DNT to a shop that honours them (the default), likewise.
/// Nothing of a refused batch is stored.
async fn check_tracking_consent(
    state: &AppState,
    shop: &crate::store::shops::Shop,
    headers: &HeaderMap,
    anonymous_id: Option<&str>,
    customer_id: Option<i64>,
) -> ApiResult<()> {
    let signal = shop.honor_dnt && privacy_signal(headers);
    if !shop.consent_required && !signal {
        return Ok(());
    }
    match state.db.tracking_consent(shop.id, anonymous_id, customer_id).await? {
        Some(true) => Ok(()),
        _ if shop.consent_required => Err(ApiError::forbidden(
            "tracking_consent_required",
            "this shop records behaviour only after the shopper consents to tracking (POST /v1/consent)",
        )),
        _ => Err(ApiError::forbidden(
            "privacy_signal",
            "the browser sent Global Privacy Control or Do Not Track and has not opted in to tracking \
             (POST /v1/consent)",
        )),
    }
}

async fn post_events(
    State(state): State<AppState>,
    PublicShop(shop): PublicShop,
    headers: HeaderMap,
    JsonBody(batch): JsonBody<EventBatch>,
) -> ApiResult<Json<BatchResponse>> {
    if batch.events.len() > MAX_BATCH {
        return Err(ApiError::bad_request(
            "too_many_events",
            format!("a batch carries at most {MAX_BATCH} events, this one has {}", batch.events.len()),
        ));
    }
    if let Some(anonymous_id) = &batch.anonymous_id {
        check_id("anonymous_id", anonymous_id).map_err(|m| ApiError::bad_request("invalid_anonymous_id", m))?;
    }
    let customer_id = match (&batch.customer_id, &batch.customer_token) {
        (Some(external_id), Some(token)) => Some(verified_customer(&state, &shop, external_id, token).await?),
        (None, None) => match &batch.anonymous_id {
            Some(anonymous_id) => state.db.customer_for_anonymous(shop.id, anonymous_id).await?,
            None => None,
        },
        _ => {
            return Err(ApiError::bad_request("incomplete_customer", "customer_id and customer_token come together"));
        }
    };
    if batch.anonymous_id.is_none() && customer_id.is_none() {
        return Err(ApiError::bad_request(
            "missing_anonymous_id",
            "a batch needs an anonymous_id or a verified customer",
        ));
    }
    check_tracking_consent(&state, &shop, &headers, batch.anonymous_id.as_deref(), customer_id).await?;

    let now = now_ms();
    let mut results = Vec::with_capacity(batch.events.len());
    let mut to_store = Vec::with_capacity(batch.events.len());
    let mut seen = HashSet::new();
    for raw in batch.events {
        let id = raw.get("id").and_then(|v| v.as_str()).map(str::to_owned);
        match validate_event(raw, now, &batch.anonymous_id, customer_id) {
            Ok(event) if !seen.insert(event.event_id.clone()) => {
                results.push(EventResult { id, status: Status::Duplicate, reason: None });
            }
            Ok(event) => {
                results.push(EventResult { id, status: Status::Accepted, reason: None });
                to_store.push(event);
            }
            Err(reason) => results.push(EventResult { id, status: Status::Rejected, reason: Some(reason) }),
        }
    }
    let listeners = state.plugins.listeners(shop.id).await?;
    let inserted = state.db.insert_events_triggering(shop.id, &to_store, &listeners).await?;
    for result in &mut results {
        if result.status == Status::Accepted && !result.id.as_ref().is_some_and(|id| inserted.contains(id)) {
            result.status = Status::Duplicate;
        }
    }
    let count = |status: Status| results.iter().filter(|r| r.status == status).count();
    let response = BatchResponse {
        accepted: count(Status::Accepted),
        duplicates: count(Status::Duplicate),
        rejected: count(Status::Rejected),
        results,
    };
    state.metrics.add_events(response.accepted as u64, response.duplicates as u64, response.rejected as u64);
    Ok(Json(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_standard_or_custom_prefixed() {
        assert!(is_valid_kind("product_view"));
        assert!(is_valid_kind("custom:wishlist_add"));
        assert!(!is_valid_kind("wishlist_add"));
        assert!(!is_valid_kind("custom:"));
        assert!(!is_valid_kind("custom:has space"));
    }

    #[test]
    fn events_too_far_in_time_are_rejected() {
        let now = 1_000_000_000_000;
        let anon = Some("a1".to_owned());
        let future = serde_json::json!({"id": "e1", "kind": "page_view", "time": now + 2 * MAX_CLOCK_SKEW_MS});
        assert!(validate_event(future, now, &anon, None).is_err());
        let stale = serde_json::json!({"id": "e2", "kind": "page_view", "time": now - MAX_EVENT_AGE_MS - 1});
        assert!(validate_event(stale, now, &anon, None).is_err());
        let fine = serde_json::json!({"id": "e3", "kind": "page_view", "time": now - 1000});
        assert_eq!(validate_event(fine, now, &anon, None).map(|e| e.occurred_at), Ok(now - 1000));
    }
}
