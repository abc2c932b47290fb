//! The conformance suite every [`Queue`] implementation runs.
//!
//! The embedded queue and Pulsar must keep the same contract (see the module
//! documentation of [`crate::queue`]): durable positions that strictly increase per
//! shard, shared subscriptions that split messages, redelivery of nacked or abandoned
//! messages with the `redelivered` flag, reads from a position or a time, owned
//! readers that go on where they stopped, and a shutdown that refuses further work.
//! Each implementation's test module expands [`queue_conformance_tests`] with a
//! [`QueueFixture`] that opens a queue for one scenario: one named test per scenario,
//! each on a queue (and a tenant) of its own.
//!
//! Positions are opaque here: Pulsar packs ledger and entry ids into them, so the
//! scenarios compare positions with those `produce` returned, never with counts.
//! What only one engine promises (segment files, crash recovery, backpressure limits,
//! exact backlog bytes, the broker's subscriptions) stays in that engine's tests.

use logpool_core::pool_id::PoolId;
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use logpool_core::routing::ShardAddr;

use super::{
    BatchProperties, Consumer, Delivery, DeliveryTag, Position, Queue, QueueError, ReadStart,
};

pub(crate) use crate::conformance::ScenarioResult;

use crate::conformance::SCENARIO_TIMEOUT;

/// A queue of one implementation for one scenario, and what to do with it afterwards.
pub(crate) trait QueueFixture: Sized + Send + 'static {
    /// Opens a queue, or returns `None` when the engine is not available and its
    /// tests are skipped (see [`crate::test_env::engine_address`]).
    async fn open() -> Option<Self>;
    /// The queue and the settings the scenario runs with.
    fn under_test(&self) -> QueueUnderTest;
    /// Releases what `open` created.
    async fn close(self);
}

/// The queue a scenario runs against.
#[derive(Debug, Clone)]
pub(crate) struct QueueUnderTest {
    /// The queue.
    pub queue: Arc<dyn Queue>,
    /// A tenant no other scenario uses (queues may share one broker).
    pub tenant: String,
    /// The nack redelivery delay the queue was opened with.
    pub nack_delay: Duration,
    /// How long to wait before concluding that nothing more will be delivered.
    pub quiet_wait: Duration,
}

impl QueueUnderTest {
    /// A shard of the scenario's tenant.
    pub fn shard(&self, partition: u32) -> ShardAddr {
        ShardAddr {
            tenant: self.tenant.clone(),
            project: "web".to_string(),
            partition,
        }
    }

    /// Produces `count` messages `"message {n}"` with `record_count` n, one at a time.
    async fn produce_n(&self, addr: &ShardAddr, count: usize) -> Result<Vec<Position>, QueueError> {
        produce_n(self.queue.as_ref(), addr, count).await
    }

    /// Asserts that `consumer` gets nothing within the quiet wait.
    async fn assert_nothing_more(&self, consumer: &mut Box<dyn Consumer>) -> ScenarioResult {
        let late = consumer.receive(10, self.quiet_wait).await?;
        if late.is_empty() {
            Ok(())
        } else {
            Err(format!("delivered again: {:?}", positions(&late)).into())
        }
    }
}

/// Runs one scenario on a fresh queue of `F` (or skips it when `F` is not available),
/// then closes the queue whether the scenario passed or not, and fails with the
/// scenario's error or panic.
pub(crate) async fn run_scenario<F, Fut>(
    name: &str,
    scenario: impl FnOnce(QueueUnderTest) -> Fut + Send + 'static,
) where
    F: QueueFixture,
    Fut: Future<Output = ScenarioResult> + Send + 'static,
{
    let opened = tokio::time::timeout(SCENARIO_TIMEOUT, F::open())
        .await
        .unwrap_or_else(|_| panic!("{name}: the queue opens within {SCENARIO_TIMEOUT:?}"));
    let Some(fixture) = opened else {
        return;
    };
    let under_test = fixture.under_test();
    let outcome = tokio::spawn(tokio::time::timeout(SCENARIO_TIMEOUT, scenario(under_test))).await;
    fixture.close().await;
    crate::conformance::report(name, outcome);
}

