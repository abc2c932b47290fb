//! [`EmbeddedConsumer`]: one member of a shared subscription.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use logpool_core::routing::ShardAddr;
use tokio::time::Instant;

use super::cursor::ConsumerId;
use super::layout::{validate_shard, write_watermark};
use super::segment::read_chunks;
use super::subscription::{ShardPicks, Subscription};
use super::{read_lock, Shared};
use crate::queue::{Consumer, Delivery, DeliveryTag, Position, QueueError, QueueResult};

/// A consumer of the embedded queue. Dropping it gives its in-flight messages back.
#[derive(Debug)]
pub(super) struct EmbeddedConsumer {
    id: ConsumerId,
    subscription: Arc<Subscription>,
    shared: Arc<Shared>,
    shards: Vec<ShardAddr>,
    /// Where the next receive starts, so no shard is always served first.
    round_robin: usize,
}

impl EmbeddedConsumer {
    /// Joins `subscription` over `shards`, creating its state where missing.
    pub(super) async fn join(
        shared: Arc<Shared>,
        subscription: Arc<Subscription>,
        shards: Vec<ShardAddr>,
    ) -> QueueResult<EmbeddedConsumer> {
        ensure_shards(&shared, &subscription, &shards).await?;
        Ok(EmbeddedConsumer {
            id: subscription.register_consumer(),
            subscription,
            shared,
            shards,
            round_robin: 0,
        })
    }

    /// Turns picked positions into deliveries (blocking reads off the runtime).
    async fn read_picks(&self, picked: Vec<ShardPicks>) -> QueueResult<Vec<Delivery>> {
        // If the read fails, or `receive` is cancelled while it runs, the picks go
        // back for redelivery instead of staying in flight until the consumer drops.
        let mut guard = GiveBackOnDrop {
            subscription: &self.subscription,
            shared: &self.shared,
            tags: picked
                .iter()
                .flat_map(|shard_picks| {
                    shard_picks.picks.iter().map(|(position, _)| DeliveryTag {
                        shard: shard_picks.shard.addr.clone(),
                        position: *position,
                    })
                })
                .collect(),
        };
        let mut plans = Vec::with_capacity(picked.len());
        for shard_picks in &picked {
            let positions: Vec<Position> = shard_picks
                .picks
                .iter()
                .map(|(position, _)| *position)
                .collect();
            let chunks = read_lock(&shard_picks.shard.index).plan_positions(&positions);
            plans.push((shard_picks.shard.addr.clone(), chunks));
        }
        let messages = tokio::task::spawn_blocking(move || {
            let mut messages = Vec::new();
            for (addr, chunks) in &plans {
                messages.extend(read_chunks(addr, chunks)?);
            }
            Ok::<_, QueueError>(messages)
        })
        .await
        .map_err(|error| QueueError::Unavailable(format!("reading deliveries: {error}")))??;
        guard.tags.clear();

        // Messages come back in pick order, minus any that vanished (deleted shard).
        let flags: HashMap<(&ShardAddr, Position), bool> = picked
            .iter()
            .flat_map(|shard_picks| {
                shard_picks.picks.iter().map(|(position, redelivered)| {
                    ((&shard_picks.shard.addr, *position), *redelivered)
                })
            })
            .collect();
        Ok(messages
            .into_iter()
            .map(|message| {
                let redelivered = flags
                    .get(&(&message.shard, message.position))
                    .copied()
                    .unwrap_or(true);
                Delivery {
                    message,
                    redelivered,
                }
            })
            .collect())
    }

    /// Returns this consumer's shards that exist, with their in-memory state.
    fn existing_shards(&self) -> Vec<(ShardAddr, Arc<super::shard::Shard>)> {
        let registry = read_lock(&self.shared.shards);
        self.shards
            .iter()
            .filter_map(|addr| {
                registry
                    .get(addr)
                    .map(|shard| (addr.clone(), Arc::clone(shard)))
            })
            .collect()
    }
}

