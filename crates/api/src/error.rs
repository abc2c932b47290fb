//! The error type every handler returns, and the table from codes to statuses.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use logpool_core::memory::OverBudget;
use logpool_core::query::QueryParseError;
use logpool_engines::coordination::CoordinationError;
use logpool_engines::index::IndexError;
use logpool_engines::metadata::MetadataError;
use logpool_engines::queue::QueueError;
use serde_json::json;

/// Machine-readable error codes, stable across releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request is malformed or a value is invalid.
    BadRequest,
    /// The body is not in an accepted format.
    UnsupportedMediaType,
    /// A limit was exceeded.
    PayloadTooLarge,
    /// No API key, or one that is unknown, wrong or disabled.
    Unauthorized,
    /// The key's role or scope does not allow the request.
    Forbidden,
    /// A stored quota (e.g. storage) refuses the write until usage drops.
    QuotaExceeded,
    /// The named object does not exist.
    NotFound,
    /// The object exists already or the change conflicts with its state.
    Conflict,
    /// The service is over a limit; retry later.
    TooManyRequests,
    /// Waited the longest allowed time for something that has not happened yet
    /// (e.g. written records becoming searchable); retry later.
    WaitTimeout,
    /// An engine cannot serve right now; retry later.
    Unavailable,
    /// A bug or an unexpected engine failure.
    Internal,
}

impl ErrorCode {
    /// Returns the HTTP status of this code.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::QuotaExceeded => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::WaitTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Returns the code as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::WaitTimeout => "wait_timeout",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// An error answer: a code, a message for people, and extra JSON details.
#[derive(Debug)]
pub struct ApiError {
    /// The code.
    pub code: ErrorCode,
    /// What went wrong, naming the field, line or limit.
    pub message: String,
    /// Extra fields merged into the error object (e.g. `position`, `limit`).
    pub details: serde_json::Map<String, serde_json::Value>,
    /// Sent as `Retry-After` when set.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// Creates an error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            details: serde_json::Map::new(),
            retry_after: None,
        }
    }

    /// A 400.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }

    /// A 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Forbidden, message)
    }

    /// A 500; the cause is logged, not sent.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(ErrorCode::Internal, "internal error; see the server log")
    }

    /// Adds a detail field.
    pub fn with_detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> ApiError {
        self.details.insert(key.to_string(), value.into());
        self
    }

    /// Sets `Retry-After`.
    pub fn with_retry_after(mut self, after: Duration) -> ApiError {
        self.retry_after = Some(after);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::Map::new();
        error.insert("code".into(), json!(self.code.as_str()));
        error.insert("message".into(), json!(self.message));
        error.extend(self.details);
        let mut response =
            (self.code.status(), axum::Json(json!({ "error": error }))).into_response();
        if self.code == ErrorCode::Unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"logpool\""),
            );
        }
        if let Some(after) = self.retry_after {
            let seconds = after.as_secs().max(1).to_string();
            if let Ok(value) = HeaderValue::from_str(&seconds) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> ApiError {
        match error {
            QueueError::Full {
                shard,
                reason,
                retry_after,
            } => ApiError::new(
                ErrorCode::Unavailable,
                format!(
                    "shard {} of project `{}` is full ({reason}); retry later",
                    shard.partition, shard.project
                ),
            )
            .with_retry_after(retry_after),
            QueueError::Closed => ApiError::new(
                ErrorCode::Unavailable,
                "the queue is shutting down; retry later",
            )
            .with_retry_after(Duration::from_secs(1)),
            QueueError::Unavailable(reason) => {
                tracing::warn!(%reason, "queue unavailable");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "the queue is unavailable; retry later",
                )
                .with_retry_after(Duration::from_secs(1))
            }
            other => {
                tracing::error!(error = %other, "queue failure");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "the queue could not store the batch; retry later",
                )
                .with_retry_after(Duration::from_secs(1))
            }
        }
    }
}

impl From<IndexError> for ApiError {
    fn from(error: IndexError) -> ApiError {
        match error {
            IndexError::InvalidQuery(message) => {
                ApiError::bad_request(message).with_detail("field", "query")
            }
            IndexError::LimitExceeded(message) => ApiError::bad_request(message),
            IndexError::OverMemoryBudget { ref budget, .. } => match *budget {
                OverBudget::Request { limit } => ApiError::bad_request(error.to_string())
                    .with_detail("limit", "max_query_memory_bytes")
                    .with_detail("max", limit),
                // Other queries of the tenant hold the memory; it is back when they end.
                OverBudget::Tenant { limit } => {
                    ApiError::new(ErrorCode::TooManyRequests, error.to_string())
                        .with_detail("limit", "max_query_memory_bytes_per_tenant")
                        .with_detail("max", limit)
                        .with_retry_after(Duration::from_secs(1))
                }
            },
            IndexError::Unavailable(message) => {
                tracing::warn!(%message, "index unavailable");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "the index is unavailable; retry later",
                )
                .with_retry_after(Duration::from_secs(1))
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<MetadataError> for ApiError {
    fn from(error: MetadataError) -> ApiError {
        match error {
            MetadataError::NotFound { .. } => ApiError::not_found(error.to_string()),
            MetadataError::AlreadyExists { .. } | MetadataError::Conflict(_) => {
                ApiError::new(ErrorCode::Conflict, error.to_string())
            }
            MetadataError::Unavailable(reason) => {
                tracing::warn!(%reason, "metadata store unavailable");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "the metadata store is unavailable; retry later",
                )
                .with_retry_after(Duration::from_secs(1))
            }
            MetadataError::Database(_) => ApiError::internal(error),
        }
    }
}

impl From<CoordinationError> for ApiError {
    fn from(error: CoordinationError) -> ApiError {
        tracing::warn!(%error, "coordination failure");
        ApiError::new(
            ErrorCode::Unavailable,
            "coordination is unavailable; retry later",
        )
        .with_retry_after(Duration::from_secs(1))
    }
}

/// A 400 for a query (search or tail filter) that does not parse or exceeds a limit,
/// which is then named in `limit` with its `max`.
impl From<QueryParseError> for ApiError {
    fn from(error: QueryParseError) -> ApiError {
        let api_error = ApiError::bad_request(format!("invalid query: {error}"))
            .with_detail("field", "query")
            .with_detail("position", error.position);
        match error.limit {
            Some(limit) => api_error
                .with_detail("limit", limit.limit)
                .with_detail("max", limit.max),
            None => api_error,
        }
    }
}