/// Expands to one `#[tokio::test]` per scenario on the fixture `$fixture` (a
/// [`QueueFixture`]), each on a fresh queue, so one failing scenario does not hide
/// the others.
macro_rules! queue_conformance_tests {
    ($fixture:ty) => {
        $crate::queue::conformance::queue_conformance_tests!(
            @each $fixture;
            scenario_produce_read_receive_ack_round_trip,
            scenario_positions_strictly_increase_per_shard,
            scenario_shared_subscription_splits_messages_between_consumers,
            scenario_receive_wakes_up_on_produce,
            scenario_nacked_messages_come_back_after_the_delay_flagged,
            scenario_unacked_messages_come_back_after_the_consumer_is_dropped,
            scenario_read_from_earliest_position_and_publish_time,
            scenario_begin_position_and_position_at_time,
            scenario_set_shards_changes_what_a_consumer_reads,
            scenario_backlog_counts_unacked_messages,
            scenario_owned_readers_go_on_where_they_stopped,
            scenario_shutdown_refuses_further_work,
        );
    };
    (@each $fixture:ty; $($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                use $crate::queue::conformance as conformance;
                conformance::run_scenario::<$fixture, _>(
                    stringify!($scenario),
                    conformance::$scenario,
                )
                .await;
            }
        )*
    };
}

pub(crate) use queue_conformance_tests;

// --- helpers ------------------------------------------------------------------------

pub(crate) fn properties(record_count: u32) -> BatchProperties {
    BatchProperties {
        pool_id: PoolId::new(7),
        record_count,
        format_version: 1,
    }
}

pub(crate) async fn produce_n(
    queue: &dyn Queue,
    addr: &ShardAddr,
    count: usize,
) -> Result<Vec<Position>, QueueError> {
    let mut positions = Vec::with_capacity(count);
    for number in 0..count {
        let payload = Bytes::from(format!("message {number}"));
        positions.push(
            queue
                .produce(addr, properties(number as u32), payload)
                .await?,
        );
    }
    Ok(positions)
}

/// Receives until `count` deliveries arrived or a bounded number of attempts passed.
pub(crate) async fn receive_at_least(
    consumer: &mut Box<dyn Consumer>,
    count: usize,
) -> Result<Vec<Delivery>, QueueError> {
    let mut deliveries = Vec::new();
    for _ in 0..40 {
        if deliveries.len() >= count {
            break;
        }
        deliveries.extend(
            consumer
                .receive(count - deliveries.len(), Duration::from_millis(250))
                .await?,
        );
    }
    Ok(deliveries)
}

pub(crate) fn tags(deliveries: &[Delivery]) -> Vec<DeliveryTag> {
    deliveries.iter().map(Delivery::tag).collect()
}

/// Positions of deliveries, sorted (a shared subscription may deliver out of order).
fn positions(deliveries: &[Delivery]) -> Vec<Position> {
    let mut positions: Vec<Position> = deliveries
        .iter()
        .map(|delivery| delivery.message.position)
        .collect();
    positions.sort_unstable();
    positions
}

fn positions_of(messages: &[super::QueueMessage]) -> Vec<Position> {
    messages.iter().map(|message| message.position).collect()
}

// --- scenarios ----------------------------------------------------------------------

