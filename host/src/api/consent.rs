//! `POST /v1/consent`: the storefront widget records what the shopper chose in its
//! banner (publishable key). The statement is kept for the browser's anonymous id and,
//! with a customer token the store's back end signed, for the customer too.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::identity::check_text_version;
use super::json::JsonBody;
use super::keys::PublicShop;
use super::state::AppState;
use crate::store::consent::{ConsentState, Source, Statement, Subject};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(record))
}

/// What the shopper chose in the consent banner.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BannerConsent)]
struct ConsentRequest {
    /// The browser's id, 1 to 128 characters.
    #[schema(min_length = 1, max_length = 128)]
    anonymous_id: String,
    /// The store's customer id the token is for; without it, the customer the browser
    /// was identified as.
    customer_id: Option<String>,
    customer_token: Option<String>,
    tracking: bool,
    marketing: bool,
    /// The version of the banner's text the shopper saw, 1 to 64 characters.
    #[schema(min_length = 1, max_length = 64)]
    text_version: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = BannerConsentState)]
struct ConsentResponse {
    anonymous: ConsentState,
    /// The customer's state, when a customer token verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<ConsentState>,
}

/// Records the shopper's choice from the storefront's consent banner for the browser and,
/// with a customer token that verifies, for the customer too.
#[utoipa::path(
    post,
    path = "/v1/consent",
    tag = "storefront",
    request_body = ConsentRequest,
    responses(
        (status = 200, description = "The consent now recorded", body = ConsentResponse),
        (status = 400, description = "A bad `anonymous_id` or `text_version`, `customer_id` without \
            `customer_token`, or a token for a browser not identified yet (`unknown_customer`)", body = ErrorBody),
        (status = 403, description = "The customer token does not verify or has expired, or the wrong kind of key", body = ErrorBody),
    ),
    security(("publishable_key" = []), ("publishable_key_query" = [])),
)]
async fn record(
    State(state): State<AppState>,
    PublicShop(shop): PublicShop,
    JsonBody(request): JsonBody<ConsentRequest>,
) -> ApiResult<Json<ConsentResponse>> {
    if request.anonymous_id.is_empty() || request.anonymous_id.len() > 128 {
        return Err(ApiError::bad_request("invalid_anonymous_id", "anonymous_id must be 1 to 128 characters"));
    }
    check_text_version(Some(&request.text_version))?;
    let customer_id = match (&request.customer_token, &request.customer_id) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(ApiError::bad_request("incomplete_customer", "customer_id comes with a customer_token"));
        }
        (Some(token), Some(external_id)) => {
            Some(super::identify::verified_customer(&state, &shop, external_id, token).await?)
        }
        (Some(token), None) => {
            let linked = match state.db.customer_for_anonymous(shop.id, &request.anonymous_id).await? {
                Some(id) => state.db.customer(shop.id, id).await?,
                None => None,
            };
            let external_id = linked.and_then(|c| c.external_id).ok_or_else(|| {
                ApiError::bad_request(
                    "unknown_customer",
                    "this browser is not identified yet: send customer_id with the customer_token",
                )
            })?;
            Some(super::identify::verified_customer(&state, &shop, &external_id, token).await?)
        }
    };
    let statement = Statement {
        tracking: Some(request.tracking),
        marketing: Some(request.marketing),
        source: Source::Widget,
        text_version: Some(&request.text_version),
    };
    let anonymous =
        state.db.record_consent(shop.id, &Subject::Anonymous(request.anonymous_id.clone()), &statement).await?;
    let customer = match customer_id {
        Some(id) => {
            state.widget_states.forget(shop.id, id);
            Some(state.db.record_consent(shop.id, &Subject::Customer(id), &statement).await?)
        }
        None => None,
    };
    Ok(Json(ConsentResponse { anonymous, customer }))
}
