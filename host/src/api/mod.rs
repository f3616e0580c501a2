//! The HTTP API: one module per resource, merged here.

pub mod analytics;
pub mod channels;
pub mod consent;
pub mod contact_policy;
pub mod cors;
pub mod customers;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod identify;
pub mod identity;
pub mod ids;
pub mod jobs;
pub mod journey_report;
pub mod journeys;
pub mod json;
pub mod keys;
pub mod members;
pub mod message_links;
pub mod messages;
pub mod openapi;
pub mod orders;
pub mod plugins;
pub mod products;
pub mod rate_limit;
pub mod recommendations;
pub mod rewards;
pub mod segments;
pub mod shop;
pub mod state;
pub mod templates;
pub mod timeout;
pub mod widget_state;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use error::InternalCause;
use state::AppState;

/// The whole HTTP application, requests bounded by [`timeout::DEFAULT_REQUEST_TIMEOUT`];
/// tests drive it without a socket.
pub fn app(state: AppState) -> Router {
    app_with_timeout(state, timeout::DEFAULT_REQUEST_TIMEOUT)
}

/// The public JSON API, every route under `/v1/` with its OpenAPI operation: the
/// storefront's (CORS and rate limits apply), the back office's, and the document's own.
struct Api {
    storefront: OpenApiRouter<AppState>,
    back_office: OpenApiRouter<AppState>,
    meta: OpenApiRouter<AppState>,
}

fn api() -> Api {
    let storefront = OpenApiRouter::new()
        .merge(events::router())
        .merge(identify::router())
        .merge(consent::router())
        .merge(widget_state::router())
        .merge(rewards::router())
        .merge(recommendations::router());
    let back_office = OpenApiRouter::new()
        .merge(customers::router())
        .merge(products::router())
        .merge(orders::router())
        .merge(plugins::router())
        .merge(members::router())
        .merge(segments::router())
        .merge(jobs::router())
        .merge(messages::router())
        .merge(channels::router())
        .merge(templates::router())
        .merge(contact_policy::router())
        .merge(journey_report::router())
        .merge(journeys::router())
        .merge(analytics::router())
        .merge(shop::router())
        .merge(identity::router());
    Api { storefront, back_office, meta: openapi::router() }
}

/// The OpenAPI document of the JSON API, as `GET /v1/openapi.json` serves it.
pub fn openapi() -> serde_json::Value {
    let Api { storefront, back_office, meta } = api();
    openapi::document(storefront.merge(back_office).merge(meta).into_openapi())
}

/// The whole HTTP application, each request bounded by `request_timeout`.
pub fn app_with_timeout(state: AppState, request_timeout: Duration) -> Router {
    let Api { storefront, back_office, meta } = api();
    let storefront = Router::from(storefront)
        .layer(middleware::from_fn_with_state(state.clone(), cors::storefront_cors))
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit::limit_public));
    Router::new()
        .merge(storefront)
        .merge(Router::from(back_office))
        .merge(Router::from(meta))
        .merge(health::router())
        .merge(message_links::router())
        .merge(crate::widget::router(state.widget.clone(), state.demo.clone()))
        .merge(crate::console::router(state.clone()))
        .fallback(extract::not_found)
        .layer(middleware::map_response(extract::method_not_allowed))
        .layer(DefaultBodyLimit::max(json::DEFAULT_BODY_LIMIT))
        .layer(middleware::from_fn(move |req, next| timeout::bounded(request_timeout, req, next)))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit::limit_keyed_early))
        .with_state(state)
}

/// Records every request's duration and logs the cause of internal errors, which the
/// client never sees.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    state.metrics.observe_request(&route, &method, response.status().as_u16(), started.elapsed());
    if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
        tracing::error!(%route, %method, cause, "request failed");
    }
    response
}
