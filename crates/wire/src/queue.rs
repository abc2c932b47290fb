//! Queue reads (shards, cursors, records) and consumer groups.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::search::Hit;

/// One shard of a pool as a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueShard {
    /// A cursor at the oldest retained message.
    pub begin_cursor: String,
    /// Position of the oldest retained message.
    pub begin_position: u64,
    /// A cursor at the end: reading from it waits for new records.
    pub end_cursor: String,
    /// Position the next message will get.
    pub end_position: u64,
    /// The shard's number.
    pub shard: u32,
}

/// `GET .../shards`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShardList {
    /// Every shard of the pool.
    pub shards: Vec<QueueShard>,
}

/// Query of `GET .../shards/{shard}/cursor`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CursorParams {
    /// `begin`, `end`, or a time (RFC 3339, epoch milliseconds, `now`, `-15m`):
    /// the first record accepted at or after it.
    #[param(value_type = String, required)]
    pub from: Option<String>,
}

/// `GET .../shards/{shard}/cursor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CursorAnswer {
    /// Opaque and URL-safe; bound to its pool and shard.
    pub cursor: String,
}

/// Query of `GET .../shards/{shard}/records`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecordsParams {
    /// Where to read from.
    #[param(value_type = String, required)]
    pub cursor: Option<String>,
    /// Records to read at most, 1 to 1000 (default 100).
    pub count: Option<u32>,
}

/// `GET .../shards/{shard}/records`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueRecords {
    /// A cursor at the shard's end now; equal to `next_cursor` when nothing more
    /// is there for now.
    pub end_cursor: String,
    /// Where the next read goes on, without a gap or a repeat.
    pub next_cursor: String,
    /// At most `count` records, in shard order, shaped like search hits.
    pub records: Vec<Hit>,
}

/// `POST .../consumer-groups`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConsumerGroup {
    /// The group's name (the pool name rules).
    #[schema(value_type = String, required)]
    pub name: Option<String>,
    /// Heartbeat timeout, 1 to 3600 seconds (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u32>,
    /// A shard never moves away from a live member (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_order: Option<bool>,
}

/// A consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsumerGroup {
    /// When it was created, epoch milliseconds.
    pub created_at_ms: i64,
    /// Whether a shard stays with its live owner.
    pub in_order: bool,
    /// Its name, unique in the pool.
    pub name: String,
    /// Heartbeat timeout in seconds.
    pub timeout_s: u32,
}

/// `GET .../consumer-groups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsumerGroupList {
    /// The pool's groups by name.
    pub consumer_groups: Vec<ConsumerGroup>,
}

/// `POST .../consumer-groups/{group}/heartbeat`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The member: 1 to 128 characters of `A-Z a-z 0-9 . _ : -`.
    #[schema(value_type = String, required)]
    pub consumer: Option<String>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatAnswer {
    /// The shards the member owns now.
    pub shards: Vec<u32>,
}

/// `PUT .../consumer-groups/{group}/checkpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveCheckpoint {
    /// The shard (a number, or its text).
    #[schema(value_type = u32, required)]
    pub shard: Option<serde_json::Value>,
    /// A cursor of that shard: where to resume.
    #[schema(value_type = String, required)]
    pub cursor: Option<String>,
}

/// The place a group saved for one shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Checkpoint {
    /// The saved cursor.
    pub cursor: String,
    /// The shard.
    pub shard: u32,
    /// When it was saved, epoch milliseconds.
    pub updated_at_ms: i64,
}

/// `GET .../consumer-groups/{group}/checkpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointList {
    /// One per shard with a saved place.
    pub checkpoints: Vec<Checkpoint>,
}
