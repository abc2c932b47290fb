//! Segment file I/O: the recovery scan of one segment and batched reads of entries.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use logpool_core::routing::ShardAddr;

use super::format::{entry_crc, EntryHeader, ENTRY_HEADER_LEN, MAX_PAYLOAD_LEN, SEGMENT_MAGIC};
use crate::queue::{Position, QueueError, QueueMessage, QueueResult};

/// Where one entry is in its segment, plus what indexes and backlogs need.
#[derive(Debug, Clone, Copy)]
pub(super) struct EntryMeta {
    /// Byte offset of the entry header in the segment file.
    pub(super) offset: u64,
    pub(super) publish_time_ms: i64,
    /// Payload bytes of all entries of the shard before this one (since the process
    /// started), so the bytes of any position range is one subtraction.
    pub(super) bytes_before: u64,
    pub(super) payload_len: u32,
}

impl EntryMeta {
    /// Returns the size of the whole entry on disk.
    pub(super) fn disk_len(&self) -> u64 {
        ENTRY_HEADER_LEN as u64 + u64::from(self.payload_len)
    }
}

/// The valid content of one segment found by [`scan_segment`].
#[derive(Debug)]
pub(super) struct ScannedSegment {
    /// Entries in position order (`bytes_before` is filled in by the index).
    pub(super) entries: Vec<EntryMeta>,
    /// Bytes of the file that hold valid data (magic plus whole entries).
    pub(super) valid_len: u64,
}

/// Scans a segment file, verifying every entry's CRC and position.
///
/// The first bad entry ends the scan. In the last segment that is the torn tail of a
/// write interrupted by a crash: nothing after it was acknowledged (an entry is only
/// acknowledged after the fsync that covers it and all entries before it), so the
/// file is truncated there. In an older segment it is damage, which is logged and
/// skipped rather than repaired.
pub(super) fn scan_segment(
    path: &Path,
    first_position: Position,
    is_last: bool,
) -> QueueResult<ScannedSegment> {
    let mut file = OpenOptions::new().read(true).write(is_last).open(path)?;
    let file_len = file.metadata()?.len();
    if file_len < SEGMENT_MAGIC.len() as u64 {
        if !is_last {
            return Err(QueueError::Corrupted(format!(
                "segment {} is shorter than its header",
                path.display()
            )));
        }
        // Crash right after the segment was created: start it again.
        file.set_len(0)?;
        file.write_all(SEGMENT_MAGIC)?;
        file.sync_all()?;
        return Ok(ScannedSegment {
            entries: Vec::new(),
            valid_len: SEGMENT_MAGIC.len() as u64,
        });
    }

    let mut reader = BufReader::with_capacity(1 << 20, &file);
    let mut magic = [0u8; SEGMENT_MAGIC.len()];
    reader.read_exact(&mut magic)?;
    if &magic != SEGMENT_MAGIC {
        return Err(QueueError::Corrupted(format!(
            "segment {} has an unknown header",
            path.display()
        )));
    }

    let mut entries = Vec::new();
    let mut offset = SEGMENT_MAGIC.len() as u64;
    let mut payload = Vec::new();
    while let Some(meta) = scan_entry(
        &mut reader,
        file_len - offset,
        offset,
        first_position + entries.len() as u64,
        &mut payload,
    )? {
        offset += meta.disk_len();
        entries.push(meta);
    }
    drop(reader);

    if offset < file_len {
        if is_last {
            tracing::warn!(
                path = %path.display(),
                valid_len = offset,
                file_len,
                "truncating the torn tail of a queue segment"
            );
            file.set_len(offset)?;
            file.sync_all()?;
        } else {
            tracing::error!(
                path = %path.display(),
                valid_len = offset,
                file_len,
                "damaged entry in a queue segment, ignoring the rest of the segment"
            );
        }
    }
    Ok(ScannedSegment {
        entries,
        valid_len: offset,
    })
}

/// Reads and checks one entry; `None` at the end of the valid data.
fn scan_entry(
    reader: &mut impl Read,
    remaining: u64,
    offset: u64,
    expected_position: Position,
    payload: &mut Vec<u8>,
) -> io::Result<Option<EntryMeta>> {
    if remaining < ENTRY_HEADER_LEN as u64 {
        return Ok(None);
    }
    let mut header_bytes = [0u8; ENTRY_HEADER_LEN];
    reader.read_exact(&mut header_bytes)?;
    let header = EntryHeader::decode(&header_bytes);
    let entry_len = ENTRY_HEADER_LEN as u64 + u64::from(header.payload_len);
    if header.payload_len > MAX_PAYLOAD_LEN || entry_len > remaining {
        return Ok(None);
    }
    payload.resize(header.payload_len as usize, 0);
    reader.read_exact(payload)?;
    if header.crc != entry_crc(&header_bytes, payload) || header.position != expected_position {
        return Ok(None);
    }
    Ok(Some(EntryMeta {
        offset,
        publish_time_ms: header.publish_time_ms,
        bytes_before: 0,
        payload_len: header.payload_len,
    }))
}

/// Creates a new, empty segment file (magic only) and makes its name durable.
pub(super) fn create_segment(path: &Path) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(SEGMENT_MAGIC)?;
    if let Some(dir) = path.parent() {
        super::layout::sync_dir(dir)?;
    }
    Ok(file)
}

/// A run of consecutive entries of one segment, read with a single `pread`.
#[derive(Debug)]
pub(super) struct ReadChunk {
    pub(super) file: Arc<File>,
    pub(super) path: PathBuf,
    pub(super) first_position: Position,
    pub(super) count: usize,
    pub(super) start_offset: u64,
    pub(super) len: u64,
}

/// Reads the chunks of a plan (blocking I/O) into messages that share one buffer per
/// chunk, checking every CRC on the way.
pub(super) fn read_chunks(
    shard: &ShardAddr,
    chunks: &[ReadChunk],
) -> QueueResult<Vec<QueueMessage>> {
    let mut messages = Vec::with_capacity(chunks.iter().map(|chunk| chunk.count).sum());
    for chunk in chunks {
        let len = usize::try_from(chunk.len)
            .map_err(|_| QueueError::Unavailable("read chunk too large".to_string()))?;
        let mut buffer = vec![0u8; len];
        chunk.file.read_exact_at(&mut buffer, chunk.start_offset)?;
        let buffer = Bytes::from(buffer);
        let mut cursor = 0usize;
        for index in 0..chunk.count {
            let corrupted = || {
                QueueError::Corrupted(format!(
                    "entry {} of segment {} does not match its index",
                    chunk.first_position + index as u64,
                    chunk.path.display()
                ))
            };
            let mut header_bytes = [0u8; ENTRY_HEADER_LEN];
            header_bytes.copy_from_slice(
                buffer
                    .get(cursor..cursor + ENTRY_HEADER_LEN)
                    .ok_or_else(corrupted)?,
            );
            let header = EntryHeader::decode(&header_bytes);
            let payload_start = cursor + ENTRY_HEADER_LEN;
            let payload_end = payload_start + header.payload_len as usize;
            let payload = buffer
                .get(payload_start..payload_end)
                .ok_or_else(corrupted)?;
            if header.crc != entry_crc(&header_bytes, payload)
                || header.position != chunk.first_position + index as u64
            {
                return Err(corrupted());
            }
            messages.push(QueueMessage {
                shard: shard.clone(),
                position: header.position,
                publish_time_ms: header.publish_time_ms,
                properties: header.properties,
                payload: buffer.slice(payload_start..payload_end),
            });
            cursor = payload_end;
        }
    }
    Ok(messages)
}
