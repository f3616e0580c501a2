//! `GET /admin/static/{file}`: the console's own stylesheet and script, and the vendored
//! htmx and ECharts (gzip-encoded when the browser accepts it).

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use patron_console_assets::{ECHARTS, HTMX};

use crate::api::state::AppState;

const CSS: &str = include_str!("static/console.css");
const JS: &str = include_str!("static/console.js");

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/admin/static/{file}", get(asset))
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let (body, gzipped, content_type): (&'static [u8], Option<&'static [u8]>, &'static str) = match file.as_str() {
        "console.css" => (CSS.as_bytes(), None, "text/css; charset=utf-8"),
        "console.js" => (JS.as_bytes(), None, "text/javascript; charset=utf-8"),
        "htmx.min.js" => match HTMX {
            Some(asset) => (asset.bytes, asset.gzipped, "text/javascript; charset=utf-8"),
            None => return StatusCode::NOT_FOUND.into_response(),
        },
        "echarts.min.js" => match ECHARTS {
            Some(asset) => (asset.bytes, asset.gzipped, "text/javascript; charset=utf-8"),
            None => return StatusCode::NOT_FOUND.into_response(),
        },
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let accepts_gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut response = match gzipped {
        Some(gz) if accepts_gzip => {
            let mut response = gz.into_response();
            response.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            response
        }
        _ => body.into_response(),
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
