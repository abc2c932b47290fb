//! Reads a pool's shards for one tail and fills its buffer.
//!
//! Each shard has its own queue reader ([`Queue::open_reader`]) that goes on from
//! where it stopped, so a backfill from `start` runs into the live records without a
//! seam. Reading never waits for the client: the buffer drops what does not fit.
//! A read asks for fewer messages when messages are large, so that what one read
//! holds at once stays near [`READ_BYTES_TARGET`] (a backfill over large records does
//! not load 64 full batches per shard at a time). The
//! pump ends when the pool is deleted or the queue closes; the session aborts it
//! when the connection ends, which drops the readers (on Pulsar, closing their
//! non-durable subscriptions).
//!
//! [`Queue::open_reader`]: logpool_engines::queue::Queue::open_reader

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use logpool_core::batch::decode_batch;
use logpool_core::doc_id::DocIdentity;
use logpool_core::query::Query as LogQuery;
use logpool_core::record::format_time_ns;
use logpool_core::routing::{FieldType, PoolRoute, RoutingSnapshot};
use logpool_core::typed_match::matches;
use logpool_engines::queue::{QueueError, QueueMessage, ShardReader};
use serde::Serialize;
use tokio::sync::watch;

use super::buffer::{BufferedRecord, TailBuffer};

/// Messages read per shard per round at most.
const MESSAGES_PER_READ: usize = 64;
/// Payload bytes one read should bring in at once; the message count of the next read
/// is lowered (down to one message) when messages are larger than this allows.
pub const READ_BYTES_TARGET: usize = 4 * 1024 * 1024;
/// Longest wait before a failed read is tried again.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// Why a pump stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PumpEnd {
    /// The pool is no longer in the routing snapshot.
    PoolDeleted,
    /// The queue is shutting down.
    QueueClosed,
}

/// One shard being read.
#[derive(Debug)]
pub struct ShardSource {
    /// Index of the shard in the pool.
    pub shard_index: usize,
    /// Its queue partition.
    pub partition: u32,
    /// Its reader.
    pub reader: Box<dyn ShardReader>,
    /// Largest payload seen in the latest read, to size the next one.
    pub largest_payload_bytes: usize,
}

impl ShardSource {
    /// A source for a shard, before its first read.
    pub fn new(shard_index: usize, partition: u32, reader: Box<dyn ShardReader>) -> ShardSource {
        ShardSource {
            shard_index,
            partition,
            reader,
            largest_payload_bytes: 0,
        }
    }

    /// How many messages the next read asks for: as many as fit in
    /// [`READ_BYTES_TARGET`] at the size of the largest recent message.
    fn messages_per_read(&self) -> usize {
        (READ_BYTES_TARGET / self.largest_payload_bytes.max(1)).clamp(1, MESSAGES_PER_READ)
    }

    fn learn_message_size(&mut self, messages: &[QueueMessage]) {
        if let Some(largest) = messages.iter().map(|message| message.payload.len()).max() {
            self.largest_payload_bytes = largest;
        }
    }
}

/// Everything a pump needs.
#[derive(Debug)]
pub struct Pump {
    /// The tailed pool.
    pub route: PoolRoute,
    /// The filter.
    pub query: LogQuery,
    /// One reader per shard.
    pub sources: Vec<ShardSource>,
    /// Where matching records go.
    pub buffer: Arc<TailBuffer>,
    /// Routing updates, to notice a deleted pool.
    pub routing: watch::Receiver<Arc<RoutingSnapshot>>,
    /// Pause between rounds when every shard is caught up.
    pub poll_interval: Duration,
}

