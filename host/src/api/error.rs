//! The one error type of the HTTP API: a status per variant, a JSON body
//! `{"error":{"code":"...","message":"..."}}`, and no internal detail sent to clients.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;
use crate::store::customers::InvalidInput;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    Invalid(#[from] InvalidInput),
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// A conflict the client can act on, with its own code (e.g. `insufficient_points`).
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error("request body is larger than this endpoint accepts")]
    PayloadTooLarge,
    #[error("this route does not take that method")]
    MethodNotAllowed,
    #[error("too many requests; retry after the time in Retry-After")]
    RateLimited,
    #[error("internal error: {0}")]
    Internal(#[source] anyhow::Error),
}

/// The body of every error answer (the OpenAPI document's `Error` schema).
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = Error, example = json!({"error": {"code": "not_found", "message": "customer not found"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable machine-readable `code` and a message for people.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case: e.g. `missing_key`, `invalid_key`, `invalid_field`, `malformed_json`,
    /// `not_found`, `conflict`, `payload_too_large`, `rate_limited`, `timeout`, `internal`.
    pub code: String,
    /// What a person reads; internal errors never carry their cause.
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { error: ErrorDetail { code: code.into(), message: message.into() } }
    }
}

/// The cause of a 500, kept in the response's extensions for the logging middleware.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into() }
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthorized { code, message: message.into() }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden { code, message: message.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) | Self::Refused { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::Forbidden { code, .. }
            | Self::Refused { code, .. } => code,
            Self::Invalid(invalid) => invalid.code,
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RateLimited => "rate_limited",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Invalid(invalid) => Self::Invalid(invalid),
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict(message) => Self::Conflict(message),
            StoreError::Plugin(message) => Self::Refused { code: "plugin_failed", message },
            other => Self::Internal(other.into()),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        Self::Internal(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = match &self {
            Self::Internal(_) => "an internal error occurred".to_owned(),
            other => other.to_string(),
        };
        let body = ErrorBody::new(self.code(), message);
        let mut response = (self.status(), Json(body)).into_response();
        if let Self::Internal(cause) = &self {
            response.extensions_mut().insert(InternalCause(format!("{cause:#}")));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause() {
        let response = ApiError::Internal(anyhow::anyhow!("password=hunter2 in connection string")).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let cause = response.extensions().get::<InternalCause>().expect("cause kept for logs");
        assert!(cause.0.contains("hunter2"));
    }

    #[test]
    fn store_errors_map_to_statuses() {
        let invalid: ApiError = StoreError::Invalid(InvalidInput::new("amount", "too big")).into();
        assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let missing: ApiError = StoreError::NotFound("order").into();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let conflict: ApiError = StoreError::Conflict("x".into()).into();
        assert_eq!(conflict.status(), StatusCode::CONFLICT);
        let plugin: ApiError = StoreError::Plugin("rfm: trapped: unreachable".into()).into();
        assert_eq!((plugin.status(), plugin.code()), (StatusCode::CONFLICT, "plugin_failed"));
        assert_eq!(plugin.to_string(), "rfm: trapped: unreachable", "the plugin's own message, for its owner");
        let internal: ApiError = StoreError::Internal("a task panicked at src/x.rs".into()).into();
        assert_eq!((internal.status(), internal.code()), (StatusCode::INTERNAL_SERVER_ERROR, "internal"));
        let body = internal.into_response();
        let cause = body.extensions().get::<InternalCause>().expect("cause kept for logs");
        assert!(cause.0.contains("panicked"), "logged, not sent: {}", cause.0);
    }
}
