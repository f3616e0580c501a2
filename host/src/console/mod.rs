//! The merchant console at `/admin/`: server-rendered pages (minijinja templates
//! embedded in the binary, htmx for in-page updates, Apache ECharts for charts, both
//! vendored from npm at build time by `patron-console-assets`) signed in per shop with
//! roles. Every figure comes from the same `analytics` function as its
//! `/v1/analytics/…` JSON; every query is scoped by the signed-in user's shop, so another
//! shop's object is simply not found.
//!
//! One module per page: [`overview`], [`customers`] (search and the 360° view),
//! [`insights`] (RFM grid, cohorts), [`segments`] (sizes over time, members, CSV export),
//! [`loyalty`] (tiers, points, rewards, coupons), [`recommendations`] (attribution),
//! [`plugins`] (installs, configuration,
//! dry runs, failed jobs), [`settings`] (shop settings, key rotation), [`owner`] (users,
//! audit log);
//! [`auth`] signs in and guards every route; [`views`] renders.

pub mod assets;
pub mod auth;
pub mod customers;
pub mod i18n;
pub mod insights;
pub mod loyalty;
pub mod overview;
pub mod owner;
pub mod plugins;
pub mod recommendations;
pub mod segments;
pub mod settings;
pub mod users;
pub mod views;

use axum::Router;
use axum::http::HeaderMap;
use axum::middleware;
use axum::response::Redirect;
use axum::routing::get;

use crate::api::state::AppState;

/// Every console route under `/admin`, behind [`auth::guard`].
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/admin", get(|| async { Redirect::to("/admin/overview") }))
        .route("/admin/", get(|| async { Redirect::to("/admin/overview") }))
        .merge(auth::router())
        .merge(overview::router())
        .merge(customers::router())
        .merge(insights::router())
        .merge(loyalty::router())
        .merge(recommendations::router())
        .merge(segments::router())
        .merge(owner::router())
        .merge(plugins::router())
        .merge(settings::router())
        .merge(assets::router())
        .layer(middleware::from_fn_with_state(state, auth::guard))
}

/// Whether an htmx request asks for the fragment with this target id.
pub(crate) fn wants_fragment(headers: &HeaderMap, target: &str) -> bool {
    headers.contains_key("hx-request")
        && !headers.contains_key("hx-history-restore-request")
        && headers.get("hx-target").and_then(|v| v.to_str().ok()) == Some(target)
}
