//! The bounded buffer between a tail's queue reader and its WebSocket writer.
//!
//! The reader never waits for the client: when the buffer is full, records are
//! dropped and counted, and the count takes the place of the dropped records in the
//! stream, so the client learns exactly where the gap is (`{"type":"dropped"}`
//! between the records before and after it). Memory per connection is bounded in
//! records (`capacity`) and in bytes: records are kept as the JSON text that will be
//! sent, and each one is charged to the connection's [`RequestMemory`] (its own
//! `buffer_bytes`, inside its tenant's `buffer_bytes_per_tenant`) until the writer
//! takes it. While the buffer is full the reader skips whole batches without decoding
//! them ([`TailBuffer::skip`]), so a stalled client costs next to no CPU.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use logpool_core::memory::RequestMemory;
use tokio::sync::Notify;

/// Bytes charged per record beyond its text: the entry and its bookkeeping.
const RECORD_OVERHEAD_BYTES: usize = 64;

/// A record ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct BufferedRecord {
    /// The record as sent to the client (one JSON object).
    pub json: String,
    /// When the queue accepted its batch (ms since the epoch), for the lag.
    pub publish_time_ms: i64,
}

impl BufferedRecord {
    fn charged_bytes(&self) -> usize {
        self.json.len() + RECORD_OVERHEAD_BYTES
    }
}

/// What the writer takes out next.
#[derive(Debug, PartialEq)]
pub enum Taken {
    /// Nothing is waiting.
    Empty,
    /// Records, oldest first.
    Records(Vec<BufferedRecord>),
    /// This many records were dropped here.
    Dropped(u64),
}

#[derive(Debug)]
enum Entry {
    Record(BufferedRecord),
    Dropped(u64),
}

#[derive(Debug, Default)]
struct Entries {
    entries: VecDeque<Entry>,
    num_records: usize,
    /// A record was refused for want of bytes since the writer last took any: the
    /// buffer counts as full until then, so the reader does not decode batches only
    /// to drop their records.
    out_of_bytes: bool,
}

impl Entries {
    /// Adds `count` to the gap marker at the end, or starts one.
    fn mark_dropped(&mut self, count: u64) {
        match self.entries.back_mut() {
            Some(Entry::Dropped(dropped)) => *dropped += count,
            _ => self.entries.push_back(Entry::Dropped(count)),
        }
    }
}

/// A bounded, dropping buffer of one connection.
#[derive(Debug)]
pub struct TailBuffer {
    capacity: usize,
    memory: RequestMemory,
    entries: Mutex<Entries>,
    ready: Notify,
}

impl TailBuffer {
    /// Creates a buffer that holds at most `capacity` records and what `memory`
    /// allows in bytes.
    pub fn new(capacity: usize, memory: RequestMemory) -> TailBuffer {
        TailBuffer {
            capacity: capacity.max(1),
            memory,
            entries: Mutex::new(Entries::default()),
            ready: Notify::new(),
        }
    }

    /// Adds records, dropping (and counting) those that do not fit, and wakes the
    /// writer. Returns how many were dropped.
    pub fn push_all(&self, records: impl IntoIterator<Item = BufferedRecord>) -> u64 {
        let mut num_dropped = 0;
        {
            let mut state = self.lock();
            for record in records {
                if state.num_records < self.capacity && !state.out_of_bytes {
                    if self.memory.try_charge(record.charged_bytes()).is_ok() {
                        state.num_records += 1;
                        state.entries.push_back(Entry::Record(record));
                        continue;
                    }
                    state.out_of_bytes = true;
                }
                num_dropped += 1;
                state.mark_dropped(1);
            }
        }
        self.ready.notify_one();
        num_dropped
    }

    /// Returns true when no further record fits.
    pub fn is_full(&self) -> bool {
        let state = self.lock();
        state.num_records >= self.capacity || state.out_of_bytes
    }

