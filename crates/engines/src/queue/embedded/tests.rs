//! Behaviour tests of the embedded queue on temporary directories.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use logpool_core::routing::ShardAddr;

use super::layout::{list_segments, shard_dir};
use super::{EmbeddedQueue, EmbeddedQueueConfig};
use crate::queue::conformance::{properties, receive_at_least, tags};
use crate::queue::{Delivery, Position, Queue, QueueError, ReadStart};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn shard(partition: u32) -> ShardAddr {
    ShardAddr {
        tenant: "default".to_string(),
        project: "web".to_string(),
        partition,
    }
}

fn config(dir: &Path) -> EmbeddedQueueConfig {
    EmbeddedQueueConfig {
        dir: dir.to_path_buf(),
        nack_redelivery_delay_ms: 20,
        ..EmbeddedQueueConfig::default()
    }
}

async fn produce_n(
    queue: &EmbeddedQueue,
    addr: &ShardAddr,
    count: usize,
    payload_len: usize,
) -> Result<Vec<Position>, QueueError> {
    let mut positions = Vec::with_capacity(count);
    for number in 0..count {
        let payload = Bytes::from(vec![b'a' + (number % 26) as u8; payload_len]);
        positions.push(
            queue
                .produce(addr, properties(number as u32), payload)
                .await?,
        );
    }
    Ok(positions)
}

fn positions(deliveries: &[Delivery]) -> Vec<Position> {
    deliveries
        .iter()
        .map(|delivery| delivery.message.position)
        .collect()
}

fn segment_files(dir: &Path, addr: &ShardAddr) -> Result<Vec<PathBuf>, std::io::Error> {
    Ok(list_segments(&shard_dir(dir, addr))?
        .into_iter()
        .map(|(_, path)| path)
        .collect())
}

/// On top of the conformance scenario: embedded positions count from 0 without a gap,
/// also with concurrent producers and rolled segments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_positions_are_contiguous_from_zero_across_rolled_segments() -> TestResult {
    let dir = tempfile::tempdir()?;
    let queue = Arc::new(
        EmbeddedQueue::open(EmbeddedQueueConfig {
            segment_max_bytes: 512,
            ..config(dir.path())
        })
        .await?,
    );
    let mut tasks = Vec::new();
    for task_number in 0..8u32 {
        let queue = Arc::clone(&queue);
        tasks.push(tokio::spawn(async move {
            produce_n(&queue, &shard(task_number % 2), 25, 40).await
        }));
    }
    let mut seen = [BTreeSet::new(), BTreeSet::new()];
    for (task_number, task) in tasks.into_iter().enumerate() {
        let produced = task.await??;
        assert!(produced.windows(2).all(|pair| pair[0] < pair[1]));
        for position in produced {
            assert!(
                seen[task_number % 2].insert(position),
                "position {position} given twice"
            );
        }
    }
    for (partition, positions) in seen.iter().enumerate() {
        assert_eq!(
            positions.iter().copied().collect::<Vec<_>>(),
            (0..100).collect::<Vec<_>>()
        );
        let messages = queue
            .read(&shard(partition as u32), ReadStart::Earliest, 1000)
            .await?;
        assert_eq!(messages.len(), 100);
        assert!(messages
            .windows(2)
            .all(|pair| pair[0].position + 1 == pair[1].position));
        assert!(messages
            .windows(2)
            .all(|pair| pair[0].publish_time_ms <= pair[1].publish_time_ms));
    }
    assert!(
        segment_files(dir.path(), &shard(0))?.len() > 1,
        "small segments must roll"
    );
    Ok(())
}

#[tokio::test]
async fn test_reopen_after_drop_keeps_everything() -> TestResult {
    let dir = tempfile::tempdir()?;
    let queue_config = EmbeddedQueueConfig {
        segment_max_bytes: 300,
        ..config(dir.path())
    };
    let queue = EmbeddedQueue::open(queue_config.clone()).await?;
    produce_n(&queue, &shard(0), 20, 50).await?;
    produce_n(&queue, &shard(1), 3, 10).await?;
    let before = queue.read(&shard(0), ReadStart::Earliest, 100).await?;
    drop(queue);

    let queue = EmbeddedQueue::open(queue_config).await?;
    let after = queue.read(&shard(0), ReadStart::Earliest, 100).await?;
    assert_eq!(after.len(), 20);
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old.position, new.position);
        assert_eq!(old.publish_time_ms, new.publish_time_ms);
        assert_eq!(old.properties, new.properties);
        assert_eq!(old.payload, new.payload);
    }
    assert_eq!(queue.end_position(&shard(1)).await?, 3);
    assert_eq!(
        queue
            .produce(&shard(0), properties(1), Bytes::from_static(b"x"))
            .await?,
        20
    );
    Ok(())
}

