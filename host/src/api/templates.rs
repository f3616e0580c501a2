//! Secret-key API for message templates: the built-in ones and the shop's own versions,
//! per locale (`en`, `zh-CN`). A template is checked (known name, parses) before it is stored.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ApiResult;
use super::json::JsonBody;
use super::keys::SecretShop;
use super::state::AppState;
use crate::delivery::templates::{self, Source};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/templates", get(list)).route("/v1/templates/{name}/{locale}", get(one).put(replace))
}

#[derive(Debug, Serialize)]
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

async fn list(State(state): State<AppState>, SecretShop(shop): SecretShop) -> ApiResult<Json<Vec<TemplateView>>> {
    let mut all = Vec::new();
    for name in templates::NAMES {
        for locale in templates::LOCALES {
            all.extend(view(&state, shop.id, name, locale).await?);
        }
    }
    Ok(Json(all))
}

async fn one(
    State(state): State<AppState>,
    SecretShop(shop): SecretShop,
    Path((name, locale)): Path<(String, String)>,
) -> ApiResult<Json<TemplateView>> {
    view(&state, shop.id, &name, &locale).await?.map(Json).ok_or(super::error::ApiError::NotFound("template"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateBody {
    subject: String,
    body: String,
}

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
