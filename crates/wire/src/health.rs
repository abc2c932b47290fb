//! `/healthz` and `/readyz`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /healthz` (`{"status": "ok"}`) and `GET /readyz`: `{"status": "ready"}`
/// with 200, or `{"status": "not_ready", "failures": {...}}` with 503.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Per engine that does not answer (`queue`, `index`, `metadata`,
    /// `coordination`): why. Only in a 503 of `/readyz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<BTreeMap<String, String>>,
    /// `ok` (`/healthz`), `ready` or `not_ready` (`/readyz`).
    pub status: String,
}

impl Health {
    /// A status without failures.
    pub fn status(status: &str) -> Health {
        Health {
            failures: None,
            status: status.to_string(),
        }
    }
}