/// A produced batch comes back, properties and payload intact, to readers and to a
/// subscription; once acked, no member of the subscription gets it again.
pub(crate) async fn scenario_produce_read_receive_ack_round_trip(
    under_test: QueueUnderTest,
) -> ScenarioResult {
    let queue = under_test.queue.as_ref();
    let addr = under_test.shard(0);
    let unused = under_test.shard(9);
    let sent = BatchProperties {
        pool_id: PoolId::new(42),
        record_count: 3,
        format_version: 1,
    };
    let mut consumer = queue.subscribe("indexer", vec![addr.clone()]).await?;
    let position = queue
        .produce(&addr, sent.clone(), Bytes::from_static(b"three records"))
        .await?;

    let messages = queue.read(&addr, ReadStart::Earliest, 10).await?;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].shard, addr);
    assert_eq!(messages[0].position, position);
    assert_eq!(messages[0].properties, sent);
    assert_eq!(messages[0].payload, Bytes::from_static(b"three records"));
    assert!(messages[0].publish_time_ms > 0);
    assert_eq!(queue.end_position(&addr).await?, position + 1);
    assert!(queue.read(&addr, ReadStart::Latest, 10).await?.is_empty());
    assert!(queue
        .read(&unused, ReadStart::Earliest, 10)
        .await?
        .is_empty());
    assert_eq!(queue.end_position(&unused).await?, 0);

    let deliveries = receive_at_least(&mut consumer, 1).await?;
    assert_eq!(deliveries.len(), 1);
    let message = &deliveries[0].message;
    assert_eq!(message.shard, addr);
    assert_eq!(message.position, position);
    assert_eq!(message.properties, sent);
    assert_eq!(message.payload, Bytes::from_static(b"three records"));
    assert_eq!(message.publish_time_ms, messages[0].publish_time_ms);
    assert!(!deliveries[0].redelivered);
    consumer.ack(&tags(&deliveries)).await?;
    under_test.assert_nothing_more(&mut consumer).await?;
    drop(consumer);

    // Acked: a new member of the subscription does not get it again.
    let mut again = queue.subscribe("indexer", vec![addr.clone()]).await?;
    under_test.assert_nothing_more(&mut again).await?;
    queue.check_health().await?;
    Ok(())
}

/// Concurrent producers on two shards get distinct positions that increase in the
/// order each awaited them, and readers see the messages in position order.
pub(crate) async fn scenario_positions_strictly_increase_per_shard(
    under_test: QueueUnderTest,
) -> ScenarioResult {
    let mut tasks = Vec::new();
    for task_number in 0..6u32 {
        let queue = Arc::clone(&under_test.queue);
        let addr = under_test.shard(task_number % 2);
        tasks.push(tokio::spawn(async move {
            produce_n(queue.as_ref(), &addr, 15).await
        }));
    }
    let mut seen = [HashSet::new(), HashSet::new()];
    for (task_number, task) in tasks.into_iter().enumerate() {
        let produced = task.await??;
        // Each task awaits its produces in turn: its positions increase.
        assert!(
            produced.windows(2).all(|pair| pair[0] < pair[1]),
            "{produced:?}"
        );
        for position in produced {
            assert!(
                seen[task_number % 2].insert(position),
                "position {position} given twice"
            );
        }
    }
    for (partition, produced) in seen.iter().enumerate() {
        let addr = under_test.shard(partition as u32);
        let messages = under_test
            .queue
            .read(&addr, ReadStart::Earliest, 1000)
            .await?;
        let read = positions_of(&messages);
        assert_eq!(read.len(), 45);
        assert!(read.windows(2).all(|pair| pair[0] < pair[1]), "{read:?}");
        assert_eq!(read.iter().copied().collect::<HashSet<_>>(), *produced);
        assert!(messages
            .windows(2)
            .all(|pair| pair[0].publish_time_ms <= pair[1].publish_time_ms));
        let end = under_test.queue.end_position(&addr).await?;
        assert!(read.iter().all(|position| *position < end));
    }
    Ok(())
}

