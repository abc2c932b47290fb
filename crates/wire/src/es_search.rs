//! The Elasticsearch-compatible read API under `/es` (Grafana's Elasticsearch data
//! source, the Elasticsearch clients): search, multi-search, mapping and field
//! capability answers, and Elasticsearch's error shape, which these routes answer
//! in. Only the members those clients read are filled in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The answer to `_search`, and each answered search of an `_msearch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EsSearchAnswer {
    /// Milliseconds the search took.
    pub took: u64,
    /// Whether the search's time budget ran out before every partition of its range
    /// was searched (the native search's `partial`).
    pub timed_out: bool,
    /// Always one shard, all successful.
    #[serde(rename = "_shards")]
    pub shards: EsShards,
    /// The hits, newest first.
    pub hits: EsHits,
    /// The aggregations asked for, by their names: `{"buckets": [...]}` for
    /// `date_histogram` and `terms`, `{"value": x}` or `{"values": {...}}` for metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub aggregations: Option<Map<String, Value>>,
    /// In an `_msearch` answer: 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// The shards of an answer (always one, successful).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EsShards {
    /// 1.
    pub total: u32,
    /// 1.
    pub successful: u32,
    /// 0.
    pub skipped: u32,
    /// 0.
    pub failed: u32,
}

impl EsShards {
    /// One shard, searched.
    pub fn one() -> EsShards {
        EsShards {
            total: 1,
            successful: 1,
            skipped: 0,
            failed: 0,
        }
    }
}

/// The hits of a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EsHits {
    /// How many records match.
    pub total: EsTotal,
    /// Always null: hits are not scored.
    pub max_score: Option<f64>,
    /// The page, newest first.
    pub hits: Vec<EsHit>,
}

/// `hits.total`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EsTotal {
    /// The count and whether it is exact (`eq`) or a lower bound (`gte`).
    Counted {
        /// Matching records.
        value: u64,
        /// `eq` or `gte`.
        relation: String,
    },
    /// The count alone (`?rest_total_hits_as_int=true`).
    Plain(u64),
}

/// One hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EsHit {
    /// The index searched (`{project}.{pool}`).
    #[serde(rename = "_index")]
    pub index: String,
    /// `_doc`.
    #[serde(rename = "_type")]
    pub doc_type: String,
    /// The record id.
    #[serde(rename = "_id")]
    pub id: String,
    /// Always null.
    #[serde(rename = "_score")]
    pub score: Option<f64>,
    /// The record's fields, and its time as `@timestamp` (RFC 3339).
    #[serde(rename = "_source")]
    #[schema(value_type = Object)]
    pub source: Map<String, Value>,
    /// `[epoch_millis, "<cursor>"]`: the `search_after` of the next page.
    #[schema(value_type = Vec<Object>)]
    pub sort: Vec<Value>,
    /// With `highlight` asked for: the fragments of each field with a match, the
    /// matched words between the request's tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highlight: Option<BTreeMap<String, Vec<String>>>,
}

/// The answer to `_msearch`: one entry per search, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EsMsearchAnswer {
    /// Milliseconds all searches took.
    pub took: u64,
    /// Each search's answer (with `status: 200`) or error (with its status).
    pub responses: Vec<EsMsearchItem>,
}

/// One entry of an `_msearch` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EsMsearchItem {
    /// The search was answered.
    Answer(EsSearchAnswer),
    /// The search was refused or failed.
    Error(EsErrorAnswer),
}

/// An error of these routes: Elasticsearch's shape from the handler, logpool's
/// envelope from the key check before it (401, and 403/429 of the key itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EsReadError {
    /// From the handler.
    Es(EsErrorAnswer),
    /// From the key check.
    Envelope(crate::ErrorBody),
}

/// An error in Elasticsearch's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EsErrorAnswer {
    /// What went wrong.
    pub error: EsErrorObject,
    /// The HTTP status.
    pub status: u16,
}

/// The `error` of an [`EsErrorAnswer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EsErrorObject {
    /// The same type and reason, as Elasticsearch lists the causes.
    pub root_cause: Vec<EsErrorCause>,
    /// E.g. `parsing_exception` (a key that is not supported or wrong),
    /// `illegal_argument_exception`, `index_not_found_exception`,
    /// `security_exception`, `es_rejected_execution_exception`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What is wrong, naming the key or limit.
    pub reason: String,
}

/// One cause of an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EsErrorCause {
    /// The error type.
    #[serde(rename = "type")]
    pub kind: String,
    /// What is wrong.
    pub reason: String,
}

/// The answer to `GET /es/{index}/_mapping`: per index, its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EsMapping(pub BTreeMap<String, EsIndexMapping>);

/// The mapping of one index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EsIndexMapping {
    /// Its properties.
    pub mappings: EsProperties,
}

/// The fields of an index, by name (flat, with their dots).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EsProperties {
    /// Field name → type.
    pub properties: BTreeMap<String, EsProperty>,
}

/// One field of a mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EsProperty {
    /// `text`, `keyword`, `long`, `double`, `boolean`, `ip` or `date`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A `text` field's `keyword` sub-field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, EsSubField>>,
}

/// A sub-field (`keyword` of a `text` field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EsSubField {
    /// `keyword`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Longer values are not aggregated by Elasticsearch (listed for clients).
    pub ignore_above: u32,
}

/// The answer to `_field_caps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EsFieldCaps {
    /// The indices listed.
    pub indices: Vec<String>,
    /// Field name → type → capabilities.
    pub fields: BTreeMap<String, BTreeMap<String, EsFieldCap>>,
}

/// What a field of one type can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EsFieldCap {
    /// The type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always true.
    pub searchable: bool,
    /// Whether `terms` may group by it (false for `text`; its `.keyword` may).
    pub aggregatable: bool,
}
