//! One error model for every API surface: an enum mapped to an HTTP status and a JSON
//! body that names the offending field.
//!
//! Body shape (compatible with seed 004's `{success, message, data}` envelope):
//! `{"success": false, "message": "...", "error": {"code": "...", "field": "order.cost"},
//!   "errors": [{"field": "order.cost", "message": "..."}]}`

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be processed as sent (malformed JSON, a bad parameter,
    /// a state that does not allow the operation).
    #[error("{message}")]
    BadRequest { field: Option<String>, message: String },
    /// 401: missing or invalid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but this party may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such resource, or not one of the caller's.
    #[error("{0} not found")]
    NotFound(String),
    /// 409: lost a race or the resource changed meanwhile; the client may re-read and retry.
    #[error("{0}")]
    Conflict(String),
    /// 429: the caller holds as much as it may without paying (see `caps`); `retry_after`
    /// seconds until room frees up.
    #[error("{message}")]
    TooMany { field: String, message: String, retry_after: u64 },
    /// 413: the body exceeds the limit.
    #[error("request body is too large")]
    PayloadTooLarge,
    /// 415: the body is not JSON.
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// 422: well-formed JSON whose fields do not validate.
    #[error("validation failed: {}", .0.first().map(|e| e.message.as_str()).unwrap_or(""))]
    Validation(Vec<FieldError>),
    /// 502: a payment gateway failed or answered nonsense.
    #[error("payment gateway error: {0}")]
    Gateway(String),
    /// 503: the store or another backend is unavailable.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// 500: a bug; the message is logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadRequest { field: Some(field.into()), message: message.into() }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError { field: field.into(), message: message.into() }])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Gateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooMany { .. } => "too_many_requests",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Validation(_) => "validation_failed",
            ApiError::Gateway(_) => "gateway_error",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            ApiError::BadRequest { field, .. } => field.as_deref(),
            ApiError::TooMany { field, .. } => Some(field),
            ApiError::Validation(errors) => errors.first().map(|e| e.field.as_str()),
            ApiError::PayloadTooLarge | ApiError::UnsupportedMediaType => Some("body"),
            ApiError::Unauthorized(_) => Some("Authorization"),
            _ => None,
        }
    }

    /// What the client is told. Upstream failures (a gateway, DynamoDB, SQS) and bugs say
    /// only their kind: their detail (a URL, a signed query, an SDK message) goes to the log
    /// with the request id (`x-request-id`), never to the caller.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Gateway(_) => {
                "the payment gateway could not be reached or answered unexpectedly; try again later".into()
            }
            ApiError::Unavailable(_) => "the service is temporarily unavailable; try again later".into(),
            ApiError::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let message = self.public_message();
        let errors = match self {
            ApiError::Validation(errors) => errors.clone(),
            other => other
                .field()
                .map(|f| vec![FieldError { field: f.to_owned(), message: message.clone() }])
                .unwrap_or_default(),
        };
        json!({
            "success": false,
            "message": message,
            "error": { "code": self.code(), "field": self.field() },
            "errors": errors,
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(m) | ApiError::Unavailable(m) | ApiError::Gateway(m) => {
                tracing::error!(error = %m, code = self.code(), "request failed")
            }
            _ => tracing::debug!(error = %self, "request rejected"),
        }
        let mut res = (self.status(), axum::Json(self.body())).into_response();
        if let ApiError::TooMany { retry_after, .. } = &self {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(*retry_after));
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => {
                ApiError::Conflict("the resource was changed by another request; re-read and retry".into())
            }
            StoreError::Unavailable(m) => ApiError::Unavailable(m),
            StoreError::Codec(m) | StoreError::Invalid(m) => ApiError::Internal(m),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// What a refusal names, for rule tests: the field, or `forbidden`, `not found`, `conflict`.
#[cfg(test)]
pub(crate) fn named(e: &ApiError) -> String {
    match e {
        ApiError::Validation(v) => v.iter().map(|f| f.field.as_str()).collect::<Vec<_>>().join(","),
        ApiError::BadRequest { field, .. } => field.clone().unwrap_or_default(),
        ApiError::Forbidden(_) => "forbidden".into(),
        ApiError::NotFound(_) => "not found".into(),
        ApiError::Conflict(_) => "conflict".into(),
        other => format!("{other:?}"),
    }
}
