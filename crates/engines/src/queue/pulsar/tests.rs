//! Tests of the Pulsar queue. The unit tests need nothing; the others talk to a real
//! broker at `LOGPOOL_TEST_PULSAR_URL` (pulsar-lite in development and CI, through
//! [`TestRelay`], which repairs pulsar-lite's MESSAGE framing for the crate). Each test
//! uses its own random tenant, so tests can share one broker.

use logpool_core::pool_id::PoolId;
use std::collections::BTreeMap;
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
use crate::queue::conformance::{produce_n, properties, receive_at_least, tags};
use crate::queue::{BatchProperties, Position, Queue, QueueError, ReadStart};

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
                        pool_id: PoolId::new(4242),
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

/// On top of the conformance scenario: an owned reader is a non-durable subscription
/// on the broker, and closing the reader removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_owned_readers_leave_no_subscription_behind() -> TestResult {
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
