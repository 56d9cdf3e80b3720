//! `ApiError`: every way a request can fail, as an HTTP status and a JSON body.
//!
//! Client errors say what to fix (`{"error": code, "message": text, ...}` plus `item`,
//! `field` and `reason` when one event is at fault). Server errors are logged and answered
//! with a generic message, never with internals.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use traffic::ingest::IngestError;

/// A failed API request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not usable JSON (400).
    #[error("{0}")]
    Malformed(String),
    /// A binary events body that cannot be read as its layout (400).
    #[error("{0}")]
    MalformedBinary(String),
    /// Wrong or missing `Content-Type` (415).
    #[error("Content-Type must be {expected}, got {got:?}")]
    UnsupportedMediaType {
        /// The header's value, `(none)` or `(not text)`.
        got: String,
        /// What the endpoint takes.
        expected: &'static str,
    },
    /// Body or batch too large (413).
    #[error("{0}")]
    TooLarge(String),
    /// An event with an unusable field (422).
    #[error("{message}")]
    Invalid {
        /// The whole story, e.g. `item 3: latitude: 91 is out of range -90..=90`.
        message: String,
        /// Index in the array (0 for a single object).
        item: usize,
        /// The field at fault, if one is.
        field: Option<&'static str>,
        /// Why.
        reason: String,
    },
    /// A malformed `Idempotency-Key` header (400).
    #[error(
        "the Idempotency-Key header must be 1 to 128 characters from A-Z a-z 0-9 . _ : - (sent once)"
    )]
    InvalidIdempotencyKey,
    /// A request with this `Idempotency-Key` is still being processed (409, `Retry-After`).
    #[error("a request with this Idempotency-Key is still being processed; retry shortly")]
    InFlight,
    /// This `Idempotency-Key` was used before with a different body (422).
    #[error("this Idempotency-Key was already used with a different body")]
    IdempotencyKeyReused,
    /// No credentials, or bad or expired ones (401, `WWW-Authenticate`).
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the role the endpoint needs, or a cross-origin request
    /// (403).
    #[error("{0}")]
    Forbidden(String),
    /// Too many failed logins; retry after this many seconds (429, `Retry-After`).
    #[error("too many failed attempts; retry in {0} s")]
    TooManyRequests(u64),
    /// The request conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// A setting out of range, of the wrong type or unknown (422).
    #[error("{message}")]
    InvalidSetting {
        /// The whole story, e.g. `kinds.ip.top_k: 0 is out of range 1..=100`.
        message: String,
        /// The setting's JSON path, e.g. `kinds.ip.top_k`.
        field: String,
    },
    /// An alert rule set that cannot be used (422): which rule and where.
    #[error("{0}")]
    InvalidRule(traffic::analytics::rules::RuleError),
    /// A query parameter out of range or unreadable (400).
    #[error("{0}")]
    BadQuery(String),
    /// An uploaded CSV file that cannot be read at all: no usable header (400).
    #[error("{0}")]
    BadCsv(String),
    /// The server keeps no history (`--store memory`) (404).
    #[error("this server keeps no history (started with --store memory)")]
    NoHistory,
    /// No such route (404).
    #[error("no such endpoint: {0}")]
    NotFound(String),
    /// Anything else (500); details are logged, not sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    /// The alert rule at fault, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    /// Where in the rule set, as a JSON path.
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<&'a str>,
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Malformed(message) => ApiError::Malformed(message),
            IngestError::TooManyItems { .. } => ApiError::TooLarge(e.to_string()),
            IngestError::Invalid { item, ref problem } => ApiError::Invalid {
                message: e.to_string(),
                item,
                field: problem.field().map(traffic::Field::name),
                reason: problem.reason(),
            },
        }
    }
}

impl ApiError {
    /// The status and the JSON body, as bytes (so an idempotent answer can be remembered
    /// and replayed byte for byte).
    pub(crate) fn status_and_body(&self) -> (StatusCode, Bytes) {
        let (status, code) = match self {
            ApiError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            ApiError::MalformedBinary(_) => (StatusCode::BAD_REQUEST, "malformed_body"),
            ApiError::UnsupportedMediaType { .. } => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_event"),
            ApiError::InvalidIdempotencyKey => (StatusCode::BAD_REQUEST, "invalid_idempotency_key"),
            ApiError::InFlight => (StatusCode::CONFLICT, "request_in_flight"),
            ApiError::IdempotencyKeyReused => {
                (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
            }
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::InvalidSetting { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_setting")
            }
            ApiError::InvalidRule(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_rule"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::BadQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query"),
            ApiError::BadCsv(_) => (StatusCode::BAD_REQUEST, "invalid_csv"),
            ApiError::NoHistory => (StatusCode::NOT_FOUND, "no_history"),
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let message = match self {
            ApiError::Internal(_) => "internal server error".to_owned(),
            other => other.to_string(),
        };
        let (item, field, reason) = match self {
            ApiError::Invalid {
                item,
                field,
                reason,
                ..
            } => (Some(*item), *field, Some(reason.as_str())),
            ApiError::InvalidSetting { field, .. } => (None, Some(field.as_str()), None),
            ApiError::InvalidRule(e) => (None, None, Some(e.reason.as_str())),
            _ => (None, None, None),
        };
        let (rule, position) = match self {
            ApiError::InvalidRule(e) => (e.rule.as_deref(), Some(e.position.as_str())),
            _ => (None, None),
        };
        let body = Body {
            error: code,
            message,
            item,
            field,
            reason,
            rule,
            position,
        };
        // Serializing a struct of strings and numbers cannot fail.
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        (status, Bytes::from(bytes))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.status_and_body();
        let mut response = json_response(status, body);
        match self {
            ApiError::InFlight => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::TooManyRequests(secs) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            ApiError::Unauthorized(_) => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"traffic-globe\""),
                );
            }
            _ => {}
        }
        response
    }
}

/// A response with `status` and a JSON `body`.
pub(crate) fn json_response(status: StatusCode, body: Bytes) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}
