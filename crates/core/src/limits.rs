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
    /// Oldest accepted event time, in days before arrival; unset follows each pool's
    /// retention, and a value above a pool's retention counts as its retention. A
    /// pool's own setting wins.
    pub max_event_age_days: Option<u32>,
    /// Furthest accepted event time, in seconds after arrival (clock skew). A pool's
    /// own setting wins.
    pub max_event_future_secs: u32,
}

/// Longest lead a configuration or a pool may give event times: a future day is an
/// index partition that stays until it is past and expires.
pub const MAX_EVENT_FUTURE_SECS: u32 = 30 * 86_400;

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_body_bytes: 10 * 1024 * 1024,
            max_records_per_request: 10_000,
            max_fields_per_record: 256,
            max_field_name_chars: 128,
            max_value_bytes: 64 * 1024,
            max_event_age_days: None,
            max_event_future_secs: 86_400,
        }
    }
}
