//! The error envelope every non-2xx answer has:
//! `{"error": {"code": "...", "message": "...", <details>}}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Machine-readable error codes, stable across releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or a value is invalid (400).
    BadRequest,
    /// The body is not in an accepted format (415).
    UnsupportedMediaType,
    /// A size limit was exceeded (413).
    PayloadTooLarge,
    /// No API key, or one that is unknown, wrong or disabled (401).
    Unauthorized,
    /// The key's role or scope does not allow the request (403).
    Forbidden,
    /// A stored quota (storage) refuses the write until usage drops (403).
    QuotaExceeded,
    /// The named object does not exist (404).
    NotFound,
    /// The object exists already or the change conflicts with its state (409).
    Conflict,
    /// The data a queue cursor points at was removed by retention (410).
    Gone,
    /// The service is over a limit; retry later (429).
    TooManyRequests,
    /// Waited the longest allowed time for something that has not happened yet
    /// (written records becoming searchable); retry later (408).
    WaitTimeout,
    /// An engine cannot serve right now; retry later (503).
    Unavailable,
    /// A bug or an unexpected engine failure (500).
    Internal,
}

impl ErrorCode {
    /// The HTTP status of this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden | ErrorCode::QuotaExceeded => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::Gone => 410,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::WaitTimeout => 408,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// Whether the code is the caller's mistake (a 4xx).
    pub fn is_client_error(self) -> bool {
        (400..500).contains(&self.http_status())
    }

    /// The code as it appears in JSON.
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
            ErrorCode::Gone => "gone",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::WaitTimeout => "wait_timeout",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorObject,
}

/// What went wrong: a code, a message for people naming the field, line or limit,
/// and details where useful (`field`, `parameter`, `position`, `limit`, `max`, ...).
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
pub struct ErrorObject {
    /// The stable code.
    pub code: ErrorCode,
    /// The explanation.
    pub message: String,
    /// Extra fields of the error object.
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl ErrorObject {
    /// A detail field as text (`field`, `limit`, `parameter`).
    pub fn detail_str(&self, name: &str) -> Option<&str> {
        self.details.get(name).and_then(Value::as_str)
    }
}

// The code, the message and the details are written as one object in the order of
// their names, as the answers have always been.
impl Serialize for ErrorObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut fields: BTreeMap<&str, Value> = BTreeMap::new();
        fields.insert("code", Value::from(self.code.as_str()));
        fields.insert("message", Value::from(self.message.as_str()));
        for (name, value) in &self.details {
            fields.insert(name, value.clone());
        }
        fields.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_sit_beside_code_and_message_in_name_order() {
        let mut details = Map::new();
        details.insert("limit".into(), Value::from(1000));
        details.insert("field".into(), Value::from("limit"));
        let body = ErrorBody {
            error: ErrorObject {
                code: ErrorCode::BadRequest,
                message: "too many".into(),
                details,
            },
        };
        let text = serde_json::to_string(&body).unwrap();
        assert_eq!(
            text,
            r#"{"error":{"code":"bad_request","field":"limit","limit":1000,"message":"too many"}}"#
        );
        let back: ErrorBody = serde_json::from_str(&text).unwrap();
        assert_eq!(back, body);
        assert_eq!(back.error.detail_str("field"), Some("limit"));
    }

    #[test]
    fn every_code_is_written_as_its_name() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::PayloadTooLarge,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::QuotaExceeded,
            ErrorCode::NotFound,
            ErrorCode::Conflict,
            ErrorCode::Gone,
            ErrorCode::TooManyRequests,
            ErrorCode::WaitTimeout,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ] {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                Value::from(code.as_str())
            );
        }
    }
}
