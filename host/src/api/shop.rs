//! Secret-key API for the calling shop's own settings: `GET /v1/shop` reads them,
//! `PATCH /v1/shop` changes origins, consent and DNT/GPC policy, currency, locale and
//! time zone (each checked; a currency change is refused once the shop records money).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiResult;
use super::json::JsonBody;
use super::keys::SecretShop;
use super::state::AppState;
use crate::store::customers::InvalidInput;
use crate::store::shops::{Shop, ShopUpdate};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, update))
}

/// A shop's settings as the API shows them (never a key's secret).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Shop)]
struct ShopView {
    #[serde(serialize_with = "super::ids::string")]
    #[schema(value_type = String)]
    id: i64,
    name: String,
    publishable_key: String,
    allowed_origins: Vec<String>,
    currency: String,
    timezone: String,
    locale: String,
    consent_required: bool,
    honor_dnt: bool,
}

impl From<&Shop> for ShopView {
    fn from(shop: &Shop) -> Self {
        Self {
            id: shop.id,
            name: shop.name.clone(),
            publishable_key: shop.publishable_key.clone(),
            allowed_origins: shop.allowed_origins.clone(),
            currency: shop.currency.clone(),
            timezone: shop.timezone.clone(),
            locale: shop.locale.clone(),
            consent_required: shop.consent_required,
            honor_dnt: shop.honor_dnt,
        }
    }
}

/// The calling shop's settings.
#[utoipa::path(
    get,
    operation_id = "get_shop",
    path = "/v1/shop",
    tag = "shop",
    responses((status = 200, description = "The shop", body = ShopView)),
    security(("secret_key" = [])),
)]
async fn show(SecretShop(shop): SecretShop) -> Json<ShopView> {
    Json(ShopView::from(shop.as_ref()))
}

/// `{"allowed_origins": [...], "consent_required": bool, "honor_dnt": bool, "currency": "EUR",
/// "locale": "zh-CN", "timezone": "Asia/Shanghai"}`, every field optional; answers with the
/// shop as it now is. Cached lookups of the shop are dropped so the change applies at once.
#[utoipa::path(
    patch,
    path = "/v1/shop",
    tag = "shop",
    request_body = ShopUpdate,
    responses(
        (status = 200, description = "The shop as it now is", body = ShopView),
        (status = 409, description = "A currency change once the shop has recorded money (`conflict`)", body = crate::api::error::ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn update(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    JsonBody(update): JsonBody<ShopUpdate>,
) -> ApiResult<Json<ShopView>> {
    let update = update.validate()?;
    if update.is_empty() {
        return Err(InvalidInput::new(
            "body",
            "name at least one of allowed_origins, consent_required, honor_dnt, currency, locale, timezone",
        )
        .into());
    }
    let updated = state.db.update_shop(shop.id, &update).await?;
    state.shops.forget(shop.id);
    Ok(Json(ShopView::from(&updated)))
}
