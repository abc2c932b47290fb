//! The archive worker: delivers every record of archive-enabled pools to the object
//! store, exactly once, in the format of [`logpool_core::archive`].
//!
//! It consumes its own shared subscription ([`SUBSCRIPTION`]) over every shard and
//! buffers records per shard ([`shard`]). A buffer is written when it reaches the
//! pool's `max_object_bytes` or is `max_delay_s` old: one object per UTC hour of the
//! records' own time, every object named by the buffer's queue position range
//! ([`upload`]). Messages are acked only after all objects of their batch (and their
//! manifests) are stored. Messages of pools without an enabled archive are acked at
//! once, so the subscription never holds a backlog for them.
//!
//! # Exactly once
//! Batches of a shard are uploaded one after another, in position order, so every
//! position below the newest batch found in the store is archived. After a crash
//! the worker lists a shard's objects once ([`history`]): redelivered messages
//! below the newest batch are acked, messages inside it are rebuilt into exactly the
//! objects of that batch that are missing (same names, nothing else), and the rest
//! is batched anew. The worker never nacks: a failed upload is retried from memory
//! with backoff while consumption pauses, so the backlog waits in the queue.
//!
//! A shard's state is kept while the worker leads, so the store is listed once per
//! shard and leadership term.
//!
//! The worker runs in one process at a time (the `archive` leadership), because a
//! shared subscription would split a shard's messages between processes.

mod history;
mod shard;
mod stats;
mod upload;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use logpool_api::jobs::{LeaderWorker, Term};
use logpool_api::RoutingView;
use logpool_core::routing::{RoutingSnapshot, ShardAddr};
use logpool_engines::object_store::ObjectStore;
use logpool_engines::queue::{Consumer, Delivery, DeliveryTag, Queue};
use tokio::sync::watch;

use self::shard::{Outcome, ShardWorker};
pub use self::stats::ArchiveStats;

use crate::backoff::Backoff;

/// The subscription the archive worker consumes with.
pub const SUBSCRIPTION: &str = "archive";

/// Messages taken per receive.
const RECEIVE_MESSAGES: usize = 256;
/// Longest wait in one receive; also how often buffers are checked for age.
const RECEIVE_WAIT: Duration = Duration::from_millis(200);
/// Pauses between attempts while the object store fails.
const STORE_BACKOFF_FIRST: Duration = Duration::from_millis(250);
const STORE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What the archive worker needs.
#[derive(Debug, Clone)]
pub struct ArchiveState {
    /// The queue to consume.
    pub queue: Arc<dyn Queue>,
    /// Where objects are written.
    pub object_store: Arc<dyn ObjectStore>,
    /// Pool routes and archive settings.
    pub routing: RoutingView,
    /// Fault injection: pause after each upload (see `LoghubConfig`).
    pub fault_pause: Duration,
    /// Counters and gauges.
    pub stats: Arc<ArchiveStats>,
}

enum Event {
    Shutdown,
    RoutingChanged,
    Received(Result<Vec<Delivery>, logpool_engines::queue::QueueError>),
}

/// The archive worker, run while this process leads `archive` (see
/// [`logpool_api::jobs::Jobs::while_leader`]).
#[derive(Debug)]
pub struct ArchiveWorker {
    state: ArchiveState,
    routing_changes: watch::Receiver<Arc<RoutingSnapshot>>,
    backoff: Backoff,
}

impl ArchiveWorker {
    /// A worker over `state`.
    pub fn new(state: ArchiveState) -> ArchiveWorker {
        ArchiveWorker {
            routing_changes: state.routing.receiver(),
            state,
            backoff: Backoff::new(STORE_BACKOFF_FIRST, STORE_BACKOFF_MAX),
        }
    }
}

