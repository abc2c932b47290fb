//! The embedded queue: a durable, segmented log per shard on local disk, with group
//! commit, shared subscriptions and retention. It backs the standalone deployment.
//!
//! # Layout on disk
//! ```text
//! {dir}/{tenant}/{project}/{partition}/{first_position:020}.seg   segments
//! {dir}/{tenant}/{project}/{partition}/subscriptions/{name}.wm     watermarks
//! ```
//! A segment file starts with the 8-byte magic `LPQSEG\0\x01` (format version 1),
//! followed by entries of consecutive positions, starting at the position in its name.
//! Every entry is a 37-byte little-endian header and the payload:
//!
//! | bytes  | field                                                     |
//! |--------|-----------------------------------------------------------|
//! | 0..4   | payload length (u32)                                      |
//! | 4..8   | CRC32C of bytes 0..4, bytes 8..37 and the payload (u32)   |
//! | 8..16  | position (u64)                                            |
//! | 16..24 | publish time, ms since the epoch (i64)                    |
//! | 24..32 | pool id (i64)                                             |
//! | 32..36 | record count (u32)                                        |
//! | 36     | payload format version (u8)                               |
//! | 37..   | payload                                                   |
//!
//! A watermark file holds the subscription's acked watermark on that shard (u64,
//! every position below it is acked) and a CRC32C of it (u32). Subscription names
//! are escaped into file names (`%XX` for anything but ASCII letters, digits, `-`, `_`).
//!
//! # Guarantees
//! - `produce` answers after the entry is written and `fdatasync`ed. One writer
//!   thread ([`writer`]) does all appends and shares each fsync among all requests
//!   queued at that moment (group commit).
//! - On open every shard found on disk is recovered ([`segment::scan_segment`]): CRCs
//!   and positions are checked, and a torn tail of the last segment is truncated.
//!   Only entries after the last fsync can be in a torn tail, and none of them was
//!   acknowledged to a producer.
//! - Readers and subscriptions only see fsynced entries.
//! - A watermark is written (temporary file, fsync, rename, directory fsync) on every
//!   ack that moves it. After a restart every message from the watermark on is
//!   delivered again with `redelivered = true`.
//! - Retention ([`retention`]) deletes whole segments, never the last one, once every
//!   subscription of the shard has durably acked them and they are older than
//!   `retention_secs`.

mod consumer;
mod cursor;
mod format;
mod layout;
mod retention;
mod segment;
mod shard;
mod shard_reader;
mod subscription;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use logpool_core::routing::ShardAddr;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use self::consumer::EmbeddedConsumer;
use self::layout::{
    create_dir_all_durable, list_shards, read_watermarks, validate_shard, write_watermark,
};
use self::segment::read_chunks;
use self::shard::Shard;
use self::shard_reader::EmbeddedShardReader;
use self::subscription::Subscription;
use self::writer::WriterHandle;
use crate::queue::{
    BatchProperties, Consumer, Position, Queue, QueueError, QueueMessage, QueueResult, ReadStart,
    ShardBacklog, ShardReader,
};

