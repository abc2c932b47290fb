//! PutDatas: `POST /v1/projects/{project}/pools/{pool}/logs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A PutDatas body in JSON (a bare array of records is accepted too).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PutBody {
    /// Stored as the field `source` of every record that has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Stored as fields `tags.<name>` of every record (strings, numbers or bools).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub tags: BTreeMap<String, Value>,
    /// The records: field values are strings, numbers or bools (nested objects are
    /// flattened with dots); `time` is RFC 3339 or epoch seconds, milliseconds,
    /// microseconds or nanoseconds (arrival time when missing).
    #[schema(value_type = Vec<Object>)]
    pub logs: Vec<Map<String, Value>>,
}

/// Where one batch of a request went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShardReceipt {
    /// Shard index within the pool.
    pub shard: usize,
    /// Queue position of the batch.
    pub position: u64,
    /// Records in the batch.
    pub records: usize,
}

/// One record refused for its event time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RefusedRecord {
    /// Where it was: `logs[3]` or `line 7`.
    pub path: String,
    /// The limit it broke: `max_event_age_days` or `max_event_future_secs`.
    pub limit: String,
    /// Why, with the time and the window.
    pub reason: String,
}

/// The answer to a PutDatas, given once every batch is durable in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PutAnswer {
    /// Records accepted: all of the request but those refused for their event time.
    pub accepted: usize,
    /// One receipt per batch.
    pub shards: Vec<ShardReceipt>,
    /// Records refused because their event time is outside the pool's window.
    #[serde(default)]
    pub refused: usize,
    /// The first refused records with their reasons (at most 100); left out when
    /// none was refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused_records: Vec<RefusedRecord>,
    /// Names this request's batches: a search, histogram, SQL query or context
    /// with `wait_for=<token>` answers only once they are searchable.
    #[serde(default)]
    pub write_token: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_put_answer_leaves_out_an_empty_refusal_list() {
        let answer = PutAnswer {
            accepted: 2,
            shards: vec![ShardReceipt {
                shard: 1,
                position: 17,
                records: 2,
            }],
            refused: 0,
            refused_records: Vec::new(),
            write_token: "w1.3.1-17-2".to_string(),
        };
        assert_eq!(
            serde_json::to_string(&answer).expect("json"),
            r#"{"accepted":2,"shards":[{"shard":1,"position":17,"records":2}],"refused":0,"write_token":"w1.3.1-17-2"}"#
        );
        let refused = PutAnswer {
            refused: 1,
            refused_records: vec![RefusedRecord {
                path: "logs[0]".to_string(),
                limit: "max_event_age_days".to_string(),
                reason: "too old".to_string(),
            }],
            ..answer
        };
        let text = serde_json::to_string(&refused).expect("json");
        assert!(
            text.contains(r#""refused_records":[{"path":"logs[0]","limit":"max_event_age_days","reason":"too old"}]"#),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<PutAnswer>(&text).expect("back"),
            refused
        );
    }
}
