//! The writer thread: the only code that appends to segment files.
//!
//! Group commit: the thread blocks for one request, drains everything else already
//! queued (optionally lingering `max_group_commit_delay_us` for more), appends all of
//! it, fsyncs each touched segment once, publishes the new entries to the shard
//! indexes and only then answers the producers. Concurrent producers therefore share
//! fsyncs, and the blocking file I/O never runs on a tokio worker thread.
//!
//! Rolling to a new segment first fsyncs the old one, so only the last segment of a
//! shard can hold unsynced bytes; recovery relies on that.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use logpool_core::routing::ShardAddr;
use tokio::sync::oneshot;

use super::format::{EntryHeader, ENTRY_HEADER_LEN};
use super::layout::{create_dir_all_durable, remove_shard_dir, segment_path, shard_dir};
use super::segment::create_segment;
use super::shard::Shard;
use super::{lock, now_ms, read_lock, write_lock, Shared};
use crate::queue::{BatchProperties, Position, QueueError, QueueResult};

/// Most requests handled in one group commit, so replies are never held back for long.
const MAX_BATCH_REQUESTS: usize = 4096;

/// A request to the writer thread.
enum WriterRequest {
    Produce(ProduceRequest),
    DeleteShards {
        shards: Vec<ShardAddr>,
        reply: oneshot::Sender<QueueResult<()>>,
    },
    /// Ends the thread after everything queued before it is written.
    Shutdown {
        reply: Option<oneshot::Sender<()>>,
    },
}

struct ProduceRequest {
    shard: ShardAddr,
    properties: BatchProperties,
    payload: Bytes,
    reply: oneshot::Sender<QueueResult<Position>>,
}

/// The async side of the writer thread.
#[derive(Debug)]
pub(super) struct WriterHandle {
    sender: mpsc::Sender<WriterRequest>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl WriterHandle {
    /// Starts the writer thread.
    pub(super) fn start(shared: Arc<Shared>) -> io::Result<WriterHandle> {
        let (sender, receiver) = mpsc::channel();
        let writer = Writer {
            shared,
            receiver,
            shards: HashMap::new(),
        };
        let thread = std::thread::Builder::new()
            .name("logpool-queue-writer".to_string())
            .spawn(move || writer.run())?;
        Ok(WriterHandle {
            sender,
            thread: Mutex::new(Some(thread)),
        })
    }

    fn send(&self, request: WriterRequest) -> QueueResult<()> {
        self.sender.send(request).map_err(|_| QueueError::Closed)
    }

    /// Appends one entry and returns its position once it is fsynced.
    pub(super) async fn produce(
        &self,
        shard: ShardAddr,
        properties: BatchProperties,
        payload: Bytes,
    ) -> QueueResult<Position> {
        let (reply, response) = oneshot::channel();
        self.send(WriterRequest::Produce(ProduceRequest {
            shard,
            properties,
            payload,
            reply,
        }))?;
        // A dropped reply means the thread ended (shutdown) before taking the request.
        response.await.map_err(|_| QueueError::Closed)?
    }

    /// Deletes shards, ordered with the appends queued before.
    pub(super) async fn delete_shards(&self, shards: Vec<ShardAddr>) -> QueueResult<()> {
        let (reply, response) = oneshot::channel();
        self.send(WriterRequest::DeleteShards { shards, reply })?;
        response.await.map_err(|_| QueueError::Closed)?
    }

    /// Flushes everything queued, then stops and joins the thread. Idempotent.
    pub(super) async fn shutdown(&self) -> QueueResult<()> {
        let (reply, response) = oneshot::channel();
        if self
            .send(WriterRequest::Shutdown { reply: Some(reply) })
            .is_ok()
        {
            // An error only means the thread had already stopped.
            let _ = response.await;
        }
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|error| QueueError::Unavailable(format!("joining the writer: {error}")))?
                .map_err(|_| {
                    QueueError::Unavailable("the queue writer thread panicked".to_string())
                })?;
        }
        Ok(())
    }

    /// Tells whether the thread is still taking requests.
    pub(super) fn is_running(&self) -> bool {
        lock(&self.thread)
            .as_ref()
            .is_some_and(|thread| !thread.is_finished())
    }
}

