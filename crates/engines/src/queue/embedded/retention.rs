//! Retention: deletes whole old segments once no subscription needs them.
//!
//! A segment goes when it is not the last one of its shard (the writer appends
//! there), every entry in it is below the durable watermark of every subscription on
//! the shard, and its newest entry is older than `retention_secs`. A shard without
//! subscriptions keeps its data for `retention_secs` after publication.

use std::collections::BTreeSet;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::layout::sync_dir;
use super::{lock, now_ms, read_lock, write_lock, Shared};
use crate::queue::{Position, QueueError, QueueResult};

/// Longest pause between two background retention passes.
const MAX_RETENTION_INTERVAL: Duration = Duration::from_secs(60);

/// Deletes every segment that retention allows; returns how many were deleted.
pub(super) async fn enforce(shared: &Arc<Shared>) -> QueueResult<usize> {
    let retention_ms =
        i64::try_from(shared.config.retention_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let cutoff_ms = now_ms().saturating_sub(retention_ms);
    let shards: Vec<_> = read_lock(&shared.shards).values().cloned().collect();
    let subscriptions: Vec<_> = lock(&shared.subscriptions).values().cloned().collect();

    let mut doomed: Vec<PathBuf> = Vec::new();
    for shard in shards {
        let min_watermark = subscriptions
            .iter()
            .filter_map(|subscription| subscription.persisted_watermark(&shard.addr))
            .min()
            .unwrap_or(Position::MAX);
        // Removing segments from the index first means no new read plans use them;
        // reads already planned hold their own file handles, which outlive the unlink.
        let mut index = write_lock(&shard.index);
        let num_candidates = index.segments.len().saturating_sub(1);
        let num_deletable = index.segments[..num_candidates]
            .iter()
            .take_while(|segment| {
                segment.end_position() <= min_watermark && segment.max_publish_time_ms <= cutoff_ms
            })
            .count();
        doomed.extend(
            index
                .segments
                .drain(..num_deletable)
                .map(|segment| segment.path),
        );
    }
    if doomed.is_empty() {
        return Ok(0);
    }
    let num_deleted = doomed.len();
    tokio::task::spawn_blocking(move || delete_files(&doomed))
        .await
        .map_err(|error| QueueError::Unavailable(format!("retention: {error}")))??;
    tracing::debug!(num_deleted, "queue retention deleted segments");
    Ok(num_deleted)
}

/// Unlinks segment files and makes the removals durable.
fn delete_files(paths: &[PathBuf]) -> io::Result<()> {
    let mut dirs = BTreeSet::new();
    for path in paths {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            // The shard was deleted meanwhile.
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        }
        if let Some(dir) = path.parent() {
            dirs.insert(dir.to_path_buf());
        }
    }
    for dir in dirs {
        sync_dir(&dir)?;
    }
    Ok(())
}

/// Runs retention periodically until `stop` changes or its sender is dropped.
pub(super) fn spawn(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    let interval = Duration::from_secs(shared.config.retention_secs)
        .clamp(Duration::from_secs(1), MAX_RETENTION_INTERVAL);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                () = tokio::time::sleep(interval) => {}
            }
            if let Err(error) = enforce(&shared).await {
                tracing::warn!(%error, "queue retention pass failed");
            }
        }
    })
}
