//! The queue role: a partitioned, durable log of record batches.
//!
//! # Contract
//! - [`Queue::produce`] returns a [`Position`] only once the batch is durable: on the
//!   embedded engine after `fdatasync`, on Pulsar after the broker's send receipt.
//!   Before that, the caller must not tell a client that its records were accepted.
//! - Positions are per shard, strictly increasing, and never reused.
//! - A subscription is shared: every [`Consumer`] of the same subscription name gets a
//!   disjoint part of the messages. A message stays in flight until it is acked;
//!   a nacked message (or one whose consumer went away) is delivered again later.
//!   Delivery is at-least-once, so consumers must make redelivery harmless; every
//!   [`Delivery`] says whether it may have been seen before ([`Delivery::redelivered`]).
//! - Readers ([`Queue::read`]) see every durable message from a position or a time,
//!   independent of subscriptions.
//! - A shard refuses new batches with [`QueueError::Full`] when its unacknowledged
//!   backlog is over the configured limit, which is how backpressure reaches clients
//!   (PutDatas answers 503 with `Retry-After`).

#[cfg(test)]
pub(crate) mod conformance;
pub mod embedded;
#[cfg(feature = "pulsar")]
pub mod pulsar;

use logpool_core::pool_id::PoolId;
use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use logpool_core::routing::ShardAddr;

pub use embedded::{EmbeddedQueue, EmbeddedQueueConfig};

/// Position of a message in its shard.
pub type Position = u64;

/// Result alias for queue operations.
pub type QueueResult<T> = Result<T, QueueError>;

/// Errors of the queue role.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The shard's backlog is over its limit; try again after `retry_after`.
    #[error("shard {shard:?} is full: {reason}")]
    Full {
        /// The full shard.
        shard: ShardAddr,
        /// Which limit was hit.
        reason: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// The queue cannot take or serve messages right now.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// Stored data is damaged.
    #[error("queue data is corrupted: {0}")]
    Corrupted(String),
    /// The queue is shutting down.
    #[error("queue is closed")]
    Closed,
    /// A local I/O error.
    #[error("queue I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Properties carried by every message next to its payload (Pulsar message properties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchProperties {
    /// Id of the pool the records belong to.
    pub pool_id: PoolId,
    /// Number of records in the payload.
    pub record_count: u32,
    /// Payload format version ([`logpool_core::batch::BATCH_FORMAT_VERSION`]).
    pub format_version: u8,
}

/// One stored message.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    /// Shard the message is in.
    pub shard: ShardAddr,
    /// Its position in the shard.
    pub position: Position,
    /// When the queue accepted it, in milliseconds since the epoch.
    pub publish_time_ms: i64,
    /// Message properties.
    pub properties: BatchProperties,
    /// Encoded batch ([`logpool_core::batch`]).
    pub payload: Bytes,
}

/// Opaque handle used to ack or nack one delivery.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryTag {
    /// Shard of the delivered message.
    pub shard: ShardAddr,
    /// Position of the delivered message.
    pub position: Position,
}

/// A message handed to a consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The message.
    pub message: QueueMessage,
    /// True when this message may have been delivered before (after a nack, a
    /// consumer loss or a restart). Consumers use it to switch to idempotent writes.
    pub redelivered: bool,
}

impl Delivery {
    /// Returns the tag to ack or nack this delivery with.
    pub fn tag(&self) -> DeliveryTag {
        DeliveryTag {
            shard: self.message.shard.clone(),
            position: self.message.position,
        }
    }
}

/// Where a reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStart {
    /// The oldest retained message.
    Earliest,
    /// The first message at or after this position.
    Position(Position),
    /// The first message published at or after this time (ms since the epoch).
    PublishTime(i64),
    /// Only messages produced from now on.
    Latest,
}

/// The backlog of one subscription on one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardBacklog {
    /// The shard.
    pub shard: ShardAddr,
    /// Messages not yet acked by the subscription.
    pub messages: u64,
    /// Bytes of those messages (payload size).
    pub bytes: u64,
    /// Position of the next message that will be produced.
    pub end_position: Position,
}