impl Drop for WriterHandle {
    /// Stops the thread and waits for it, so that a queue reopened on the same
    /// directory right after a drop never races an old writer.
    fn drop(&mut self) {
        let _ = self.send(WriterRequest::Shutdown { reply: None });
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

/// The segment a shard appends to.
struct ActiveSegment {
    first_position: Position,
    path: PathBuf,
    file: File,
    read_file: Arc<File>,
    len: u64,
    num_entries: u64,
    /// False until the segment's first entry is published to the index.
    in_index: bool,
}

/// Writer-private state of one shard.
struct WriterShard {
    shard: Arc<Shard>,
    active: Option<ActiveSegment>,
    next_position: Position,
    last_publish_time_ms: i64,
    /// Set after an fsync failure: the file's state is unknown, so the shard takes no
    /// more appends until the queue is reopened and recovery has checked it.
    failed: Option<String>,
}

/// One appended, not yet fsynced entry.
struct PendingEntry {
    position: Position,
    offset: u64,
    publish_time_ms: i64,
    payload_len: u32,
    /// Set on the first entry of a segment the index does not know yet.
    new_segment: Option<(Position, PathBuf, Arc<File>)>,
    reply: oneshot::Sender<QueueResult<Position>>,
}

/// What one group commit must fsync and publish for one shard.
#[derive(Default)]
struct PendingShard {
    entries: Vec<PendingEntry>,
}

struct Writer {
    shared: Arc<Shared>,
    receiver: mpsc::Receiver<WriterRequest>,
    shards: HashMap<ShardAddr, WriterShard>,
}

impl Writer {
    fn run(mut self) {
        while let Ok(first) = self.receiver.recv() {
            let batch = self.collect_batch(first);
            if self.process(batch) {
                break;
            }
        }
        tracing::debug!("queue writer stopped");
    }

    /// Gathers what is already queued behind `first`, lingering if configured.
    fn collect_batch(&self, first: WriterRequest) -> Vec<WriterRequest> {
        let mut batch = vec![first];
        let linger = Duration::from_micros(self.shared.config.max_group_commit_delay_us);
        let deadline = Instant::now() + linger;
        while batch.len() < MAX_BATCH_REQUESTS {
            let next = match self.receiver.try_recv() {
                Ok(request) => Some(request),
                Err(_) if linger.is_zero() => None,
                Err(_) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        None
                    } else {
                        self.receiver.recv_timeout(left).ok()
                    }
                }
            };
            match next {
                Some(request) => batch.push(request),
                None => break,
            }
        }
        batch
    }

    /// Handles one batch; returns true when the thread must stop.
    fn process(&mut self, batch: Vec<WriterRequest>) -> bool {
        let mut pending: HashMap<ShardAddr, PendingShard> = HashMap::new();
        let mut stop = false;
        for request in batch {
            if stop {
                // Dropping the request answers its producer with `Closed`.
                continue;
            }
            match request {
                WriterRequest::Produce(request) => self.append(request, &mut pending),
                WriterRequest::DeleteShards { shards, reply } => {
                    self.commit(&mut pending);
                    let _ = reply.send(self.delete_shards(&shards));
                }
                WriterRequest::Shutdown { reply } => {
                    self.commit(&mut pending);
                    if let Some(reply) = reply {
                        let _ = reply.send(());
                    }
                    stop = true;
                }
            }
        }
        self.commit(&mut pending);
        stop
    }

