//! The archive state of one shard: the newest stored batch (after a restart), the
//! repair of that batch when it was left half uploaded, and the buffer of new
//! records. Everything here follows queue positions, which is what keeps object
//! names and contents deterministic.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use logpool_core::archive::{self, ArchiveSettings};
use logpool_core::batch::decode_batch;
use logpool_core::routing::{PoolRoute, ShardAddr};
use logpool_engines::queue::{Delivery, DeliveryTag};

use super::history::{latest_batch, LatestBatch};
use super::stats::ArchiveStats;
use super::upload::{upload_batch, Destination, Line};
use super::ArchiveState;

/// What one step of a shard did.
pub(super) enum Outcome {
    /// Nothing to ack.
    Idle,
    /// These deliveries are archived (or need no archiving): ack them.
    Stored(Vec<DeliveryTag>),
    /// The object store failed; ack these, retry the rest later.
    Failed(Vec<DeliveryTag>),
}

/// Where a message's records go, as routed when it arrived.
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// Where new objects go: the pool's prefix in its tenant's area.
    pool_prefix: String,
    /// Where objects were written before tenant areas existed: read for history
    /// only, so that a batch half written there is completed, not written twice.
    legacy_prefix: String,
    settings: ArchiveSettings,
}

/// Records of consecutive messages, written together.
#[derive(Debug)]
struct Batch {
    target: Target,
    first: u64,
    last: u64,
    tags: Vec<DeliveryTag>,
    lines: Vec<Line>,
    bytes: u64,
    started: Instant,
    oldest_publish_ms: i64,
}

impl Batch {
    fn new(target: Target, first: u64, last: u64) -> Batch {
        Batch {
            target,
            first,
            last,
            tags: Vec::new(),
            lines: Vec::new(),
            bytes: 0,
            started: Instant::now(),
            oldest_publish_ms: i64::MAX,
        }
    }

    fn add(&mut self, delivery: &Delivery, lines: Vec<Line>) {
        self.tags.push(delivery.tag());
        self.bytes += lines.iter().map(|l| l.text.len() as u64 + 1).sum::<u64>();
        self.lines.extend(lines);
        self.oldest_publish_ms = self.oldest_publish_ms.min(delivery.message.publish_time_ms);
    }

    fn is_due(&self) -> bool {
        self.bytes >= self.target.settings.max_object_bytes
            || self.started.elapsed()
                >= Duration::from_secs(u64::from(self.target.settings.max_delay_s))
    }
}

/// The rebuild of the newest stored batch, limited to its missing hour objects.
#[derive(Debug)]
struct Repair {
    batch: Batch,
    existing_hours: HashSet<i64>,
    /// The batch's last message was seen (or the stream moved past it).
    complete: bool,
}

/// The archive state of one shard.
#[derive(Debug)]
pub(super) struct ShardWorker {
    shard: ShardAddr,
    /// `None` until the store was looked at; then the newest stored batch, if any,
    /// as long as redelivered messages may still fall into it.
    history: Option<Option<LatestBatch>>,
    /// Deliveries that arrived before the history was known, in order.
    waiting: Vec<(Target, Delivery)>,
    acks: Vec<DeliveryTag>,
    repair: Option<Repair>,
    buffer: Option<Batch>,
    /// Highest position taken in by this process (duplicates are recognised by it).
    highest_seen: Option<u64>,
}

impl ShardWorker {
    pub(super) fn new(shard: ShardAddr) -> ShardWorker {
        ShardWorker {
            shard,
            history: None,
            waiting: Vec::new(),
            acks: Vec::new(),
            repair: None,
            buffer: None,
            highest_seen: None,
        }
    }

    /// Takes in one delivery of an archived pool.
    pub(super) fn offer(
        &mut self,
        route: &PoolRoute,
        settings: &ArchiveSettings,
        delivery: Delivery,
        stats: &ArchiveStats,
    ) {
        let target = Target {
            pool_prefix: archive::pool_prefix(
                &settings.prefix,
                &route.tenant,
                &route.project,
                &route.name,
            ),
            legacy_prefix: archive::legacy_pool_prefix(
                &settings.prefix,
                &route.tenant,
                &route.project,
                &route.name,
            ),
            settings: settings.clone(),
        };
        if self.history.is_none() {
            self.waiting.push((target, delivery));
            return;
        }
        self.process(target, delivery, stats);
    }

