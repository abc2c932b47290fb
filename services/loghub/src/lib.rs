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
pub mod precreate;
pub mod retention;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logpool_api::RoutingView;
use logpool_core::batch::decode_batch;
use logpool_core::doc_id::DocIdentity;
use logpool_engines::config::LoghubConfig;
use logpool_engines::index::{IndexDoc, LogIndex, RejectedDoc};
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
    /// Where undecodable payloads are kept.
    pub object_store: Arc<dyn ObjectStore>,
    /// Pool routes.
    pub routing: RoutingView,
    /// Settings.
    pub config: LoghubConfig,
    /// Counters.
    pub stats: Arc<LoghubStats>,
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
}

/// Consumes and indexes until `shutdown` resolves, then commits and acks what it
/// has written and returns.
///
/// # Errors
/// Fails only when the subscription cannot be joined.
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
        // no branch future still borrows it.
        let event = tokio::select! {
            biased;
            () = &mut shutdown => Event::Shutdown,
            changed = routing_changes.changed() => match changed {
                Ok(()) => Event::RoutingChanged,
                Err(_) => Event::Shutdown,
            },
            received = consumer.receive(state.config.receive_batch_messages, wait) => Event::Received(received),
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
                outcome =
                    index_deliveries(&state, consumer.as_mut(), deliveries, &mut uncommitted).await;
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
        }
        let due = uncommitted.first_write.is_some_and(|first| {
            first.elapsed() >= commit_interval
                || uncommitted.records >= state.config.max_uncommitted_records
        });
        if due {
            outcome =
                outcome.and(commit_and_ack(&state, consumer.as_mut(), &mut uncommitted).await);
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
    // Graceful shutdown: what was written is committed and acked before exiting.
    commit_and_ack(&state, consumer.as_mut(), &mut uncommitted).await;
    Ok(())
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

async fn index_deliveries(
    state: &LoghubState,
    consumer: &mut dyn Consumer,
    deliveries: Vec<Delivery>,
    uncommitted: &mut Uncommitted,
) -> IndexOutcome {
    if deliveries.is_empty() {
        return IndexOutcome::Idle;
    }
    let snapshot = state.routing.snapshot();
    let mut to_ack_now = Vec::new();
    // Group by pool and redelivery flag: one index write per group.
    let mut groups: HashMap<(i64, bool), (Vec<IndexDoc>, Vec<DeliveryTag>)> = HashMap::new();
    for delivery in deliveries {
        let message = &delivery.message;
        let Some(route) = snapshot
            .pool_of_shard(&message.shard)
            .filter(|r| r.pool_id == message.properties.pool_id)
        else {
            tracing::debug!(shard = ?message.shard, position = message.position, "dropping a message of a deleted pool");
            to_ack_now.push(delivery.tag());
            continue;
        };
        let records = match decode_batch(&message.payload) {
            Ok(records) => records,
            Err(error) => {
                dead_letter(state, &delivery, &error.to_string()).await;
                to_ack_now.push(delivery.tag());
                continue;
            }
        };
        let shard_index = route.shard_index_of(message.shard.partition).unwrap_or(0) as u32;
        let (docs, tags) = groups
            .entry((route.pool_id, delivery.redelivered))
            .or_default();
        docs.extend(
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
        tags.push(delivery.tag());
    }
    let mut outcome = IndexOutcome::Idle;
    for ((pool_id, redelivered), (docs, tags)) in groups {
        let Some(route) = snapshot.pool_by_id(pool_id) else {
            continue;
        };
        let count = docs.len();
        match state.index.write(route, docs, redelivered).await {
            Ok(report) => {
                // Rejected records are stored before their messages can be acked, so
                // the ack after the commit never loses them.
                if !report.rejected.is_empty() {
                    dead_letter_records(state, &route.tenant, route.pool_id, &report.rejected)
                        .await;
                }
                uncommitted.tags.extend(tags);
                uncommitted.records += count;
                uncommitted.first_write.get_or_insert_with(Instant::now);
                outcome = outcome.and(IndexOutcome::Succeeded);
            }
            Err(error) => {
                tracing::warn!(%error, pool_id, "index write failed; messages will be redelivered");
                state.stats.index_failures.fetch_add(1, Ordering::Relaxed);
                nack(state, consumer, &tags).await;
                outcome = IndexOutcome::Failed;
            }
        }
    }
    if !to_ack_now.is_empty() {
        if let Err(error) = consumer.ack(&to_ack_now).await {
            tracing::warn!(%error, "ack failed; messages will be redelivered");
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
            if state.config.ack_delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(state.config.ack_delay_ms)).await;
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
    pool_id: i64,
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