#[tokio::test]
async fn test_torn_tail_is_truncated_on_open() -> TestResult {
    let dir = tempfile::tempdir()?;
    let addr = shard(0);
    let queue = EmbeddedQueue::open(config(dir.path())).await?;
    produce_n(&queue, &addr, 3, 30).await?;
    drop(queue);

    // A crash in the middle of writing an entry header: garbage after the last entry.
    let segment = segment_files(dir.path(), &addr)?
        .pop()
        .ok_or("no segment")?;
    OpenOptions::new()
        .append(true)
        .open(&segment)?
        .write_all(&[0xAB; 21])?;
    let queue = EmbeddedQueue::open(config(dir.path())).await?;
    assert_eq!(queue.end_position(&addr).await?, 3);
    assert_eq!(
        queue
            .produce(&addr, properties(1), Bytes::from_static(b"fourth"))
            .await?,
        3
    );
    assert_eq!(queue.read(&addr, ReadStart::Earliest, 10).await?.len(), 4);
    drop(queue);

    // A crash in the middle of a payload: the last entry is cut short.
    let file_len = std::fs::metadata(&segment)?.len();
    OpenOptions::new()
        .write(true)
        .open(&segment)?
        .set_len(file_len - 3)?;
    let queue = EmbeddedQueue::open(config(dir.path())).await?;
    let messages = queue.read(&addr, ReadStart::Earliest, 10).await?;
    assert_eq!(positions_of(&messages), vec![0, 1, 2]);
    assert_eq!(messages[2].payload.len(), 30);
    assert_eq!(
        queue
            .produce(&addr, properties(1), Bytes::from_static(b"again"))
            .await?,
        3
    );
    Ok(())
}

fn positions_of(messages: &[crate::queue::QueueMessage]) -> Vec<Position> {
    messages.iter().map(|message| message.position).collect()
}

