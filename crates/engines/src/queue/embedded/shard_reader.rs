//! A reader of one shard owned by one caller ([`Queue::open_reader`]): it remembers
//! the position after the last message it returned, so reads follow each other
//! without a gap or an overlap. It holds nothing in the queue but that position.
//!
//! [`Queue::open_reader`]: crate::queue::Queue::open_reader

use std::sync::Arc;

use async_trait::async_trait;
use logpool_core::routing::ShardAddr;

use super::{read_messages, Shared};
use crate::queue::{QueueMessage, QueueResult, ReadStart, ShardReader};

/// The embedded engine's [`ShardReader`].
pub(super) struct EmbeddedShardReader {
    shared: Arc<Shared>,
    shard: ShardAddr,
    /// Where the next read starts: the original start until a message has been
    /// returned, then the position after the last one returned.
    next: ReadStart,
}

impl std::fmt::Debug for EmbeddedShardReader {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EmbeddedShardReader")
            .field("shard", &self.shard)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl EmbeddedShardReader {
    /// Creates a reader that starts at `start` (not `Latest`, which the caller resolves).
    pub(super) fn new(shared: Arc<Shared>, shard: ShardAddr, start: ReadStart) -> Self {
        EmbeddedShardReader {
            shared,
            shard,
            next: start,
        }
    }
}

#[async_trait]
impl ShardReader for EmbeddedShardReader {
    async fn read_next(&mut self, max_messages: usize) -> QueueResult<Vec<QueueMessage>> {
        let messages = read_messages(&self.shared, &self.shard, self.next, max_messages).await?;
        if let Some(last) = messages.last() {
            self.next = ReadStart::Position(last.position.saturating_add(1));
        }
        Ok(messages)
    }
}
