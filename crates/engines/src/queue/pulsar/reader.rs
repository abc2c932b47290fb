//! Reads of one shard independent of subscriptions ([`Queue::read`] and
//! [`Queue::end_position`]), through Pulsar readers: non-durable, exclusive consumers
//! of one partition topic that unsubscribe when they close, so they leave no state on
//! the broker (pulsar-lite, unlike Apache Pulsar, keeps a non-durable subscription
//! after its consumer closes, with a backlog that grows with the topic).
//!
//! # How a read works
//! 1. The reader starts at the earliest message (for `Earliest` and `PublishTime`) or
//!    just before the requested position. Pulsar's reader start is exclusive of the
//!    id given, so the id given is the one before the position's id; a broker that
//!    treats it as inclusive delivers one extra message, which the position filter
//!    drops. Either way every message at or after the position is delivered. The id
//!    before the first entry of a ledger would be `ledger:-1`, which pulsar-lite
//!    rejects (it drops the connection), so such a read starts at the earliest message
//!    and skips what comes before the position: correct, and on a broker with one
//!    ledger per topic (pulsar-lite) exactly as cheap; on Apache Pulsar it re-reads
//!    the older retained ledgers in that (rare) case.
//! 2. The broker's last message id bounds the read, so a read never waits for
//!    messages that do not exist yet: it stops at `max_messages` or at that id.
//! 3. `PublishTime` filters on the publish time client-side while reading from the
//!    earliest message: the crate's reader `seek` re-subscribes from the original
//!    start after the broker drops the consumer, so it cannot be relied on. The cost
//!    is linear in the messages retained before the time asked for.
//!
//! # Caching
//! After a read the reader stays open for its shard, positioned after the last
//! message it delivered. A following read that starts exactly there (the usual
//! cursor pattern: read, then read on from the next position) reuses it; any other
//! start opens a fresh reader. `end_position` also leaves a reader at the end, which
//! is where tailing starts. At most [`MAX_CACHED_READERS`] readers are kept; a reader
//! that fails or times out is dropped, never reused.
//!
//! # Owned readers
//! A live tail reads each shard for a long time and must leave nothing on the broker
//! once it closes, so it does not go through the cache: [`OwnedReader`]
//! ([`Queue::open_reader`]) keeps its own Pulsar reader and closes it when dropped
//! (the broker removes a non-durable subscription with its last consumer). Two tails
//! of one shard therefore never take each other's reader away.
//!
//! [`Queue::read`]: crate::queue::Queue::read
//! [`Queue::end_position`]: crate::queue::Queue::end_position
//! [`Queue::open_reader`]: crate::queue::Queue::open_reader

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use logpool_core::routing::ShardAddr;
use pulsar::consumer::InitialPosition;
use pulsar::proto::MessageIdData;
use pulsar::{ConsumerOptions, SubType, TokioExecutor};

use super::{lock, message_id_of, position_of, queue_message, unavailable, Shared};
use crate::queue::{Position, QueueError, QueueMessage, QueueResult, ReadStart, ShardReader};

/// Most readers kept open at once (each holds up to `receiver_queue_size` messages).
pub(crate) const MAX_CACHED_READERS: usize = 64;

/// `-1` as Pulsar's Java broker reads an unsigned id field: the "earliest" sentinel
/// (ledger and entry), and "no entry yet" in a last-message-id answer.
const MINUS_ONE: u64 = u64::MAX;

type ReaderSlot = Arc<tokio::sync::Mutex<Option<CachedReader>>>;

/// Open readers, one slot per shard.
#[derive(Debug, Default)]
pub(crate) struct ReaderCache {
    slots: Mutex<HashMap<ShardAddr, (ReaderSlot, Instant)>>,
}

/// An open reader and where its next message is.
struct CachedReader {
    reader: ReaderConsumer,
    /// Every message this reader delivers next is at or after this position; `None`
    /// when unknown (a reader at the earliest message that has delivered nothing).
    next_position: Option<Position>,
}

impl std::fmt::Debug for CachedReader {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CachedReader")
            .field("next_position", &self.next_position)
            .finish_non_exhaustive()
    }
}

