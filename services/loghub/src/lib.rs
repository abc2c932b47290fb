//! loghub: consumes the queue through the shared subscription `loghub` and indexes.
//!
//! # Exactly-once effect
//! Messages are acked only after the index commit that contains them. A message
//! that may have been seen before (nacked, its consumer lost, or unacked at a
//! restart) is written with `replace_existing`, and document ids come from queue
//! positions, so a redelivery replaces documents instead of adding copies.
//!
//! # Failure handling
//! - Index write or commit fails: the affected messages are nacked and come back
//!   after the queue's nack delay; nothing is acked that is not committed. While the
//!   index keeps failing, consumption pauses with capped exponential backoff
//!   ([`backoff`]), so an index outage grows the queue backlog instead of spinning;
//!   the first success ends the pauses. A failing queue receive backs off the same way.
//! - A payload that can never be decoded is stored in the object store under
//!   `dead-letter/` with a counter and an error log, then acked: it is kept, not lost,
//!   and it no longer blocks its shard.
//! - A message of a pool that was deleted is acked and dropped.

pub mod archive;
mod backoff;
pub mod legacy_types;
pub mod patterns;
pub mod precreate;
pub mod retention;
pub mod schema;
pub mod service;

use logpool_core::pool_id::PoolId;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logpool_api::RoutingView;
use logpool_core::batch::decode_batch;
use logpool_core::doc_id::DocIdentity;
use logpool_core::routing::{PoolRoute, RoutingSnapshot};
use logpool_engines::config::LoghubConfig;
use logpool_engines::index::{IndexDoc, IndexError, LogIndex, RejectedDoc, WriteReport};
use logpool_engines::object_store::ObjectStore;
use logpool_engines::queue::{Consumer, Delivery, DeliveryTag, Queue};

use crate::backoff::Backoff;

/// The subscription LogHub consumes with.
pub const SUBSCRIPTION: &str = "loghub";

/// First pause after a failed index write or commit, and the longest one: long enough
/// that a down index costs a few attempts a minute, short enough that loghub catches
/// up within seconds of the index coming back.
const INDEX_BACKOFF_FIRST: Duration = Duration::from_millis(250);
const INDEX_BACKOFF_MAX: Duration = Duration::from_secs(8);
/// The same for a failing queue receive (the client also reconnects on its own).
const QUEUE_BACKOFF_FIRST: Duration = Duration::from_millis(250);
const QUEUE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Counters that make loss visible.
#[derive(Debug, Default)]
pub struct LoghubStats {
    /// Records committed to the index.
    pub records_indexed: AtomicU64,
    /// Messages acked.
    pub messages_acked: AtomicU64,
    /// Messages nacked for redelivery.
    pub messages_nacked: AtomicU64,
    /// Messages moved to the dead letter (undecodable).
    pub messages_dead_lettered: AtomicU64,
    /// Records the index refused for good, moved to the dead letter.
    pub records_dead_lettered: AtomicU64,
    /// Index commits.
    pub commits: AtomicU64,
    /// Index writes and commits that failed (their messages were nacked).
    pub index_failures: AtomicU64,
}

impl logpool_api::metrics::CounterSource for LoghubStats {
    fn counters(&self) -> Vec<logpool_api::metrics::CounterReading> {
        vec![
            (
                "logpool_loghub_records_indexed_total",
                "Records committed to the index.",
                self.records_indexed.load(Ordering::Relaxed),
            ),
            (
                "logpool_loghub_messages_acked_total",
                "Queue messages acked after a commit.",
                self.messages_acked.load(Ordering::Relaxed),
            ),
            (
                "logpool_loghub_messages_nacked_total",
                "Queue messages given back for redelivery.",
                self.messages_nacked.load(Ordering::Relaxed),
            ),
            (
                "logpool_loghub_messages_dead_lettered_total",
                "Undecodable queue messages moved to the dead letter.",
                self.messages_dead_lettered.load(Ordering::Relaxed),
            ),
            (
                "logpool_loghub_records_dead_lettered_total",
                "Records the index refused, moved to the dead letter.",
                self.records_dead_lettered.load(Ordering::Relaxed),
            ),
            (
                "logpool_loghub_commits_total",
                "Index commits.",
                self.commits.load(Ordering::Relaxed),
            ),
            (
                "logpool_loghub_index_failures_total",
                "Index writes and commits that failed; their messages are redelivered.",
                self.index_failures.load(Ordering::Relaxed),
            ),
        ]
    }
}

