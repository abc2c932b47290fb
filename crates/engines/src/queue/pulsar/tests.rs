//! Tests of the Pulsar queue. The unit tests need nothing; the others talk to a real
//! broker at `LOGPOOL_TEST_PULSAR_URL` (pulsar-lite in development and CI, through
//! [`TestRelay`], which repairs pulsar-lite's MESSAGE framing for the crate). Each test
//! uses its own random tenant, so tests can share one broker.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use logpool_core::batch::{encode_batch, BATCH_FORMAT_VERSION};
use logpool_core::record::{FieldValue, Record};
use logpool_core::routing::ShardAddr;
use pulsar::error::ConnectionError;
use pulsar::proto::{MessageIdData, ServerError};

use super::test_relay::TestRelay;
use super::{classify_send_error, message_id_of, position_of, PulsarQueue, PulsarQueueConfig};
use crate::queue::{
    BatchProperties, Consumer, Delivery, DeliveryTag, Position, Queue, QueueError, ReadStart,
};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Every broker test must finish within this time.
const TEST_TIME_LIMIT: Duration = Duration::from_secs(90);

/// Returns the test broker's URL, or `None` when broker tests are skipped (see
/// [`crate::test_env::engine_address`]: without `LOGPOOL_TEST_PULSAR_URL` they skip
/// visibly, and fail when `LOGPOOL_REQUIRE_ENGINES` says the servers must be there).
/// Start pulsar-lite for them with `scripts/test-engines.sh`, or by hand: `pip install
/// pulsar-lite==0.2.0`, then its `bin/pulsar-lite --addr 127.0.0.1:6650 --db-path DIR
/// --config FILE` (FILE: `default_partitions = 0`, metrics off port 8080) and
/// `LOGPOOL_TEST_PULSAR_URL=pulsar://127.0.0.1:6650`.
fn broker_url() -> Option<String> {
    crate::test_env::engine_address("LOGPOOL_TEST_PULSAR_URL")
}

/// Returns the broker's Prometheus endpoint: `LOGPOOL_TEST_PULSAR_METRICS_URL`, or
/// port 18080 on the broker's host (where scripts/test-engines.sh puts it).
fn metrics_url() -> String {
    std::env::var("LOGPOOL_TEST_PULSAR_METRICS_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:18080/metrics".to_string())
}

/// Returns a name no other test (or earlier run) uses.
fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn shard(tenant: &str, partition: u32) -> ShardAddr {
    ShardAddr {
        tenant: tenant.to_string(),
        project: "web".to_string(),
        partition,
    }
}

fn properties(record_count: u32) -> BatchProperties {
    BatchProperties {
        pool_id: 7,
        record_count,
        format_version: 1,
    }
}

fn test_config(url: String) -> PulsarQueueConfig {
    PulsarQueueConfig {
        url,
        nack_redelivery_delay_ms: 300,
        operation_timeout_ms: 15_000,
        produce_timeout_ms: 15_000,
        ..PulsarQueueConfig::default()
    }
}

/// A queue on the test broker through a fresh relay, and the relay (keep it alive).
async fn open_queue(
    broker_url: &str,
) -> Result<(PulsarQueue, TestRelay), Box<dyn std::error::Error + Send + Sync>> {
    let relay = TestRelay::start(broker_url).await?;
    let queue = PulsarQueue::connect(test_config(relay.url())).await?;
    Ok((queue, relay))
}

