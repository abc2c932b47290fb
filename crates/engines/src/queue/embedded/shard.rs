//! One shard in memory: its durable segments and the offset index over them.
//!
//! The index holds only entries that are fsynced: the writer adds them after the
//! fsync, so everything readers and subscriptions can see is durable.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use logpool_core::routing::ShardAddr;

use super::layout::list_segments;
use super::segment::{scan_segment, EntryMeta, ReadChunk};
use crate::queue::{Position, QueueError, QueueResult};

/// A shard: its address, directory and index.
#[derive(Debug)]
pub(super) struct Shard {
    pub(super) addr: ShardAddr,
    pub(super) dir: PathBuf,
    pub(super) index: RwLock<ShardIndex>,
}

impl Shard {
    /// Creates a shard with no data yet.
    pub(super) fn empty(addr: ShardAddr, dir: PathBuf) -> Shard {
        Shard {
            addr,
            dir,
            index: RwLock::new(ShardIndex::default()),
        }
    }

    /// Recovers a shard from its directory (blocking I/O).
    pub(super) fn recover(addr: ShardAddr, dir: PathBuf) -> QueueResult<Shard> {
        let segments = list_segments(&dir)?;
        let mut index = ShardIndex::default();
        let last = segments.len().saturating_sub(1);
        for (segment_number, (first_position, path)) in segments.into_iter().enumerate() {
            if first_position < index.end_position {
                return Err(QueueError::Corrupted(format!(
                    "segment {} overlaps the segment before it",
                    path.display()
                )));
            }
            let scanned = scan_segment(&path, first_position, segment_number == last)?;
            let read_file = Arc::new(File::open(&path)?);
            index.push_segment(first_position, path, read_file);
            for meta in scanned.entries {
                index.push_entry(meta.offset, meta.publish_time_ms, meta.payload_len);
            }
            if let Some(segment) = index.segments.last_mut() {
                segment.len = scanned.valid_len;
            }
        }
        Ok(Shard {
            addr,
            dir,
            index: RwLock::new(index),
        })
    }
}

/// One segment file in the index.
#[derive(Debug)]
pub(super) struct SegmentIndex {
    pub(super) first_position: Position,
    pub(super) path: PathBuf,
    /// Read-only handle shared by readers; it stays valid after retention unlinks the file.
    pub(super) file: Arc<File>,
    /// Valid bytes in the file.
    pub(super) len: u64,
    /// Entries of the shard before this segment (since the process started).
    pub(super) count_before: u64,
    pub(super) max_publish_time_ms: i64,
    pub(super) entries: Vec<EntryMeta>,
}

impl SegmentIndex {
    /// Returns the position after the last entry of this segment.
    pub(super) fn end_position(&self) -> Position {
        self.first_position + self.entries.len() as u64
    }
}

/// The durable content of a shard. Counters are cumulative since the process started,
/// so that the count or bytes of a position range is a subtraction; retention removes
/// segments without touching them.
#[derive(Debug, Default)]
pub(super) struct ShardIndex {
    pub(super) segments: Vec<SegmentIndex>,
    /// Position of the next entry.
    pub(super) end_position: Position,
    pub(super) total_count: u64,
    pub(super) total_bytes: u64,
    pub(super) last_publish_time_ms: i64,
}

impl ShardIndex {
    /// Appends a new (empty) segment that starts at `first_position`.
    pub(super) fn push_segment(
        &mut self,
        first_position: Position,
        path: PathBuf,
        file: Arc<File>,
    ) {
        self.segments.push(SegmentIndex {
            first_position,
            path,
            file,
            len: super::format::SEGMENT_MAGIC.len() as u64,
            count_before: self.total_count,
            // Not i64::MIN: keeping the maximum non-decreasing over all segments, even
            // empty ones, keeps `find_by_time` a valid binary search.
            max_publish_time_ms: self.last_publish_time_ms,
            entries: Vec::new(),
        });
        self.end_position = self.end_position.max(first_position);
    }

    /// Appends the next entry to the last segment.
    pub(super) fn push_entry(&mut self, offset: u64, publish_time_ms: i64, payload_len: u32) {
        let bytes_before = self.total_bytes;
        let Some(segment) = self.segments.last_mut() else {
            debug_assert!(false, "push_entry without a segment");
            return;
        };
        let meta = EntryMeta {
            offset,
            publish_time_ms,
            bytes_before,
            payload_len,
        };
        segment.len = offset + meta.disk_len();
        segment.max_publish_time_ms = segment.max_publish_time_ms.max(publish_time_ms);
        segment.entries.push(meta);
        self.end_position = segment.end_position();
        self.total_count += 1;
        self.total_bytes += u64::from(payload_len);
        self.last_publish_time_ms = self.last_publish_time_ms.max(publish_time_ms);
    }