/// Two members of one subscription holding their deliveries unacked at the same time
/// get disjoint parts that together are every message, none flagged redelivered.
pub(crate) async fn scenario_shared_subscription_splits_messages_between_consumers(
    under_test: QueueUnderTest,
) -> ScenarioResult {
    let queue = under_test.queue.as_ref();
    let shards = vec![under_test.shard(0), under_test.shard(1)];
    let mut first = queue.subscribe("indexer", shards.clone()).await?;
    let mut second = queue.subscribe("indexer", shards.clone()).await?;
    let mut produced = HashSet::new();
    for addr in &shards {
        for position in under_test.produce_n(addr, 20).await? {
            produced.insert((addr.clone(), position));
        }
    }
    let mut first_seen = HashSet::new();
    let mut second_seen = HashSet::new();
    for _ in 0..60 {
        if first_seen.len() + second_seen.len() == produced.len() {
            break;
        }
        let from_first = first.receive(5, Duration::from_millis(100)).await?;
        let from_second = second.receive(5, Duration::from_millis(100)).await?;
        for delivery in &from_first {
            assert!(!delivery.redelivered);
            assert!(first_seen.insert(delivery.tag()));
        }
        for delivery in &from_second {
            assert!(!delivery.redelivered);
            assert!(!first_seen.contains(&delivery.tag()), "delivered twice");
            assert!(second_seen.insert(delivery.tag()));
        }
        first.ack(&tags(&from_first)).await?;
        second.ack(&tags(&from_second)).await?;
    }
    assert!(
        !first_seen.is_empty() && !second_seen.is_empty(),
        "one consumer got nothing"
    );
    assert!(first_seen.is_disjoint(&second_seen));
    let all: HashSet<(ShardAddr, Position)> = first_seen
        .union(&second_seen)
        .map(|tag| (tag.shard.clone(), tag.position))
        .collect();
    assert_eq!(all, produced);
    under_test.assert_nothing_more(&mut first).await?;
    under_test.assert_nothing_more(&mut second).await?;
    Ok(())
}