/// What LogHub needs.
#[derive(Debug, Clone)]
pub struct LoghubState {
    /// The queue to consume.
    pub queue: Arc<dyn Queue>,
    /// The index to write.
    pub index: Arc<dyn LogIndex>,
    /// Where the types of new fields are fixed before a batch is indexed.
    pub schemas: Arc<schema::PoolSchemas>,
    /// Where undecodable payloads are kept.
    pub object_store: Arc<dyn ObjectStore>,
    /// Pool routes.
    pub routing: RoutingView,
    /// Settings.
    pub config: LoghubConfig,
    /// Wait between an index commit and the ack of its messages: zero except in the
    /// crash tests (`fault_injection.loghub_ack_delay_ms`).
    pub ack_delay: Duration,
    /// Counters.
    pub stats: Arc<LoghubStats>,
    /// The pattern miner of each pool.
    pub patterns: Arc<patterns::PoolPatterns>,
}

/// Messages written to the index but not yet committed.
#[derive(Default)]
struct Uncommitted {
    tags: Vec<DeliveryTag>,
    records: usize,
    first_write: Option<Instant>,
}

/// What one round of index writes or one commit did, for the backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IndexOutcome {
    /// Nothing was sent to the index.
    Idle,
    /// Everything sent was taken.
    Succeeded,
    /// At least one write or the commit failed.
    Failed,
}

impl IndexOutcome {
    /// Combines two outcomes of one round: a failure wins, then a success.
    fn and(self, other: IndexOutcome) -> IndexOutcome {
        match (self, other) {
            (IndexOutcome::Failed, _) | (_, IndexOutcome::Failed) => IndexOutcome::Failed,
            (IndexOutcome::Succeeded, _) | (_, IndexOutcome::Succeeded) => IndexOutcome::Succeeded,
            _ => IndexOutcome::Idle,
        }
    }
}

enum Event {
    Shutdown,
    RoutingChanged,
    Received(Result<Vec<Delivery>, logpool_engines::queue::QueueError>),
    Written(Result<Vec<FinishedWrite>, tokio::task::JoinError>),
}

/// The records of one receive, decoded and grouped by pool and redelivery flag.
struct Prepared {
    writes: Vec<PreparedWrite>,
    /// Messages of deleted pools: acked at once.
    to_ack_now: Vec<DeliveryTag>,
    /// Messages that can never be decoded, with why: dead-lettered, then acked.
    undecodable: Vec<(Delivery, String)>,
}

/// One index write: the records of one pool's messages.
struct PreparedWrite {
    pool: PoolRoute,
    redelivered: bool,
    docs: Vec<IndexDoc>,
    tags: Vec<DeliveryTag>,
}

/// What became of one [`PreparedWrite`].
struct FinishedWrite {
    pool: PoolRoute,
    tags: Vec<DeliveryTag>,
    records: usize,
    result: Result<WriteReport, IndexError>,
}

/// The index writes under way, and the tags they carry (to nack if the task is lost).
struct InFlight {
    task: tokio::task::JoinHandle<Vec<FinishedWrite>>,
    tags: Vec<DeliveryTag>,
}

