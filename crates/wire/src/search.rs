//! Search, streaming search, histogram, field summary, context and pipe SQL.
//!
//! The parameter types are read from the query string (GET) and from the JSON body
//! (POST) under the same names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::TimeParam;

/// Parameters of a search (`/search`, `/search/stream`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// The query; empty or missing matches everything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Inclusive start; missing means the beginning of the data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<TimeParam>,
    /// Exclusive end; missing means no upper bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<TimeParam>,
    /// Hits per page (1 to `max_limit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// The `cursor` of the previous page (made for the same `order`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// `desc` (default, newest first) or `asc` (oldest first): the time order of the
    /// hits; records of the same time keep a stable order (the reverse of each other).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// `and` (default) or `or`: how adjacent terms combine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_operator: Option<String>,
    /// Mark the matched words of each hit (`highlight` in every hit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub highlight: Option<bool>,
    /// Count every match (default true); `false` stops as soon as the page is full
    /// and makes `total` a lower bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track_total: Option<bool>,
    /// A PutDatas `write_token`: answer only once its records are searchable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for: Option<String>,
    /// How long to wait for `wait_for`, in milliseconds (default 10000, at most 60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_timeout_ms: Option<u64>,
}

/// Parameters of a field summary (`/fields`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FieldsParams {
    /// The query; empty or missing matches everything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Inclusive start; missing means the beginning of the data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<TimeParam>,
    /// Exclusive end; missing means no upper bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<TimeParam>,
    /// `and` (default) or `or`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_operator: Option<String>,
}

/// Parameters of a histogram (`/histogram`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistogramParams {
    /// The query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Inclusive start; default `-15m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<TimeParam>,
    /// Exclusive end; default `now`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<TimeParam>,
    /// Bucket width like `1m`; automatic when missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// `and` (default) or `or`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_operator: Option<String>,
    /// A PutDatas `write_token`: answer only once its records are searchable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for: Option<String>,
    /// How long to wait for `wait_for`, in milliseconds (default 10000, at most 60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_timeout_ms: Option<u64>,
}

/// Parameters of a context request (`/records/{id}/context`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContextParams {
    /// Earlier records of the shard to return; default 10.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<usize>,
    /// Later records of the shard to return; default 10.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<usize>,
    /// Only records with the anchor's `source`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same_source: Option<bool>,
    /// A PutDatas `write_token`: answer only once its records are searchable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for: Option<String>,
    /// How long to wait for `wait_for`, in milliseconds (default 10000, at most 60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_timeout_ms: Option<u64>,
}

/// The body of a pipe-SQL request (`POST /query`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlQueryParams {
    /// `<search query> | SELECT ...`.
    pub query: String,
    /// Inclusive start; missing means the beginning of the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<TimeParam>,
    /// Exclusive end; missing means no upper bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<TimeParam>,
    /// `and` (default) or `or`: how adjacent terms of the search combine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_operator: Option<String>,
    /// A PutDatas `write_token`: answer only once its records are searchable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for: Option<String>,
    /// How long to wait for `wait_for`, in milliseconds (default 10000, at most 60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_timeout_ms: Option<u64>,
}

/// One record as search, context and queue reads show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Hit {
    /// The record's fields as they were sent (nested objects flattened with dots).
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    /// With `highlight=true`: per string field, the fragments with the matched
    /// words marked by `<em>` (HTML-escaped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highlight: Option<BTreeMap<String, Vec<String>>>,
    /// The record's id (for context requests).
    pub id: String,
    /// The shard it was written to.
    pub shard: u32,
    /// Its event time, RFC 3339.
    pub time: String,
}

/// How far a search has come: partitions (days) searched out of those of the
/// range that hold data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    /// Partitions searched.
    pub scanned: usize,
    /// Partitions of the range that hold data.
    pub total: usize,
}

/// The answer to a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchAnswer {
    /// Where the next page starts; `null` when every match has been returned.
    pub cursor: Option<String>,
    /// Newest first.
    pub hits: Vec<Hit>,
    /// The search stopped at its time budget: `total` is a lower bound.
    pub partial: bool,
    /// Partitions searched.
    pub progress: Progress,
    /// Matches (of the partitions searched, when `partial` or `track_total=false`).
    pub total: u64,
    /// The page ended early at its memory budget.
    pub truncated: bool,
}