impl ReaderCache {
    /// Returns the slot of a shard, evicting the least recently used idle reader when
    /// the cache is full.
    fn slot(&self, shard: &ShardAddr) -> ReaderSlot {
        let mut slots = lock(&self.slots);
        let now = Instant::now();
        if let Some((slot, used_at)) = slots.get_mut(shard) {
            *used_at = now;
            return Arc::clone(slot);
        }
        if slots.len() >= MAX_CACHED_READERS {
            // Only a slot nobody else holds can go: evicting a busy one would let two
            // readers run for one shard.
            let idle = slots
                .iter()
                .filter(|(_, (slot, _))| Arc::strong_count(slot) == 1)
                .min_by_key(|(_, (_, used_at))| *used_at)
                .map(|(shard, _)| shard.clone());
            if let Some(idle) = idle {
                slots.remove(&idle);
            }
        }
        let slot = ReaderSlot::default();
        slots.insert(shard.clone(), (Arc::clone(&slot), now));
        slot
    }

    /// Reads up to `max_messages` of a shard from `start` (not `Latest`).
    pub(crate) async fn read(
        &self,
        shared: &Shared,
        shard: &ShardAddr,
        start: ReadStart,
        max_messages: usize,
    ) -> QueueResult<Vec<QueueMessage>> {
        let slot = self.slot(shard);
        let mut guard = slot.lock().await;
        // Taken out of the slot while in use: a read that fails or is cancelled
        // midway drops the reader instead of leaving one at an unknown place.
        let cached = guard.take();
        let timeout = shared.config.operation_timeout();
        let work = read_with(shared, shard, cached, start, max_messages);
        let (messages, reader) = tokio::time::timeout(timeout, work).await.map_err(|_| {
            QueueError::Unavailable(format!(
                "reading {shard:?} from pulsar timed out after {} ms",
                shared.config.operation_timeout_ms
            ))
        })??;
        *guard = Some(reader);
        Ok(messages)
    }

    /// Returns the position after the last message of a shard.
    pub(crate) async fn end_position(
        &self,
        shared: &Shared,
        shard: &ShardAddr,
    ) -> QueueResult<Position> {
        let slot = self.slot(shard);
        let mut guard = slot.lock().await;
        let cached = guard.take();
        let timeout = shared.config.operation_timeout();
        let work = async {
            let mut reader = match cached {
                Some(reader) => reader,
                None => CachedReader::open(shared, shard, Start::Latest).await?,
            };
            let end = reader.end_position().await?;
            Ok::<_, QueueError>((end, reader))
        };
        let (end, reader) = tokio::time::timeout(timeout, work).await.map_err(|_| {
            QueueError::Unavailable(format!(
                "asking pulsar for the end of {shard:?} timed out after {} ms",
                shared.config.operation_timeout_ms
            ))
        })??;
        *guard = Some(reader);
        Ok(end)
    }

    /// Closes the readers of deleted shards.
    pub(crate) async fn forget(&self, shards: &[ShardAddr]) {
        let removed: Vec<ReaderSlot> = {
            let mut slots = lock(&self.slots);
            shards
                .iter()
                .filter_map(|shard| slots.remove(shard).map(|(slot, _)| slot))
                .collect()
        };
        for slot in removed {
            if let Some(cached) = slot.lock().await.take() {
                cached.reader.close().await;
            }
        }
    }

    /// Closes every reader.
    pub(crate) async fn clear(&self) {
        let removed: Vec<ReaderSlot> = lock(&self.slots)
            .drain()
            .map(|(_, (slot, _))| slot)
            .collect();
        for slot in removed {
            if let Some(cached) = slot.lock().await.take() {
                cached.reader.close().await;
            }
        }
    }
}

/// A reader of one shard owned by one caller, outside the cache (see the module
/// documentation). Dropping it closes its consumer on the broker.
pub(crate) struct OwnedReader {
    shared: Arc<Shared>,
    shard: ShardAddr,
    /// The open reader; `None` before the first read and after a failed one (the
    /// next read opens a fresh reader at `next`).
    reader: Option<CachedReader>,
    /// Where the next read starts.
    next: ReadStart,
}