#[async_trait]
impl Consumer for EmbeddedConsumer {
    async fn receive(&mut self, max_messages: usize, wait: Duration) -> QueueResult<Vec<Delivery>> {
        if max_messages == 0 {
            return Ok(Vec::new());
        }
        // Shards deleted and created again, or never produced to, get state lazily.
        ensure_shards(&self.shared, &self.subscription, &self.shards).await?;
        let deadline = Instant::now() + wait;
        loop {
            if self.shared.closed.load(Ordering::Acquire) {
                return Err(QueueError::Closed);
            }
            // Register for wake-ups before looking, so a produce that lands between
            // the look and the wait is not missed.
            let notified = self.shared.data_ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let shards = self.existing_shards();
            let now = Instant::now();
            let (picked, next_ready) =
                self.subscription
                    .dispatch(self.id, &shards, self.round_robin, max_messages, now);
            self.round_robin = self.round_robin.wrapping_add(1);
            if !picked.is_empty() {
                let deliveries = self.read_picks(picked).await?;
                if !deliveries.is_empty() {
                    return Ok(deliveries);
                }
            }
            if now >= deadline {
                return Ok(Vec::new());
            }
            let wake_at = next_ready.map_or(deadline, |ready_at| ready_at.min(deadline));
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    async fn ack(&mut self, tags: &[DeliveryTag]) -> QueueResult<()> {
        let moved = self.subscription.ack(tags, |addr| {
            read_lock(&self.shared.shards).get(addr).cloned()
        });
        if moved.is_empty() {
            return Ok(());
        }
        self.subscription
            .persist(self.shared.config.dir.clone(), moved)
            .await
    }

    async fn nack(&mut self, tags: &[DeliveryTag]) -> QueueResult<()> {
        let delay = Duration::from_millis(self.shared.config.nack_redelivery_delay_ms);
        self.subscription.nack(tags, Instant::now() + delay);
        // Waiting consumers recompute when to look again.
        self.shared.data_ready.notify_waiters();
        Ok(())
    }

    async fn set_shards(&mut self, shards: Vec<ShardAddr>) -> QueueResult<()> {
        ensure_shards(&self.shared, &self.subscription, &shards).await?;
        self.subscription
            .release_consumer(self.id, |addr| !shards.contains(addr));
        self.shards = shards;
        self.shared.data_ready.notify_waiters();
        Ok(())
    }
}

impl Drop for EmbeddedConsumer {
    fn drop(&mut self) {
        self.subscription.release_consumer(self.id, |_| true);
        self.shared.data_ready.notify_waiters();
    }
}

/// Gives picked but undelivered messages back to the subscription when dropped.
struct GiveBackOnDrop<'a> {
    subscription: &'a Subscription,
    shared: &'a Shared,
    tags: Vec<DeliveryTag>,
}

impl Drop for GiveBackOnDrop<'_> {
    fn drop(&mut self) {
        if !self.tags.is_empty() {
            self.subscription.nack(&self.tags, Instant::now());
            self.shared.data_ready.notify_waiters();
        }
    }
}

/// Creates the subscription's state on shards it does not cover yet, starting at the
/// earliest retained message. The watermark file is written before the state is
/// used, so retention knows about the subscription even after a restart.
pub(super) async fn ensure_shards(
    shared: &Arc<Shared>,
    subscription: &Arc<Subscription>,
    shards: &[ShardAddr],
) -> QueueResult<()> {
    let missing = subscription.missing_shards(shards);
    if missing.is_empty() {
        return Ok(());
    }
    let mut starts = Vec::with_capacity(missing.len());
    {
        let registry = read_lock(&shared.shards);
        for addr in missing {
            validate_shard(&addr)?;
            let start = registry
                .get(&addr)
                .map_or(0, |shard| read_lock(&shard.index).earliest_position());
            starts.push((addr, start));
        }
    }
    let root = shared.config.dir.clone();
    let name = subscription.name().to_string();
    let starts = tokio::task::spawn_blocking(move || {
        for (addr, start) in &starts {
            write_watermark(&root, addr, &name, *start)?;
        }
        Ok::<_, std::io::Error>(starts)
    })
    .await
    .map_err(|error| QueueError::Unavailable(format!("creating subscription state: {error}")))??;
    subscription.add_shards(starts);
    Ok(())
}