    /// Writes one entry to its shard's active segment (no fsync yet).
    fn append(&mut self, request: ProduceRequest, pending: &mut HashMap<ShardAddr, PendingShard>) {
        let segment_max_bytes = self.shared.config.segment_max_bytes;
        let writer_shard = match writer_shard(&self.shared, &mut self.shards, &request.shard) {
            Ok(writer_shard) => writer_shard,
            Err(error) => {
                let _ = request.reply.send(Err(error));
                return;
            }
        };
        if let Some(reason) = &writer_shard.failed {
            let _ = request
                .reply
                .send(Err(QueueError::Unavailable(reason.clone())));
            return;
        }
        let position = writer_shard.next_position;
        // Publish times never go backwards in a shard, which keeps time lookups a
        // binary search even if the wall clock steps back.
        let publish_time_ms = now_ms().max(writer_shard.last_publish_time_ms);
        let Some(header) = EntryHeader::for_payload(
            position,
            publish_time_ms,
            &request.properties,
            &request.payload,
        ) else {
            let _ = request.reply.send(Err(QueueError::Unavailable(format!(
                "a queue message holds at most {} bytes, got {}",
                super::format::MAX_PAYLOAD_LEN,
                request.payload.len()
            ))));
            return;
        };
        let entry_len = (ENTRY_HEADER_LEN + request.payload.len()) as u64;
        let shard_pending = pending.entry(request.shard.clone()).or_default();

        let needs_new_segment = match &writer_shard.active {
            None => true,
            Some(active) => active.num_entries > 0 && active.len + entry_len > segment_max_bytes,
        };
        if needs_new_segment {
            if let Err(error) = roll(&self.shared, writer_shard) {
                let _ = request.reply.send(Err(error.into()));
                return;
            }
        }
        let Some(active) = writer_shard.active.as_mut() else {
            let _ = request.reply.send(Err(QueueError::Unavailable(
                "no active segment after rolling".to_string(),
            )));
            return;
        };
        let offset = active.len;
        let mut slices = [IoSlice::new(&header), IoSlice::new(&request.payload)];
        if let Err(error) = write_all_vectored(&mut active.file, &mut slices) {
            // Cut the partial entry off so that later entries do not follow garbage.
            let restored = active
                .file
                .set_len(offset)
                .and_then(|()| active.file.seek(SeekFrom::Start(offset)).map(drop));
            if let Err(restore_error) = restored {
                writer_shard.failed = Some(format!(
                    "shard {:?} failed to undo a partial write: {restore_error}",
                    request.shard
                ));
            }
            let _ = request.reply.send(Err(error.into()));
            return;
        }
        let new_segment = (!active.in_index).then(|| {
            active.in_index = true;
            (
                active.first_position,
                active.path.clone(),
                Arc::clone(&active.read_file),
            )
        });
        active.len += entry_len;
        active.num_entries += 1;
        writer_shard.next_position += 1;
        writer_shard.last_publish_time_ms = publish_time_ms;
        shard_pending.entries.push(PendingEntry {
            position,
            offset,
            publish_time_ms,
            payload_len: header_payload_len(&request.payload),
            new_segment,
            reply: request.reply,
        });
    }

    /// Fsyncs every touched file once, publishes the entries and answers producers.
    fn commit(&mut self, pending: &mut HashMap<ShardAddr, PendingShard>) {
        if pending.is_empty() {
            return;
        }
        let mut published = false;
        for (addr, shard_pending) in pending.drain() {
            let Some(writer_shard) = self.shards.get_mut(&addr) else {
                continue;
            };
            if shard_pending.entries.is_empty() {
                continue;
            }
            match sync_shard(&self.shared, writer_shard) {
                Ok(()) => {
                    let mut index = write_lock(&writer_shard.shard.index);
                    for entry in &shard_pending.entries {
                        if let Some((first_position, path, file)) = &entry.new_segment {
                            index.push_segment(*first_position, path.clone(), Arc::clone(file));
                        }
                        index.push_entry(entry.offset, entry.publish_time_ms, entry.payload_len);
                    }
                    drop(index);
                    for entry in shard_pending.entries {
                        let _ = entry.reply.send(Ok(entry.position));
                    }
                    published = true;
                }
                Err(reason) => {
                    writer_shard.failed = Some(reason.clone());
                    for entry in shard_pending.entries {
                        let _ = entry
                            .reply
                            .send(Err(QueueError::Unavailable(reason.clone())));
                    }
                }
            }
        }
        if published {
            self.shared.data_ready.notify_waiters();
        }
    }