    /// Bytes of records held now.
    pub fn held_bytes(&self) -> usize {
        self.memory.used()
    }

    /// Counts `count` records as dropped at the current end of the stream without
    /// looking at them (the caller skipped them because the buffer was full).
    pub fn skip(&self, count: u64) {
        if count == 0 {
            return;
        }
        self.lock().mark_dropped(count);
        self.ready.notify_one();
    }

    /// Takes records from the front, up to `max_records` and, after the first, up to
    /// `max_bytes` of record text; or the gap marker that is there.
    pub fn take(&self, max_records: usize, max_bytes: usize) -> Taken {
        let mut state = self.lock();
        match state.entries.front() {
            None => return Taken::Empty,
            Some(Entry::Dropped(_)) => {
                if let Some(Entry::Dropped(count)) = state.entries.pop_front() {
                    return Taken::Dropped(count);
                }
            }
            Some(Entry::Record(_)) => {}
        }
        let mut records = Vec::new();
        let mut text_bytes = 0;
        let mut charged = 0;
        while records.len() < max_records.max(1) {
            match state.entries.front() {
                Some(Entry::Record(record))
                    if records.is_empty() || text_bytes + record.json.len() <= max_bytes => {}
                _ => break,
            }
            if let Some(Entry::Record(record)) = state.entries.pop_front() {
                text_bytes += record.json.len();
                charged += record.charged_bytes();
                records.push(record);
            }
        }
        state.num_records -= records.len();
        state.out_of_bytes = false;
        // The writer holds these until the frame is sent; that is bounded by the frame
        // size, so they leave the buffer's budget now.
        self.memory.release(charged);
        Taken::Records(records)
    }

    /// Returns true when something is waiting to be taken.
    pub fn has_pending(&self) -> bool {
        !self.lock().entries.is_empty()
    }

    /// Makes the next [`TailBuffer::wait_ready`] return at once.
    pub fn wake(&self) {
        self.ready.notify_one();
    }