/// One line of a streaming search: the hits one step added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StreamStep {
    /// The hits of this step, newest first.
    pub hits: Vec<Hit>,
    /// Partitions searched so far.
    pub progress: Progress,
}

/// The last line of a streaming search that ended well.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StreamDone {
    /// Where the next page starts.
    pub cursor: Option<String>,
    /// Always true.
    pub done: bool,
    /// As in [`SearchAnswer`].
    pub partial: bool,
    /// Partitions searched.
    pub progress: Progress,
    /// Matches.
    pub total: u64,
    /// As in [`SearchAnswer`].
    pub truncated: bool,
}

/// One bucket of a histogram.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Bucket {
    /// Records in the bucket.
    pub count: u64,
    /// Start of the bucket, RFC 3339.
    pub time: String,
}

/// The answer to a histogram: every bucket of the range, empty ones with 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistogramAnswer {
    /// The buckets, oldest first.
    pub buckets: Vec<Bucket>,
    /// Start of the range, RFC 3339.
    pub from: String,
    /// Bucket width.
    pub interval_ms: i64,
    /// End of the range, RFC 3339.
    pub to: String,
}

/// One value of a field and how many sampled records have it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ValueCount {
    /// Records with the value.
    pub count: u64,
    /// The value as first seen.
    pub value: Value,
}

/// One field of a field summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FieldSummary {
    /// Records with the field: among every match when the answer's `counts_exact`,
    /// else among the sampled records.
    pub count: u64,
    /// Distinct values (over every match when `counts_exact`, approximate on the
    /// Elasticsearch engine; else in the sample).
    pub distinct: usize,
    /// Too many distinct values for a top list to mean anything (ids, lines): `top`
    /// is then empty and `distinct` says how many there are.
    #[serde(default)]
    pub high_cardinality: bool,
    /// The field's name.
    pub name: String,
    /// Its most frequent values, most frequent first (counted like `count`).
    pub top: Vec<ValueCount>,
    /// The type search, SQL and the live tail give the field (`text`, `keyword`,
    /// `long`, `double`, `bool`, `ip` or `timestamp`): its hint, or the type the pool
    /// learned from the field's first value. Absent while the field is not typed
    /// yet (learned moments ago).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub field_type: Option<crate::control::FieldType>,
}

/// The answer to a field summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FieldsAnswer {
    /// Whether `count`, `distinct` and `top` of every field are counted over every
    /// match in the range (`total`); false when they are counted over the sample
    /// (the counting pass ran out of time or memory).
    #[serde(default)]
    pub counts_exact: bool,
    /// The most common fields, most frequent first.
    pub fields: Vec<FieldSummary>,
    /// Whether the field names were taken from the sample (the newest `sampled`
    /// matches): a field only older records have is then not listed.
    #[serde(default)]
    pub fields_from_sample: bool,
    /// The search stopped at its time budget.
    pub partial: bool,
    /// Partitions searched.
    pub progress: Progress,
    /// The most records a sample holds.
    pub sample_limit: usize,
    /// Records in the sample the field names come from (and, unless
    /// `counts_exact`, the counts).
    pub sampled: usize,
    /// Records that matched.
    pub total: u64,
}

/// One field of a pool's schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SchemaField {
    /// The field's name (a dotted path for a field inside an object).
    pub name: String,
    /// The type search, SQL and the live tail give the field: its hint, or the type
    /// the pool learned from its first value.
    #[serde(rename = "type")]
    pub field_type: crate::control::FieldType,
    /// Whether the type is the pool's hint rather than a learned one.
    pub hinted: bool,
}

/// The answer to a schema request: every field the pool has typed, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SchemaAnswer {
    /// The fields, by name.
    pub fields: Vec<SchemaField>,
}

/// The answer to a context request; both lists in queue order (oldest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContextAnswer {
    /// Records after the anchor.
    pub after: Vec<Hit>,
    /// The record asked for.
    pub anchor: Hit,
    /// Records before the anchor.
    pub before: Vec<Hit>,
}

/// One column of a pipe-SQL answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SqlColumn {
    /// The alias, or the expression as written.
    pub name: String,
    /// `long`, `double`, `bool`, `string`, `timestamp`, `mixed` or `null`.
    #[serde(rename = "type")]
    pub column_type: String,
}

/// The answer to a pipe-SQL request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SqlTable {
    /// The columns.
    pub columns: Vec<SqlColumn>,
    /// The rows, one value per column.
    pub rows: Vec<Vec<Value>>,
}