    fn delete_shards(&mut self, shards: &[ShardAddr]) -> QueueResult<()> {
        let mut first_error = None;
        for addr in shards {
            self.shards.remove(addr);
            write_lock(&self.shared.shards).remove(addr);
            if let Err(error) = remove_shard_dir(&self.shared.config.dir, addr) {
                tracing::error!(%error, shard = ?addr, "failed to remove a queue shard directory");
                first_error.get_or_insert(error);
            }
        }
        match first_error {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }
}

/// Returns the writer state of a shard, creating the shard when it is new.
fn writer_shard<'a>(
    shared: &Shared,
    shards: &'a mut HashMap<ShardAddr, WriterShard>,
    addr: &ShardAddr,
) -> QueueResult<&'a mut WriterShard> {
    if !shards.contains_key(addr) {
        let writer_shard = open_writer_shard(shared, addr)?;
        shards.insert(addr.clone(), writer_shard);
    }
    shards
        .get_mut(addr)
        .ok_or_else(|| QueueError::Unavailable("shard vanished from the writer".to_string()))
}

/// Loads the writer state of a shard: a new shard is registered, an existing one
/// continues in its last segment.
fn open_writer_shard(shared: &Shared, addr: &ShardAddr) -> QueueResult<WriterShard> {
    let existing = read_lock(&shared.shards).get(addr).cloned();
    let shard = match existing {
        Some(shard) => shard,
        None => {
            let dir = shard_dir(&shared.config.dir, addr);
            create_dir_all_durable(&dir)?;
            let shard = Arc::new(Shard::empty(addr.clone(), dir));
            write_lock(&shared.shards).insert(addr.clone(), Arc::clone(&shard));
            shard
        }
    };
    let index = read_lock(&shard.index);
    let next_position = index.end_position;
    let last_publish_time_ms = index.last_publish_time_ms;
    let active = match index.last_segment() {
        Some(segment) => {
            let mut file = OpenOptions::new().write(true).open(&segment.path)?;
            file.seek(SeekFrom::Start(segment.len))?;
            Some(ActiveSegment {
                first_position: segment.first_position,
                path: segment.path.clone(),
                file,
                read_file: Arc::clone(&segment.file),
                len: segment.len,
                num_entries: segment.entries.len() as u64,
                in_index: true,
            })
        }
        None => None,
    };
    drop(index);
    Ok(WriterShard {
        shard,
        active,
        next_position,
        last_publish_time_ms,
        failed: None,
    })
}

/// Starts a new segment at the shard's next position. The old segment is fsynced
/// first, so that only the last segment of a shard can ever hold a torn tail and
/// recovery may treat damage anywhere else as real corruption.
fn roll(shared: &Shared, writer_shard: &mut WriterShard) -> io::Result<()> {
    if let Some(old) = &writer_shard.active {
        if let Err(error) = old.file.sync_data() {
            writer_shard.failed = Some(format!(
                "fsync failed on shard {:?}: {error}",
                writer_shard.shard.addr
            ));
            return Err(error);
        }
        shared.num_fsyncs.fetch_add(1, Ordering::Relaxed);
    }
    create_dir_all_durable(&writer_shard.shard.dir)?;
    let first_position = writer_shard.next_position;
    let path = segment_path(&writer_shard.shard.dir, first_position);
    let file = create_segment(&path)?;
    let read_file = Arc::new(File::open(&path)?);
    let len = super::format::SEGMENT_MAGIC.len() as u64;
    let new_active = ActiveSegment {
        first_position,
        path,
        file,
        read_file,
        len,
        num_entries: 0,
        in_index: false,
    };
    writer_shard.active = Some(new_active);
    Ok(())
}

/// Fsyncs the active segment of a shard once for the whole batch. Earlier segments
/// touched in the batch were fsynced when the shard rolled away from them.
fn sync_shard(shared: &Shared, writer_shard: &WriterShard) -> Result<(), String> {
    if let Some(reason) = &writer_shard.failed {
        return Err(reason.clone());
    }
    if let Some(active) = &writer_shard.active {
        active.file.sync_data().map_err(|error| {
            tracing::error!(%error, shard = ?writer_shard.shard.addr, "queue fsync failed, the shard stops taking messages");
            format!("fsync failed on shard {:?}: {error}", writer_shard.shard.addr)
        })?;
        shared.num_fsyncs.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Payload length as stored; `EntryHeader::for_payload` already rejected larger ones.
fn header_payload_len(payload: &[u8]) -> u32 {
    u32::try_from(payload.len()).unwrap_or(u32::MAX)
}

/// Writes every slice, resuming after short writes (`write_all_vectored` is unstable).
fn write_all_vectored(file: &mut File, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut slices, written),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
