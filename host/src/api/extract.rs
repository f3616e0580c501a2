//! Path and query extractors whose failures are API errors (axum's own answer in plain
//! text), and the JSON answers for routes and methods that do not exist.

use axum::extract::FromRequestParts;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::store::customers::InvalidInput;

/// Path parameters; a parameter of the wrong shape is a 422 naming the path.
pub struct Path<T>(pub T);

/// Query parameters; a parameter of the wrong shape is a 422 naming the query.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if has_nul(parts.uri.path()) {
            return Err(InvalidInput::new("path", NUL).into());
        }
        axum::extract::Path::<T>::from_request_parts(parts, state).await.map(|p| Self(p.0)).map_err(path_error)
    }
}

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.uri.query().is_some_and(has_nul) {
            return Err(InvalidInput::new("query", NUL).into());
        }
        axum::extract::Query::<T>::from_request_parts(parts, state).await.map(|q| Self(q.0)).map_err(query_error)
    }
}

/// What a parameter holding a NUL character is told: no text column takes one.
const NUL: &str = "holds the NUL character (%00)";

/// Whether a URI's path or query holds an encoded NUL character.
fn has_nul(text: &str) -> bool {
    text.as_bytes().windows(3).any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

fn path_error(rejection: PathRejection) -> ApiError {
    match rejection {
        PathRejection::FailedToDeserializePathParams(e) => InvalidInput::new("path", e.body_text()).into(),
        other => ApiError::bad_request("bad_path", other.body_text()),
    }
}

fn query_error(rejection: QueryRejection) -> ApiError {
    InvalidInput::new("query", rejection.body_text()).into()
}

/// The answer for a path no route matches.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

/// Gives axum's bare 405 (a route asked with a method it does not take) the error
/// format, keeping its `Allow` header. A mapping of the response rather than a fallback
/// so that middleware on routes (CORS preflights) still sees the request first.
pub async fn method_not_allowed(response: Response) -> Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED || response.headers().contains_key(header::CONTENT_TYPE) {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut json = ApiError::MethodNotAllowed.into_response();
    if let Some(allow) = allow {
        json.headers_mut().insert(header::ALLOW, allow);
    }
    json
}
