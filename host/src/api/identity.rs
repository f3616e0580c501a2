//! Secret-key API for one person's identity and privacy: merging two records, the
//! merges a customer absorbed, consent set by the store's back end, export and erasure.
//!
//! `{id}` is the store's customer id (external id), or `id:<n>` for Patron's internal
//! id (records known only by email have no external id); a merged-away id answers for
//! its survivor.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::Path;
use super::json::JsonBody;
use super::keys::SecretShop;
use super::state::AppState;
use crate::plugins::PluginHost;
use crate::store::Db;
use crate::store::consent::{ConsentState, Source, Statement, Subject};
use crate::store::merges::{MergeOutcome, MergeReason, MergeRecord};
use crate::store::privacy::{Erased, Requester};
use crate::store::shops::Shop;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(merge))
        .routes(routes!(merges))
        .routes(routes!(set_consent, get_consent))
        .routes(routes!(export))
        .routes(routes!(rotate_key))
        .routes(routes!(set_retention))
        .routes(routes!(tokens, set_tokens))
        .routes(routes!(privacy_requests))
}

/// The longest grace period of a key rotation: 30 days.
pub const MAX_GRACE_HOURS: i64 = 24 * 30;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    /// How long the old key keeps working, 0 to 720 hours; 24 unless said.
    #[schema(minimum = 0, maximum = 720)]
    grace_hours: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct RotateResponse {
    /// The new secret key, shown once.
    secret_key: String,
    /// Until when the old key still works (ISO 8601).
    previous_key_valid_until: String,
}

/// Rotates the secret key of the calling shop: the new key is returned once; the key
/// that made this call keeps working for the grace period, then stops.
#[utoipa::path(
    post,
    path = "/v1/shop/rotate-key",
    tag = "shop",
    request_body = RotateRequest,
    responses((status = 200, description = "The new secret key", body = RotateResponse)),
    security(("secret_key" = [])),
)]
async fn rotate_key(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    JsonBody(request): JsonBody<RotateRequest>,
) -> ApiResult<Json<RotateResponse>> {
    let grace_hours = request.grace_hours.unwrap_or(24);
    if !(0..=MAX_GRACE_HOURS).contains(&grace_hours) {
        return Err(crate::store::customers::InvalidInput::new(
            "grace_hours",
            format!("must be 0 to {MAX_GRACE_HOURS}"),
        )
        .into());
    }
    let secret_key = state.db.rotate_secret(shop.id, grace_hours * 3_600_000).await?;
    let until = crate::store::now_ms() + grace_hours * 3_600_000;
    let previous_key_valid_until =
        chrono::DateTime::from_timestamp_millis(until).map(|t| t.to_rfc3339()).unwrap_or_default();
    Ok(Json(RotateResponse { secret_key, previous_key_valid_until }))
}

/// How long the shop keeps behaviour events.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Retention {
    /// Events older than this many days are deleted; 1 to 36500.
    #[schema(minimum = 1, maximum = 36500)]
    event_retention_days: i64,
}

/// Sets how long the shop's behaviour events are kept.
#[utoipa::path(
    put,
    path = "/v1/shop/event-retention",
    tag = "shop",
    request_body = Retention,
    responses((status = 200, description = "The retention now in force", body = Retention)),
    security(("secret_key" = [])),
)]
async fn set_retention(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    JsonBody(request): JsonBody<Retention>,
) -> ApiResult<Json<Retention>> {
    state.db.set_event_retention(shop.id, request.event_retention_days).await?;
    Ok(Json(request))
}

/// How the shop's customer tokens are signed and checked.
#[derive(Serialize, ToSchema)]
struct TokenSettings {
    /// The key v2 customer tokens are signed with; `null` on a host without a token
    /// secret, where the secret key signs them.
    token_key: Option<String>,
    /// Whether v1 tokens (no expiry, keyed with the secret key) still verify.
    v1_tokens: bool,
}

/// How the shop's customer tokens are signed and checked.
#[utoipa::path(
    get,
    path = "/v1/shop/tokens",
    tag = "shop",
    responses((status = 200, description = "The token settings", body = TokenSettings)),
    security(("secret_key" = [])),
)]
async fn tokens(State(state): State<AppState>, SecretShop(shop): SecretShop) -> Json<TokenSettings> {
    Json(TokenSettings { token_key: shop.token_key(state.token_secret.as_deref()), v1_tokens: shop.v1_tokens })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TokensRequest {
    /// Whether v1 tokens (no expiry, keyed with the secret key) still verify.
    v1_tokens: bool,
}

/// Turns v1 customer tokens on or off.
#[utoipa::path(
    put,
    path = "/v1/shop/tokens",
    tag = "shop",
    request_body = TokensRequest,
    responses((status = 200, description = "The token settings now", body = TokenSettings)),
    security(("secret_key" = [])),
)]
async fn set_tokens(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    JsonBody(request): JsonBody<TokensRequest>,
) -> ApiResult<Json<TokenSettings>> {
    state.db.set_v1_tokens(shop.id, request.v1_tokens).await?;
    Ok(Json(TokenSettings { token_key: shop.token_key(state.token_secret.as_deref()), v1_tokens: request.v1_tokens }))
}