/// How long a producer refused with [`QueueError::Full`] should wait.
const FULL_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Configuration of the embedded queue (`[queue]` with `type = "embedded"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedQueueConfig {
    /// Root directory of the queue data; created if missing.
    pub dir: PathBuf,
    /// Size after which a shard starts a new segment file. Retention deletes whole
    /// segments, so smaller segments free space sooner.
    pub segment_max_bytes: u64,
    /// Acked data older than this many seconds is deleted, a whole segment at a time.
    /// Data of a shard without subscriptions is kept this long after publication.
    pub retention_secs: u64,
    /// Producing to a shard fails with a "full" error (HTTP 503 with Retry-After)
    /// while any subscription has more unacked payload bytes than this on the shard.
    pub max_backlog_bytes_per_shard: u64,
    /// Delay before a nacked message is delivered again, in milliseconds.
    pub nack_redelivery_delay_ms: u64,
    /// Extra time the writer waits for more messages before an fsync, in
    /// microseconds. 0 (the default) shares an fsync only among messages already
    /// waiting, which adds no latency.
    pub max_group_commit_delay_us: u64,
}

impl Default for EmbeddedQueueConfig {
    fn default() -> EmbeddedQueueConfig {
        EmbeddedQueueConfig {
            dir: PathBuf::from("queue"),
            segment_max_bytes: 64 * 1024 * 1024,
            retention_secs: 86_400,
            max_backlog_bytes_per_shard: 1024 * 1024 * 1024,
            nack_redelivery_delay_ms: 1000,
            max_group_commit_delay_us: 0,
        }
    }
}

/// State shared by the queue handle, its consumers, the writer thread and retention.
#[derive(Debug)]
struct Shared {
    config: EmbeddedQueueConfig,
    /// Every known shard. The writer adds shards; `delete_shards` removes them.
    shards: RwLock<HashMap<ShardAddr, Arc<Shard>>>,
    subscriptions: Mutex<HashMap<String, Arc<Subscription>>>,
    /// Woken when messages become available (produce, nack, consumer loss, shutdown).
    data_ready: Notify,
    closed: AtomicBool,
    num_fsyncs: AtomicU64,
}

/// The embedded [`Queue`]. See the module documentation.
#[derive(Debug)]
pub struct EmbeddedQueue {
    shared: Arc<Shared>,
    writer: WriterHandle,
    stop_retention: watch::Sender<bool>,
    retention_task: Mutex<Option<JoinHandle<()>>>,
}

impl EmbeddedQueue {
    /// Opens the queue in `config.dir`, recovering every shard and subscription found
    /// there, and starts the writer thread and the retention task.
    ///
    /// # Errors
    /// [`QueueError::Io`] when the directory cannot be read or repaired, and
    /// [`QueueError::Corrupted`] when a segment is damaged beyond a torn tail.
    pub async fn open(config: EmbeddedQueueConfig) -> QueueResult<EmbeddedQueue> {
        let root = config.dir.clone();
        let recovered = tokio::task::spawn_blocking(move || recover(root))
            .await
            .map_err(|error| QueueError::Unavailable(format!("queue recovery: {error}")))??;

        let mut shards = HashMap::new();
        let mut subscriptions: HashMap<String, Arc<Subscription>> = HashMap::new();
        for (shard, watermarks) in recovered {
            {
                let index = read_lock(&shard.index);
                for (name, watermark) in watermarks {
                    subscriptions
                        .entry(name.clone())
                        .or_insert_with(|| Arc::new(Subscription::new(name)))
                        .restore_shard(shard.addr.clone(), watermark, &index);
                }
            }
            shards.insert(shard.addr.clone(), Arc::new(shard));
        }
        tracing::info!(
            dir = %config.dir.display(),
            num_shards = shards.len(),
            num_subscriptions = subscriptions.len(),
            "embedded queue opened"
        );

        let shared = Arc::new(Shared {
            config,
            shards: RwLock::new(shards),
            subscriptions: Mutex::new(subscriptions),
            data_ready: Notify::new(),
            closed: AtomicBool::new(false),
            num_fsyncs: AtomicU64::new(0),
        });
        let writer = WriterHandle::start(Arc::clone(&shared))?;
        let (stop_retention, stop_receiver) = watch::channel(false);
        let retention_task = retention::spawn(Arc::clone(&shared), stop_receiver);
        Ok(EmbeddedQueue {
            shared,
            writer,
            stop_retention,
            retention_task: Mutex::new(Some(retention_task)),
        })
    }

    /// Runs one retention pass now and returns the number of deleted segments.
    ///
    /// # Errors
    /// [`QueueError::Io`] when a segment file cannot be removed.
    pub async fn enforce_retention_now(&self) -> QueueResult<usize> {
        retention::enforce(&self.shared).await
    }

    /// Returns the number of data fsyncs done so far (group commit makes it smaller
    /// than the number of produced messages under concurrency).
    pub fn num_fsyncs(&self) -> u64 {
        self.shared.num_fsyncs.load(Ordering::Relaxed)
    }

    fn shard(&self, addr: &ShardAddr) -> Option<Arc<Shard>> {
        read_lock(&self.shared.shards).get(addr).cloned()
    }

    /// Refuses a produce while any subscription's backlog on the shard is over the limit.
    fn check_backlog(&self, addr: &ShardAddr) -> QueueResult<()> {
        let Some(shard) = self.shard(addr) else {
            return Ok(());
        };
        let limit = self.shared.config.max_backlog_bytes_per_shard;
        let subscriptions = lock(&self.shared.subscriptions);
        for subscription in subscriptions.values() {
            if let Some((_, bytes)) = subscription.backlog(addr, &shard) {
                if bytes > limit {
                    return Err(QueueError::Full {
                        shard: addr.clone(),
                        reason: format!(
                            "subscription {:?} has {bytes} unacknowledged bytes, over max_backlog_bytes_per_shard ({limit})",
                            subscription.name()
                        ),
                        retry_after: FULL_RETRY_AFTER,
                    });
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn produce(
        &self,
        shard: &ShardAddr,
        properties: BatchProperties,
        payload: Bytes,
    ) -> QueueResult<Position> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(QueueError::Closed);
        }
        validate_shard(shard)?;
        self.check_backlog(shard)?;
        self.writer
            .produce(shard.clone(), properties, payload)
            .await
    }

    async fn subscribe(
        &self,
        subscription: &str,
        shards: Vec<ShardAddr>,
    ) -> QueueResult<Box<dyn Consumer>> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(QueueError::Closed);
        }
        let state = Arc::clone(
            lock(&self.shared.subscriptions)
                .entry(subscription.to_string())
                .or_insert_with(|| Arc::new(Subscription::new(subscription.to_string()))),
        );
        let consumer = EmbeddedConsumer::join(Arc::clone(&self.shared), state, shards).await?;
        Ok(Box::new(consumer))
    }

    async fn read(
        &self,
        shard: &ShardAddr,
        start: ReadStart,
        max_messages: usize,
    ) -> QueueResult<Vec<QueueMessage>> {
        read_messages(&self.shared, shard, start, max_messages).await
    }

    async fn end_position(&self, shard: &ShardAddr) -> QueueResult<Position> {
        Ok(self
            .shard(shard)
            .map_or(0, |shard| read_lock(&shard.index).end_position))
    }

    async fn open_reader(
        &self,
        shard: &ShardAddr,
        start: ReadStart,
    ) -> QueueResult<Box<dyn ShardReader>> {
        let start = match start {
            ReadStart::Latest => ReadStart::Position(self.end_position(shard).await?),
            other => other,
        };
        Ok(Box::new(EmbeddedShardReader::new(
            Arc::clone(&self.shared),
            shard.clone(),
            start,
        )))
    }

    async fn begin_position(&self, shard: &ShardAddr) -> QueueResult<Position> {
        Ok(self
            .shard(shard)
            .map_or(0, |shard| read_lock(&shard.index).earliest_position()))
    }

    async fn position_at_time(&self, shard: &ShardAddr, time_ms: i64) -> QueueResult<Position> {
        Ok(self.shard(shard).map_or(0, |shard| {
            let index = read_lock(&shard.index);
            index
                .find_by_time(time_ms)
                .map_or(index.end_position, |found| index.position_at(found))
        }))
    }

    async fn backlog(
        &self,
        subscription: &str,
        shards: &[ShardAddr],
    ) -> QueueResult<Vec<ShardBacklog>> {
        let state = lock(&self.shared.subscriptions).get(subscription).cloned();
        let mut backlogs = Vec::with_capacity(shards.len());
        for addr in shards {
            let Some(shard) = self.shard(addr) else {
                backlogs.push(ShardBacklog {
                    shard: addr.clone(),
                    messages: 0,
                    bytes: 0,
                    end_position: 0,
                });
                continue;
            };
            let covered = state
                .as_ref()
                .and_then(|subscription| subscription.backlog(addr, &shard));
            let index = read_lock(&shard.index);
            // A subscription not on this shard yet would start at the earliest message.
            let (messages, bytes) = covered.unwrap_or((index.count_from(0), index.bytes_from(0)));
            backlogs.push(ShardBacklog {
                shard: addr.clone(),
                messages,
                bytes,
                end_position: index.end_position,
            });
        }
        Ok(backlogs)
    }

    async fn delete_shards(&self, shards: &[ShardAddr]) -> QueueResult<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(QueueError::Closed);
        }
        for shard in shards {
            validate_shard(shard)?;
        }
        // Subscriptions forget the shards first, so that they stop writing watermark
        // files into the directories about to be removed.
        let subscriptions: Vec<_> = lock(&self.shared.subscriptions).values().cloned().collect();
        for subscription in subscriptions {
            subscription.remove_shards(shards);
        }
        self.writer.delete_shards(shards.to_vec()).await?;
        Ok(())
    }

    async fn check_health(&self) -> QueueResult<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(QueueError::Closed);
        }
        if !self.writer.is_running() {
            return Err(QueueError::Unavailable(
                "the queue writer thread stopped".to_string(),
            ));
        }
        tokio::fs::metadata(&self.shared.config.dir).await?;
        Ok(())
    }

    async fn shutdown(&self) -> QueueResult<()> {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.data_ready.notify_waiters();
        self.writer.shutdown().await?;
        // An error only means the retention task already stopped.
        let _ = self.stop_retention.send(true);
        let retention_task = lock(&self.retention_task).take();
        if let Some(retention_task) = retention_task {
            let _ = retention_task.await;
        }
        Ok(())
    }
}

/// Reads up to `max_messages` fsynced messages of one shard from `start`.
async fn read_messages(
    shared: &Shared,
    shard: &ShardAddr,
    start: ReadStart,
    max_messages: usize,
) -> QueueResult<Vec<QueueMessage>> {
    let Some(shard_state) = read_lock(&shared.shards).get(shard).cloned() else {
        return Ok(Vec::new());
    };
    if max_messages == 0 {
        return Ok(Vec::new());
    }
    let chunks = {
        let index = read_lock(&shard_state.index);
        let found = match start {
            ReadStart::Earliest => index.find(0),
            ReadStart::Position(position) => index.find(position),
            ReadStart::PublishTime(time_ms) => index.find_by_time(time_ms),
            ReadStart::Latest => None,
        };
        match found {
            Some(found) => index.plan_from(found, max_messages),
            None => return Ok(Vec::new()),
        }
    };
    let addr = shard.clone();
    tokio::task::spawn_blocking(move || read_chunks(&addr, &chunks))
        .await
        .map_err(|error| QueueError::Unavailable(format!("queue read: {error}")))?
}

/// A shard found on disk with its subscription watermarks (`None`: damaged file).
type RecoveredShard = (Shard, Vec<(String, Option<Position>)>);

/// Recovers every shard and its subscription watermarks (blocking I/O).
fn recover(root: PathBuf) -> QueueResult<Vec<RecoveredShard>> {
    create_dir_all_durable(&root)?;
    let mut recovered = Vec::new();
    for (addr, dir) in list_shards(&root)? {
        let mut watermarks = read_watermarks(&dir)?;
        let shard = Shard::recover(addr, dir)?;
        let end_position = read_lock(&shard.index).end_position;
        for (name, watermark) in &mut watermarks {
            // A watermark past the end (data lost behind it) would silently skip the
            // messages that get those positions next, so it comes back to the end.
            if watermark.is_some_and(|watermark| watermark > end_position) {
                tracing::warn!(subscription = %name, shard = ?shard.addr, end_position, "subscription watermark is past the end of the shard, resetting it");
                write_watermark(&root, &shard.addr, name, end_position)?;
                *watermark = Some(end_position);
            }
        }
        recovered.push((shard, watermarks));
    }
    Ok(recovered)
}

/// Returns the current time in milliseconds since the epoch.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// Locks a mutex. A panic while holding one of the queue's locks cannot leave the
/// protected data half-updated in a way later code relies on, so poisoning is ignored
/// rather than spreading the panic to every request.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks an `RwLock`, ignoring poisoning (see [`lock`]).
fn read_lock<T>(rw_lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    rw_lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks an `RwLock`, ignoring poisoning (see [`lock`]).
fn write_lock<T>(rw_lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    rw_lock.write().unwrap_or_else(PoisonError::into_inner)
}
