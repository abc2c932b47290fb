//! The progress of one subscription on one shard: watermark, acks above it,
//! in-flight deliveries and messages waiting for redelivery. No locking or I/O here;
//! [`super::subscription::Subscription`] owns the lock and the persistence.

use std::collections::{BTreeMap, HashMap};

use tokio::time::Instant;

use super::shard::ShardIndex;
use crate::queue::Position;

/// Identifies one consumer inside its subscription.
pub(super) type ConsumerId = u64;

/// The subscription's progress on one shard.
#[derive(Debug)]
pub(super) struct ShardCursor {
    /// Every position below it is acked.
    pub(super) watermark: Position,
    /// The watermark on disk; retention only trusts this one.
    pub(super) persisted_watermark: Position,
    /// The next position this process has never handed out.
    pub(super) read_cursor: Position,
    /// Positions below it may have been delivered before the last restart.
    pub(super) redelivered_below: Position,
    /// Acked positions above the watermark, with their payload sizes.
    pub(super) acked: BTreeMap<Position, u32>,
    pub(super) acked_bytes: u64,
    pub(super) in_flight: HashMap<Position, ConsumerId>,
    /// Given back (nack or lost consumer), with the time each may go out again.
    pub(super) redeliver: BTreeMap<Position, Instant>,
}

impl ShardCursor {
    pub(super) fn new(
        watermark: Position,
        persisted_watermark: Position,
        redelivered_below: Position,
    ) -> ShardCursor {
        ShardCursor {
            watermark,
            persisted_watermark,
            read_cursor: watermark,
            redelivered_below,
            acked: BTreeMap::new(),
            acked_bytes: 0,
            in_flight: HashMap::new(),
            redeliver: BTreeMap::new(),
        }
    }

    /// Picks up to `want` positions: ready redeliveries first (they are all below the
    /// read cursor, so this keeps position order), then never-delivered ones.
    pub(super) fn take(
        &mut self,
        consumer: ConsumerId,
        index: &ShardIndex,
        want: usize,
        now: Instant,
        out: &mut Vec<(Position, bool)>,
        next_ready: &mut Option<Instant>,
    ) -> usize {
        let mut ready = Vec::new();
        for (position, ready_at) in &self.redeliver {
            if *ready_at <= now {
                if ready.len() < want {
                    ready.push(*position);
                }
            } else {
                *next_ready = Some(next_ready.map_or(*ready_at, |t| t.min(*ready_at)));
            }
        }
        for position in &ready {
            self.redeliver.remove(position);
            self.in_flight.insert(*position, consumer);
            out.push((*position, true));
        }
        let mut taken = ready.len();
        while taken < want {
            let Some((segment_index, entry_index)) = index.find(self.read_cursor) else {
                break;
            };
            let segment = &index.segments[segment_index];
            let first = segment.first_position + entry_index as u64;
            let run = (want - taken).min(segment.entries.len() - entry_index);
            for position in first..first + run as u64 {
                self.in_flight.insert(position, consumer);
                out.push((position, position < self.redelivered_below));
            }
            self.read_cursor = first + run as u64;
            taken += run;
        }
        taken
    }

    /// Moves the watermark over acked positions and over positions that are not in
    /// the log (a damaged segment) but that the read cursor has passed.
    pub(super) fn advance(&mut self, index: &ShardIndex) -> bool {
        let before = self.watermark;
        loop {
            if let Some(payload_len) = self.acked.remove(&self.watermark) {
                self.acked_bytes = self.acked_bytes.saturating_sub(u64::from(payload_len));
                self.watermark += 1;
                continue;
            }
            if self.watermark < self.read_cursor {
                if let Some(found) = index.find(self.watermark) {
                    let next_entry = index.position_at(found);
                    if next_entry > self.watermark {
                        self.watermark = next_entry.min(self.read_cursor);
                        continue;
                    }
                }
            }
            break;
        }
        self.watermark != before
    }

    /// Returns the unacked messages and bytes from the watermark on.
    pub(super) fn backlog(&self, index: &ShardIndex) -> (u64, u64) {
        let messages = index
            .count_from(self.watermark)
            .saturating_sub(self.acked.len() as u64);
        let bytes = index
            .bytes_from(self.watermark)
            .saturating_sub(self.acked_bytes);
        (messages, bytes)
    }

    /// Takes a delivery back from whoever holds it; false when it is not out.
    pub(super) fn take_back(&mut self, position: Position) -> bool {
        let in_flight = self.in_flight.remove(&position).is_some();
        let waiting = self.redeliver.remove(&position).is_some();
        in_flight || waiting
    }

    /// Records an ack above the watermark; [`ShardCursor::advance`] folds it in.
    pub(super) fn record_ack(&mut self, position: Position, payload_len: u32) {
        if position >= self.watermark && self.acked.insert(position, payload_len).is_none() {
            self.acked_bytes += u64::from(payload_len);
        }
    }

    /// Schedules an in-flight delivery to go out again at `ready_at`.
    pub(super) fn nack(&mut self, position: Position, ready_at: Instant) {
        if self.in_flight.remove(&position).is_some() {
            self.redeliver.insert(position, ready_at);
        }
    }

    /// Returns everything a consumer holds for redelivery at `now`.
    pub(super) fn release(&mut self, consumer: ConsumerId, now: Instant) {
        let redeliver = &mut self.redeliver;
        self.in_flight.retain(|position, owner| {
            if *owner == consumer {
                redeliver.insert(*position, now);
                false
            } else {
                true
            }
        });
    }
}
