//! `POST /v1/consent`: the storefront widget records what the shopper chose in its
//! banner (publishable key). The statement is kept for the browser's anonymous id and,
//! with a customer token the store's back end signed, for the customer too.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
use super::identity::check_text_version;
use super::json::JsonBody;
use super::keys::PublicShop;
use super::state::AppState;
use crate::store::consent::{ConsentState, Source, Statement, Subject};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/consent", post(record))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentRequest {
    anonymous_id: String,
    /// The store's customer id the token is for; without it, the customer the browser
    /// was identified as.
    customer_id: Option<String>,
    customer_token: Option<String>,
    tracking: bool,
    marketing: bool,
    text_version: String,
}

#[derive(Serialize)]
struct ConsentResponse {
    anonymous: ConsentState,
    /// The customer's state, when a customer token verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<ConsentState>,
}

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