impl std::fmt::Debug for OwnedReader {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("OwnedReader")
            .field("shard", &self.shard)
            .field("next", &self.next)
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

impl OwnedReader {
    /// Opens a reader at `start`; `Latest` is resolved to the end position now.
    pub(crate) async fn open(
        shared: Arc<Shared>,
        shard: ShardAddr,
        start: ReadStart,
    ) -> QueueResult<OwnedReader> {
        if start != ReadStart::Latest {
            return Ok(OwnedReader {
                shared,
                shard,
                reader: None,
                next: start,
            });
        }
        let timeout = shared.config.operation_timeout();
        let work = async {
            let mut reader = CachedReader::open(&shared, &shard, Start::Latest).await?;
            let end = reader.end_position().await?;
            Ok::<_, QueueError>((end, reader))
        };
        let (end, mut reader) = tokio::time::timeout(timeout, work).await.map_err(|_| {
            QueueError::Unavailable(format!(
                "asking pulsar for the end of {shard:?} timed out after {} ms",
                shared.config.operation_timeout_ms
            ))
        })??;
        // The reader was attached before `end` was asked for, so it delivers every
        // message at or after `end`; one that slipped in between comes before `end`
        // and is dropped by the position filter of `read_with`.
        reader.next_position = Some(end);
        Ok(OwnedReader {
            shared,
            shard,
            reader: Some(reader),
            next: ReadStart::Position(end),
        })
    }
}

#[async_trait]
impl ShardReader for OwnedReader {
    async fn read_next(&mut self, max_messages: usize) -> QueueResult<Vec<QueueMessage>> {
        if max_messages == 0 {
            return Ok(Vec::new());
        }
        // Taken out while in use: a failed or cancelled read drops the reader.
        let cached = self.reader.take();
        let timeout = self.shared.config.operation_timeout();
        let work = read_with(&self.shared, &self.shard, cached, self.next, max_messages);
        let (messages, reader) = tokio::time::timeout(timeout, work).await.map_err(|_| {
            QueueError::Unavailable(format!(
                "reading {:?} from pulsar timed out after {} ms",
                self.shard, self.shared.config.operation_timeout_ms
            ))
        })??;
        // Every message before the reader's next position has been seen (and, for a
        // time start, was published before that time), so reading goes on from there.
        if let Some(next_position) = reader.next_position {
            self.next = ReadStart::Position(next_position);
        }
        self.reader = Some(reader);
        Ok(messages)
    }
}

/// How long a dropped reader may take to unsubscribe.
const UNSUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The consumer behind a reader: an exclusive, non-durable subscription that is
/// removed from the broker when the reader is dropped. Apache Pulsar removes a
/// non-durable subscription with its last consumer anyway; pulsar-lite keeps it (and
/// its growing backlog) until it is unsubscribed, so the drop unsubscribes.
struct ReaderConsumer(Option<pulsar::Consumer<Vec<u8>, TokioExecutor>>);

impl ReaderConsumer {
    fn consumer(&mut self) -> QueueResult<&mut pulsar::Consumer<Vec<u8>, TokioExecutor>> {
        self.0
            .as_mut()
            .ok_or_else(|| QueueError::Unavailable("the pulsar reader is closed".to_string()))
    }

    /// Returns the next message and acknowledges it, as the crate's reader does (a
    /// broker may hold back deliveries to a consumer with many unacked messages).
    async fn next_message(
        &mut self,
    ) -> Option<Result<pulsar::consumer::Message<Vec<u8>>, pulsar::Error>> {
        let consumer = self.0.as_mut()?;
        let next = consumer.next().await;
        if let Some(Ok(message)) = &next {
            if let Err(error) = consumer.ack(message).await {
                tracing::debug!(%error, "a pulsar reader could not ack a message");
            }
        }
        next
    }

