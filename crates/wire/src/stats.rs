//! `GET /v1/projects/{project}/pools/{pool}/stats`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a subscription has not consumed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Backlog {
    /// Bytes of those messages.
    pub bytes: u64,
    /// Messages not consumed yet.
    pub messages: u64,
}

/// One shard of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShardStats {
    /// Per subscription (`loghub`, `archive`, consumer groups): its backlog here.
    pub backlog: BTreeMap<String, Backlog>,
    /// The queue position after the shard's last message.
    pub end_position: u64,
    /// The shard's number.
    pub shard: usize,
}

/// How far indexing is behind the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Lag {
    /// Age of the newest indexed record's event time; `null` when none is indexed.
    pub newest_record_age_ms: Option<i64>,
    /// Event time of the newest indexed record, RFC 3339; `null` when none is.
    pub newest_record_time: Option<String>,
    /// Messages the indexer has not consumed yet.
    pub unindexed_messages: u64,
}

/// What a pool holds and how far each consumer is behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PoolStats {
    /// Per subscription: its backlog over every shard.
    pub backlog: BTreeMap<String, Backlog>,
    /// Indexing lag.
    pub lag: Lag,
    /// Records searchable now.
    pub records: u64,
    /// Per shard.
    pub shards: Vec<ShardStats>,
    /// Bytes the pool's index takes on its engine.
    pub storage_bytes: u64,
}
