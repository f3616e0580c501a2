//! The links inside messages, followed by recipients: the unsubscribe page (GET shows a
//! confirmation, POST unsubscribes, so a mail scanner prefetching links unsubscribes no
//! one; POST is also what RFC 8058 one-click clients send) and click-tracking redirects.
//! Both carry an HMAC of the shop's secret hash (`delivery::links`).

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{Html, Redirect};
use axum::routing::get;
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::state::AppState;
use crate::delivery::links;
use crate::store::shops::Shop;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/u/{shop_id}/{message_id}/{token}", get(confirm_page).post(unsubscribe))
        .route("/r/{shop_id}/{message_id}", get(click))
}

fn not_found() -> ApiError {
    ApiError::NotFound("link")
}

async fn shop_of(state: &AppState, shop_id: &str) -> ApiResult<Arc<Shop>> {
    let id: i64 = shop_id.parse().map_err(|_| not_found())?;
    state.db.shop(id).await?.map(Arc::new).ok_or_else(not_found)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title></head><body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\">\
         <h1>{title}</h1>{body}</body></html>"
    ))
}

async fn verified(state: &AppState, shop_id: &str, message_id: &str, token: &str) -> ApiResult<(Arc<Shop>, i64)> {
    let shop = shop_of(state, shop_id).await?;
    let message_id: i64 = message_id.parse().map_err(|_| not_found())?;
    if !links::verify_unsubscribe(&shop, message_id, token) {
        return Err(not_found());
    }
    Ok((shop, message_id))
}

async fn confirm_page(
    State(state): State<AppState>,
    Path((shop_id, message_id, token)): Path<(String, String, String)>,
) -> ApiResult<Html<String>> {
    let (shop, _) = verified(&state, &shop_id, &message_id, &token).await?;
    let body = format!(
        "<p>Stop receiving marketing messages from {}?</p><form method=\"post\"><button type=\"submit\">Unsubscribe</button></form>",
        escape(&shop.name)
    );
    Ok(page("Unsubscribe", &body))
}

async fn unsubscribe(
    State(state): State<AppState>,
    Path((shop_id, message_id, token)): Path<(String, String, String)>,
) -> ApiResult<Html<String>> {
    let (shop, message_id) = verified(&state, &shop_id, &message_id, &token).await?;
    state.db.unsubscribe(shop.id, message_id).await?;
    let body = format!("<p>You will no longer receive marketing messages from {}.</p>", escape(&shop.name));
    Ok(page("You are unsubscribed", &body))
}

#[derive(Debug, Deserialize)]
struct ClickQuery {
    u: String,
    t: String,
}

async fn click(
    State(state): State<AppState>,
    Path((shop_id, message_id)): Path<(String, String)>,
    query: Result<Query<ClickQuery>, QueryRejection>,
) -> ApiResult<Redirect> {
    let Query(query) = query.map_err(|_| not_found())?;
    let shop = shop_of(&state, &shop_id).await?;
    let message_id: i64 = message_id.parse().map_err(|_| not_found())?;
    if !links::verify_click(&shop, message_id, &query.u, &query.t) {
        return Err(not_found());
    }
    state.db.record_click(shop.id, message_id, &query.u).await?;
    Ok(Redirect::to(&query.u))
}
