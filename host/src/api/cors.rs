//! CORS for storefront-facing routes: a browser may call them only from one of the
//! shop's allowed origins. The shop is found from the publishable key in the query,
//! which preflight requests carry too. Requests without `Origin` are not from a
//! browser page and pass through (the key alone identifies the shop).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::keys::public_shop;
use super::state::AppState;

pub async fn storefront_cors(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next.run(req).await;
    };
    let shop = match public_shop(&state, req.headers(), req.uri()).await {
        Ok(shop) => shop,
        Err(error) => return error.into_response(),
    };
    let origin_text = origin.to_str().unwrap_or_default().trim_end_matches('/');
    let allowed = shop.allowed_origins.iter().any(|o| o == "*" || o.trim_end_matches('/') == origin_text);
    if !allowed {
        return ApiError::forbidden(
            "origin_not_allowed",
            format!("origin `{origin_text}` is not among this shop's allowed storefront origins"),
        )
        .into_response();
    }
    let mut response = if req.method() == Method::OPTIONS {
        let mut preflight = StatusCode::NO_CONTENT.into_response();
        let headers = preflight.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type, x-patron-key, idempotency-key"),
        );
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        preflight
    } else {
        req.extensions_mut().insert(shop);
        next.run(req).await
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    response
}