    async fn last_message_id(&mut self) -> Result<MessageIdData, pulsar::Error> {
        let consumer = self
            .consumer()
            .map_err(|error| pulsar::Error::Custom(error.to_string()))?;
        let ids = consumer.get_last_message_id().await?;
        ids.into_iter()
            .next()
            .ok_or_else(|| pulsar::Error::Custom("no last message id in the answer".to_string()))
    }
}

impl ReaderConsumer {
    /// Unsubscribes now, waiting for the broker (at shutdown, where a task spawned
    /// by the drop might not get to run).
    async fn close(mut self) {
        if let Some(mut consumer) = self.0.take() {
            if let Ok(Err(error)) =
                tokio::time::timeout(UNSUBSCRIBE_TIMEOUT, consumer.unsubscribe()).await
            {
                tracing::debug!(%error, "a closed pulsar reader could not unsubscribe");
            }
        }
    }
}

impl Drop for ReaderConsumer {
    fn drop(&mut self) {
        let Some(mut consumer) = self.0.take() else {
            return;
        };
        // Without a runtime (process exit) the connection closes with it, and the
        // broker drops the consumer; only pulsar-lite then keeps the subscription.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            match tokio::time::timeout(UNSUBSCRIBE_TIMEOUT, consumer.unsubscribe()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::debug!(%error, "a closed pulsar reader could not unsubscribe");
                }
                Err(_) => tracing::debug!("a closed pulsar reader timed out unsubscribing"),
            }
        });
    }
}

/// Where a new reader starts.
#[derive(Debug, Clone, Copy)]
enum Start {
    Earliest,
    /// At the first message at or after this position.
    Position(Position),
    Latest,
}

impl CachedReader {
    async fn open(shared: &Shared, shard: &ShardAddr, start: Start) -> QueueResult<CachedReader> {
        static READER_NUMBER: AtomicU64 = AtomicU64::new(0);
        let client = shared.client().await?;
        let topic = shared.topic(shard);
        let queue_size = shared.config.receiver_queue_size;
        let (start_id, initial_position, next_position) = match start {
            Start::Earliest => (earliest_id(), InitialPosition::Earliest, None),
            Start::Position(position) => (
                id_before(position),
                InitialPosition::Earliest,
                Some(position),
            ),
            Start::Latest => (latest_id(), InitialPosition::Latest, None),
        };
        let name = format!(
            "logpool-reader-{}-{}",
            std::process::id(),
            READER_NUMBER.fetch_add(1, Ordering::Relaxed)
        );
        // What the crate's `into_reader` builds (an exclusive, non-durable
        // subscription), as a plain consumer so that it can unsubscribe when dropped.
        let options = ConsumerOptions {
            durable: Some(false),
            ..ConsumerOptions::default()
                .with_receiver_queue_size(queue_size)
                .with_initial_position(initial_position)
                .starting_on_message(start_id)
        };
        let consumer = client
            .consumer()
            .with_topic(&topic)
            .with_subscription(&name)
            .with_subscription_type(SubType::Exclusive)
            .with_consumer_name(&name)
            .with_batch_size(queue_size)
            .with_options(options)
            .build::<Vec<u8>>()
            .await
            .map_err(|error| unavailable(&format!("could not open a reader on {topic}"), &error))?;
        Ok(CachedReader {
            reader: ReaderConsumer(Some(consumer)),
            next_position,
        })
    }

    /// Returns the position of the topic's last message, `Err(end)` with the end
    /// position when the topic has no message.
    async fn last_position(&mut self) -> QueueResult<Result<Position, Position>> {
        match self.reader.last_message_id().await {
            Ok(last) => last_or_end(&last),
            // pulsar-lite answers an error where Apache Pulsar answers an entry id of -1.
            Err(error) if error.to_string().contains("has no messages") => Ok(Err(0)),
            Err(error) => Err(unavailable(
                "could not get the last pulsar message id",
                &error,
            )),
        }
    }

    async fn end_position(&mut self) -> QueueResult<Position> {
        Ok(match self.last_position().await? {
            Ok(last) => last.saturating_add(1),
            Err(end) => end,
        })
    }
}