/// Consumes and indexes until `shutdown` resolves, then commits and acks what it
/// has written and returns.
///
/// Two stages overlap: while one receive's records are being written (tantivy
/// indexes them on its own thread), the next receive is taken from the queue and
/// decoded, so the index's thread does not wait for the decoding between writes. A
/// commit runs between writes, never during one, and acks only what was written
/// before it.
///
/// # Errors
/// Fails when the queue subscription cannot be made.
pub async fn run(
    state: LoghubState,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let mut routing_changes = state.routing.receiver();
    let mut consumer = state
        .queue
        .subscribe(SUBSCRIPTION, state.routing.snapshot().all_shards())
        .await?;
    let commit_interval = Duration::from_millis(state.config.commit_interval_ms);
    let mut uncommitted = Uncommitted::default();
    let mut index_backoff = Backoff::new(INDEX_BACKOFF_FIRST, INDEX_BACKOFF_MAX);
    let mut queue_backoff = Backoff::new(QUEUE_BACKOFF_FIRST, QUEUE_BACKOFF_MAX);
    // Invariant: a decoded receive waits only while a write is in flight.
    let mut in_flight: Option<InFlight> = None;
    let mut decoded: Option<Vec<PreparedWrite>> = None;
    tokio::pin!(shutdown);
    loop {
        let wait = match uncommitted.first_write {
            Some(first) => commit_interval
                .saturating_sub(first.elapsed())
                .max(Duration::from_millis(1)),
            None => Duration::from_millis(200),
        }
        .min(Duration::from_millis(200));
        // The select only decides what happened; the consumer is used after it, so
        // no branch future still borrows it. A receive still waiting when the writes in
        // flight finish is dropped: both queues' receives are cancel-safe (the embedded
        // one gives picked messages back, Pulsar's takes messages only right before
        // returning them).
        let event = tokio::select! {
            biased;
            () = &mut shutdown => Event::Shutdown,
            changed = routing_changes.changed() => match changed {
                Ok(()) => Event::RoutingChanged,
                Err(_) => Event::Shutdown,
            },
            finished = written(&mut in_flight), if in_flight.is_some() => Event::Written(finished),
            received = consumer.receive(state.config.receive_batch_messages, wait), if decoded.is_none() => Event::Received(received),
        };
        let mut outcome = IndexOutcome::Idle;
        match event {
            Event::Shutdown => break,
            Event::RoutingChanged => {
                let shards = routing_changes.borrow_and_update().all_shards();
                if let Err(error) = consumer.set_shards(shards).await {
                    tracing::warn!(%error, "failed to update the shards of the loghub consumer");
                }
            }
            Event::Received(Ok(deliveries)) => {
                queue_backoff.on_success();
                decoded = decode_deliveries(&state, consumer.as_mut(), deliveries).await;
            }
            Event::Received(Err(error)) => {
                let pause = queue_backoff.on_failure();
                tracing::warn!(
                    %error,
                    consecutive_failures = queue_backoff.consecutive_failures(),
                    pause_ms = pause.as_millis() as u64,
                    "queue receive failed; retrying after a pause"
                );
                if pause_unless_shutdown(pause, &mut shutdown).await {
                    break;
                }
            }
            Event::Written(finished) => {
                let tags = in_flight.take().map(|f| f.tags).unwrap_or_default();
                outcome =
                    finish_writes(&state, consumer.as_mut(), finished, tags, &mut uncommitted)
                        .await;
            }
        }
        if in_flight.is_none() {
            let due = uncommitted.first_write.is_some_and(|first| {
                first.elapsed() >= commit_interval
                    || uncommitted.records >= state.config.max_uncommitted_records
            });
            if due {
                outcome =
                    outcome.and(commit_and_ack(&state, consumer.as_mut(), &mut uncommitted).await);
            }
            if let Some(writes) = decoded.take() {
                in_flight = Some(start_writes(&state, writes));
            }
        }
        match outcome {
            IndexOutcome::Failed => {
                let pause = index_backoff.on_failure();
                tracing::warn!(
                    consecutive_failures = index_backoff.consecutive_failures(),
                    pause_ms = pause.as_millis() as u64,
                    "the index is failing; pausing consumption"
                );
                if pause_unless_shutdown(pause, &mut shutdown).await {
                    break;
                }
            }
            IndexOutcome::Succeeded => index_backoff.on_success(),
            IndexOutcome::Idle => {}
        }
    }
    // Graceful shutdown: what was written is committed and acked before exiting;
    // what was only decoded comes back through the queue.
    if let Some(InFlight { task, tags }) = in_flight.take() {
        let finished = task.await;
        finish_writes(&state, consumer.as_mut(), finished, tags, &mut uncommitted).await;
    }
    if let Some(writes) = decoded.take() {
        let tags: Vec<DeliveryTag> = writes.into_iter().flat_map(|w| w.tags).collect();
        nack(&state, consumer.as_mut(), &tags).await;
    }
    commit_and_ack(&state, consumer.as_mut(), &mut uncommitted).await;
    state.patterns.save(state.object_store.as_ref(), true).await;
    Ok(())
}