async fn produce_n(
    queue: &PulsarQueue,
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
async fn receive_at_least(
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

fn tags(deliveries: &[Delivery]) -> Vec<DeliveryTag> {
    deliveries.iter().map(Delivery::tag).collect()
}

fn positions(deliveries: &[Delivery]) -> Vec<Position> {
    let mut positions: Vec<Position> = deliveries
        .iter()
        .map(|delivery| delivery.message.position)
        .collect();
    positions.sort_unstable();
    positions
}

/// A queue on the test broker (through a relay of its own) for one conformance
/// scenario, on a tenant no other test uses. It reads backlogs from the broker's
/// metrics, as deployments do.
struct PulsarFixture {
    queue: Arc<PulsarQueue>,
    tenant: String,
    _relay: TestRelay,
}

impl crate::queue::conformance::QueueFixture for PulsarFixture {
    async fn open() -> Option<Self> {
        let url = broker_url()?;
        let relay = TestRelay::start(&url).await.expect("start the test relay");
        let queue = PulsarQueue::connect(PulsarQueueConfig {
            metrics_url: Some(metrics_url()),
            ..test_config(relay.url())
        })
        .await
        .expect("connect to the test broker");
        Some(PulsarFixture {
            queue: Arc::new(queue),
            tenant: unique("conf"),
            _relay: relay,
        })
    }

    fn under_test(&self) -> crate::queue::conformance::QueueUnderTest {
        crate::queue::conformance::QueueUnderTest {
            queue: self.queue.clone(),
            tenant: self.tenant.clone(),
            nack_delay: Duration::from_millis(self.queue.config().nack_redelivery_delay_ms),
            // Deliveries travel through the broker: give a late one time to show up.
            quiet_wait: Duration::from_millis(800),
        }
    }

    async fn close(self) {
        // Best effort: the scenario may have shut the queue down already.
        let _ = self.queue.shutdown().await;
    }
}

mod conformance {
    crate::queue::conformance::queue_conformance_tests!(super::PulsarFixture);
}

/// Runs a broker test body under the time limit.
async fn bounded(body: impl std::future::Future<Output = TestResult>) -> TestResult {
    tokio::time::timeout(TEST_TIME_LIMIT, body)
        .await
        .map_err(|_| format!("test exceeded {TEST_TIME_LIMIT:?}"))?
}

// --- unit tests (no broker) -------------------------------------------------------

#[test]
fn test_config_defaults_and_unknown_fields() -> TestResult {
    let parsed: PulsarQueueConfig =
        serde_json::from_str(r#"{"url": "pulsar://pulsar:6650", "nack_redelivery_delay_ms": 50}"#)?;
    assert_eq!(parsed.url, "pulsar://pulsar:6650");
    assert_eq!(parsed.nack_redelivery_delay_ms, 50);
    assert_eq!(parsed.namespace, "logs");
    assert_eq!(parsed.produce_timeout_ms, 5_000);
    assert_eq!(parsed.max_in_flight_produces, 1_000);
    assert_eq!(parsed.max_redeliveries, 0);
    assert_eq!(parsed.dead_letter_topic_suffix, "-DLQ");
    assert!(serde_json::from_str::<PulsarQueueConfig>(r#"{"admin": "x"}"#).is_err());
    let defaults = PulsarQueueConfig::default();
    assert_eq!(defaults.url, "pulsar://127.0.0.1:6650");
    let toml_text = toml::to_string(&defaults)?;
    assert_eq!(toml::from_str::<PulsarQueueConfig>(&toml_text)?, defaults);
    Ok(())
}

#[test]
fn test_invalid_config_names_the_key() {
    let cases = [
        (
            PulsarQueueConfig {
                url: "http://x".to_string(),
                ..PulsarQueueConfig::default()
            },
            "`url`",
        ),
        (
            PulsarQueueConfig {
                namespace: "a/b".to_string(),
                ..PulsarQueueConfig::default()
            },
            "`namespace`",
        ),
        (
            PulsarQueueConfig {
                max_in_flight_produces: 0,
                ..PulsarQueueConfig::default()
            },
            "`max_in_flight_produces`",
        ),
    ];
    for (config, key) in cases {
        match PulsarQueue::new(config) {
            Err(error) => assert!(error.to_string().contains(key), "{error}"),
            Ok(_) => panic!("config with bad {key} accepted"),
        }
    }
}

#[test]
fn test_topic_names_and_shard_validation() -> TestResult {
    let queue = PulsarQueue::new(PulsarQueueConfig::default())?;
    assert_eq!(
        queue.topic(&ShardAddr {
            tenant: "acme".to_string(),
            project: "web".to_string(),
            partition: 3,
        }),
        "persistent://acme/logs/web-partition-3"
    );
    assert!(super::validate_shard(&shard("acme", 0)).is_ok());
    assert!(super::validate_shard(&ShardAddr {
        tenant: "a/b".to_string(),
        project: "web".to_string(),
        partition: 0,
    })
    .is_err());
    Ok(())
}

#[test]
fn test_positions_pack_ledger_and_entry_in_order() -> TestResult {
    let id = |ledger_id, entry_id| MessageIdData {
        ledger_id,
        entry_id,
        ..MessageIdData::default()
    };
    let ids = [id(0, 0), id(0, 1), id(0, 4_000_000), id(1, 0), id(9, 3)];
    let packed: Vec<Position> = ids.iter().map(position_of).collect::<Result<_, _>>()?;
    assert!(packed.windows(2).all(|pair| pair[0] < pair[1]));
    for (original, position) in ids.iter().zip(&packed) {
        let back = message_id_of(*position);
        assert_eq!(
            (back.ledger_id, back.entry_id),
            (original.ledger_id, original.entry_id)
        );
    }
    assert!(matches!(
        position_of(&id(1 << 33, 0)),
        Err(QueueError::Unavailable(_))
    ));
    Ok(())
}

#[test]
fn test_quota_errors_are_full_and_others_unavailable() {
    let addr = shard("acme", 0);
    let quota = pulsar::Error::Connection(ConnectionError::PulsarError(
        Some(ServerError::ProducerBlockedQuotaExceededException),
        Some("Cannot create producer on topic with backlog quota exceeded".to_string()),
    ));
    assert!(matches!(
        classify_send_error(&addr, "send", &quota),
        QueueError::Full { .. }
    ));
    let slow_down = pulsar::Error::Producer(pulsar::error::ProducerError::Connection(
        ConnectionError::SlowDown,
    ));
    assert!(matches!(
        classify_send_error(&addr, "send", &slow_down),
        QueueError::Full { .. }
    ));
    let gone = pulsar::Error::Connection(ConnectionError::Disconnected);
    assert!(matches!(
        classify_send_error(&addr, "send", &gone),
        QueueError::Unavailable(_)
    ));
}

// --- broker tests -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_produce_receive_ack_round_trip_with_properties() -> TestResult {
    let Some(url) = broker_url() else {
        return Ok(());
    };
    bounded(async {
        let (queue, _relay) = open_queue(&url).await?;
        let tenant = unique("rt");
        let addr = shard(&tenant, 0);
        let mut consumer = queue.subscribe("indexer", vec![addr.clone()]).await?;
        let position = queue
            .produce(
                &addr,
                BatchProperties {
                    pool_id: 42,
                    record_count: 3,
                    format_version: 1,
                },
                Bytes::from_static(b"three records"),
            )
            .await?;
        let deliveries = receive_at_least(&mut consumer, 1).await?;
        assert_eq!(deliveries.len(), 1);
        let message = &deliveries[0].message;
        assert_eq!(message.shard, addr);
        assert_eq!(message.position, position);
        assert_eq!(
            message.properties,
            BatchProperties {
                pool_id: 42,
                record_count: 3,
                format_version: 1,
            }
        );
        assert_eq!(message.payload, Bytes::from_static(b"three records"));
        assert!(message.publish_time_ms > 0);
        assert!(!deliveries[0].redelivered);
        consumer.ack(&tags(&deliveries)).await?;
        assert!(consumer
            .receive(10, Duration::from_millis(500))
            .await?
            .is_empty());
        drop(consumer);

        // Acked: a new member of the subscription does not get it again.
        let mut again = queue.subscribe("indexer", vec![addr.clone()]).await?;
        assert!(again
            .receive(10, Duration::from_millis(800))
            .await?
            .is_empty());
        assert_eq!(queue.end_position(&addr).await?, position + 1);
        queue.check_health().await?;
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_positions_strictly_increase_per_shard() -> TestResult {
    let Some(url) = broker_url() else {
        return Ok(());
    };
    bounded(async {
        let (queue, _relay) = open_queue(&url).await?;
        let queue = Arc::new(queue);
        let tenant = unique("pos");
        let mut tasks = Vec::new();
        for task_number in 0..6u32 {
            let queue = Arc::clone(&queue);
            let addr = shard(&tenant, task_number % 2);
            tasks.push(tokio::spawn(
                async move { produce_n(&queue, &addr, 15).await },
            ));
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
            let addr = shard(&tenant, partition as u32);
            let messages = queue.read(&addr, ReadStart::Earliest, 1000).await?;
            let read: Vec<Position> = messages.iter().map(|message| message.position).collect();
            assert_eq!(read.len(), 45);
            assert!(read.windows(2).all(|pair| pair[0] < pair[1]), "{read:?}");
            assert_eq!(read.iter().copied().collect::<HashSet<_>>(), *produced);
            let end = queue.end_position(&addr).await?;
            assert!(read.iter().all(|position| *position < end));
        }
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_shared_subscription_splits_messages_between_consumers() -> TestResult {
    let Some(url) = broker_url() else {
        return Ok(());
    };
    bounded(async {
        let (queue, _relay) = open_queue(&url).await?;
        let tenant = unique("split");
        let shards = vec![shard(&tenant, 0), shard(&tenant, 1)];
        let mut first = queue.subscribe("indexer", shards.clone()).await?;
        let mut second = queue.subscribe("indexer", shards.clone()).await?;
        let mut produced = HashSet::new();
        for addr in &shards {
            for position in produce_n(&queue, addr, 20).await? {
                produced.insert((addr.clone(), position));
            }
        }
        let mut first_seen = HashSet::new();
        let mut second_seen = HashSet::new();
        for _ in 0..60 {
            if first_seen.len() + second_seen.len() == produced.len() {
                break;
            }
            // Both hold their deliveries unacked at the same time: they must be disjoint.
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
        assert!(first
            .receive(10, Duration::from_millis(300))
            .await?
            .is_empty());
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_nacked_messages_come_back_after_the_delay_flagged() -> TestResult {
    let Some(url) = broker_url() else {
        return Ok(());
    };
    bounded(async {
        let (queue, _relay) = open_queue(&url).await?;
        let tenant = unique("nack");
        let addr = shard(&tenant, 0);
        let mut consumer = queue.subscribe("indexer", vec![addr.clone()]).await?;
        let produced = produce_n(&queue, &addr, 4).await?;
        let deliveries = receive_at_least(&mut consumer, 4).await?;
        assert_eq!(positions(&deliveries), produced);
        assert!(deliveries.iter().all(|delivery| !delivery.redelivered));
        let mut by_position = deliveries.clone();
        by_position.sort_by_key(|delivery| delivery.message.position);
        consumer.ack(&tags(&by_position[..1])).await?;
        let nacked_at = std::time::Instant::now();
        consumer.nack(&tags(&by_position[1..3])).await?;

        // Not before the delay: a failing consumer must not spin.
        let early = consumer.receive(10, Duration::from_millis(100)).await?;
        assert!(
            early.is_empty(),
            "redelivered before the nack delay: {early:?}"
        );
        let again = receive_at_least(&mut consumer, 2).await?;
        assert!(nacked_at.elapsed() >= Duration::from_millis(300));
        assert_eq!(positions(&again), produced[1..3].to_vec());
        assert!(again.iter().all(|delivery| delivery.redelivered));
        consumer.ack(&tags(&again)).await?;
        consumer.ack(&tags(&by_position[3..])).await?;
        assert!(consumer
            .receive(10, Duration::from_millis(800))
            .await?
            .is_empty());
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_unacked_messages_come_back_after_the_consumer_is_dropped() -> TestResult {
    let Some(url) = broker_url() else {
        return Ok(());
    };
    bounded(async {
        let (queue, _relay) = open_queue(&url).await?;
        let tenant = unique("drop");
        let addr = shard(&tenant, 0);
        let mut lost = queue.subscribe("indexer", vec![addr.clone()]).await?;
        let produced = produce_n(&queue, &addr, 5).await?;
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
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_read_from_earliest_position_and_publish_time() -> TestResult {
    let Some(url) = broker_url() else {
        return Ok(());
    };
    bounded(async {
        let (queue, _relay) = open_queue(&url).await?;
        let tenant = unique("read");
        let addr = shard(&tenant, 0);
        assert_eq!(queue.end_position(&addr).await?, 0);
        assert!(queue.read(&addr, ReadStart::Earliest, 10).await?.is_empty());
        for _ in 0..4 {
            produce_n(&queue, &addr, 3).await?;
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

        // From a position, repeatedly (the second read reuses the cached reader).
        let from_position = queue
            .read(&addr, ReadStart::Position(all[4].position), 3)
            .await?;
        let read_positions: Vec<Position> = from_position.iter().map(|m| m.position).collect();
        assert_eq!(
            read_positions,
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
        assert_eq!(
            tail.iter().map(|m| m.position).collect::<Vec<_>>(),
            vec![new_position]
        );

        for probe in [0, 5, 7, 11] {
            let time_ms = all[probe].publish_time_ms;
            let from_time = queue
                .read(&addr, ReadStart::PublishTime(time_ms), 100)
                .await?;
            let first = from_time.first().ok_or("empty read from time")?;
            assert!(first.publish_time_ms >= time_ms);
            assert!(first.position <= all[probe].position);
            if let Some(index) = all.iter().position(|m| m.position == first.position) {
                if index > 0 {
                    assert!(all[index - 1].publish_time_ms < time_ms);
                }
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
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_begin_position_and_position_at_time() -> TestResult {
    let Some(url) = broker_url() else {
        return Ok(());
    };
    bounded(async {
        let (queue, _relay) = open_queue(&url).await?;
        let addr = shard(&unique("begin"), 0);
        let empty_end = queue.end_position(&addr).await?;
        assert_eq!(queue.begin_position(&addr).await?, empty_end);
        assert_eq!(queue.position_at_time(&addr, 0).await?, empty_end);
        let mut produced = Vec::new();
        for _ in 0..3 {
            produced.extend(produce_n(&queue, &addr, 2).await?);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let all = queue.read(&addr, ReadStart::Earliest, 10).await?;
        assert_eq!(all.len(), 6);
        assert_eq!(queue.begin_position(&addr).await?, produced[0]);
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
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_set_shards_changes_what_a_consumer_reads() -> TestResult {
    let Some(url) = broker_url() else {
        return Ok(());
    };
    bounded(async {
        let (queue, _relay) = open_queue(&url).await?;
        let tenant = unique("set");
        produce_n(&queue, &shard(&tenant, 0), 2).await?;
        produce_n(&queue, &shard(&tenant, 1), 2).await?;
        let mut consumer = queue.subscribe("indexer", vec![shard(&tenant, 0)]).await?;
        let first = receive_at_least(&mut consumer, 2).await?;
        assert_eq!(first.len(), 2);
        assert!(first
            .iter()
            .all(|delivery| delivery.message.shard == shard(&tenant, 0)));
        consumer.ack(&tags(&first)).await?;
        consumer.set_shards(vec![shard(&tenant, 1)]).await?;
        let second = receive_at_least(&mut consumer, 2).await?;
        assert_eq!(second.len(), 2);
        assert!(second
            .iter()
            .all(|delivery| delivery.message.shard == shard(&tenant, 1)));
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_backlog_counts_unacked_messages() -> TestResult {
    let Some(url) = broker_url() else {
        return Ok(());
    };
    bounded(async {
        let relay = TestRelay::start(&url).await?;
        let queue = PulsarQueue::connect(PulsarQueueConfig {
            metrics_url: Some(metrics_url()),
            ..test_config(relay.url())
        })
        .await?;
        let tenant = unique("backlog");
        let addr = shard(&tenant, 0);
        let mut consumer = queue.subscribe("indexer", vec![addr.clone()]).await?;
        let produced = produce_n(&queue, &addr, 5).await?;
        let deliveries = receive_at_least(&mut consumer, 5).await?;
        let acked: Vec<DeliveryTag> = deliveries
            .iter()
            .filter(|delivery| delivery.message.position <= produced[1])
            .map(Delivery::tag)
            .collect();
        consumer.ack(&acked).await?;
        // Acks are not confirmed, and the broker refreshes its metrics periodically
        // (about every 10 s on pulsar-lite): wait until it has counted them.
        let mut backlog = Vec::new();
        for _ in 0..60 {
            backlog = queue
                .backlog("indexer", std::slice::from_ref(&addr))
                .await?;
            if backlog[0].messages == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(backlog[0].shard, addr);
        assert_eq!(backlog[0].messages, 3);
        assert_eq!(backlog[0].end_position, produced[4] + 1);
        // Estimated from the broker's average message size ("message N" is 9 bytes).
        assert!(backlog[0].bytes > 0, "{backlog:?}");
        let unknown = queue.backlog("nobody", std::slice::from_ref(&addr)).await?;
        assert_eq!(unknown[0].messages, 0);
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_shutdown_refuses_further_work() -> TestResult {
    let Some(url) = broker_url() else {
        return Ok(());
    };
    bounded(async {
        let (queue, _relay) = open_queue(&url).await?;
        let tenant = unique("shutdown");
        let addr = shard(&tenant, 0);
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
        assert!(matches!(
            consumer.receive(1, Duration::from_millis(10)).await,
            Err(QueueError::Closed)
        ));
        queue.shutdown().await?;
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_produce_to_an_unreachable_broker_is_unavailable_in_time() -> TestResult {
    // A port that was just free: nothing listens there.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let queue = PulsarQueue::new(PulsarQueueConfig {
        url: format!("pulsar://127.0.0.1:{closed_port}"),
        produce_timeout_ms: 1_500,
        operation_timeout_ms: 1_000,
        ..PulsarQueueConfig::default()
    })?;
    let started = std::time::Instant::now();
    let result = queue
        .produce(
            &shard("nobody", 0),
            properties(1),
            Bytes::from_static(b"lost"),
        )
        .await;
    assert!(
        matches!(result, Err(QueueError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(
        queue.check_health().await,
        Err(QueueError::Unavailable(_))
    ));
    assert!(matches!(
        PulsarQueue::connect(queue.config().clone()).await,
        Err(QueueError::Unavailable(_))
    ));
    Ok(())
}

/// The message format contract: the official Python client (C++ core) reads what this
/// queue produced, and decodes the payload as `docs/queue-message-format.md` says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_python_pulsar_client_decodes_produced_batches() -> TestResult {
    let Some(url) = broker_url() else {
        return Ok(());
    };
    bounded(async {
        let (queue, _relay) = open_queue(&url).await?;
        let tenant = unique("format");
        let addr = shard(&tenant, 2);
        let batches: Vec<Vec<Record>> = (0..3)
            .map(|batch| {
                (0..4)
                    .map(|number| Record {
                        time_ns: 1_700_000_000_000_000_000 + batch * 1000 + number,
                        fields: BTreeMap::from([
                            ("message".to_string(), FieldValue::Str(format!("GET /{batch}/{number}"))),
                            ("status".to_string(), FieldValue::Long(200 + number)),
                            ("latency".to_string(), FieldValue::Double(0.5)),
                            ("cached".to_string(), FieldValue::Bool(number % 2 == 0)),
                            ("tags.env".to_string(), FieldValue::Str("prod".to_string())),
                        ]),
                    })
                    .collect()
            })
            .collect();
        for records in &batches {
            let payload = encode_batch(records)?;
            queue
                .produce(
                    &addr,
                    BatchProperties {
                        pool_id: 4242,
                        record_count: records.len() as u32,
                        format_version: BATCH_FORMAT_VERSION,
                    },
                    Bytes::from(payload),
                )
                .await?;
        }
        let expected: Vec<serde_json::Value> = batches
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()?;

        let python = std::env::var("LOGPOOL_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/pulsar_format_check.py");
        let output = tokio::process::Command::new(&python)
            .arg(script)
            .arg("--url")
            .arg(&url)
            .arg("--topic")
            .arg(queue.topic(&addr))
            .arg("--count")
            .arg(batches.len().to_string())
            .arg("--pool-id")
            .arg("4242")
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|error| format!("could not run {python} {script}: {error}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("ModuleNotFoundError") {
            panic!(
                "the message format test needs the Python packages pulsar-client and zstandard \
                 (`{python} -m pip install pulsar-client zstandard`, or set LOGPOOL_TEST_PYTHON): {stderr}"
            );
        }
        assert!(
            output.status.success(),
            "pulsar_format_check.py failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
            output.status
        );
        let decoded: Vec<serde_json::Value> = stdout
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
        assert_eq!(decoded, expected, "python decoded different records");
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_message_nacked_too_often_moves_to_the_dead_letter_topic() -> TestResult {
    let Some(url) = broker_url() else {
        return Ok(());
    };
    bounded(async {
        let relay = TestRelay::start(&url).await?;
        let queue = PulsarQueue::connect(PulsarQueueConfig {
            max_redeliveries: 1,
            nack_redelivery_delay_ms: 100,
            ..test_config(relay.url())
        })
        .await?;
        let tenant = unique("dlq");
        let addr = shard(&tenant, 0);
        let mut consumer = queue.subscribe("indexer", vec![addr.clone()]).await?;
        queue
            .produce(&addr, properties(9), Bytes::from_static(b"poison"))
            .await?;
        let first = receive_at_least(&mut consumer, 1).await?;
        assert_eq!(first.len(), 1);
        consumer.nack(&tags(&first)).await?;
        // The redelivery reaches the limit: the client moves it to the dead-letter
        // topic and acks it instead of delivering it again.
        let mut redelivered = Vec::new();
        for _ in 0..8 {
            redelivered.extend(consumer.receive(10, Duration::from_millis(250)).await?);
        }
        assert!(redelivered.is_empty(), "delivered again: {redelivered:?}");

        let dead_letter_topic = format!("{}-indexer-DLQ", queue.topic(&addr));
        let client = queue.shared.client().await?;
        let mut dead_letters: pulsar::Consumer<Vec<u8>, pulsar::TokioExecutor> = client
            .consumer()
            .with_topic(&dead_letter_topic)
            .with_subscription("check")
            .with_subscription_type(pulsar::SubType::Exclusive)
            .with_options(
                pulsar::ConsumerOptions::default()
                    .with_initial_position(pulsar::consumer::InitialPosition::Earliest),
            )
            .build()
            .await?;
        let message = tokio::time::timeout(
            Duration::from_secs(10),
            futures::StreamExt::next(&mut dead_letters),
        )
        .await?
        .ok_or("dead-letter consumer ended")??;
        assert_eq!(message.payload.data, b"poison");
        assert_eq!(super::batch_properties(&message.payload), properties(9));
        Ok(())
    })
    .await
}

/// Number of subscriptions the broker reports (Prometheus metrics) on the topics of
/// a tenant.
async fn subscriptions_on(tenant: &str) -> Result<u64, QueueError> {
    let page = super::metrics::http_get(&metrics_url()).await?;
    let namespace = format!("namespace=\"{tenant}/");
    Ok(page
        .lines()
        .filter(|line| line.starts_with("pulsar_subscriptions_count{") && line.contains(&namespace))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|count| count as u64)
        .sum())
}

/// Polls the broker's metrics (refreshed every few seconds) until there are `want`
/// subscriptions on the tenant's topics, and returns the last count.
async fn wait_for_subscriptions(tenant: &str, want: u64) -> Result<u64, QueueError> {
    let mut count = subscriptions_on(tenant).await?;
    for _ in 0..60 {
        if count == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        count = subscriptions_on(tenant).await?;
    }
    Ok(count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_owned_readers_go_on_where_they_stopped_and_leave_no_subscription() -> TestResult {
    let Some(url) = broker_url() else {
        return Ok(());
    };
    bounded(async {
        let (queue, _relay) = open_queue(&url).await?;
        let tenant = unique("ownedreader");
        let addr = shard(&tenant, 0);
        let before = produce_n(&queue, &addr, 3).await?;
        let mut from_earliest = queue.open_reader(&addr, ReadStart::Earliest).await?;
        let mut live = queue.open_reader(&addr, ReadStart::Latest).await?;
        let read = from_earliest.read_next(10).await?;
        assert_eq!(read.iter().map(|m| m.position).collect::<Vec<_>>(), before);
        assert!(from_earliest.read_next(10).await?.is_empty());
        assert!(live.read_next(10).await?.is_empty());
        let after = produce_n(&queue, &addr, 2).await?;
        for reader in [&mut from_earliest, &mut live] {
            let read = reader.read_next(10).await?;
            assert_eq!(read.iter().map(|m| m.position).collect::<Vec<_>>(), after);
        }
        let open = wait_for_subscriptions(&tenant, 2).await?;
        assert_eq!(open, 2, "both readers are on the broker while open");
        drop(from_earliest);
        drop(live);
        let left = wait_for_subscriptions(&tenant, 0).await?;
        assert_eq!(left, 0, "closed readers left subscriptions behind");
        Ok(())
    })
    .await
}