#[derive(Serialize, ToSchema)]
struct RequestList {
    requests: Vec<crate::store::privacy::PrivacyRequest>,
}

/// The shop's audited data subject requests (exports and erasures), newest first; at most 500.
#[utoipa::path(
    get,
    path = "/v1/privacy/requests",
    tag = "customers",
    responses((status = 200, description = "The requests", body = RequestList)),
    security(("secret_key" = [])),
)]
async fn privacy_requests(State(state): State<AppState>, SecretShop(shop): SecretShop) -> ApiResult<Json<RequestList>> {
    Ok(Json(RequestList { requests: state.db.privacy_requests(shop.id, 500).await? }))
}

/// The longest consent text version accepted.
pub const MAX_TEXT_VERSION: usize = 64;

/// The internal id of the customer `reference` names (see the module docs).
pub async fn customer_id(state: &AppState, shop: &Shop, reference: &str) -> ApiResult<i64> {
    if let Some(internal) = reference.strip_prefix("id:") {
        let id: i64 = internal
            .parse()
            .map_err(|_| ApiError::bad_request("invalid_customer_id", "`id:` is followed by Patron's numeric id"))?;
        return state.db.resolve_customer(shop.id, id).await?.ok_or(ApiError::NotFound("customer"));
    }
    Ok(state.db.customer_by_external_id(shop.id, reference).await?.ok_or(ApiError::NotFound("customer"))?.id)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct MergeRequest {
    /// The other customer, folded into the one in the path: the store's id, or `id:<n>`.
    other: String,
}

#[derive(Serialize, ToSchema)]
struct MergeResponse {
    #[serde(flatten)]
    outcome: MergeOutcome,
    /// The survivor's tier as the loyalty plugins judge it after the merge.
    tier: Option<String>,
}

/// Folds another customer record into this one: orders, events, points, coupons, tags,
/// segments, messages and consent move to the survivor, which is re-segmented and re-tiered.
#[utoipa::path(
    post,
    path = "/v1/customers/{external_id}/merge",
    tag = "customers",
    params(("external_id" = String, Path, description = "The store's customer id, or `id:<n>` for Patron's id; a merged-away id answers for its survivor")),
    request_body = MergeRequest,
    responses(
        (status = 200, description = "What the merge moved", body = MergeResponse),
        (status = 409, description = "The two kept being merged concurrently; try again (`conflict`)", body = ErrorBody),
        (status = 400, description = "An `id:` reference without a number (`invalid_customer_id`), or a malformed body", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn merge(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<MergeRequest>,
) -> ApiResult<Json<MergeResponse>> {
    let survivor = customer_id(&state, &shop, &id).await?;
    let other = customer_id(&state, &shop, &request.other).await?;
    let outcome = state.db.merge_customers(shop.id, survivor, other, MergeReason::Manual).await?;
    state.widget_states.forget(shop.id, outcome.survivor_id);
    state.widget_states.forget(shop.id, outcome.merged_id);
    let tier = after_merge(&state.db, &state.plugins, &shop, &outcome).await;
    Ok(Json(MergeResponse { outcome, tier }))
}

/// What follows a merge outside its transaction: the loyalty plugins judge the tier and
/// the segmenters the segments of the merged customer. Failures are logged: the merge
/// stands, and the next order or batch recompute settles them.
pub async fn after_merge(db: &Db, plugins: &PluginHost, shop: &Shop, outcome: &MergeOutcome) -> Option<String> {
    if !outcome.merged {
        return db.tier(shop.id, outcome.survivor_id).await.ok().flatten();
    }
    if let Err(error) = plugins.segment_customer(shop, outcome.survivor_id).await {
        tracing::error!(%error, "re-segmenting a merged customer failed");
    }
    match plugins.retier(shop, outcome.survivor_id).await {
        Ok(Some(tier)) => Some(tier),
        Ok(None) => db.tier(shop.id, outcome.survivor_id).await.ok().flatten(),
        Err(error) => {
            tracing::error!(%error, "re-tiering a merged customer failed");
            None
        }
    }
}

#[derive(Serialize, ToSchema)]
struct MergesResponse {
    /// Patron's id of the customer.
    #[serde(serialize_with = "crate::api::ids::string")]
    #[schema(value_type = String)]
    customer_id: i64,
    merges: Vec<MergeRecord>,
}

/// The records this customer absorbed.
#[utoipa::path(
    get,
    path = "/v1/customers/{external_id}/merges",
    tag = "customers",
    params(("external_id" = String, Path, description = "The store's customer id, or `id:<n>` for Patron's id; a merged-away id answers for its survivor")),
    responses(
        (status = 200, description = "The merges", body = MergesResponse),
        (status = 400, description = "An `id:` reference without a number (`invalid_customer_id`)", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn merges(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(id): Path<String>,
) -> ApiResult<Json<MergesResponse>> {
    let customer_id = customer_id(&state, &shop, &id).await?;
    let merges = state.db.merges_into(shop.id, customer_id).await?;
    Ok(Json(MergesResponse { customer_id, merges }))
}

/// A consent statement from the store's back end: a purpose left out is not changed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ConsentRequest {
    tracking: Option<bool>,
    marketing: Option<bool>,
    /// The version of the text the customer agreed to, 1 to 64 characters.
    #[schema(min_length = 1, max_length = 64)]
    text_version: Option<String>,
    /// `backend` (default) or `import`.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^(backend|import)$")]
    source: Option<Source>,
}

pub fn check_text_version(text_version: Option<&str>) -> ApiResult<()> {
    if text_version.is_some_and(|v| v.is_empty() || v.len() > MAX_TEXT_VERSION) {
        return Err(ApiError::bad_request(
            "invalid_text_version",
            format!("text_version must be 1 to {MAX_TEXT_VERSION} characters"),
        ));
    }
    Ok(())
}

/// Records consent the store's back end collected (or imported) for a customer.
#[utoipa::path(
    put,
    path = "/v1/customers/{external_id}/consent",
    tag = "customers",
    params(("external_id" = String, Path, description = "The store's customer id, or `id:<n>` for Patron's id; a merged-away id answers for its survivor")),
    request_body = ConsentRequest,
    responses(
        (status = 200, description = "The customer's consent now", body = ConsentState),
        (status = 400, description = "Neither `tracking` nor `marketing` (`empty_consent`), a bad `text_version` or \
            `source`, an `id:` reference without a number, or a malformed body", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn set_consent(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<ConsentRequest>,
) -> ApiResult<Json<ConsentState>> {
    if request.tracking.is_none() && request.marketing.is_none() {
        return Err(ApiError::bad_request("empty_consent", "state `tracking`, `marketing` or both"));
    }
    check_text_version(request.text_version.as_deref())?;
    let source = request.source.unwrap_or(Source::Backend);
    if !matches!(source, Source::Backend | Source::Import) {
        return Err(ApiError::bad_request("invalid_source", "the back end sets consent as `backend` or `import`"));
    }
    let customer_id = customer_id(&state, &shop, &id).await?;
    let statement = Statement {
        tracking: request.tracking,
        marketing: request.marketing,
        source,
        text_version: request.text_version.as_deref(),
    };
    Ok(Json(state.db.record_consent(shop.id, &Subject::Customer(customer_id), &statement).await?))
}

/// A customer's consent now, and every statement that made it.
#[derive(Serialize, ToSchema)]
struct ConsentView {
    #[serde(flatten)]
    state: ConsentState,
    log: Vec<crate::store::consent::ConsentRecord>,
}

/// A customer's consent and its log.
#[utoipa::path(
    get,
    path = "/v1/customers/{external_id}/consent",
    tag = "customers",
    params(("external_id" = String, Path, description = "The store's customer id, or `id:<n>` for Patron's id; a merged-away id answers for its survivor")),
    responses(
        (status = 200, description = "The consent and its log", body = ConsentView),
        (status = 400, description = "An `id:` reference without a number (`invalid_customer_id`)", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn get_consent(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(id): Path<String>,
) -> ApiResult<Json<ConsentView>> {
    let customer_id = customer_id(&state, &shop, &id).await?;
    let current = state.db.consent_state(shop.id, &Subject::Customer(customer_id)).await?;
    let log = state.db.consent_log(shop.id, customer_id).await?;
    Ok(Json(ConsentView { state: current, log }))
}

/// Everything Patron holds about a customer (a data subject access request, audited).
#[utoipa::path(
    get,
    path = "/v1/customers/{external_id}/export",
    tag = "customers",
    params(("external_id" = String, Path, description = "The store's customer id, or `id:<n>` for Patron's id; a merged-away id answers for its survivor")),
    responses(
        (status = 200, description = "The customer's data: profile, identities, orders, events, ledger, coupons, \
            tags, segments, consent, messages", body = Object),
        (status = 400, description = "An `id:` reference without a number (`invalid_customer_id`)", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn export(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let customer_id = customer_id(&state, &shop, &id).await?;
    Ok(Json(state.db.export_customer(shop.id, customer_id, Requester::Api).await?))
}

/// Erases a customer (audited): identities, events, consent, tags and segments go, messages
/// are scrubbed, orders and ledger rows stay pseudonymous for the shop's accounts. Routed
/// by `customers.rs`, which owns the path.
#[utoipa::path(
    delete,
    path = "/v1/customers/{external_id}",
    tag = "customers",
    params(("external_id" = String, Path, description = "The store's customer id, or `id:<n>` for Patron's id; a merged-away id answers for its survivor")),
    responses(
        (status = 200, description = "What the erasure removed", body = Erased),
        (status = 400, description = "An `id:` reference without a number (`invalid_customer_id`)", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
pub async fn erase(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path(id): Path<String>,
) -> ApiResult<Json<Erased>> {
    let customer_id = customer_id(&state, &shop, &id).await?;
    let erased = state.db.erase_customer(shop.id, customer_id, Requester::Api).await?;
    state.widget_states.forget(shop.id, customer_id);
    Ok(Json(erased))
}