    /// Returns the position of the oldest retained entry (the end when there is none).
    pub(super) fn earliest_position(&self) -> Position {
        self.segments
            .iter()
            .find(|segment| !segment.entries.is_empty())
            .map_or(self.end_position, |segment| segment.first_position)
    }

    /// Finds the first entry at or after `position` as `(segment, entry)` indexes.
    pub(super) fn find(&self, position: Position) -> Option<(usize, usize)> {
        let segment_index = self
            .segments
            .partition_point(|segment| segment.end_position() <= position);
        self.first_entry_from(segment_index, |segment| {
            usize::try_from(position.saturating_sub(segment.first_position)).unwrap_or(usize::MAX)
        })
    }

    /// Returns the first entry at or after `entry_index_in(segment)` in the segment
    /// `segment_index`, stepping over empty segments (a segment damaged from its first
    /// entry on, or the newly created last one).
    fn first_entry_from(
        &self,
        mut segment_index: usize,
        entry_index_in: impl Fn(&SegmentIndex) -> usize,
    ) -> Option<(usize, usize)> {
        while let Some(segment) = self.segments.get(segment_index) {
            let entry_index = entry_index_in(segment);
            if entry_index < segment.entries.len() {
                return Some((segment_index, entry_index));
            }
            segment_index += 1;
        }
        None
    }

    /// Finds the first entry published at or after `time_ms`; publish times are
    /// non-decreasing per shard (the writer enforces it), so this is a binary search.
    pub(super) fn find_by_time(&self, time_ms: i64) -> Option<(usize, usize)> {
        let segment_index = self
            .segments
            .partition_point(|segment| segment.max_publish_time_ms < time_ms);
        self.first_entry_from(segment_index, |segment| {
            segment
                .entries
                .partition_point(|entry| entry.publish_time_ms < time_ms)
        })
    }

    /// Returns the position of an entry found by [`ShardIndex::find`].
    pub(super) fn position_at(&self, (segment_index, entry_index): (usize, usize)) -> Position {
        self.segments
            .get(segment_index)
            .map_or(self.end_position, |segment| {
                segment.first_position + entry_index as u64
            })
    }

    /// Returns the number of retained entries at or after `position`.
    pub(super) fn count_from(&self, position: Position) -> u64 {
        self.find(position)
            .map_or(0, |(segment_index, entry_index)| {
                let segment = &self.segments[segment_index];
                self.total_count - (segment.count_before + entry_index as u64)
            })
    }

    /// Returns the payload bytes of retained entries at or after `position`.
    pub(super) fn bytes_from(&self, position: Position) -> u64 {
        self.find(position)
            .map_or(0, |(segment_index, entry_index)| {
                self.total_bytes - self.segments[segment_index].entries[entry_index].bytes_before
            })
    }

    /// Returns the payload size of the entry at `position`, if it is retained.
    pub(super) fn payload_len(&self, position: Position) -> Option<u32> {
        let (segment_index, entry_index) = self.find(position)?;
        (self.position_at((segment_index, entry_index)) == position)
            .then(|| self.segments[segment_index].entries[entry_index].payload_len)
    }

    /// Plans reading up to `max_messages` consecutive entries starting at `start`.
    pub(super) fn plan_from(&self, start: (usize, usize), max_messages: usize) -> Vec<ReadChunk> {
        let mut planner = ChunkPlanner::default();
        let (mut segment_index, mut entry_index) = start;
        let mut remaining = max_messages;
        while remaining > 0 {
            let Some(segment) = self.segments.get(segment_index) else {
                break;
            };
            let take = remaining.min(segment.entries.len().saturating_sub(entry_index));
            for index in entry_index..entry_index + take {
                planner.add(segment, index);
            }
            remaining -= take;
            segment_index += 1;
            entry_index = 0;
        }
        planner.chunks
    }

    /// Plans reading the given positions (sorted ascending); missing ones are skipped.
    pub(super) fn plan_positions(&self, positions: &[Position]) -> Vec<ReadChunk> {
        let mut planner = ChunkPlanner::default();
        for position in positions {
            if let Some((segment_index, entry_index)) = self.find(*position) {
                let segment = &self.segments[segment_index];
                if segment.first_position + entry_index as u64 == *position {
                    planner.add(segment, entry_index);
                }
            }
        }
        planner.chunks
    }

