//! The Elasticsearch-compatible ingest API under `/es`: the bulk answer and the
//! discovery documents shippers read before they send.
//!
//! These are Elasticsearch's own shapes, so that Filebeat, Fluent Bit, Vector,
//! Logstash, syslog-ng and the Elasticsearch clients read them unchanged; only the
//! members those clients look at are filled in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The version a shipper sees at `GET /es/`: that of the Elasticsearch 7.10 line
/// (as OpenSearch announces in its compatibility mode). Clients of the 7.x line
/// accept a 7.0 to 7.13 server when it announces the `default` build flavour and
/// the tagline; from 7.14 on they demand Elastic's product header instead.
pub const ES_VERSION: &str = "7.10.2";

/// The answer to `POST /es/_bulk`: per item, what became of it, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BulkAnswer {
    /// Milliseconds the request took.
    pub took: u64,
    /// Whether any item failed (its `status` is not 2xx); a shipper retries only
    /// the failed items whose status says a retry can succeed (429, 503).
    pub errors: bool,
    /// One entry per action line, in order.
    pub items: Vec<BulkItem>,
}

/// One item of a bulk answer, keyed by its action as Elasticsearch does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BulkItem {
    /// The result of a `create` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<BulkItemResult>,
    /// The result of an `index` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<BulkItemResult>,
    /// The refusal of an `update` action (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<BulkItemResult>,
    /// The refusal of a `delete` action (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<BulkItemResult>,
}

/// What became of one bulk item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BulkItemResult {
    /// The document id: the one the action named, else one made up for the answer
    /// (ids are not stored and do not deduplicate).
    #[serde(rename = "_id")]
    pub id: String,
    /// The index the action named (`{project}.{pool}`).
    #[serde(rename = "_index")]
    pub index: String,
    /// Always 1 for a stored document.
    #[serde(
        rename = "_primary_term",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub primary_term: Option<u64>,
    /// The item's place in the request, for a stored document.
    #[serde(rename = "_seq_no", default, skip_serializing_if = "Option::is_none")]
    pub seq_no: Option<u64>,
    /// Copies written, for a stored document.
    #[serde(rename = "_shards", default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<BulkShards>,
    /// Always `_doc`.
    #[serde(rename = "_type")]
    pub doc_type: String,
    /// Always 1 for a stored document.
    #[serde(rename = "_version", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Why the item was not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<BulkItemError>,
    /// `created` for a stored document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// 201 when stored; 400 bad document, 403 key not allowed, 404 no such pool,
    /// 413 a limit, 429 a rate quota, 503 the queue could not take it.
    pub status: u16,
}

/// Copies of a stored bulk document: always one, durable in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BulkShards {
    /// Copies that failed (0).
    pub failed: u32,
    /// Copies written (1).
    pub successful: u32,
    /// Copies (1).
    pub total: u32,
}

/// Why a bulk item was refused, in Elasticsearch's terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BulkItemError {
    /// What logpool says, with the field or limit.
    pub reason: String,
    /// `mapper_parsing_exception`, `index_not_found_exception`,
    /// `security_exception`, `illegal_argument_exception`,
    /// `es_rejected_execution_exception`, ...
    #[serde(rename = "type")]
    pub kind: String,
}

/// `GET /es/`: the cluster information shippers check the version in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EsInfo {
    /// `logpool`.
    pub cluster_name: String,
    /// A fixed id.
    pub cluster_uuid: String,
    /// `logpool`.
    pub name: String,
    /// `You Know, for Search`, which 7.x clients look for.
    pub tagline: String,
    /// The version announced.
    pub version: EsVersion,
}

/// The version block of [`EsInfo`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EsVersion {
    /// `default`, which Logstash and the 7.14+ clients require of a 7.x server
    /// (`_xpack` then lists no features).
    pub build_flavor: String,
    /// `logpool`.
    pub build_type: String,
    /// Lucene's version of that release.
    pub lucene_version: String,
    /// Oldest index format (informational).
    pub minimum_index_compatibility_version: String,
    /// Oldest wire protocol (informational).
    pub minimum_wire_compatibility_version: String,
    /// [`ES_VERSION`].
    pub number: String,
}

/// `GET /es/_license` and the `license` of `GET /es/_xpack`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EsLicense {
    /// The licence.
    pub license: EsLicenseBody,
}

/// A licence as Beats and Logstash read it: active, of type `basic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EsLicenseBody {
    /// `active`.
    pub status: String,
    /// `basic`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `basic`.
    pub mode: String,
    /// A fixed id.
    pub uid: String,
}

/// `GET /es/_xpack`: no features (so Beats and Logstash set up no ILM), a `basic`
/// licence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EsXpack {
    /// Empty.
    #[schema(value_type = Object)]
    pub build: serde_json::Map<String, serde_json::Value>,
    /// Empty: none of X-Pack's features.
    #[schema(value_type = Object)]
    pub features: serde_json::Map<String, serde_json::Value>,
    /// The licence.
    pub license: EsLicenseBody,
}

/// `GET /es/{index}` and `GET /es/_template/{name}`: the name asked for, with
/// empty aliases, mappings and settings (pools type their fields themselves).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct EsIndices(pub BTreeMap<String, EsIndex>);

/// One index or template of [`EsIndices`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EsIndex {
    /// Empty.
    #[schema(value_type = Object)]
    pub aliases: serde_json::Map<String, serde_json::Value>,
    /// Empty.
    #[schema(value_type = Object)]
    pub mappings: serde_json::Map<String, serde_json::Value>,
    /// Empty.
    #[schema(value_type = Object)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// `PUT /es/_template/{name}`: acknowledged (and not kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EsAcknowledged {
    /// Always true.
    pub acknowledged: bool,
}

/// `GET /es/_cluster/health` (Vector's health check): always green.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EsClusterHealth {
    /// `logpool`.
    pub cluster_name: String,
    /// 1.
    pub number_of_data_nodes: u32,
    /// 1.
    pub number_of_nodes: u32,
    /// `green`: the answer comes from a serving put-datas.
    pub status: String,
    /// false.
    pub timed_out: bool,
}
