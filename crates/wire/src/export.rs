//! Export of a search's matches (`/v1/projects/{project}/pools/{pool}/export`).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::TimeParam;

/// Header of an export answer: how many records matched in the range (counted
/// before the first record is sent).
pub const EXPORT_MATCHES_HEADER: &str = "x-logpool-export-matches";
/// Header of an export answer: the most records this export sends.
pub const EXPORT_LIMIT_HEADER: &str = "x-logpool-export-limit";
/// Header of an export answer: `true` when more records matched than the limit
/// lets through (the newest `limit` are sent), else `false`.
pub const EXPORT_TRUNCATED_HEADER: &str = "x-logpool-export-truncated";

/// Parameters of an export, in the query string (GET) or a JSON body (POST).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// The query; empty or missing matches everything. A `| SELECT` part is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Inclusive start; missing means the beginning of the data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<TimeParam>,
    /// Exclusive end; missing means no upper bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<TimeParam>,
    /// `and` (default) or `or`: how adjacent terms combine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_operator: Option<String>,
    /// `csv` or `ndjson` (default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Comma-separated columns, in order: `time` (the event time), `id`, or a field
    /// name (dotted names reach into objects). CSV defaults to `time,message`;
    /// NDJSON without columns sends whole records as search hits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<String>,
    /// Most records to send (1 to `search.max_export_records`, which is the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}