/// Waits for the writes in flight; never resolves when there are none.
async fn written(
    in_flight: &mut Option<InFlight>,
) -> Result<Vec<FinishedWrite>, tokio::task::JoinError> {
    match in_flight {
        Some(in_flight) => (&mut in_flight.task).await,
        None => std::future::pending().await,
    }
}

/// Sleeps for `pause`; returns true (at once) when shutdown comes first.
async fn pause_unless_shutdown<F: Future<Output = ()>>(
    pause: Duration,
    shutdown: &mut std::pin::Pin<&mut F>,
) -> bool {
    tokio::select! {
        biased;
        () = shutdown.as_mut() => true,
        () = tokio::time::sleep(pause) => false,
    }
}

/// Decodes one receive off the async threads, settles what needs no index write
/// (deleted pools, undecodable payloads), and returns the writes to make, if any.
async fn decode_deliveries(
    state: &LoghubState,
    consumer: &mut dyn Consumer,
    deliveries: Vec<Delivery>,
) -> Option<Vec<PreparedWrite>> {
    if deliveries.is_empty() {
        return None;
    }
    let snapshot = state.routing.snapshot();
    let tags: Vec<DeliveryTag> = deliveries.iter().map(Delivery::tag).collect();
    let pool_ids = deliveries
        .iter()
        .map(|delivery| delivery.message.properties.pool_id)
        .collect();
    state
        .patterns
        .load(state.object_store.as_ref(), pool_ids)
        .await;
    let patterns = state.patterns.clone();
    let prepared = match tokio::task::spawn_blocking(move || {
        prepare(&snapshot, &patterns, deliveries)
    })
    .await
    {
        Ok(prepared) => prepared,
        Err(error) => {
            tracing::error!(%error, "decoding queue messages failed; they will be redelivered");
            nack(state, consumer, &tags).await;
            return None;
        }
    };
    let mut to_ack_now = prepared.to_ack_now;
    for (delivery, reason) in &prepared.undecodable {
        dead_letter(state, delivery, reason).await;
        to_ack_now.push(delivery.tag());
    }
    if !to_ack_now.is_empty() {
        if let Err(error) = consumer.ack(&to_ack_now).await {
            tracing::warn!(%error, "ack failed; messages will be redelivered");
        }
    }
    (!prepared.writes.is_empty()).then_some(prepared.writes)
}

