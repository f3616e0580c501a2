//! `POST /v1/events`: behaviour events from storefronts, in batches.
//!
//! Each event is validated on its own: a bad one is rejected with its reason while the
//! good ones are stored. Accepted events are durable before the response; a client id
//! already stored is reported as a duplicate, so retried batches count once.

use std::collections::HashSet;

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
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

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_events)).layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// A batch of a browser's events: an `anonymous_id`, a verified customer (`customer_id`
/// with its `customer_token`), or both.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EventBatch {
    /// The browser's id, 1 to 128 characters.
    #[schema(min_length = 1, max_length = 128)]
    anonymous_id: Option<String>,
    /// The store's customer id; with `customer_token`.
    customer_id: Option<String>,
    /// The customer token the store's back end signed for `customer_id`.
    customer_token: Option<String>,
    /// At most 100 events; each is accepted or rejected on its own.
    #[schema(value_type = Vec<EventInput>, max_items = 100)]
    events: Vec<serde_json::Value>,
}

/// One behaviour event.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EventInput {
    /// The client's id of the event, 1 to 128 characters: a retried event counts once.
    #[schema(min_length = 1, max_length = 128)]
    id: String,
    /// A standard kind (`page_view`, `product_view`, `search`, `add_to_cart`,
    /// `remove_from_cart`, `checkout_started`, `recommendation_impression`,
    /// `recommendation_click`) or `custom:<name>`.
    kind: String,
    /// When it happened; now when absent. At most an hour ahead and 30 days back.
    time: Option<Timestamp>,
    /// At most 2048 characters.
    url: Option<String>,
    /// Free-form, at most 8 KiB as JSON.
    #[serde(default)]
    properties: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = EventStatus)]
enum Status {
    Accepted,
    Duplicate,
    Rejected,
}

/// What became of one event of the batch.
#[derive(Debug, Serialize, ToSchema)]
struct EventResult {
    /// The event's `id`, when it had a string one.
    id: Option<String>,
    status: Status,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Counts per outcome, and each event's, in the batch's order.
#[derive(Serialize, ToSchema)]
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

/// Records a batch of storefront events. Each event is checked on its own: the good ones
/// are stored (durably, before the answer) while the bad ones are reported with why. An
/// event id already stored counts as a duplicate, so a retried batch counts once. On a
/// shop that requires consent, or from a browser sending GPC or DNT to a shop that honours
/// them, nothing is stored without a tracking consent (403). The body may be sent as
/// `text/plain` (what `navigator.sendBeacon` sends); at most 512 KiB.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "storefront",
    request_body(content = EventBatch, content_type = "application/json"),
    responses(
        (status = 200, description = "Every event's outcome", body = BatchResponse),
        (status = 400, description = "More than 100 events, a bad `anonymous_id`, `customer_id` without \
            `customer_token` (or the reverse), or neither an anonymous id nor a customer", body = ErrorBody),
        (status = 403, description = "No key of the right kind, a customer token that does not verify, \
            or no tracking consent (`tracking_consent_required`, `privacy_signal`)", body = ErrorBody),
    ),
    security(("publishable_key" = []), ("publishable_key_query" = [])),
)]
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
