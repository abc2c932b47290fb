//! Errors in Elasticsearch's shape, so clients that parse `error.type` and
//! `error.reason` (Grafana shows the reason) understand them:
//! `{"error": {"root_cause": [{"type", "reason"}], "type", "reason"}, "status"}`.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use logpool_api::error::status_of;
use logpool_api::{ApiError, ErrorCode};
use logpool_wire::es_search::{EsErrorAnswer, EsErrorCause, EsErrorObject};

/// An error answered in Elasticsearch's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {reason}")]
pub struct EsError {
    /// HTTP status.
    pub status: u16,
    /// Elasticsearch's error type, e.g. `parsing_exception`.
    pub kind: &'static str,
    /// What is wrong, naming the key or the limit.
    pub reason: String,
    /// Sent as `Retry-After` when set (429, 503).
    pub retry_after: Option<Duration>,
}

impl EsError {
    fn new(status: u16, kind: &'static str, reason: impl Into<String>) -> EsError {
        EsError {
            status,
            kind,
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// A 400 `parsing_exception`: the request cannot be read.
    pub fn parsing(reason: impl Into<String>) -> EsError {
        EsError::new(400, "parsing_exception", reason)
    }

    /// A 400 `parsing_exception` naming a key this API does not support.
    pub fn unsupported(key: &str, hint: &str) -> EsError {
        let mut reason =
            format!("[{key}] is not supported by logpool's Elasticsearch-compatible search");
        if !hint.is_empty() {
            reason.push_str("; ");
            reason.push_str(hint);
        }
        EsError::parsing(reason)
    }

    /// A 400 `illegal_argument_exception`: a value out of its range.
    pub fn illegal(reason: impl Into<String>) -> EsError {
        EsError::new(400, "illegal_argument_exception", reason)
    }

    /// A 404 `index_not_found_exception`.
    pub fn no_index(index: &str, reason: &str) -> EsError {
        EsError::new(
            404,
            "index_not_found_exception",
            format!("no such index [{index}]: {reason}"),
        )
    }

    /// A 403 `security_exception`.
    pub fn forbidden(reason: impl Into<String>) -> EsError {
        EsError::new(403, "security_exception", reason)
    }

    /// The JSON body.
    pub fn body(&self) -> EsErrorAnswer {
        EsErrorAnswer {
            error: EsErrorObject {
                root_cause: vec![EsErrorCause {
                    kind: self.kind.to_string(),
                    reason: self.reason.clone(),
                }],
                kind: self.kind.to_string(),
                reason: self.reason.clone(),
            },
            status: self.status,
        }
    }
}

impl From<ApiError> for EsError {
    fn from(error: ApiError) -> EsError {
        let kind = match error.code {
            ErrorCode::NotFound => "index_not_found_exception",
            ErrorCode::Forbidden | ErrorCode::Unauthorized => "security_exception",
            ErrorCode::TooManyRequests => "es_rejected_execution_exception",
            code if code.is_client_error() => "illegal_argument_exception",
            _ => "exception",
        };
        EsError {
            status: status_of(error.code).as_u16(),
            kind,
            reason: error.message,
            retry_after: error.retry_after,
        }
    }
}

impl From<logpool_engines::index::IndexError> for EsError {
    fn from(error: logpool_engines::index::IndexError) -> EsError {
        EsError::from(ApiError::from(error))
    }
}

impl IntoResponse for EsError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (status, Json(self.body())).into_response();
        if let Some(after) = self.retry_after {
            let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}
