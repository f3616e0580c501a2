//! `GET /v1/widget/state`: everything the storefront panel needs in one request. The
//! shopper's own data is returned only with a customer token that verifies; otherwise
//! the state is anonymous (never another shopper's). Cached briefly per shopper.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiResult;
use super::extract::Query;
use super::keys::PublicShop;
use super::state::AppState;
use crate::loyalty::MemberView;
use crate::plugins::recommendations::{Placement, RecsRequest};
use crate::store::shops::Shop;

/// How long a shopper's state is served from memory.
const STATE_TTL: Duration = Duration::from_secs(3);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(widget_state))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct StateQuery {
    /// The signed-in shopper's customer id (the store's); with `customer_token`.
    customer_id: Option<String>,
    /// The customer token the store's back end signed for `customer_id`.
    customer_token: Option<String>,
}

/// The shop as the storefront panel shows it.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[schema(as = WidgetShop)]
pub struct ShopView {
    pub name: String,
    pub locale: String,
    pub currency: String,
    pub consent_required: bool,
    pub honor_dnt: bool,
}

/// The panel's state.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct WidgetState {
    pub shop: ShopView,
    /// The shopper's loyalty status; `null` for an anonymous shopper.
    pub member: Option<MemberView>,
    /// The shopper's "for you" list (anonymous: the home list).
    #[schema(value_type = Vec<crate::plugins::recommendations::Recommendation>)]
    pub recommendations: Vec<serde_json::Value>,
}

/// (shop, customer), `None` for an anonymous shopper.
type ShopperKey = (i64, Option<i64>);
type CachedState = (Instant, Arc<WidgetState>);

/// Recently computed states by (shop, customer); `None` customer is the anonymous state.
#[derive(Clone, Default)]
pub struct StateCache {
    entries: Arc<Mutex<HashMap<ShopperKey, CachedState>>>,
}

impl StateCache {
    fn get(&self, key: ShopperKey) -> Option<Arc<WidgetState>> {
        let entries = self.entries.lock().ok()?;
        entries.get(&key).filter(|(at, _)| at.elapsed() < STATE_TTL).map(|(_, state)| state.clone())
    }

    fn put(&self, key: ShopperKey, state: Arc<WidgetState>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() > 50_000 {
                entries.retain(|_, (at, _)| at.elapsed() < STATE_TTL);
            }
            entries.insert(key, (Instant::now(), state));
        }
    }

    /// Drops a shopper's cached state after it changed.
    pub fn forget(&self, shop_id: i64, customer_id: i64) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&(shop_id, Some(customer_id)));
        }
    }
}

fn shop_view(shop: &Shop) -> ShopView {
    ShopView {
        name: shop.name.clone(),
        locale: shop.locale.clone(),
        currency: shop.currency.clone(),
        consent_required: shop.consent_required,
        honor_dnt: shop.honor_dnt,
    }
}

/// The internal id of the shopper a verified token names, if the store knows them.
pub async fn verified_shopper(
    state: &AppState,
    shop: &Shop,
    customer_id: Option<&str>,
    token: Option<&str>,
) -> ApiResult<Option<i64>> {
    let (Some(external_id), Some(token)) = (customer_id, token) else { return Ok(None) };
    if shop.check_customer_token(external_id, token, state.token_secret.as_deref()) != crate::auth::TokenCheck::Valid {
        return Ok(None);
    }
    Ok(state.db.customer_by_external_id(shop.id, external_id).await?.map(|c| c.id))
}

/// The shopper's "for you" list (anonymous: the home list). A failure leaves it empty:
/// the panel still shows the member's status.
async fn for_you(state: &AppState, shop: &Shop, customer_id: Option<i64>) -> Vec<serde_json::Value> {
    let request = RecsRequest {
        placement: Placement::ForYou,
        context: Vec::new(),
        exclude: Vec::new(),
        customer_id,
        limit: super::recommendations::DEFAULT_LIMIT,
    };
    match state.plugins.recommend(shop, &request).await {
        Ok(items) => items.iter().filter_map(|item| serde_json::to_value(item).ok()).collect(),
        Err(error) => {
            tracing::warn!(shop = shop.id, %error, "widget state: recommendations failed");
            Vec::new()
        }
    }
}

/// Everything the storefront panel needs in one request: the shop, the shopper's loyalty
/// status (only with a customer token that verifies; otherwise anonymous, never another
/// shopper's) and recommendations. Cached for a few seconds per shopper.
#[utoipa::path(
    get,
    path = "/v1/widget/state",
    tag = "storefront",
    params(StateQuery),
    responses(
        (status = 200, description = "The panel's state", body = WidgetState,
            headers(("Cache-Control" = String, description = "`private, no-store`"))),
    ),
    security(("publishable_key" = []), ("publishable_key_query" = [])),
)]
async fn widget_state(
    State(state): State<AppState>,
    PublicShop(shop): PublicShop,
    Query(query): Query<StateQuery>,
) -> ApiResult<impl IntoResponse> {
    let customer_id =
        verified_shopper(&state, &shop, query.customer_id.as_deref(), query.customer_token.as_deref()).await?;
    let key = (shop.id, customer_id);
    let view = match state.widget_states.get(key) {
        Some(view) => view,
        None => {
            let member = match customer_id {
                Some(id) => Some(state.plugins.member_view(&shop, id).await?),
                None => None,
            };
            let view = Arc::new(WidgetState {
                shop: shop_view(&shop),
                member,
                recommendations: for_you(&state, &shop, customer_id).await,
            });
            state.widget_states.put(key, view.clone());
            view
        }
    };
    Ok(([(header::CACHE_CONTROL, "private, no-store")], Json(view.as_ref().clone())))
}
