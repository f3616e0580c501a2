//! A JSON body extractor whose failures are API errors: malformed JSON is a 400, a body
//! of the wrong shape a 422 naming the field, an oversized body a 413. It ignores the
//! Content-Type, because `navigator.sendBeacon` can only send `text/plain` without a
//! CORS preflight.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::state::AppState;

/// Parsed JSON request body.
pub struct JsonBody<T>(pub T);

/// The largest body any route accepts unless it sets a smaller limit.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::bad_request("unreadable_body", rejection.body_text())
            }
        })?;
        parse(&bytes).map(JsonBody)
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let parsed = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            ApiError::Invalid(crate::store::customers::InvalidInput::new("body", e.to_string()))
        }
        _ => ApiError::bad_request("malformed_json", format!("request body is not valid JSON: {e}")),
    })?;
    if has_nul(bytes) {
        return Err(
            crate::store::customers::InvalidInput::new("body", "a string holds the NUL character (\\u0000)").into()
        );
    }
    Ok(parsed)
}

/// Whether a JSON text holds a NUL character (`\u0000`, the only way JSON can): no text
/// column takes one (PostgreSQL refuses it), so no request may carry one.
pub fn has_nul(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json[i + 1..].starts_with(b"u0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::has_nul;

    #[test]
    fn finds_escaped_nul_characters_only() {
        assert!(has_nul(br#"{"phone": "a\u0000b"}"#));
        assert!(has_nul(br#"["\\\u0000"]"#), "an escaped backslash, then a NUL");
        assert!(!has_nul(br#"["\\u0000"]"#), "a backslash, then the text u0000");
        assert!(!has_nul(br#"{"a": "\u0001", "b": "u0000"}"#));
    }
}
