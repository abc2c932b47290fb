//! Log patterns of a pool's matching records (`/patterns`).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::TimeParam;

/// Parameters of a patterns request (`/patterns`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PatternsParams {
    /// The query; empty or missing matches everything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Inclusive start; default `-15m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<TimeParam>,
    /// Exclusive end; default `now`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<TimeParam>,
    /// Patterns to return, most frequent first (1 to 1000, default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Width of the sparkline buckets like `1m`; automatic when missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Start of the baseline range to compare with (needs `compare_to`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare_from: Option<TimeParam>,
    /// End of the baseline range to compare with (needs `compare_from`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare_to: Option<TimeParam>,
    /// `and` (default) or `or`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_operator: Option<String>,
}

/// How a pattern's count compares with the baseline range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PatternChange {
    /// Not in the baseline.
    New,
    /// In the baseline only.
    Gone,
    /// Its share of the records changed by at least half (up or down).
    Changed,
    /// About the same share.
    Same,
}

/// One pattern of the matching records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PatternSummary {
    /// The pattern id: `_pattern:ID` finds its records.
    pub id: String,
    /// The template, each variable position written `<*>`.
    pub template: String,
    /// Matching records of the pattern in the range.
    pub count: u64,
    /// `count` divided by all matching records that have a pattern.
    pub share: f64,
    /// Start of the first bucket of the range with a record of it, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    /// End of the last bucket of the range with a record of it, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// The id of its newest matching record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_id: Option<String>,
    /// The message of that record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_message: Option<String>,
    /// Its records per bucket, oldest first (the answer's `buckets`).
    pub counts: Vec<u64>,
    /// Its records in the baseline range (with `compare_from`/`compare_to`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_count: Option<u64>,
    /// Its share now divided by its share in the baseline (none when new or gone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// New, gone, changed or same (with a baseline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<PatternChange>,
}

/// The answer to a patterns request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PatternsAnswer {
    /// Patterns by count, most frequent first; then patterns gone since the baseline.
    pub patterns: Vec<PatternSummary>,
    /// Matching records that have a pattern.
    pub total: u64,
    /// Distinct patterns among them (may exceed `patterns`).
    pub num_patterns: usize,
    /// Matching records in the baseline range (with a baseline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_total: Option<u64>,
    /// Start of each bucket, RFC 3339.
    pub buckets: Vec<String>,
    /// Bucket width.
    pub interval_ms: i64,
    /// Start of the range, RFC 3339.
    pub from: String,
    /// End of the range, RFC 3339.
    pub to: String,
}
