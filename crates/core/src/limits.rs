//! Ingest limits with their defaults.

use serde::{Deserialize, Serialize};

/// Limits applied to every PutDatas request. Each one is named in the 4xx it causes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestLimits {
    /// Maximum body size after decompression.
    pub max_body_bytes: usize,
    /// Maximum number of records in one request.
    pub max_records_per_request: usize,
    /// Maximum number of fields in one record (after flattening).
    pub max_fields_per_record: usize,
    /// Maximum length of a field name, in characters.
    pub max_field_name_chars: usize,
    /// Maximum size of one field value, in bytes.
    pub max_value_bytes: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_body_bytes: 10 * 1024 * 1024,
            max_records_per_request: 10_000,
            max_fields_per_record: 256,
            max_field_name_chars: 128,
            max_value_bytes: 64 * 1024,
        }
    }
}
