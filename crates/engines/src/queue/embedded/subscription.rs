//! Shared subscription state: per shard an acked watermark (durable), plus in memory
//! the acks above it, the in-flight deliveries and the messages waiting to go out again.
//!
//! All consumers of one subscription name share one [`Subscription`], and every
//! decision about who gets a message is taken under its mutex, which is what keeps a
//! message from being in flight at two consumers at once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use logpool_core::routing::ShardAddr;
use tokio::time::Instant;

use super::cursor::{ConsumerId, ShardCursor};
use super::layout::write_watermark;
use super::shard::{Shard, ShardIndex};
use super::{lock, read_lock};
use crate::queue::{DeliveryTag, Position, QueueError, QueueResult};

/// Positions picked for one consumer from one shard, with their redelivered flags.
pub(super) struct ShardPicks {
    pub(super) shard: Arc<Shard>,
    /// Sorted by position.
    pub(super) picks: Vec<(Position, bool)>,
}

/// The state of one subscription name.
#[derive(Debug)]
pub(super) struct Subscription {
    name: String,
    state: Mutex<SubscriptionState>,
    /// Serialises watermark writes, so an older watermark never overwrites a newer one.
    persist_lock: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct SubscriptionState {
    shards: HashMap<ShardAddr, ShardCursor>,
    next_consumer_id: ConsumerId,
}

impl Subscription {
    /// Creates a subscription with no shards.
    pub(super) fn new(name: String) -> Subscription {
        Subscription {
            name,
            state: Mutex::new(SubscriptionState::default()),
            persist_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Returns the subscription name.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Restores a shard from its watermark file at open. Everything from the
    /// watermark to the current end may have been delivered before the restart.
    /// A damaged file (`None`) restarts from the earliest message.
    pub(super) fn restore_shard(
        &self,
        shard: ShardAddr,
        stored: Option<Position>,
        index: &ShardIndex,
    ) {
        // Recovery already brought watermarks past the end back to the end.
        let earliest = index.earliest_position();
        let persisted = stored.unwrap_or(earliest).min(index.end_position);
        let watermark = persisted.max(earliest);
        lock(&self.state).shards.insert(
            shard,
            ShardCursor::new(watermark, persisted, index.end_position),
        );
    }

    /// Returns a new consumer id.
    pub(super) fn register_consumer(&self) -> ConsumerId {
        let mut state = lock(&self.state);
        state.next_consumer_id += 1;
        state.next_consumer_id
    }

    /// Returns the shards of `shards` this subscription has no state for yet.
    pub(super) fn missing_shards(&self, shards: &[ShardAddr]) -> Vec<ShardAddr> {
        let state = lock(&self.state);
        shards
            .iter()
            .filter(|shard| !state.shards.contains_key(*shard))
            .cloned()
            .collect()
    }

    /// Starts the subscription on new shards at the given (already persisted) positions.
    pub(super) fn add_shards(&self, starts: Vec<(ShardAddr, Position)>) {
        let mut state = lock(&self.state);
        for (shard, start) in starts {
            state
                .shards
                .entry(shard)
                .or_insert_with(|| ShardCursor::new(start, start, start));
        }
    }

    /// Forgets shards (they were deleted).
    pub(super) fn remove_shards(&self, shards: &[ShardAddr]) {
        let mut state = lock(&self.state);
        for shard in shards {
            state.shards.remove(shard);
        }
    }

    /// Picks up to `max_messages` messages for a consumer, spreading them fairly over
    /// `shards` starting at `round_robin`. Also returns when the next nacked message
    /// becomes ready, so a waiting consumer knows when to look again.
    pub(super) fn dispatch(
        &self,
        consumer: ConsumerId,
        shards: &[(ShardAddr, Arc<Shard>)],
        round_robin: usize,
        max_messages: usize,
        now: Instant,
    ) -> (Vec<ShardPicks>, Option<Instant>) {
        let mut state = lock(&self.state);
        let num_shards = shards.len();
        let mut picks: Vec<Vec<(Position, bool)>> = vec![Vec::new(); num_shards];
        let mut exhausted = vec![false; num_shards];
        let mut next_ready = None;
        let mut remaining = max_messages;
        while remaining > 0 {
            let num_active = exhausted.iter().filter(|done| !**done).count();
            if num_active == 0 {
                break;
            }
            let share = (remaining / num_active).max(1);
            for step in 0..num_shards {
                let slot = (round_robin + step) % num_shards;
                if exhausted[slot] || remaining == 0 {
                    continue;
                }
                let (addr, shard) = &shards[slot];
                let Some(cursor) = state.shards.get_mut(addr) else {
                    exhausted[slot] = true;
                    continue;
                };
                let want = share.min(remaining);
                let index = read_lock(&shard.index);
                let taken = cursor.take(
                    consumer,
                    &index,
                    want,
                    now,
                    &mut picks[slot],
                    &mut next_ready,
                );
                if taken < want {
                    exhausted[slot] = true;
                }
                remaining -= taken;
            }
        }
        let picked = shards
            .iter()
            .zip(picks)
            .filter(|(_, picks)| !picks.is_empty())
            .map(|((_, shard), mut picks)| {
                picks.sort_unstable_by_key(|(position, _)| *position);
                ShardPicks {
                    shard: Arc::clone(shard),
                    picks,
                }
            })
            .collect();
        (picked, next_ready)
    }

    /// Acks deliveries and returns the shards whose watermark moved. Tags that are not
    /// out (already acked, unknown, or from a forgotten shard) are ignored.
    pub(super) fn ack(
        &self,
        tags: &[DeliveryTag],
        shard_of: impl Fn(&ShardAddr) -> Option<Arc<Shard>>,
    ) -> Vec<ShardAddr> {
        let mut state = lock(&self.state);
        let mut touched: HashMap<&ShardAddr, Option<Arc<Shard>>> = HashMap::new();
        for tag in tags {
            let Some(cursor) = state.shards.get_mut(&tag.shard) else {
                continue;
            };
            if !cursor.take_back(tag.position) {
                continue;
            }
            let shard = touched
                .entry(&tag.shard)
                .or_insert_with(|| shard_of(&tag.shard));
            let payload_len = shard
                .as_ref()
                .and_then(|shard| read_lock(&shard.index).payload_len(tag.position))
                .unwrap_or(0);
            cursor.record_ack(tag.position, payload_len);
        }
        let mut moved = Vec::new();
        for (addr, shard) in touched {
            let (Some(cursor), Some(shard)) = (state.shards.get_mut(addr), shard) else {
                continue;
            };
            if cursor.advance(&read_lock(&shard.index)) {
                moved.push(addr.clone());
            }
        }
        moved
    }

    /// Gives deliveries back; they go out again at `ready_at`.
    pub(super) fn nack(&self, tags: &[DeliveryTag], ready_at: Instant) {
        let mut state = lock(&self.state);
        for tag in tags {
            if let Some(cursor) = state.shards.get_mut(&tag.shard) {
                cursor.nack(tag.position, ready_at);
            }
        }
    }

    /// Returns a consumer's in-flight messages on the shards `release` accepts, for
    /// immediate redelivery to the remaining consumers.
    pub(super) fn release_consumer(
        &self,
        consumer: ConsumerId,
        release: impl Fn(&ShardAddr) -> bool,
    ) {
        let now = Instant::now();
        let mut state = lock(&self.state);
        for (addr, cursor) in &mut state.shards {
            if release(addr) {
                cursor.release(consumer, now);
            }
        }
    }

    /// Durably writes the watermarks of `shards` that moved past what is on disk.
    pub(super) async fn persist(&self, root: PathBuf, shards: Vec<ShardAddr>) -> QueueResult<()> {
        let _serialised = self.persist_lock.lock().await;
        let writes: Vec<(ShardAddr, Position)> = {
            let state = lock(&self.state);
            shards
                .into_iter()
                .filter_map(|shard| {
                    let cursor = state.shards.get(&shard)?;
                    (cursor.watermark > cursor.persisted_watermark)
                        .then_some((shard, cursor.watermark))
                })
                .collect()
        };
        if writes.is_empty() {
            return Ok(());
        }
        let name = self.name.clone();
        let written = writes.clone();
        tokio::task::spawn_blocking(move || {
            for (shard, watermark) in &written {
                write_watermark(&root, shard, &name, *watermark)?;
            }
            Ok::<(), std::io::Error>(())
        })
        .await
        .map_err(|error| QueueError::Unavailable(format!("persisting watermarks: {error}")))??;
        let mut state = lock(&self.state);
        for (shard, watermark) in writes {
            if let Some(cursor) = state.shards.get_mut(&shard) {
                cursor.persisted_watermark = cursor.persisted_watermark.max(watermark);
            }
        }
        Ok(())
    }

    /// Returns the durable watermark on a shard, if the subscription covers it.
    pub(super) fn persisted_watermark(&self, shard: &ShardAddr) -> Option<Position> {
        lock(&self.state)
            .shards
            .get(shard)
            .map(|cursor| cursor.persisted_watermark)
    }

    /// Returns the unacked `(messages, bytes)` on a shard, if the subscription covers it.
    /// Lock order is subscription, then shard index (as in dispatch), never the reverse.
    pub(super) fn backlog(&self, addr: &ShardAddr, shard: &Shard) -> Option<(u64, u64)> {
        let state = lock(&self.state);
        let cursor = state.shards.get(addr)?;
        Some(cursor.backlog(&read_lock(&shard.index)))
    }
}