#[tokio::test]
async fn test_damaged_segment_header_is_reported_as_corrupted() -> TestResult {
    let dir = tempfile::tempdir()?;
    let addr = shard(0);
    let queue = EmbeddedQueue::open(config(dir.path())).await?;
    produce_n(&queue, &addr, 2, 10).await?;
    drop(queue);
    let segment = segment_files(dir.path(), &addr)?
        .pop()
        .ok_or("no segment")?;
    OpenOptions::new()
        .write(true)
        .open(&segment)?
        .write_all(b"NOTASEG!")?;
    let result = EmbeddedQueue::open(config(dir.path())).await;
    assert!(
        matches!(result, Err(QueueError::Corrupted(_))),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn test_damage_inside_an_older_segment_is_skipped() -> TestResult {
    let dir = tempfile::tempdir()?;
    let addr = shard(0);
    // 64-byte payloads make 101-byte entries: two entries per segment.
    let queue_config = EmbeddedQueueConfig {
        segment_max_bytes: 250,
        ..config(dir.path())
    };
    let queue = EmbeddedQueue::open(queue_config.clone()).await?;
    drop(queue.subscribe("indexer", vec![addr.clone()]).await?);
    produce_n(&queue, &addr, 6, 64).await?;
    drop(queue);
    let segments = segment_files(dir.path(), &addr)?;
    assert_eq!(segments.len(), 3);
    // Flip one payload byte of position 3, the second entry of the middle segment.
    let mut bytes = std::fs::read(&segments[1])?;
    bytes[8 + 101 + 37 + 4] ^= 0xFF;
    std::fs::write(&segments[1], &bytes)?;

    let queue = EmbeddedQueue::open(queue_config).await?;
    let messages = queue.read(&addr, ReadStart::Earliest, 10).await?;
    assert_eq!(positions_of(&messages), vec![0, 1, 2, 4, 5]);
    let mut consumer = queue.subscribe("indexer", vec![addr.clone()]).await?;
    let deliveries = receive_at_least(&mut consumer, 5).await?;
    assert_eq!(positions(&deliveries), vec![0, 1, 2, 4, 5]);
    consumer.ack(&tags(&deliveries)).await?;
    let backlog = queue
        .backlog("indexer", std::slice::from_ref(&addr))
        .await?;
    assert_eq!((backlog[0].messages, backlog[0].bytes), (0, 0));
    drop(consumer);
    drop(queue);

    // The watermark moved over the lost position, so nothing comes back after a restart.
    let queue = EmbeddedQueue::open(config(dir.path())).await?;
    let mut consumer = queue.subscribe("indexer", vec![addr.clone()]).await?;
    assert!(consumer
        .receive(10, Duration::from_millis(20))
        .await?
        .is_empty());
    assert_eq!(
        queue
            .produce(&addr, properties(1), Bytes::from_static(b"x"))
            .await?,
        6
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_group_commit_shares_fsyncs_among_concurrent_producers() -> TestResult {
    let dir = tempfile::tempdir()?;
    let queue = Arc::new(EmbeddedQueue::open(config(dir.path())).await?);
    let num_producers = 50;
    let num_per_producer = 10;
    let mut tasks = Vec::new();
    for producer in 0..num_producers {
        let queue = Arc::clone(&queue);
        tasks.push(tokio::spawn(async move {
            produce_n(&queue, &shard(producer % 4), num_per_producer, 100).await
        }));
    }
    for task in tasks {
        task.await??;
    }
    let num_produced = u64::from(num_producers) * num_per_producer as u64;
    let num_fsyncs = queue.num_fsyncs();
    assert!(num_fsyncs > 0);
    assert!(
        num_fsyncs < num_produced,
        "{num_fsyncs} fsyncs for {num_produced} produces: no group commit"
    );
    Ok(())
}

#[tokio::test]
async fn test_receive_spreads_over_shards_in_position_order() -> TestResult {
    let dir = tempfile::tempdir()?;
    let queue = EmbeddedQueue::open(config(dir.path())).await?;
    let shards = vec![shard(0), shard(1), shard(2)];
    for addr in &shards {
        produce_n(&queue, addr, 10, 5).await?;
    }
    let mut consumer = queue.subscribe("fair", shards.clone()).await?;
    let deliveries = consumer.receive(6, Duration::from_millis(100)).await?;
    assert_eq!(deliveries.len(), 6);
    for addr in &shards {
        let of_shard: Vec<Position> = deliveries
            .iter()
            .filter(|delivery| &delivery.message.shard == addr)
            .map(|delivery| delivery.message.position)
            .collect();
        assert_eq!(
            of_shard,
            vec![0, 1],
            "each shard gets its fair share, in order"
        );
    }
    Ok(())
}

/// On top of the conformance scenario: with the survivor attached before the loss,
/// only what the lost consumer held comes back flagged; what it never got is fresh.
#[tokio::test]
async fn test_only_what_a_dropped_consumer_held_comes_back_flagged() -> TestResult {
    let dir = tempfile::tempdir()?;
    let queue = EmbeddedQueue::open(config(dir.path())).await?;
    let addr = shard(0);
    produce_n(&queue, &addr, 5, 10).await?;
    let mut lost = queue.subscribe("indexer", vec![addr.clone()]).await?;
    let mut survivor = queue.subscribe("indexer", vec![addr.clone()]).await?;
    let taken = receive_at_least(&mut lost, 3).await?;
    assert_eq!(positions(&taken), vec![0, 1, 2]);
    lost.ack(&tags(&taken[..1])).await?;
    drop(lost);

    let deliveries = receive_at_least(&mut survivor, 4).await?;
    assert_eq!(positions(&deliveries), vec![1, 2, 3, 4]);
    let flags: Vec<bool> = deliveries
        .iter()
        .map(|delivery| delivery.redelivered)
        .collect();
    assert_eq!(flags, vec![true, true, false, false]);
    Ok(())
}

#[tokio::test]
async fn test_ack_persists_across_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let addr = shard(0);
    let queue = EmbeddedQueue::open(config(dir.path())).await?;
    produce_n(&queue, &addr, 6, 10).await?;
    let mut consumer = queue.subscribe("indexer", vec![addr.clone()]).await?;
    let deliveries = receive_at_least(&mut consumer, 6).await?;
    assert_eq!(deliveries.len(), 6);
    consumer.ack(&tags(&deliveries[..4])).await?;
    drop(consumer);
    drop(queue);

    let queue = EmbeddedQueue::open(config(dir.path())).await?;
    let backlog = queue
        .backlog("indexer", std::slice::from_ref(&addr))
        .await?;
    assert_eq!((backlog[0].messages, backlog[0].bytes), (2, 20));
    let mut consumer = queue.subscribe("indexer", vec![addr.clone()]).await?;
    let again = receive_at_least(&mut consumer, 2).await?;
    assert_eq!(positions(&again), vec![4, 5]);
    assert!(again.iter().all(|delivery| delivery.redelivered));
    queue
        .produce(&addr, properties(1), Bytes::from_static(b"new"))
        .await?;
    let fresh = receive_at_least(&mut consumer, 1).await?;
    assert_eq!(positions(&fresh), vec![6]);
    assert!(!fresh[0].redelivered);
    Ok(())
}

/// On top of the conformance scenario: exact payload bytes, a shard never written to,
/// and a subscription that does not exist yet (it would start at the earliest message).
#[tokio::test]
async fn test_backlog_counts_unacked_messages_and_bytes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let queue = EmbeddedQueue::open(config(dir.path())).await?;
    let addr = shard(0);
    produce_n(&queue, &addr, 5, 10).await?;
    let mut consumer = queue.subscribe("indexer", vec![addr.clone()]).await?;
    let deliveries = receive_at_least(&mut consumer, 5).await?;
    consumer
        .ack(&[deliveries[0].tag(), deliveries[3].tag()])
        .await?;

    let backlog = queue.backlog("indexer", &[addr.clone(), shard(9)]).await?;
    assert_eq!(backlog[0].shard, addr);
    assert_eq!(
        (
            backlog[0].messages,
            backlog[0].bytes,
            backlog[0].end_position
        ),
        (3, 30, 5)
    );
    assert_eq!(
        (
            backlog[1].messages,
            backlog[1].bytes,
            backlog[1].end_position
        ),
        (0, 0, 0)
    );
    let unknown = queue.backlog("nobody", std::slice::from_ref(&addr)).await?;
    assert_eq!((unknown[0].messages, unknown[0].bytes), (5, 50));

    consumer.ack(&tags(&deliveries)).await?;
    let backlog = queue.backlog("indexer", &[addr]).await?;
    assert_eq!((backlog[0].messages, backlog[0].bytes), (0, 0));
    Ok(())
}

#[tokio::test]
async fn test_produce_is_refused_when_backlog_is_full_until_acked() -> TestResult {
    let dir = tempfile::tempdir()?;
    let queue = EmbeddedQueue::open(EmbeddedQueueConfig {
        max_backlog_bytes_per_shard: 100,
        ..config(dir.path())
    })
    .await?;
    let addr = shard(0);
    let mut consumer = queue.subscribe("indexer", vec![addr.clone()]).await?;
    produce_n(&queue, &addr, 2, 60).await?;
    let refused = queue
        .produce(&addr, properties(1), Bytes::from_static(b"more"))
        .await;
    match refused {
        Err(QueueError::Full {
            shard,
            reason,
            retry_after,
        }) => {
            assert_eq!(shard, addr);
            assert!(reason.contains("max_backlog_bytes_per_shard"), "{reason}");
            assert!(reason.contains("100"), "{reason}");
            assert_eq!(retry_after, Duration::from_secs(1));
        }
        other => return Err(format!("expected Full, got {other:?}").into()),
    }
    // Other shards are not affected.
    queue
        .produce(&shard(1), properties(1), Bytes::from_static(b"ok"))
        .await?;

    let deliveries = receive_at_least(&mut consumer, 2).await?;
    consumer.ack(&tags(&deliveries)).await?;
    assert_eq!(
        queue
            .produce(&addr, properties(1), Bytes::from_static(b"more"))
            .await?,
        2
    );
    Ok(())
}

#[tokio::test]
async fn test_retention_deletes_only_fully_acked_old_segments() -> TestResult {
    let dir = tempfile::tempdir()?;
    // 64-byte payloads make 101-byte entries: one entry per segment.
    let slow_retention = EmbeddedQueueConfig {
        segment_max_bytes: 100,
        retention_secs: 3600,
        ..config(dir.path())
    };
    let addr = shard(0);
    let unsubscribed = shard(1);
    let queue = EmbeddedQueue::open(slow_retention.clone()).await?;
    let mut indexer = queue.subscribe("indexer", vec![addr.clone()]).await?;
    let mut tail = queue.subscribe("tail", vec![addr.clone()]).await?;
    produce_n(&queue, &addr, 5, 64).await?;
    produce_n(&queue, &unsubscribed, 3, 64).await?;
    assert_eq!(segment_files(dir.path(), &addr)?.len(), 5);

    let indexed = receive_at_least(&mut indexer, 5).await?;
    indexer.ack(&tags(&indexed[..3])).await?;
    // Acked by one subscription only: nothing goes.
    assert_eq!(queue.enforce_retention_now().await?, 0);
    let tailed = receive_at_least(&mut tail, 5).await?;
    tail.ack(&tags(&tailed[..2])).await?;
    // Acked by both, but too recent.
    assert_eq!(queue.enforce_retention_now().await?, 0);
    drop((indexer, tail));
    drop(queue);

    let queue = EmbeddedQueue::open(EmbeddedQueueConfig {
        retention_secs: 0,
        ..slow_retention
    })
    .await?;
    let num_deleted = queue.enforce_retention_now().await?;
    // The background pass may have run first; the files on disk are what matters.
    assert!(num_deleted <= 2 + 2);
    let remaining: Vec<Position> = list_segments(&shard_dir(dir.path(), &addr))?
        .into_iter()
        .map(|(first_position, _)| first_position)
        .collect();
    assert_eq!(
        remaining,
        vec![2, 3, 4],
        "only segments acked by both subscriptions go"
    );
    let messages = queue.read(&addr, ReadStart::Earliest, 10).await?;
    assert_eq!(positions_of(&messages), vec![2, 3, 4]);
    // Without subscriptions, age alone decides, and the last segment always stays.
    assert_eq!(segment_files(dir.path(), &unsubscribed)?.len(), 1);
    assert_eq!(queue.end_position(&unsubscribed).await?, 3);
    assert_eq!(
        queue
            .produce(&addr, properties(1), Bytes::from_static(b"x"))
            .await?,
        5
    );
    Ok(())
}

#[tokio::test]
async fn test_begin_position_follows_retention() -> TestResult {
    let dir = tempfile::tempdir()?;
    // 64-byte payloads make 101-byte entries: one entry per segment.
    let one_entry_segments = EmbeddedQueueConfig {
        segment_max_bytes: 100,
        retention_secs: 3600,
        ..config(dir.path())
    };
    let addr = shard(0);
    {
        let queue = EmbeddedQueue::open(one_entry_segments.clone()).await?;
        assert_eq!(queue.begin_position(&addr).await?, 0);
        assert_eq!(queue.position_at_time(&addr, 0).await?, 0);
        for _ in 0..4 {
            produce_n(&queue, &addr, 1, 64).await?;
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        assert_eq!(queue.begin_position(&addr).await?, 0);
        queue.shutdown().await?;
    }
    // Without subscriptions age alone decides; the last segment always stays.
    let queue = EmbeddedQueue::open(EmbeddedQueueConfig {
        retention_secs: 0,
        ..one_entry_segments
    })
    .await?;
    queue.enforce_retention_now().await?;
    assert_eq!(queue.begin_position(&addr).await?, 3);
    assert_eq!(queue.position_at_time(&addr, 0).await?, 3);
    assert_eq!(queue.end_position(&addr).await?, 4);
    assert_eq!(queue.begin_position(&shard(9)).await?, 0);
    Ok(())
}

#[tokio::test]
async fn test_delete_shards_removes_data_and_subscription_state() -> TestResult {
    let dir = tempfile::tempdir()?;
    let queue = EmbeddedQueue::open(config(dir.path())).await?;
    let deleted = shard(0);
    let kept = shard(1);
    produce_n(&queue, &deleted, 3, 10).await?;
    produce_n(&queue, &kept, 2, 10).await?;
    let mut consumer = queue
        .subscribe("indexer", vec![deleted.clone(), kept.clone()])
        .await?;
    let deliveries = receive_at_least(&mut consumer, 5).await?;
    consumer.ack(&tags(&deliveries)).await?;

    queue.delete_shards(std::slice::from_ref(&deleted)).await?;
    assert!(!shard_dir(dir.path(), &deleted).exists());
    assert_eq!(queue.end_position(&deleted).await?, 0);
    assert!(queue
        .read(&deleted, ReadStart::Earliest, 10)
        .await?
        .is_empty());
    assert_eq!(queue.end_position(&kept).await?, 2);

    assert_eq!(
        queue
            .produce(&deleted, properties(1), Bytes::from_static(b"new"))
            .await?,
        0
    );
    let fresh = receive_at_least(&mut consumer, 1).await?;
    assert_eq!(fresh.len(), 1);
    assert_eq!(
        (fresh[0].message.shard.clone(), fresh[0].message.position),
        (deleted.clone(), 0)
    );
    assert!(!fresh[0].redelivered);
    drop(consumer);
    drop(queue);

    let queue = EmbeddedQueue::open(config(dir.path())).await?;
    assert_eq!(queue.end_position(&deleted).await?, 1);
    Ok(())
}

/// On top of the conformance scenario: what was produced before shutdown is there
/// after a reopen.
#[tokio::test]
async fn test_shutdown_keeps_what_was_produced() -> TestResult {
    let dir = tempfile::tempdir()?;
    let queue = EmbeddedQueue::open(config(dir.path())).await?;
    let consumer = queue.subscribe("indexer", vec![shard(0)]).await?;
    queue
        .produce(&shard(0), properties(1), Bytes::from_static(b"last"))
        .await?;
    queue.shutdown().await?;
    drop(consumer);
    drop(queue);
    let queue = EmbeddedQueue::open(config(dir.path())).await?;
    assert_eq!(queue.end_position(&shard(0)).await?, 1);
    let mut consumer = queue.subscribe("indexer", vec![shard(0)]).await?;
    assert_eq!(
        positions(&receive_at_least(&mut consumer, 1).await?),
        vec![0]
    );
    Ok(())
}

#[test]
fn test_config_defaults_and_unknown_fields() -> TestResult {
    let parsed: EmbeddedQueueConfig =
        serde_json::from_str(r#"{"dir": "/var/lib/q", "retention_secs": 60}"#)?;
    assert_eq!(parsed.dir, PathBuf::from("/var/lib/q"));
    assert_eq!(parsed.retention_secs, 60);
    assert_eq!(parsed.segment_max_bytes, 64 * 1024 * 1024);
    assert_eq!(parsed.max_backlog_bytes_per_shard, 1024 * 1024 * 1024);
    assert_eq!(parsed.nack_redelivery_delay_ms, 1000);
    assert_eq!(parsed.max_group_commit_delay_us, 0);
    assert!(serde_json::from_str::<EmbeddedQueueConfig>(r#"{"segment_bytes": 1}"#).is_err());
    Ok(())
}

/// An embedded queue in a temporary directory for one conformance scenario. Small
/// segments make every scenario's reads and acks cross segment boundaries.
struct EmbeddedFixture {
    queue: Arc<EmbeddedQueue>,
    // Removed (with the queue's files) when the fixture is dropped.
    _dir: tempfile::TempDir,
}

/// The nack delay of the conformance queue: long enough to tell "after the delay"
/// from "at once".
const CONFORMANCE_NACK_DELAY: Duration = Duration::from_millis(200);

impl crate::queue::conformance::QueueFixture for EmbeddedFixture {
    async fn open() -> Option<Self> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let queue = EmbeddedQueue::open(EmbeddedQueueConfig {
            segment_max_bytes: 256,
            nack_redelivery_delay_ms: CONFORMANCE_NACK_DELAY.as_millis() as u64,
            ..config(dir.path())
        })
        .await
        .expect("open the embedded queue");
        Some(EmbeddedFixture {
            queue: Arc::new(queue),
            _dir: dir,
        })
    }

    fn under_test(&self) -> crate::queue::conformance::QueueUnderTest {
        crate::queue::conformance::QueueUnderTest {
            queue: self.queue.clone(),
            tenant: "default".to_string(),
            nack_delay: CONFORMANCE_NACK_DELAY,
            quiet_wait: Duration::from_millis(100),
        }
    }

    async fn close(self) {
        // Best effort: the scenario may have shut the queue down already.
        let _ = self.queue.shutdown().await;
    }
}

mod conformance {
    crate::queue::conformance::queue_conformance_tests!(super::EmbeddedFixture);
}
