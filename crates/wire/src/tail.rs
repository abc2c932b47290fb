//! The frames of the live tail (`GET .../tail`, a WebSocket). WebSocket messages
//! are no OpenAPI operation; the document lists [`TailFrame`] among its schemas.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

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
    /// The tail cannot start (a bad `query` or `start`, an unknown pool, too many
    /// tails): the only frame, sent to clients that offered the `logpool.tail.v1`
    /// subprotocol, before the close (4000 plus the HTTP status) whose reason
    /// repeats the message.
    Error {
        /// What is wrong, as in an HTTP error answer (`field`, `position`, ...).
        error: crate::error::ErrorObject,
    },
}

/// Query of `GET .../tail`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TailParams {
    /// The filter, in the search language; absent or empty: every record.
    pub query: Option<String>,
    /// Absent or `now`: only records accepted after the upgrade; a time (`-5m`,
    /// `now-1h`, RFC 3339, epoch milliseconds): first the records accepted since
    /// then, then live ones.
    pub start: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_frames_are_tagged_by_type_as_documented() {
        let dropped = serde_json::to_string(&TailFrame::Dropped { count: 1800 }).expect("json");
        assert_eq!(dropped, r#"{"type":"dropped","count":1800}"#);
        // The frame the tail writes by hand from its buffered records.
        let records = r#"{"type":"records","records":[{"id":"a","time":"2026-11-21T10:00:00Z","shard":0,"fields":{"n":1}}],"lag_ms":12}"#;
        match serde_json::from_str::<TailFrame>(records).expect("a records frame") {
            TailFrame::Records { records, lag_ms } => {
                assert_eq!((records.len(), lag_ms), (1, 12));
                assert_eq!(records[0].fields["n"], 1);
            }
            other => panic!("{other:?}"),
        }
    }
}