impl LeaderWorker for ArchiveWorker {
    /// Archives for one leadership term. Buffered records that were not uploaded
    /// when it ends are left unacked; they come back (to the next leader).
    async fn lead(&mut self, term: &mut Term) {
        let ArchiveWorker {
            state,
            routing_changes,
            backoff,
        } = self;
        let consumer = state
            .queue
            .subscribe(SUBSCRIPTION, state.routing.snapshot().all_shards())
            .await;
        let mut consumer = match consumer {
            Ok(consumer) => consumer,
            Err(error) => {
                tracing::warn!(%error, "the archive worker cannot subscribe; retrying");
                term.sleep(backoff.on_failure()).await;
                return;
            }
        };
        let mut shards: HashMap<ShardAddr, ShardWorker> = HashMap::new();
        while term.leads() {
            let blocked = flush_due(state, consumer.as_mut(), &mut shards).await;
            update_lag(state, &shards);
            if blocked {
                let pause = backoff.on_failure();
                tracing::warn!(
                    consecutive_failures = backoff.consecutive_failures(),
                    pause_ms = pause.as_millis() as u64,
                    "archive uploads are failing; consumption pauses"
                );
                if term.sleep(pause).await {
                    return;
                }
                continue;
            }
            backoff.on_success();
            let event = tokio::select! {
                biased;
                () = term.stopped() => Event::Shutdown,
                changed = routing_changes.changed() => match changed {
                    Ok(()) => Event::RoutingChanged,
                    Err(_) => Event::Shutdown,
                },
                received = consumer.receive(RECEIVE_MESSAGES, RECEIVE_WAIT) => Event::Received(received),
            };
            match event {
                Event::Shutdown => return,
                Event::RoutingChanged => {
                    let all = routing_changes.borrow_and_update().all_shards();
                    if let Err(error) = consumer.set_shards(all).await {
                        tracing::warn!(%error, "failed to update the shards of the archive consumer");
                    }
                }
                Event::Received(Ok(deliveries)) => {
                    let acks = accept(state, &mut shards, deliveries);
                    ack(state, consumer.as_mut(), &acks).await;
                }
                Event::Received(Err(error)) => {
                    tracing::warn!(%error, "archive receive failed; retrying after a pause");
                    if term.sleep(STORE_BACKOFF_FIRST).await {
                        return;
                    }
                }
            }
        }
        tracing::info!("archive leadership lost; buffered records are left to the next leader");
    }
}

/// Hands deliveries to their shard workers; returns what can be acked at once.
fn accept(
    state: &ArchiveState,
    shards: &mut HashMap<ShardAddr, ShardWorker>,
    deliveries: Vec<Delivery>,
) -> Vec<DeliveryTag> {
    let snapshot = state.routing.snapshot();
    let mut acks = Vec::new();
    for delivery in deliveries {
        let message = &delivery.message;
        let archived = snapshot
            .pool_of_shard(&message.shard)
            .filter(|route| route.pool_id == message.properties.pool_id)
            .and_then(|route| snapshot.archive_of(route.pool_id).map(|s| (route, s)));
        let Some((route, settings)) = archived else {
            // Not archived (or the pool is gone): nothing to keep.
            acks.push(delivery.tag());
            continue;
        };
        let worker = shards
            .entry(message.shard.clone())
            .or_insert_with(|| ShardWorker::new(message.shard.clone()));
        worker.offer(route, settings, delivery, &state.stats);
    }
    acks
}

/// Runs every shard's due work (history loading, repairs, buffer uploads) and acks
/// what was stored. Returns true when some upload failed.
async fn flush_due(
    state: &ArchiveState,
    consumer: &mut dyn Consumer,
    shards: &mut HashMap<ShardAddr, ShardWorker>,
) -> bool {
    let mut blocked = false;
    for worker in shards.values_mut() {
        match worker.step(state).await {
            Outcome::Idle => {}
            Outcome::Stored(tags) => ack(state, consumer, &tags).await,
            Outcome::Failed(tags) => {
                ack(state, consumer, &tags).await;
                blocked = true;
            }
        }
    }
    blocked
}

async fn ack(state: &ArchiveState, consumer: &mut dyn Consumer, tags: &[DeliveryTag]) {
    if tags.is_empty() {
        return;
    }
    match consumer.ack(tags).await {
        Ok(()) => state.stats.add_acked(tags.len() as u64),
        // Not fatal: redelivered messages are recognised as archived and acked again.
        Err(error) => tracing::warn!(%error, "archive ack failed; messages will come back"),
    }
}

fn update_lag(state: &ArchiveState, shards: &HashMap<ShardAddr, ShardWorker>) {
    let oldest = shards
        .values()
        .filter_map(ShardWorker::oldest_publish_ms)
        .min();
    state.stats.set_oldest_pending_publish_ms(oldest);
}