    /// Waits until something was pushed since the last wake-up.
    pub async fn wait_ready(&self) {
        self.ready.notified().await;
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // Every update leaves the entries consistent, so a poisoned lock is usable.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use logpool_core::memory::TenantBudgets;

    use super::*;

    /// No byte limit in effect.
    const ANY_BYTES: usize = usize::MAX;

    fn record(n: i64) -> BufferedRecord {
        BufferedRecord {
            json: n.to_string(),
            publish_time_ms: n,
        }
    }

    fn sized_record(n: i64, bytes: usize) -> BufferedRecord {
        BufferedRecord {
            json: "x".repeat(bytes),
            publish_time_ms: n,
        }
    }

    fn unlimited(capacity: usize) -> TailBuffer {
        TailBuffer::new(capacity, RequestMemory::unlimited())
    }

    fn numbers(taken: Taken) -> Vec<i64> {
        match taken {
            Taken::Records(records) => records.iter().map(|r| r.publish_time_ms).collect(),
            other => panic!("expected records, got {other:?}"),
        }
    }

    #[test]
    fn test_overflow_is_dropped_and_marked_where_it_happened() {
        let buffer = unlimited(3);
        assert_eq!(buffer.push_all((0..5).map(record)), 2);
        assert_eq!(numbers(buffer.take(10, ANY_BYTES)), vec![0, 1, 2]);
        // Space again: new records come after the gap marker.
        assert_eq!(buffer.push_all((5..7).map(record)), 0);
        assert_eq!(buffer.push_all((7..9).map(record)), 1);
        assert_eq!(buffer.take(10, ANY_BYTES), Taken::Dropped(2));
        assert_eq!(numbers(buffer.take(10, ANY_BYTES)), vec![5, 6, 7]);
        assert_eq!(buffer.take(10, ANY_BYTES), Taken::Dropped(1));
        assert_eq!(buffer.take(10, ANY_BYTES), Taken::Empty);
        assert!(!buffer.has_pending());
    }

    #[test]
    fn test_skipped_records_join_the_gap_marker() {
        let buffer = unlimited(2);
        buffer.push_all((0..3).map(record));
        assert!(buffer.is_full());
        buffer.skip(10);
        buffer.skip(0);
        assert_eq!(numbers(buffer.take(10, ANY_BYTES)), vec![0, 1]);
        assert!(!buffer.is_full());
        assert_eq!(buffer.take(10, ANY_BYTES), Taken::Dropped(11));
        assert_eq!(buffer.take(10, ANY_BYTES), Taken::Empty);
    }

    #[test]
    fn test_take_respects_the_frame_size() {
        let buffer = unlimited(10);
        buffer.push_all((0..5).map(record));
        assert_eq!(numbers(buffer.take(2, ANY_BYTES)), vec![0, 1]);
        assert_eq!(numbers(buffer.take(2, ANY_BYTES)), vec![2, 3]);
        assert_eq!(numbers(buffer.take(2, ANY_BYTES)), vec![4]);
    }

    #[test]
    fn test_memory_stays_bounded_under_a_flood() {
        let buffer = unlimited(100);
        for round in 0..1000 {
            buffer.push_all((0..100).map(|n| record(round * 100 + n)));
        }
        let state = buffer.lock();
        assert_eq!(state.num_records, 100);
        // The first 100 records, then one marker for everything else.
        assert_eq!(state.entries.len(), 101);
    }

    #[test]
    fn test_bytes_bound_the_buffer_and_come_back_when_taken() {
        let charged = 1000 + RECORD_OVERHEAD_BYTES;
        let buffer = TailBuffer::new(1000, RequestMemory::limited(3 * charged));
        assert_eq!(buffer.push_all((0..5).map(|n| sized_record(n, 1000))), 2);
        assert!(buffer.is_full(), "out of bytes counts as full");
        assert_eq!(buffer.held_bytes(), 3 * charged);
        // Once a record was refused, later small ones are dropped too until the
        // writer takes something: the gap stays in one place.
        assert_eq!(buffer.push_all([record(9)]), 1);
        assert_eq!(numbers(buffer.take(10, ANY_BYTES)), vec![0, 1, 2]);
        assert_eq!(buffer.held_bytes(), 0);
        assert!(!buffer.is_full());
        assert_eq!(buffer.take(10, ANY_BYTES), Taken::Dropped(3));
    }

    #[test]
    fn test_tails_of_one_tenant_share_its_bytes() {
        let budgets = TenantBudgets::new(3000);
        let first = TailBuffer::new(1000, budgets.request("t", 2000));
        let second = TailBuffer::new(1000, budgets.request("t", 2000));
        let other = TailBuffer::new(1000, budgets.request("u", 2000));
        assert_eq!(first.push_all((0..2).map(|n| sized_record(n, 900))), 0);
        assert_eq!(second.push_all((0..2).map(|n| sized_record(n, 900))), 1);
        assert_eq!(other.push_all((0..2).map(|n| sized_record(n, 900))), 0);
        drop(first);
        assert_eq!(budgets.tenant("t").used(), 900 + RECORD_OVERHEAD_BYTES);
    }

    #[test]
    fn test_take_stops_at_the_frame_bytes_but_takes_at_least_one() {
        let buffer = unlimited(10);
        buffer.push_all((0..4).map(|n| sized_record(n, 400)));
        assert_eq!(numbers(buffer.take(10, 1000)), vec![0, 1]);
        assert_eq!(numbers(buffer.take(10, 100)), vec![2]);
        assert_eq!(numbers(buffer.take(10, 1000)), vec![3]);
    }

    #[tokio::test]
    async fn test_push_wakes_a_waiting_writer() {
        let buffer = std::sync::Arc::new(unlimited(4));
        let waiter = tokio::spawn({
            let buffer = buffer.clone();
            async move { buffer.wait_ready().await }
        });
        buffer.push_all([record(1)]);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("task");
    }
}
