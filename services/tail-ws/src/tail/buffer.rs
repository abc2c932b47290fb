//! The bounded buffer between a tail's queue reader and its WebSocket writer.
//!
//! The reader never waits for the client: when the buffer is full, records are
//! dropped and counted, and the count takes the place of the dropped records in the
//! stream, so the client learns exactly where the gap is (`{"type":"dropped"}`
//! between the records before and after it). Memory per connection is bounded by
//! `capacity` records (plus at most as many gap markers). While the buffer is full
//! the reader skips whole batches without decoding them ([`TailBuffer::skip`]), so
//! a stalled client costs next to no CPU.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::Value;
use tokio::sync::Notify;

/// A record ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct BufferedRecord {
    /// The record as sent to the client.
    pub json: Value,
    /// When the queue accepted its batch (ms since the epoch), for the lag.
    pub publish_time_ms: i64,
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
    entries: Mutex<Entries>,
    ready: Notify,
}

impl TailBuffer {
    /// Creates a buffer that holds at most `capacity` records.
    pub fn new(capacity: usize) -> TailBuffer {
        TailBuffer {
            capacity: capacity.max(1),
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
                if state.num_records < self.capacity {
                    state.num_records += 1;
                    state.entries.push_back(Entry::Record(record));
                    continue;
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
        self.lock().num_records >= self.capacity
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

    /// Takes up to `max_records` records from the front, or the gap marker that is
    /// there.
    pub fn take(&self, max_records: usize) -> Taken {
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
        while records.len() < max_records {
            match state.entries.front() {
                Some(Entry::Record(_)) => {}
                _ => break,
            }
            if let Some(Entry::Record(record)) = state.entries.pop_front() {
                records.push(record);
            }
        }
        state.num_records -= records.len();
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
    use serde_json::json;

    use super::*;

    fn record(n: i64) -> BufferedRecord {
        BufferedRecord {
            json: json!(n),
            publish_time_ms: n,
        }
    }

    fn numbers(taken: Taken) -> Vec<i64> {
        match taken {
            Taken::Records(records) => records.iter().map(|r| r.publish_time_ms).collect(),
            other => panic!("expected records, got {other:?}"),
        }
    }

    #[test]
    fn test_overflow_is_dropped_and_marked_where_it_happened() {
        let buffer = TailBuffer::new(3);
        assert_eq!(buffer.push_all((0..5).map(record)), 2);
        assert_eq!(numbers(buffer.take(10)), vec![0, 1, 2]);
        // Space again: new records come after the gap marker.
        assert_eq!(buffer.push_all((5..7).map(record)), 0);
        assert_eq!(buffer.push_all((7..9).map(record)), 1);
        assert_eq!(buffer.take(10), Taken::Dropped(2));
        assert_eq!(numbers(buffer.take(10)), vec![5, 6, 7]);
        assert_eq!(buffer.take(10), Taken::Dropped(1));
        assert_eq!(buffer.take(10), Taken::Empty);
        assert!(!buffer.has_pending());
    }

    #[test]
    fn test_skipped_records_join_the_gap_marker() {
        let buffer = TailBuffer::new(2);
        buffer.push_all((0..3).map(record));
        assert!(buffer.is_full());
        buffer.skip(10);
        buffer.skip(0);
        assert_eq!(numbers(buffer.take(10)), vec![0, 1]);
        assert!(!buffer.is_full());
        assert_eq!(buffer.take(10), Taken::Dropped(11));
        assert_eq!(buffer.take(10), Taken::Empty);
    }

    #[test]
    fn test_take_respects_the_frame_size() {
        let buffer = TailBuffer::new(10);
        buffer.push_all((0..5).map(record));
        assert_eq!(numbers(buffer.take(2)), vec![0, 1]);
        assert_eq!(numbers(buffer.take(2)), vec![2, 3]);
        assert_eq!(numbers(buffer.take(2)), vec![4]);
    }

    #[test]
    fn test_memory_stays_bounded_under_a_flood() {
        let buffer = TailBuffer::new(100);
        for round in 0..1000 {
            buffer.push_all((0..100).map(|n| record(round * 100 + n)));
        }
        let state = buffer.lock();
        assert_eq!(state.num_records, 100);
        // The first 100 records, then one marker for everything else.
        assert_eq!(state.entries.len(), 101);
    }

    #[tokio::test]
    async fn test_push_wakes_a_waiting_writer() {
        let buffer = std::sync::Arc::new(TailBuffer::new(4));
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