    /// Returns the segment that the writer appends to.
    pub(super) fn last_segment(&self) -> Option<&SegmentIndex> {
        self.segments.last()
    }
}

/// Groups entries into runs that are contiguous on disk.
#[derive(Default)]
struct ChunkPlanner {
    chunks: Vec<ReadChunk>,
}

impl ChunkPlanner {
    fn add(&mut self, segment: &SegmentIndex, entry_index: usize) {
        let entry = &segment.entries[entry_index];
        let position = segment.first_position + entry_index as u64;
        if let Some(chunk) = self.chunks.last_mut() {
            let continues = Arc::ptr_eq(&chunk.file, &segment.file)
                && chunk.first_position + chunk.count as u64 == position;
            if continues {
                chunk.count += 1;
                chunk.len += entry.disk_len();
                return;
            }
        }
        self.chunks.push(ReadChunk {
            file: Arc::clone(&segment.file),
            path: segment.path.clone(),
            first_position: position,
            count: 1,
            start_offset: entry.offset,
            len: entry.disk_len(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds segments: [0, 1, 2] at times 10..30, an empty (damaged) one at 3,
    /// [5, 6] at times 40 and 50, and an empty last one at 7.
    fn index_with_gaps() -> Result<ShardIndex, std::io::Error> {
        let file = Arc::new(tempfile::tempfile()?);
        let mut index = ShardIndex::default();
        index.push_segment(0, PathBuf::from("0"), Arc::clone(&file));
        for (number, time) in [10, 20, 30].into_iter().enumerate() {
            index.push_entry(8 + number as u64 * 47, time, 10);
        }
        index.push_segment(3, PathBuf::from("3"), Arc::clone(&file));
        index.push_segment(5, PathBuf::from("5"), Arc::clone(&file));
        index.push_entry(8, 40, 20);
        index.push_entry(65, 50, 20);
        index.push_segment(7, PathBuf::from("7"), file);
        Ok(index)
    }

    #[test]
    fn test_find_steps_over_gaps_and_empty_segments() -> Result<(), std::io::Error> {
        let index = index_with_gaps()?;
        let position_of =
            |found: Option<(usize, usize)>| found.map(|found| index.position_at(found));
        assert_eq!(index.earliest_position(), 0);
        assert_eq!(index.end_position, 7);
        assert_eq!(position_of(index.find(0)), Some(0));
        assert_eq!(position_of(index.find(2)), Some(2));
        assert_eq!(position_of(index.find(3)), Some(5));
        assert_eq!(position_of(index.find(4)), Some(5));
        assert_eq!(position_of(index.find(6)), Some(6));
        assert_eq!(index.find(7), None);
        assert_eq!(position_of(index.find_by_time(0)), Some(0));
        assert_eq!(position_of(index.find_by_time(25)), Some(2));
        assert_eq!(position_of(index.find_by_time(35)), Some(5));
        assert_eq!(position_of(index.find_by_time(50)), Some(6));
        assert_eq!(index.find_by_time(51), None);
        assert_eq!((index.count_from(0), index.bytes_from(0)), (5, 70));
        assert_eq!((index.count_from(4), index.bytes_from(4)), (2, 40));
        assert_eq!((index.count_from(7), index.bytes_from(7)), (0, 0));
        assert_eq!(index.payload_len(5), Some(20));
        assert_eq!(index.payload_len(4), None);
        Ok(())
    }

    #[test]
    fn test_plans_merge_contiguous_entries_only() -> Result<(), std::io::Error> {
        let index = index_with_gaps()?;
        let chunks = index.plan_from((0, 1), 10);
        let runs: Vec<(Position, usize)> = chunks
            .iter()
            .map(|chunk| (chunk.first_position, chunk.count))
            .collect();
        assert_eq!(runs, vec![(1, 2), (5, 2)]);
        assert_eq!(chunks[0].start_offset, 55);
        assert_eq!(chunks[0].len, 2 * 47);
        let chunks = index.plan_positions(&[0, 2, 4, 5, 6]);
        let runs: Vec<(Position, usize)> = chunks
            .iter()
            .map(|chunk| (chunk.first_position, chunk.count))
            .collect();
        assert_eq!(runs, vec![(0, 1), (2, 1), (5, 2)]);
        Ok(())
    }
}