impl Pump {
    /// Reads until the pool is deleted or the queue closes.
    pub async fn run(mut self) -> PumpEnd {
        let mut retry_delay = self.poll_interval;
        // The pool's field types, as search has them: they grow while the pool
        // learns new fields, so they are taken again from every new snapshot.
        let mut types = self.route.field_types();
        let mut seen_version = None;
        loop {
            let snapshot = self.routing.borrow().clone();
            if seen_version != Some(snapshot.version) {
                seen_version = Some(snapshot.version);
                let Some(route) = snapshot.pool_by_id(self.route.pool_id) else {
                    return PumpEnd::PoolDeleted;
                };
                if route.learned_types != self.route.learned_types
                    || route.field_hints != self.route.field_hints
                {
                    self.route = route.clone();
                    types = self.route.field_types();
                }
            }
            let mut behind = false;
            let mut failed = false;
            for source in &mut self.sources {
                let wanted = source.messages_per_read();
                match source.reader.read_next(wanted).await {
                    Ok(messages) => {
                        behind |= messages.len() == wanted;
                        source.learn_message_size(&messages);
                        let tailed = Tailed {
                            route: &self.route,
                            types: &types,
                            query: &self.query,
                        };
                        deliver(&tailed, source, &messages, &self.buffer);
                    }
                    Err(QueueError::Closed) => return PumpEnd::QueueClosed,
                    Err(error) => {
                        tracing::warn!(%error, pool = %self.route.name, shard = source.shard_index, "tail read failed; retrying");
                        failed = true;
                    }
                }
            }
            let pause = if failed {
                retry_delay = (retry_delay * 2).min(MAX_RETRY_DELAY);
                retry_delay
            } else {
                retry_delay = self.poll_interval;
                if behind {
                    // Yield so a backlog cannot starve other tasks.
                    tokio::task::yield_now().await;
                    continue;
                }
                self.poll_interval
            };
            // A routing change ends the pause early, so a deletion is seen at once.
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                changed = self.routing.changed() => {
                    if changed.is_err() {
                        // No more routing updates will come: just pause.
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }
    }
}

/// What a pump tails: the pool, its field types and the filter.
struct Tailed<'a> {
    route: &'a PoolRoute,
    types: &'a BTreeMap<String, FieldType>,
    query: &'a LogQuery,
}

/// Decodes messages of one shard and buffers the pool's records that match.
///
/// While the buffer is full, a message is skipped whole and counted as dropped
/// without being decoded: a client that cannot keep up then costs the server almost
/// nothing, so it cannot slow ingestion or other tails by making this task busy.
fn deliver(
    tailed: &Tailed<'_>,
    source: &ShardSource,
    messages: &[QueueMessage],
    buffer: &TailBuffer,
) {
    let Tailed {
        route,
        types,
        query,
    } = tailed;
    for message in messages {
        // A partition may hold messages of an earlier pool that had it.
        if message.properties.pool_id != route.pool_id {
            continue;
        }
        if buffer.is_full() {
            buffer.skip(u64::from(message.properties.record_count));
            continue;
        }
        let records = match decode_batch(&message.payload) {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(%error, pool = %route.name, shard = source.shard_index, position = message.position, "tail skipped an undecodable batch");
                continue;
            }
        };
        let matching = records
            .into_iter()
            .enumerate()
            // The pool's types (hints and learned) type the values as search does:
            // `status:>=500` is numeric for a long field, also for the text "503".
            .filter(|(_, record)| matches(query, record, types))
            .map(|(index, record)| {
                let identity = DocIdentity {
                    pool_id: route.pool_id,
                    partition: source.partition,
                    position: message.position,
                    index_in_batch: u32::try_from(index).unwrap_or(u32::MAX),
                };
                let sent = SentRecord {
                    id: identity.doc_id(),
                    time: format_time_ns(record.time_ns),
                    shard: source.shard_index,
                    fields: record.fields_json(),
                };
                BufferedRecord {
                    // Serialising a map of JSON values to a string cannot fail.
                    json: serde_json::to_string(&sent).unwrap_or_default(),
                    publish_time_ms: message.publish_time_ms,
                }
            });
        buffer.push_all(matching);
    }
}

/// A record as a tail sends it, shaped like a search hit.
#[derive(Serialize)]
struct SentRecord {
    id: String,
    time: String,
    shard: usize,
    fields: serde_json::Map<String, serde_json::Value>,
}

/// Returns the current time in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}
