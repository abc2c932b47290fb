//! The answers of the shipper protocols that are JSON: OTLP/HTTP's
//! `ExportLogsServiceResponse` and `google.rpc.Status` in OTLP/JSON (the protobuf
//! answers carry the same members). Loki push answers 204 or text.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `ExportLogsServiceResponse`: empty when every record was stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OtlpExportAnswer {
    /// Present when some records were rejected (the others are stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_success: Option<OtlpPartialSuccess>,
}

/// `ExportLogsPartialSuccess`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OtlpPartialSuccess {
    /// How many records were not stored (a retry would be refused the same way).
    pub rejected_log_records: i64,
    /// Why: the first rejected records' places and reasons.
    pub error_message: String,
}

/// `google.rpc.Status`: the body of an OTLP/HTTP error answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OtlpStatus {
    /// The gRPC status code (3 invalid argument, 5 not found, 8 resource exhausted,
    /// 14 unavailable, ...).
    pub code: i32,
    /// What went wrong, naming the field or limit.
    pub message: String,
}

/// An OTLP/JSON error answer: the handler's `Status`, or the envelope of the key
/// check, which answers before the protocol is known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OtlpErrorAnswer {
    /// From the OTLP handler.
    Status(OtlpStatus),
    /// From the key check (401, 403, 429 of failed authentications).
    Envelope(crate::ErrorBody),
}