    fn process(&mut self, target: Target, delivery: Delivery, stats: &ArchiveStats) {
        let position = delivery.message.position;
        if self.highest_seen.is_some_and(|highest| position <= highest) {
            // Seen before in this process: either held in a batch (acked with it) or
            // stored already.
            let held = self.buffer.as_ref().is_some_and(|b| position >= b.first)
                || self
                    .repair
                    .as_ref()
                    .is_some_and(|r| position >= r.batch.first);
            if !held {
                self.acks.push(delivery.tag());
            }
            return;
        }
        self.highest_seen = Some(position);
        let lines = match decode_batch(&delivery.message.payload) {
            Ok(records) => records
                .iter()
                .map(|record| Line {
                    hour_start_s: archive::hour_of(record.time_ns),
                    time_ns: record.time_ns,
                    text: archive::record_line(record),
                })
                .collect::<Vec<_>>(),
            Err(error) => {
                // loghub keeps undecodable payloads in its dead letter; nothing to archive.
                tracing::warn!(%error, shard = ?self.shard, position, "undecodable message not archived");
                self.acks.push(delivery.tag());
                return;
            }
        };
        if let Some(Some(latest)) = &self.history {
            if position < latest.first {
                stats.add_skipped(lines.len() as u64);
                self.acks.push(delivery.tag());
                return;
            }
            if position <= latest.last {
                let total = lines.len();
                let missing: Vec<Line> = lines
                    .into_iter()
                    .filter(|line| !latest.hours.contains(&line.hour_start_s))
                    .collect();
                stats.add_skipped((total - missing.len()) as u64);
                let repair = self.repair.get_or_insert_with(|| Repair {
                    batch: Batch::new(target, latest.first, latest.last),
                    existing_hours: latest.hours.clone(),
                    complete: false,
                });
                if missing.is_empty() {
                    self.acks.push(delivery.tag());
                } else {
                    repair.batch.add(&delivery, missing);
                }
                repair.complete = position == latest.last;
                return;
            }
            // The stream is past the newest stored batch.
            if let Some(repair) = &mut self.repair {
                repair.complete = true;
            }
            self.history = Some(None);
        }
        let buffer = self
            .buffer
            .get_or_insert_with(|| Batch::new(target, position, position));
        buffer.last = position;
        buffer.add(&delivery, lines);
    }

    /// Loads the history, writes a completed repair and a due buffer; returns the
    /// deliveries to ack.
    pub(super) async fn step(&mut self, state: &ArchiveState) -> Outcome {
        if self.history.is_none() {
            let Some((target, _)) = self.waiting.first() else {
                return Outcome::Idle;
            };
            match latest_batch(
                state.object_store.as_ref(),
                &[&target.legacy_prefix, &target.pool_prefix],
                self.shard.partition,
            )
            .await
            {
                Ok(latest) => {
                    self.history = Some(latest);
                    for (target, delivery) in std::mem::take(&mut self.waiting) {
                        self.process(target, delivery, &state.stats);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, shard = ?self.shard, "cannot list archived objects");
                    state.stats.add_upload_failure();
                    return Outcome::Failed(std::mem::take(&mut self.acks));
                }
            }
        }
        let mut acks = std::mem::take(&mut self.acks);
        if let Some(repair) = self.repair.as_ref().filter(|r| r.complete) {
            match self
                .write(state, &repair.batch, &repair.existing_hours)
                .await
            {
                Ok(()) => {
                    if !repair.batch.lines.is_empty() {
                        tracing::info!(
                            shard = ?self.shard,
                            first = repair.batch.first,
                            last = repair.batch.last,
                            "rewrote the missing objects of a half-uploaded batch"
                        );
                        state.stats.add_repair();
                    }
                    acks.extend(repair.batch.tags.iter().cloned());
                    self.repair = None;
                }
                Err(()) => return Outcome::Failed(acks),
            }
        }
        // A buffer is newer than a pending repair, so it waits for it.
        if self.repair.is_none() {
            if let Some(buffer) = self.buffer.as_ref().filter(|b| b.is_due()) {
                match self.write(state, buffer, &HashSet::new()).await {
                    Ok(()) => {
                        acks.extend(buffer.tags.iter().cloned());
                        self.buffer = None;
                    }
                    Err(()) => return Outcome::Failed(acks),
                }
            }
        }
        if acks.is_empty() {
            Outcome::Idle
        } else {
            Outcome::Stored(acks)
        }
    }

