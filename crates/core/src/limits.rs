//! Ingest and query limits with their defaults.

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

/// Caps on the size and shape of one query, checked before any engine work. They
/// apply to every path that takes a query from a user: search, pipe SQL, the tail
/// filter (and anything else that parses one), and each is named in the 400 it causes.
/// The defaults follow what Elasticsearch users know: at most 1024 clauses, a small
/// number of wildcards, and patterns of bounded length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryLimits {
    /// Deepest nesting of AND / OR / NOT in the parsed query. Long runs of one
    /// operator are flattened first, so `a AND b AND …` is one level however long.
    pub max_depth: usize,
    /// Nodes of the parsed query: terms plus the AND / OR / NOT nodes joining them.
    pub max_nodes: usize,
    /// Terms (leaf clauses: words, phrase words, wildcards, ranges, `_exists_`) in
    /// one query, as Elasticsearch's `max_clause_count`.
    pub max_terms: usize,
    /// Wildcard patterns (`err*`, SQL `LIKE`) in one query: each compiles to an
    /// automaton over the term dictionary, the costliest clause there is.
    pub max_wildcards: usize,
    /// Characters of one wildcard pattern, which bound the size of its automaton.
    pub max_wildcard_chars: usize,
    /// Depth of one pipe-SQL expression, counted from its tokens before it is parsed
    /// (`a + b + …` is as deep as it is long; conditions joined by AND / OR in
    /// `WHERE` are flattened instead and do not count).
    pub max_sql_expression_depth: usize,
    /// Tokens of the SQL after the pipe.
    pub max_sql_tokens: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_depth: 32,
            max_nodes: 4096,
            max_terms: 1024,
            max_wildcards: 16,
            max_wildcard_chars: 128,
            max_sql_expression_depth: 64,
            max_sql_tokens: 16_384,
        }
    }
}