/// Decodes deliveries and groups their records by pool and redelivery flag: one
/// index write per group, each record with its pattern id. Blocking (zstd, JSON
/// and pattern mining).
fn prepare(
    snapshot: &RoutingSnapshot,
    patterns: &patterns::PoolPatterns,
    deliveries: Vec<Delivery>,
) -> Prepared {
    let mut prepared = Prepared {
        writes: Vec::new(),
        to_ack_now: Vec::new(),
        undecodable: Vec::new(),
    };
    let mut group_of: HashMap<(PoolId, bool), usize> = HashMap::new();
    for delivery in deliveries {
        let message = &delivery.message;
        let Some(route) = snapshot
            .pool_of_shard(&message.shard)
            .filter(|r| r.pool_id == message.properties.pool_id)
        else {
            tracing::debug!(shard = ?message.shard, position = message.position, "dropping a message of a deleted pool");
            prepared.to_ack_now.push(delivery.tag());
            continue;
        };
        let records = match decode_batch(&message.payload) {
            Ok(mut records) => {
                patterns.assign(route.pool_id, &mut records);
                records
            }
            Err(error) => {
                prepared.undecodable.push((delivery, error.to_string()));
                continue;
            }
        };
        let shard_index = route.shard_index_of(message.shard.partition).unwrap_or(0) as u32;
        let group = *group_of
            .entry((route.pool_id, delivery.redelivered))
            .or_insert_with(|| {
                prepared.writes.push(PreparedWrite {
                    pool: route.clone(),
                    redelivered: delivery.redelivered,
                    docs: Vec::new(),
                    tags: Vec::new(),
                });
                prepared.writes.len() - 1
            });
        let write = &mut prepared.writes[group];
        write.docs.extend(
            records
                .into_iter()
                .enumerate()
                .map(|(index, record)| IndexDoc {
                    identity: DocIdentity {
                        pool_id: route.pool_id,
                        partition: message.shard.partition,
                        position: message.position,
                        index_in_batch: index as u32,
                    },
                    shard: shard_index,
                    record,
                }),
        );
        write.tags.push(delivery.tag());
    }
    prepared
}

/// Starts the writes of one receive on a task of their own.
fn start_writes(state: &LoghubState, writes: Vec<PreparedWrite>) -> InFlight {
    let tags = writes.iter().flat_map(|w| w.tags.iter().cloned()).collect();
    let index = state.index.clone();
    let schemas = state.schemas.clone();
    let task = tokio::spawn(async move {
        let mut finished = Vec::with_capacity(writes.len());
        for write in writes {
            let records = write.docs.len();
            let result = match schemas.route_for(&write.pool, &write.docs).await {
                Ok(typed) => index.write(&typed, write.docs, write.redelivered).await,
                Err(error) => Err(error),
            };
            finished.push(FinishedWrite {
                pool: write.pool,
                tags: write.tags,
                records,
                result,
            });
        }
        finished
    });
    InFlight { task, tags }
}

/// Books finished writes: written messages wait for the next commit, failed ones
/// are nacked (all of them when the task itself was lost).
async fn finish_writes(
    state: &LoghubState,
    consumer: &mut dyn Consumer,
    finished: Result<Vec<FinishedWrite>, tokio::task::JoinError>,
    in_flight_tags: Vec<DeliveryTag>,
    uncommitted: &mut Uncommitted,
) -> IndexOutcome {
    let finished = match finished {
        Ok(finished) => finished,
        Err(error) => {
            tracing::error!(%error, "index write task failed; messages will be redelivered");
            state.stats.index_failures.fetch_add(1, Ordering::Relaxed);
            nack(state, consumer, &in_flight_tags).await;
            return IndexOutcome::Failed;
        }
    };
    let mut outcome = IndexOutcome::Idle;
    for write in finished {
        match write.result {
            Ok(report) => {
                // Rejected records are stored before their messages can be acked, so
                // the ack after the commit never loses them.
                if !report.rejected.is_empty() {
                    dead_letter_records(
                        state,
                        &write.pool.tenant,
                        write.pool.pool_id,
                        &report.rejected,
                    )
                    .await;
                }
                uncommitted.tags.extend(write.tags);
                uncommitted.records += write.records;
                uncommitted.first_write.get_or_insert_with(Instant::now);
                outcome = outcome.and(IndexOutcome::Succeeded);
            }
            Err(error) => {
                let pool_id = write.pool.pool_id;
                tracing::warn!(%error, %pool_id, "index write failed; messages will be redelivered");
                state.stats.index_failures.fetch_add(1, Ordering::Relaxed);
                nack(state, consumer, &write.tags).await;
                outcome = IndexOutcome::Failed;
            }
        }
    }
    outcome
}