    async fn write(
        &self,
        state: &ArchiveState,
        batch: &Batch,
        existing_hours: &HashSet<i64>,
    ) -> Result<(), ()> {
        let destination = Destination {
            store: state.object_store.as_ref(),
            pool_prefix: &batch.target.pool_prefix,
            settings: &batch.target.settings,
            partition: self.shard.partition,
            fault_pause: state.fault_pause,
        };
        upload_batch(
            &destination,
            batch.first,
            batch.last,
            &batch.lines,
            existing_hours,
            &state.stats,
        )
        .await
        .map_err(|error| {
            tracing::warn!(%error, shard = ?self.shard, first = batch.first, last = batch.last, "archive upload failed; retrying");
            state.stats.add_upload_failure();
        })
    }

    /// Publish time of the oldest message held here, for the lag.
    pub(super) fn oldest_publish_ms(&self) -> Option<i64> {
        let held = [
            self.buffer.as_ref().map(|b| b.oldest_publish_ms),
            self.repair.as_ref().map(|r| r.batch.oldest_publish_ms),
            self.waiting
                .iter()
                .map(|(_, d)| d.message.publish_time_ms)
                .min(),
        ];
        held.into_iter()
            .flatten()
            .filter(|ms| *ms != i64::MAX)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use logpool_core::pool_id::PoolId;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use bytes::Bytes;
    use logpool_api::RoutingView;
    use logpool_core::archive::ObjectName;
    use logpool_core::batch::{encode_batch, BATCH_FORMAT_VERSION};
    use logpool_core::record::{FieldValue, Record};
    use logpool_core::routing::RoutingSnapshot;
    use logpool_engines::object_store::{LocalFileObjectStore, LocalFileObjectStoreConfig};
    use logpool_engines::queue::{
        BatchProperties, EmbeddedQueue, EmbeddedQueueConfig, QueueMessage,
    };

    use super::*;

    const HOUR_NS: i64 = 3_600_000_000_000;
    const BASE_NS: i64 = 1_767_225_600 * 1_000_000_000;

    fn route() -> PoolRoute {
        PoolRoute {
            pool_id: PoolId::new(1),
            tenant: "default".into(),
            project: "p".into(),
            name: "web".into(),
            partitions: vec![4],
            retention_days: 7,
            field_hints: BTreeMap::new(),
            event_window: Default::default(),
            learned_types: Default::default(),
        }
    }

    fn settings() -> ArchiveSettings {
        ArchiveSettings {
            enabled: true,
            max_delay_s: 1,
            max_object_bytes: 1 << 20,
            ..ArchiveSettings::default()
        }
    }

    /// Message `position` with two records in hours `position % 3` and `+1`.
    fn delivery(position: u64) -> Delivery {
        let records: Vec<Record> = (0..2)
            .map(|i| Record {
                time_ns: BASE_NS + ((position as i64 + i) % 3) * HOUR_NS + position as i64,
                fields: BTreeMap::from([(
                    "rid".to_string(),
                    FieldValue::Str(format!("{position}-{i}")),
                )]),
            })
            .collect();
        Delivery {
            message: QueueMessage {
                shard: route().shard_addr(0).unwrap(),
                position,
                publish_time_ms: 1,
                properties: BatchProperties {
                    pool_id: PoolId::new(1),
                    record_count: 2,
                    format_version: BATCH_FORMAT_VERSION,
                },
                payload: Bytes::from(encode_batch(&records).unwrap()),
            },
            redelivered: false,
        }
    }

    async fn state(dir: &std::path::Path) -> ArchiveState {
        let queue = EmbeddedQueue::open(EmbeddedQueueConfig {
            dir: dir.join("queue"),
            ..EmbeddedQueueConfig::default()
        })
        .await
        .unwrap();
        let (_, receiver) = tokio::sync::watch::channel(Arc::new(RoutingSnapshot::default()));
        ArchiveState {
            queue: Arc::new(queue),
            object_store: Arc::new(
                LocalFileObjectStore::open(&LocalFileObjectStoreConfig {
                    dir: dir.join("objects"),
                })
                .unwrap(),
            ),
            routing: RoutingView::new(receiver),
            fault_pause: Duration::ZERO,
            stats: Arc::new(ArchiveStats::default()),
        }
    }

    async fn objects(state: &ArchiveState) -> BTreeMap<String, Bytes> {
        let mut out = BTreeMap::new();
        for key in state
            .object_store
            .list("tenant=default/archive/")
            .await
            .unwrap()
        {
            let data = state.object_store.get(&key).await.unwrap();
            out.insert(key, data);
        }
        out
    }

    fn positions(outcome: Outcome) -> Vec<u64> {
        match outcome {
            Outcome::Stored(tags) | Outcome::Failed(tags) => {
                let mut p: Vec<u64> = tags.iter().map(|t| t.position).collect();
                p.sort_unstable();
                p
            }
            Outcome::Idle => Vec::new(),
        }
    }

    #[tokio::test]
    async fn test_a_half_uploaded_batch_is_completed_with_the_same_objects_only() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        let (route, settings) = (route(), settings());
        // First life: messages 0..=5 become one batch, written as three hour objects.
        let mut first = ShardWorker::new(route.shard_addr(0).unwrap());
        for position in 0..=5 {
            first.offer(&route, &settings, delivery(position), &state.stats);
        }
        assert!(
            positions(first.step(&state).await).is_empty(),
            "not due yet"
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(positions(first.step(&state).await), vec![0, 1, 2, 3, 4, 5]);
        let complete = objects(&state).await;
        let data_keys: Vec<&String> = complete.keys().filter(|k| k.contains(".jsonl.")).collect();
        assert_eq!(data_keys.len(), 3, "{data_keys:?}");
        assert!(data_keys.iter().all(|k| k.ends_with("/4-0-5.jsonl.zst")));

        // A crash after the first object: the other two and their manifests are gone.
        for key in data_keys.iter().skip(1) {
            state.object_store.delete(key).await.unwrap();
            let name =
                ObjectName::parse(key.strip_prefix("tenant=default/archive/p/web/").unwrap())
                    .unwrap();
            state
                .object_store
                .delete(&name.manifest_key("tenant=default/archive/p/web/"))
                .await
                .unwrap();
        }

        // Second life: everything is redelivered, then new messages follow.
        let mut second = ShardWorker::new(route.shard_addr(0).unwrap());
        for position in 0..=7 {
            second.offer(&route, &settings, delivery(position), &state.stats);
        }
        assert_eq!(positions(second.step(&state).await), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(
            objects(&state).await,
            complete,
            "the same objects, byte for byte"
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(positions(second.step(&state).await), vec![6, 7]);
        let after = objects(&state).await;
        assert!(after.keys().any(|k| k.ends_with("/4-6-7.jsonl.zst")));
        assert_eq!(
            after.keys().filter(|k| k.contains("-0-5.")).count(),
            6,
            "three objects and three manifests of the first batch"
        );

        // A third life that sees only old messages acks them without writing.
        let mut third = ShardWorker::new(route.shard_addr(0).unwrap());
        for position in [3, 6, 7] {
            third.offer(&route, &settings, delivery(position), &state.stats);
        }
        assert_eq!(positions(third.step(&state).await), vec![3, 6, 7]);
        assert_eq!(objects(&state).await, after);
    }
}
