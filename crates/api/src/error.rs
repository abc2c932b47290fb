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
use logpool_wire::{ErrorBody, ErrorObject};

pub use logpool_wire::ErrorCode;

/// The HTTP status of an error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
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
        let status = status_of(self.code);
        let body = ErrorBody {
            error: ErrorObject {
                code: self.code,
                message: self.message,
                details: self.details,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
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
            MetadataError::TooMany { max, .. } => {
                ApiError::new(ErrorCode::Conflict, error.to_string()).with_detail("limit", max)
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
