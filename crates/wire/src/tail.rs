//! The frames of the live tail (`GET .../tail`, a WebSocket). WebSocket messages
//! are no OpenAPI operation; the document lists [`TailFrame`] among its schemas.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::search::Hit;

/// One JSON text frame of a live tail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TailFrame {
    /// Matching records, in shard order per shard.
    Records {
        /// The records, shaped like search hits.
        records: Vec<Hit>,
        /// How long ago the queue accepted the newest record of the frame.
        lag_ms: i64,
    },
    /// Records skipped at this place of the stream because the client read too
    /// slowly.
    Dropped {
        /// How many.
        count: u64,
    },
}