async fn commit_and_ack(
    state: &LoghubState,
    consumer: &mut dyn Consumer,
    uncommitted: &mut Uncommitted,
) -> IndexOutcome {
    if uncommitted.first_write.is_none() {
        return IndexOutcome::Idle;
    }
    let batch = std::mem::take(uncommitted);
    match state.index.commit().await {
        Ok(()) => {
            state.stats.commits.fetch_add(1, Ordering::Relaxed);
            // Before the ack: a redelivery after a crash replays on a table that
            // already holds these records' patterns.
            state
                .patterns
                .save(state.object_store.as_ref(), false)
                .await;
            if !state.ack_delay.is_zero() {
                tokio::time::sleep(state.ack_delay).await;
            }
            state
                .stats
                .records_indexed
                .fetch_add(batch.records as u64, Ordering::Relaxed);
            match consumer.ack(&batch.tags).await {
                Ok(()) => {
                    state
                        .stats
                        .messages_acked
                        .fetch_add(batch.tags.len() as u64, Ordering::Relaxed);
                }
                // Not fatal: unacked messages come back and are replaced, not doubled.
                Err(error) => {
                    tracing::warn!(%error, "ack after commit failed; messages will be redelivered")
                }
            }
            IndexOutcome::Succeeded
        }
        Err(error) => {
            tracing::warn!(%error, "index commit failed; messages will be redelivered");
            state.stats.index_failures.fetch_add(1, Ordering::Relaxed);
            nack(state, consumer, &batch.tags).await;
            IndexOutcome::Failed
        }
    }
}

async fn nack(state: &LoghubState, consumer: &mut dyn Consumer, tags: &[DeliveryTag]) {
    state
        .stats
        .messages_nacked
        .fetch_add(tags.len() as u64, Ordering::Relaxed);
    if let Err(error) = consumer.nack(tags).await {
        tracing::warn!(%error, "nack failed; the queue redelivers on its own");
    }
}

/// Keeps records the index refused for good as NDJSON (record, id and reason), one
/// object per write, under `dead-letter/{tenant}/{pool_id}/records/` (every stored
/// object names its tenant).
async fn dead_letter_records(
    state: &LoghubState,
    tenant: &str,
    pool_id: PoolId,
    rejected: &[RejectedDoc],
) {
    let mut body = Vec::new();
    for item in rejected {
        let line = serde_json::json!({
            "id": item.doc.identity.doc_id(),
            "reason": item.reason,
            "time_ns": item.doc.record.time_ns,
            "fields": item.doc.record.fields_json(),
        });
        if serde_json::to_writer(&mut body, &line).is_ok() {
            body.push(b'\n');
        }
    }
    let first = rejected[0].doc.identity;
    let key = format!(
        "dead-letter/{tenant}/{pool_id}/records/{}-{}-{}.ndjson",
        first.partition, first.position, first.index_in_batch
    );
    state
        .stats
        .records_dead_lettered
        .fetch_add(rejected.len() as u64, Ordering::Relaxed);
    tracing::error!(%key, count = rejected.len(), reason = %rejected[0].reason, "records rejected by the index moved to the dead letter");
    if let Err(error) = state.object_store.put(&key, bytes::Bytes::from(body)).await {
        tracing::error!(%error, %key, "failed to store rejected records");
    }
}

async fn dead_letter(state: &LoghubState, delivery: &Delivery, reason: &str) {
    let message = &delivery.message;
    let key = format!(
        "dead-letter/{}/{}/{}/{}-{}.batch",
        message.shard.tenant,
        message.properties.pool_id,
        message.shard.project,
        message.shard.partition,
        message.position
    );
    state
        .stats
        .messages_dead_lettered
        .fetch_add(1, Ordering::Relaxed);
    tracing::error!(%reason, %key, "undecodable queue message moved to the dead letter");
    if let Err(error) = state.object_store.put(&key, message.payload.clone()).await {
        tracing::error!(%error, %key, "failed to store a dead-letter message");
    }
}
