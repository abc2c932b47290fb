//! Where things live on disk, and the small durable file-system steps around them
//! (creating directories, atomic watermark files, listing what exists).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use logpool_core::routing::ShardAddr;

use super::format::{decode_watermark, encode_watermark};
use crate::queue::{Position, QueueError, QueueResult};

/// Sub-directory of a shard directory holding its subscription watermarks.
const SUBSCRIPTIONS_DIR: &str = "subscriptions";
const SEGMENT_SUFFIX: &str = ".seg";
const WATERMARK_SUFFIX: &str = ".wm";
const TMP_SUFFIX: &str = ".tmp";

/// Rejects shard addresses that would escape the queue directory or collide with
/// its layout; names are validated upstream, this is the last line of defence.
pub(super) fn validate_shard(shard: &ShardAddr) -> QueueResult<()> {
    let is_safe = |name: &str| {
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
    };
    if is_safe(&shard.tenant) && is_safe(&shard.project) {
        Ok(())
    } else {
        Err(QueueError::Unavailable(format!(
            "invalid shard address {shard:?} for the embedded queue"
        )))
    }
}

/// Returns `{root}/{tenant}/{project}/{partition}`.
pub(super) fn shard_dir(root: &Path, shard: &ShardAddr) -> PathBuf {
    root.join(&shard.tenant)
        .join(&shard.project)
        .join(shard.partition.to_string())
}

/// Returns the path of the segment whose first entry has `first_position`.
pub(super) fn segment_path(shard_dir: &Path, first_position: Position) -> PathBuf {
    shard_dir.join(format!("{first_position:020}{SEGMENT_SUFFIX}"))
}

/// Lists the segments of a shard directory as `(first_position, path)`, sorted.
pub(super) fn list_segments(shard_dir: &Path) -> io::Result<Vec<(Position, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(shard_dir)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(stem) = file_name
            .to_str()
            .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
        else {
            continue;
        };
        if let Ok(first_position) = stem.parse::<Position>() {
            segments.push((first_position, entry.path()));
        }
    }
    segments.sort_by_key(|(first_position, _)| *first_position);
    Ok(segments)
}

/// Lists every shard directory under the root (`{tenant}/{project}/{partition}`).
pub(super) fn list_shards(root: &Path) -> io::Result<Vec<(ShardAddr, PathBuf)>> {
    let mut shards = Vec::new();
    for tenant in sub_dirs(root)? {
        for project in sub_dirs(&tenant.1)? {
            for partition in sub_dirs(&project.1)? {
                if let Ok(partition_number) = partition.0.parse::<u32>() {
                    let addr = ShardAddr {
                        tenant: tenant.0.clone(),
                        project: project.0.clone(),
                        partition: partition_number,
                    };
                    shards.push((addr, partition.1));
                }
            }
        }
    }
    Ok(shards)
}

/// Lists the UTF-8 named sub-directories of a directory.
fn sub_dirs(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut dirs = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            if let Ok(name) = entry.file_name().into_string() {
                dirs.push((name, entry.path()));
            }
        }
    }
    Ok(dirs)
}

/// Creates a directory and its missing parents, fsyncing each parent that gained an
/// entry so that the new directory survives a crash together with the files in it.
pub(super) fn create_dir_all_durable(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_all_durable(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        // Another thread (a subscription, the writer) created it meanwhile.
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(error) => return Err(error),
    }
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Fsyncs a directory so that created, renamed or removed entries in it are durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Encodes a subscription name into a file name: ASCII letters, digits, `-` and `_`
/// stay, every other byte becomes `%XX`, so any name is safe and reversible.
pub(super) fn encode_subscription_name(name: &str) -> String {
    let mut encoded = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Reverses [`encode_subscription_name`]; `None` for names it cannot have produced.
pub(super) fn decode_subscription_name(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = encoded.get(index + 1..index + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// Durably replaces the watermark of one subscription on one shard:
/// write a temporary file, fsync it, rename it over the old one, fsync the directory.
pub(super) fn write_watermark(
    root: &Path,
    shard: &ShardAddr,
    subscription: &str,
    watermark: Position,
) -> io::Result<()> {
    let dir = shard_dir(root, shard).join(SUBSCRIPTIONS_DIR);
    create_dir_all_durable(&dir)?;
    let file_name = encode_subscription_name(subscription);
    let final_path = dir.join(format!("{file_name}{WATERMARK_SUFFIX}"));
    let tmp_path = dir.join(format!("{file_name}{WATERMARK_SUFFIX}{TMP_SUFFIX}"));
    let mut tmp = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp_path)?;
    tmp.write_all(&encode_watermark(watermark))?;
    tmp.sync_data()?;
    drop(tmp);
    fs::rename(&tmp_path, &final_path)?;
    sync_dir(&dir)
}

/// Reads every subscription watermark of a shard directory as `(name, watermark)`.
/// A damaged file yields `None`: the caller restarts that subscription from the
/// earliest message, which only causes redelivery.
pub(super) fn read_watermarks(shard_dir: &Path) -> io::Result<Vec<(String, Option<Position>)>> {
    let dir = shard_dir.join(SUBSCRIPTIONS_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut watermarks = Vec::new();
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if file_name.ends_with(TMP_SUFFIX) {
            // Left by a crash before the rename; the previous file is still valid.
            fs::remove_file(entry.path())?;
            continue;
        }
        let Some(name) = file_name
            .strip_suffix(WATERMARK_SUFFIX)
            .and_then(decode_subscription_name)
        else {
            continue;
        };
        let watermark = decode_watermark(&fs::read(entry.path())?);
        if watermark.is_none() {
            tracing::warn!(path = %entry.path().display(), "damaged subscription watermark, restarting from the earliest message");
        }
        watermarks.push((name, watermark));
    }
    Ok(watermarks)
}

/// Retries of a shard directory removal that raced with a last file write.
const REMOVE_ATTEMPTS: u32 = 5;

/// Removes a shard directory with everything in it; a missing directory is fine.
pub(super) fn remove_shard_dir(root: &Path, shard: &ShardAddr) -> io::Result<()> {
    let dir = shard_dir(root, shard);
    // A watermark write that was already under way when the shard was deleted can
    // add a file while the directory is being emptied ("directory not empty"); it is
    // the last one, so a few quick retries finish the removal.
    let mut attempt = 0;
    loop {
        match fs::remove_dir_all(&dir) {
            Ok(()) => break,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) if attempt < REMOVE_ATTEMPTS => {
                attempt += 1;
                tracing::debug!(%error, attempt, "retrying the removal of a queue shard directory");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(error) => return Err(error),
        }
    }
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_subscription_name_encoding_round_trips() {
        for name in ["loghub", "a/b..c", "ünï code", "%41", ""] {
            let encoded = encode_subscription_name(name);
            assert!(!encoded.contains('/'));
            assert_eq!(decode_subscription_name(&encoded).as_deref(), Some(name));
        }
        assert_eq!(decode_subscription_name("%4"), None);
    }

    #[test]
    fn test_validate_shard_rejects_path_escapes() {
        let shard = |tenant: &str, project: &str| ShardAddr {
            tenant: tenant.to_string(),
            project: project.to_string(),
            partition: 0,
        };
        assert!(validate_shard(&shard("default", "web")).is_ok());
        assert!(validate_shard(&shard("..", "web")).is_err());
        assert!(validate_shard(&shard("default", "a/b")).is_err());
        assert!(validate_shard(&shard("", "web")).is_err());
    }
}
