//! Saved searches of a project (`/v1/projects/{project}/saved-searches`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/projects/{project}/saved-searches` and
/// `PUT /v1/projects/{project}/saved-searches/{id}` (which replaces every field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SavedSearchBody {
    /// Name, unique in the project (1 to 100 characters).
    pub name: String,
    /// The query (search part and optional `| SELECT ...`); empty matches everything.
    #[serde(default)]
    pub query: String,
    /// Start of the range: relative (`now-24h`, `-15m`), RFC 3339 or epoch ms.
    #[serde(default = "default_from")]
    pub from: String,
    /// End of the range, in the same forms.
    #[serde(default = "default_to")]
    pub to: String,
    /// The pool it searches; empty for whichever the console shows.
    #[serde(default)]
    pub pool: String,
    /// Result columns, in order (at most 50 field names).
    #[serde(default)]
    pub columns: Vec<String>,
    /// Chart settings: any JSON object the console understands (at most 16 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub chart: Option<serde_json::Map<String, serde_json::Value>>,
}

fn default_from() -> String {
    "now-15m".to_string()
}

fn default_to() -> String {
    "now".to_string()
}

/// A saved search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SavedSearch {
    /// Its id in the project (names it in paths).
    pub id: String,
    /// Name, unique in the project.
    pub name: String,
    /// The query.
    pub query: String,
    /// Start of the range, as saved.
    pub from: String,
    /// End of the range, as saved.
    pub to: String,
    /// The pool it searches; empty for any.
    pub pool: String,
    /// Result columns, in order.
    pub columns: Vec<String>,
    /// Chart settings, `null` when none were saved.
    #[schema(value_type = Option<Object>)]
    pub chart: Option<serde_json::Map<String, serde_json::Value>>,
    /// Id of the key that created it.
    pub created_by: String,
    /// Id of the key that changed it last.
    pub updated_by: String,
    /// When it was created, RFC 3339.
    pub created_at: String,
    /// When it was last changed, RFC 3339.
    pub updated_at: String,
}

/// `GET /v1/projects/{project}/saved-searches`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SavedSearchList {
    /// The project's saved searches, by name.
    pub saved_searches: Vec<SavedSearch>,
}