/// The queue role. See the module documentation for the contract.
#[async_trait]
pub trait Queue: Send + Sync + Debug + 'static {
    /// Appends one batch to a shard and returns its position once it is durable.
    ///
    /// # Errors
    /// [`QueueError::Full`] when the shard's backlog is over its limit;
    /// [`QueueError::Unavailable`] or [`QueueError::Io`] when it cannot be stored.
    async fn produce(
        &self,
        shard: &ShardAddr,
        properties: BatchProperties,
        payload: Bytes,
    ) -> QueueResult<Position>;

    /// Joins the shared subscription `subscription` over `shards`. The subscription
    /// is created at the earliest retained message if it does not exist.
    async fn subscribe(
        &self,
        subscription: &str,
        shards: Vec<ShardAddr>,
    ) -> QueueResult<Box<dyn Consumer>>;

    /// Reads up to `max_messages` messages of one shard from `start`.
    /// `ReadStart::Latest` returns nothing; use the returned end position to go on.
    async fn read(
        &self,
        shard: &ShardAddr,
        start: ReadStart,
        max_messages: usize,
    ) -> QueueResult<Vec<QueueMessage>>;

    /// Returns the position the next produced message of `shard` will get.
    async fn end_position(&self, shard: &ShardAddr) -> QueueResult<Position>;

    /// Opens a reader of one shard that belongs to the caller alone (a live tail):
    /// each [`ShardReader::read_next`] goes on exactly where the previous one stopped,
    /// so a backfill from `start` runs into live reading without a gap or a
    /// duplicate. `ReadStart::Latest` is resolved when the reader opens: every message
    /// produced after this call returns is delivered. Dropping the reader releases
    /// what it holds in the queue (on Pulsar, its non-durable subscription).
    async fn open_reader(
        &self,
        shard: &ShardAddr,
        start: ReadStart,
    ) -> QueueResult<Box<dyn ShardReader>>;

    /// Returns the position of the oldest retained message of `shard`, or its end
    /// position when nothing is retained. Positions before it were removed by
    /// retention (or never existed).
    async fn begin_position(&self, shard: &ShardAddr) -> QueueResult<Position>;

    /// Returns the position of the first message of `shard` published at or after
    /// `time_ms` (ms since the epoch), or the end position when there is none yet.
    async fn position_at_time(&self, shard: &ShardAddr, time_ms: i64) -> QueueResult<Position>;

    /// Returns the backlog of a subscription on each of `shards`.
    async fn backlog(
        &self,
        subscription: &str,
        shards: &[ShardAddr],
    ) -> QueueResult<Vec<ShardBacklog>>;

    /// Deletes shards and all their messages and subscription state.
    async fn delete_shards(&self, shards: &[ShardAddr]) -> QueueResult<()>;

    /// Makes sure the broker has the topics of new or grown pools before any service
    /// routes to them. Queues that create shards on first use do nothing.
    async fn prepare_shards(&self, shards: &[ShardAddr]) -> QueueResult<()> {
        let _ = shards;
        Ok(())
    }

    /// Removes what is left of a deleted project's topic family (after every pool's
    /// shards were deleted). Queues without project-level state do nothing.
    async fn drop_project(&self, tenant: &str, project: &str) -> QueueResult<()> {
        let _ = (tenant, project);
        Ok(())
    }

    /// Checks that the queue can serve requests (for `/readyz`).
    async fn check_health(&self) -> QueueResult<()>;

    /// Flushes and stops background work. Produce calls after this fail with `Closed`.
    async fn shutdown(&self) -> QueueResult<()>;
}

/// A member of a shared subscription.
#[async_trait]
pub trait Consumer: Send + Debug {
    /// Waits up to `wait` for messages and returns at most `max_messages` of them
    /// (possibly none).
    async fn receive(&mut self, max_messages: usize, wait: Duration) -> QueueResult<Vec<Delivery>>;

    /// Acknowledges deliveries: they will not be delivered to this subscription again.
    async fn ack(&mut self, tags: &[DeliveryTag]) -> QueueResult<()>;

    /// Gives deliveries back for redelivery after the subscription's nack delay.
    async fn nack(&mut self, tags: &[DeliveryTag]) -> QueueResult<()>;

    /// Replaces the set of shards this consumer reads (pools were created or deleted).
    async fn set_shards(&mut self, shards: Vec<ShardAddr>) -> QueueResult<()>;
}

/// A reader of one shard owned by one caller ([`Queue::open_reader`]).
#[async_trait]
pub trait ShardReader: Send + Debug {
    /// Returns up to `max_messages` messages that follow the ones returned before
    /// (none when the reader has caught up; call again later).
    async fn read_next(&mut self, max_messages: usize) -> QueueResult<Vec<QueueMessage>>;
}
