//! Secret-key API for message templates: the built-in ones and the shop's own versions,
//! per locale (`en`, `zh-CN`). A template is checked (known name, parses) before it is stored.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiResult, ErrorBody};
use super::extract::Path;
use super::json::JsonBody;
use super::keys::SecretShop;
use super::state::AppState;
use crate::delivery::templates::{self, Source};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(one, replace))
}

/// A message template in one locale: the built-in one, or the shop's own.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Template)]
struct TemplateView {
    name: String,
    locale: String,
    subject: String,
    body: String,
    /// Whether the shop replaced the built-in template.
    customized: bool,
}

async fn view(state: &AppState, shop_id: i64, name: &str, locale: &str) -> ApiResult<Option<TemplateView>> {
    if let Some(stored) = state.db.template(shop_id, name, locale).await? {
        return Ok(Some(TemplateView {
            name: stored.name,
            locale: stored.locale,
            subject: stored.subject,
            body: stored.body,
            customized: true,
        }));
    }
    Ok(templates::builtin(name, locale).map(|s| TemplateView {
        name: name.to_owned(),
        locale: locale.to_owned(),
        subject: s.subject,
        body: s.body,
        customized: false,
    }))
}

/// Every template in every locale, the shop's own versions where it has them.
#[utoipa::path(
    get,
    operation_id = "list_templates",
    path = "/v1/templates",
    tag = "messages",
    responses((status = 200, description = "The templates", body = Vec<TemplateView>)),
    security(("secret_key" = [])),
)]
async fn list(State(state): State<AppState>, SecretShop(shop): SecretShop) -> ApiResult<Json<Vec<TemplateView>>> {
    let mut all = Vec::new();
    for name in templates::NAMES {
        for locale in templates::LOCALES {
            all.extend(view(&state, shop.id, name, locale).await?);
        }
    }
    Ok(Json(all))
}

/// One template in one locale.
#[utoipa::path(
    get,
    operation_id = "get_template",
    path = "/v1/templates/{name}/{locale}",
    tag = "messages",
    params(
        ("name" = String, Path, description = "The template's name (see `GET /v1/templates`)"),
        ("locale" = String, Path, description = "`en` or `zh-CN`"),
    ),
    responses(
        (status = 200, description = "The template", body = TemplateView),
        (status = 404, description = "No such template or locale", body = ErrorBody),
    ),
    security(("secret_key" = [])),
)]
async fn one(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path((name, locale)): Path<(String, String)>,
) -> ApiResult<Json<TemplateView>> {
    view(&state, shop.id, &name, &locale).await?.map(Json).ok_or(super::error::ApiError::NotFound("template"))
}

/// A template's text: minijinja, checked before it is stored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TemplateBody {
    subject: String,
    body: String,
}

/// Replaces the shop's version of a template; it must be a known name and locale and parse.
#[utoipa::path(
    put,
    operation_id = "replace_template",
    path = "/v1/templates/{name}/{locale}",
    tag = "messages",
    params(
        ("name" = String, Path, description = "The template's name (see `GET /v1/templates`)"),
        ("locale" = String, Path, description = "`en` or `zh-CN`"),
    ),
    request_body = TemplateBody,
    responses((status = 200, description = "The template now", body = TemplateView)),
    security(("secret_key" = [])),
)]
async fn replace(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path((name, locale)): Path<(String, String)>,
    JsonBody(body): JsonBody<TemplateBody>,
) -> ApiResult<Json<TemplateView>> {
    let source = Source { subject: body.subject, body: body.body };
    templates::check(&name, &locale, &source)?;
    state.db.put_template(shop.id, &name, &locale, &source.subject, &source.body).await?;
    Ok(Json(TemplateView { name, locale, subject: source.subject, body: source.body, customized: true }))
}