/// A consumer waiting in `receive` gets a message produced while it waits, long
/// before its wait is over.
pub(crate) async fn scenario_receive_wakes_up_on_produce(
    under_test: QueueUnderTest,
) -> ScenarioResult {
    let addr = under_test.shard(0);
    let mut consumer = under_test
        .queue
        .subscribe("tail", vec![addr.clone()])
        .await?;
    let long_wait = Duration::from_secs(30);
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let deliveries = consumer.receive(10, long_wait).await;
        (consumer, deliveries, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let position = under_test
        .queue
        .produce(&addr, properties(1), Bytes::from_static(b"wake"))
        .await?;
    let (_consumer, deliveries, waited) = waiting.await?;
    assert_eq!(positions(&deliveries?), vec![position]);
    assert!(waited < long_wait / 2, "woke up only after {waited:?}");
    Ok(())
}

/// Nacked messages come back flagged, not before the nack delay (a failing consumer
/// must not spin), and acked ones do not come back.
pub(crate) async fn scenario_nacked_messages_come_back_after_the_delay_flagged(
    under_test: QueueUnderTest,
) -> ScenarioResult {
    let addr = under_test.shard(0);
    let mut consumer = under_test
        .queue
        .subscribe("indexer", vec![addr.clone()])
        .await?;
    let produced = under_test.produce_n(&addr, 4).await?;
    let deliveries = receive_at_least(&mut consumer, 4).await?;
    assert_eq!(positions(&deliveries), produced);
    assert!(deliveries.iter().all(|delivery| !delivery.redelivered));
    let mut by_position = deliveries.clone();
    by_position.sort_by_key(|delivery| delivery.message.position);
    consumer.ack(&tags(&by_position[..1])).await?;
    let nacked_at = Instant::now();
    consumer.nack(&tags(&by_position[1..3])).await?;

    let early = consumer.receive(10, under_test.nack_delay / 3).await?;
    assert!(
        early.is_empty(),
        "redelivered before the nack delay: {:?}",
        positions(&early)
    );
    let again = receive_at_least(&mut consumer, 2).await?;
    assert!(nacked_at.elapsed() >= under_test.nack_delay);
    assert_eq!(positions(&again), produced[1..3].to_vec());
    assert!(again.iter().all(|delivery| delivery.redelivered));
    consumer.ack(&tags(&again)).await?;
    consumer.ack(&tags(&by_position[3..])).await?;
    under_test.assert_nothing_more(&mut consumer).await
}

/// What a consumer received but did not ack comes back, flagged, to the next member
/// of the subscription once the consumer is gone; later messages are not flagged.
pub(crate) async fn scenario_unacked_messages_come_back_after_the_consumer_is_dropped(
    under_test: QueueUnderTest,
) -> ScenarioResult {
    let queue = under_test.queue.as_ref();
    let addr = under_test.shard(0);
    let mut lost = queue.subscribe("indexer", vec![addr.clone()]).await?;
    let produced = under_test.produce_n(&addr, 5).await?;
    let taken = receive_at_least(&mut lost, 5).await?;
    assert_eq!(positions(&taken), produced);
    let acked = taken
        .iter()
        .find(|delivery| delivery.message.position == produced[0])
        .ok_or("first message not delivered")?;
    lost.ack(&[acked.tag()]).await?;
    drop(lost);

    let mut survivor = queue.subscribe("indexer", vec![addr.clone()]).await?;
    let deliveries = receive_at_least(&mut survivor, 4).await?;
    assert_eq!(positions(&deliveries), produced[1..].to_vec());
    assert!(deliveries.iter().all(|delivery| delivery.redelivered));
    survivor.ack(&tags(&deliveries)).await?;

    // A message produced after the survivor attached is fresh.
    let fresh_position = queue
        .produce(&addr, properties(1), Bytes::from_static(b"fresh"))
        .await?;
    let fresh = receive_at_least(&mut survivor, 1).await?;
    assert_eq!(positions(&fresh), vec![fresh_position]);
    assert!(!fresh[0].redelivered);
    Ok(())
}

/// Reads start at the earliest message, at a position (repeatedly, and from the end
/// for what comes next) or at the first message published at or after a time.
pub(crate) async fn scenario_read_from_earliest_position_and_publish_time(
    under_test: QueueUnderTest,
) -> ScenarioResult {
    let queue = under_test.queue.as_ref();
    let addr = under_test.shard(0);
    assert_eq!(queue.end_position(&addr).await?, 0);
    assert!(queue.read(&addr, ReadStart::Earliest, 10).await?.is_empty());
    for _ in 0..4 {
        under_test.produce_n(&addr, 3).await?;
        // Spread publish times over several milliseconds.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all = queue.read(&addr, ReadStart::Earliest, 100).await?;
    assert_eq!(all.len(), 12);
    assert!(all
        .windows(2)
        .all(|pair| pair[0].position < pair[1].position));
    assert_eq!(all[0].payload, Bytes::from_static(b"message 0"));
    assert_eq!(all[0].properties, properties(0));
    let end = queue.end_position(&addr).await?;
    assert_eq!(end, all[11].position + 1);
    assert!(queue.read(&addr, ReadStart::Latest, 10).await?.is_empty());

    // From a position, repeatedly (a queue may keep a reader for the next read).
    let from_position = queue
        .read(&addr, ReadStart::Position(all[4].position), 3)
        .await?;
    assert_eq!(
        positions_of(&from_position),
        vec![all[4].position, all[5].position, all[6].position]
    );
    let next = queue
        .read(&addr, ReadStart::Position(all[6].position + 1), 3)
        .await?;
    assert_eq!(next.first().map(|m| m.position), Some(all[7].position));
    let from_first = queue
        .read(&addr, ReadStart::Position(all[0].position), 2)
        .await?;
    assert_eq!(
        from_first.first().map(|m| m.position),
        Some(all[0].position)
    );
    assert!(queue
        .read(&addr, ReadStart::Position(end), 3)
        .await?
        .is_empty());

    // A new message is seen from the old end on.
    let new_position = queue
        .produce(&addr, properties(1), Bytes::from_static(b"new"))
        .await?;
    assert!(new_position >= end);
    let tail = queue.read(&addr, ReadStart::Position(end), 3).await?;
    assert_eq!(positions_of(&tail), vec![new_position]);

    for probe in [0, 5, 7, 11] {
        let time_ms = all[probe].publish_time_ms;
        let from_time = queue
            .read(&addr, ReadStart::PublishTime(time_ms), 100)
            .await?;
        let first = from_time.first().ok_or("empty read from time")?;
        assert!(first.publish_time_ms >= time_ms);
        assert!(first.position <= all[probe].position);
        let index = all
            .iter()
            .position(|m| m.position == first.position)
            .ok_or("read from time started at an unknown position")?;
        if index > 0 {
            assert!(all[index - 1].publish_time_ms < time_ms);
        }
        assert_eq!(from_time.last().map(|m| m.position), Some(new_position));
    }
    let after_all = tail[0].publish_time_ms + 1;
    assert!(queue
        .read(&addr, ReadStart::PublishTime(after_all), 10)
        .await?
        .is_empty());
    assert_eq!(
        queue.read(&addr, ReadStart::PublishTime(0), 2).await?.len(),
        2
    );
    Ok(())
}

/// An empty shard begins where it ends; `position_at_time` finds the first message
/// published at or after a time, and the end position after the last one.
pub(crate) async fn scenario_begin_position_and_position_at_time(
    under_test: QueueUnderTest,
) -> ScenarioResult {
    let queue = under_test.queue.as_ref();
    let addr = under_test.shard(0);
    let empty_end = queue.end_position(&addr).await?;
    assert_eq!(queue.begin_position(&addr).await?, empty_end);
    assert_eq!(queue.position_at_time(&addr, 0).await?, empty_end);
    let mut produced = Vec::new();
    for _ in 0..3 {
        produced.extend(under_test.produce_n(&addr, 2).await?);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all = queue.read(&addr, ReadStart::Earliest, 10).await?;
    assert_eq!(all.len(), 6);
    assert_eq!(queue.begin_position(&addr).await?, produced[0]);
    assert_eq!(queue.position_at_time(&addr, 0).await?, produced[0]);
    for message in &all {
        let found = queue
            .position_at_time(&addr, message.publish_time_ms)
            .await?;
        let first_at_that_time = all
            .iter()
            .find(|m| m.publish_time_ms >= message.publish_time_ms)
            .map(|m| m.position);
        assert_eq!(Some(found), first_at_that_time);
    }
    let after_all = all[5].publish_time_ms + 1;
    assert_eq!(
        queue.position_at_time(&addr, after_all).await?,
        queue.end_position(&addr).await?
    );
    Ok(())
}

/// After `set_shards`, a consumer reads the new shards and no longer the old ones.
pub(crate) async fn scenario_set_shards_changes_what_a_consumer_reads(
    under_test: QueueUnderTest,
) -> ScenarioResult {
    let (old, new) = (under_test.shard(0), under_test.shard(1));
    under_test.produce_n(&old, 2).await?;
    let on_new = under_test.produce_n(&new, 2).await?;
    let mut consumer = under_test
        .queue
        .subscribe("indexer", vec![old.clone()])
        .await?;
    let first = receive_at_least(&mut consumer, 2).await?;
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|delivery| delivery.message.shard == old));
    consumer.ack(&tags(&first)).await?;
    consumer.set_shards(vec![new.clone()]).await?;
    let second = receive_at_least(&mut consumer, 2).await?;
    assert!(second.iter().all(|delivery| delivery.message.shard == new));
    assert_eq!(positions(&second), on_new);
    under_test.produce_n(&old, 1).await?;
    under_test.assert_nothing_more(&mut consumer).await
}

/// The backlog of a subscription counts what it has not acked (bytes included), and
/// reports the shard's end position.
pub(crate) async fn scenario_backlog_counts_unacked_messages(
    under_test: QueueUnderTest,
) -> ScenarioResult {
    let queue = under_test.queue.as_ref();
    let addr = under_test.shard(0);
    let mut consumer = queue.subscribe("indexer", vec![addr.clone()]).await?;
    let produced = under_test.produce_n(&addr, 5).await?;
    let deliveries = receive_at_least(&mut consumer, 5).await?;
    let (acked, unacked): (Vec<Delivery>, Vec<Delivery>) = deliveries
        .into_iter()
        .partition(|delivery| delivery.message.position <= produced[1]);
    consumer.ack(&tags(&acked)).await?;
    let backlog = wait_for_backlog(queue, &addr, 3).await?;
    assert_eq!(backlog.shard, addr);
    assert_eq!(backlog.messages, 3);
    assert!(backlog.bytes > 0, "{backlog:?}");
    assert_eq!(backlog.end_position, produced[4] + 1);

    consumer.ack(&tags(&unacked)).await?;
    let backlog = wait_for_backlog(queue, &addr, 0).await?;
    assert_eq!(backlog.messages, 0);
    assert_eq!(backlog.end_position, produced[4] + 1);
    Ok(())
}

/// Polls the backlog of "indexer" on `addr` until it counts `want` messages (acks are
/// not confirmed, and Pulsar's metrics are refreshed periodically), and returns the
/// last answer.
async fn wait_for_backlog(
    queue: &dyn Queue,
    addr: &ShardAddr,
    want: u64,
) -> Result<super::ShardBacklog, QueueError> {
    let mut backlog = Vec::new();
    for _ in 0..60 {
        backlog = queue.backlog("indexer", std::slice::from_ref(addr)).await?;
        if backlog.first().is_some_and(|shard| shard.messages == want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    backlog
        .pop()
        .ok_or_else(|| QueueError::Unavailable("backlog answered no shard".to_string()))
}

/// Owned readers deliver, call after call, exactly what follows what they returned:
/// from the earliest message, or (opened at the latest) everything produced after
/// they opened.
pub(crate) async fn scenario_owned_readers_go_on_where_they_stopped(
    under_test: QueueUnderTest,
) -> ScenarioResult {
    let queue = under_test.queue.as_ref();
    let addr = under_test.shard(0);
    let before = under_test.produce_n(&addr, 3).await?;
    let mut from_earliest = queue.open_reader(&addr, ReadStart::Earliest).await?;
    let mut live = queue.open_reader(&addr, ReadStart::Latest).await?;
    assert_eq!(positions_of(&from_earliest.read_next(10).await?), before);
    assert!(from_earliest.read_next(10).await?.is_empty());
    assert!(live.read_next(10).await?.is_empty());
    let after = under_test.produce_n(&addr, 2).await?;
    for (name, reader) in [("earliest", &mut from_earliest), ("latest", &mut live)] {
        let read = positions_of(&reader.read_next(10).await?);
        assert_eq!(read, after, "the reader opened at the {name} message");
        assert!(reader.read_next(10).await?.is_empty(), "{name}");
    }
    Ok(())
}

/// After shutdown, produce, health checks and consumers answer `Closed`; a second
/// shutdown is harmless.
pub(crate) async fn scenario_shutdown_refuses_further_work(
    under_test: QueueUnderTest,
) -> ScenarioResult {
    let queue = under_test.queue.as_ref();
    let addr = under_test.shard(0);
    let mut consumer = queue.subscribe("indexer", vec![addr.clone()]).await?;
    queue
        .produce(&addr, properties(1), Bytes::from_static(b"last"))
        .await?;
    queue.shutdown().await?;
    let refused = queue
        .produce(&addr, properties(1), Bytes::from_static(b"late"))
        .await;
    assert!(matches!(refused, Err(QueueError::Closed)), "{refused:?}");
    assert!(matches!(
        queue.check_health().await,
        Err(QueueError::Closed)
    ));
    let received = consumer.receive(1, Duration::from_millis(10)).await;
    assert!(matches!(received, Err(QueueError::Closed)), "{received:?}");
    queue.shutdown().await?;
    Ok(())
}