/// Runs one read with a cached reader (if it is positioned right) or a new one, and
/// returns the messages with the reader to cache.
async fn read_with(
    shared: &Shared,
    shard: &ShardAddr,
    cached: Option<CachedReader>,
    start: ReadStart,
    max_messages: usize,
) -> QueueResult<(Vec<QueueMessage>, CachedReader)> {
    let (from, min_time_ms, open_at) = match start {
        ReadStart::Earliest => (None, None, Start::Earliest),
        ReadStart::Position(position) => (Some(position), None, Start::Position(position)),
        ReadStart::PublishTime(time_ms) => (None, Some(time_ms), Start::Earliest),
        ReadStart::Latest => {
            return Err(QueueError::Unavailable("no read from latest".to_string()))
        }
    };
    let reusable = cached
        .as_ref()
        .is_some_and(|reader| from.is_some() && reader.next_position == from);
    let mut reader = match cached {
        Some(reader) if reusable => reader,
        _ => CachedReader::open(shared, shard, open_at).await?,
    };
    let last = match reader.last_position().await? {
        Ok(last) => last,
        Err(_) => return Ok((Vec::new(), reader)),
    };
    if from.is_some_and(|from| from > last) {
        return Ok((Vec::new(), reader));
    }
    let mut messages = Vec::new();
    // Positions strictly increase, so a message at or before the last one seen in this
    // read is the broker delivering it again (seen on pulsar-lite right after a reader
    // caught up): returning it would show a tail the same record twice.
    let mut last_seen: Option<Position> = None;
    while messages.len() < max_messages {
        let message = match reader.reader.next_message().await {
            Some(Ok(message)) => message,
            Some(Err(error)) => return Err(unavailable("pulsar reader failed", &error)),
            None => {
                return Err(QueueError::Unavailable(
                    "the pulsar reader stopped".to_string(),
                ))
            }
        };
        let id = message.message_id.id.clone();
        let position = position_of(&id)?;
        if last_seen.is_some_and(|seen| position <= seen) {
            continue;
        }
        last_seen = Some(position);
        reader.next_position = Some(position.saturating_add(1));
        let message = queue_message(shard, &id, message.payload)?;
        let wanted = from.is_none_or(|from| position >= from)
            && min_time_ms.is_none_or(|time_ms| message.publish_time_ms >= time_ms);
        if wanted {
            messages.push(message);
        }
        if position >= last {
            break;
        }
    }
    Ok((messages, reader))
}

/// Pulsar's "earliest" message id (`-1:-1`).
fn earliest_id() -> MessageIdData {
    MessageIdData {
        ledger_id: MINUS_ONE,
        entry_id: MINUS_ONE,
        ..MessageIdData::default()
    }
}

/// Pulsar's "latest" message id (`i64::MAX:i64::MAX`).
fn latest_id() -> MessageIdData {
    let max = i64::MAX.unsigned_abs();
    MessageIdData {
        ledger_id: max,
        entry_id: max,
        ..MessageIdData::default()
    }
}

/// The id just before a position: a reader started there delivers the position's
/// message first (Pulsar's reader start is exclusive). For the first entry of a
/// ledger it is the earliest id (see the module documentation).
fn id_before(position: Position) -> MessageIdData {
    let id = message_id_of(position);
    match id.entry_id.checked_sub(1) {
        Some(entry_id) => MessageIdData { entry_id, ..id },
        None => earliest_id(),
    }
}

/// Interprets a last-message-id answer: `Ok(position)` of the last message, or
/// `Err(end)` for a topic without messages, with the position its first message
/// will get (as far as it is known).
fn last_or_end(last: &MessageIdData) -> QueueResult<Result<Position, Position>> {
    if last.ledger_id == MINUS_ONE || last.ledger_id > u64::from(u32::MAX) {
        return Ok(Err(0));
    }
    if last.entry_id == MINUS_ONE || last.entry_id > u64::from(u32::MAX) {
        // An open ledger without entries yet: its first entry is entry 0.
        return Ok(Err(last.ledger_id << 32));
    }
    position_of(last).map(Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_id_before_steps_back_one_entry_or_to_the_earliest() {
        let id = id_before((7 << 32) | 5);
        assert_eq!((id.ledger_id, id.entry_id), (7, 4));
        let id = id_before(7 << 32);
        assert_eq!((id.ledger_id, id.entry_id), (MINUS_ONE, MINUS_ONE));
        let id = id_before(0);
        assert_eq!((id.ledger_id, id.entry_id), (MINUS_ONE, MINUS_ONE));
    }

    #[test]
    fn test_last_or_end_handles_empty_topics() -> QueueResult<()> {
        let id = |ledger_id, entry_id| MessageIdData {
            ledger_id,
            entry_id,
            ..MessageIdData::default()
        };
        assert_eq!(last_or_end(&id(3, 9))?, Ok((3 << 32) | 9));
        assert_eq!(last_or_end(&id(3, MINUS_ONE))?, Err(3 << 32));
        assert_eq!(last_or_end(&id(MINUS_ONE, MINUS_ONE))?, Err(0));
        Ok(())
    }
}
