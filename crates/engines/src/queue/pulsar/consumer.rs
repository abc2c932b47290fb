//! [`PulsarConsumer`]: one member of a shared subscription on the Pulsar queue.
//!
//! It holds one Pulsar consumer (subscription type Shared) per shard topic, so that
//! [`Consumer::set_shards`] can attach and detach single shards without disturbing the
//! others, and so that the broker spreads each shard's messages over every member of
//! the subscription. Each topic consumer fetches ahead at most `receiver_queue_size`
//! messages; the broker counts those as delivered to this member.
//!
//! In-flight deliveries are kept as position → message id, which is what lets an ack
//! or a nack by [`DeliveryTag`] name the exact Pulsar message. A nacked message stays
//! in flight here until its redelivery time and is only then handed back to the
//! broker, because pulsar-rs 6.9 asks for redelivery at once and a consumer whose
//! index is down would otherwise spin on the same messages.
//!
//! Dropping the consumer (or detaching a shard) closes the topic consumers; the broker
//! then delivers their unacked messages to the remaining members.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::{select_all, FutureExt};
use futures::StreamExt;
use logpool_core::routing::ShardAddr;
use pulsar::consumer::{DeadLetterPolicy, InitialPosition};
use pulsar::proto::MessageIdData;
use pulsar::{ConsumerOptions, SubType, TokioExecutor};
use tokio::time::Instant;

use super::{now_ms, queue_message, unavailable, Shared};
use crate::queue::{Consumer, Delivery, DeliveryTag, Position, QueueError, QueueResult};

type TopicConsumer = pulsar::Consumer<Vec<u8>, TokioExecutor>;

/// A consumer of the Pulsar queue. Dropping it gives its in-flight messages back.
pub(crate) struct PulsarConsumer {
    shared: Arc<Shared>,
    subscription: String,
    /// The shards this consumer should read, in the order given.
    shards: Vec<ShardAddr>,
    /// The shards it currently reads (attaching may lag behind `shards` after a failure).
    attached: HashMap<ShardAddr, Attached>,
    /// Nacked deliveries waiting for their redelivery time, in nack order.
    delayed_nacks: Vec<(Instant, DeliveryTag)>,
    /// Where the next receive starts, so no shard is always served first.
    round_robin: usize,
}

impl fmt::Debug for PulsarConsumer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PulsarConsumer")
            .field("subscription", &self.subscription)
            .field("shards", &self.shards)
            .field("num_attached", &self.attached.len())
            .field("num_delayed_nacks", &self.delayed_nacks.len())
            .finish_non_exhaustive()
    }
}

/// One shard's topic consumer and its in-flight deliveries.
struct Attached {
    topic: String,
    consumer: TopicConsumer,
    /// When this consumer attached, in ms since the epoch: messages published earlier
    /// may have been delivered to a consumer before it.
    attached_at_ms: i64,
    in_flight: HashMap<Position, MessageIdData>,
}

impl PulsarConsumer {
    /// Joins `subscription` over `shards`, creating the subscription on each topic at
    /// the earliest message where it does not exist.
    pub(crate) async fn join(
        shared: Arc<Shared>,
        subscription: String,
        shards: Vec<ShardAddr>,
    ) -> QueueResult<PulsarConsumer> {
        let mut consumer = PulsarConsumer {
            shared,
            subscription,
            shards,
            attached: HashMap::new(),
            delayed_nacks: Vec::new(),
            round_robin: 0,
        };
        consumer.attach_missing().await?;
        Ok(consumer)
    }

    /// Attaches every wanted shard that is not attached yet.
    async fn attach_missing(&mut self) -> QueueResult<()> {
        let missing: Vec<ShardAddr> = self
            .shards
            .iter()
            .filter(|shard| !self.attached.contains_key(*shard))
            .cloned()
            .collect();
        for shard in missing {
            let attached = self.attach(&shard).await?;
            self.attached.insert(shard, attached);
        }
        Ok(())
    }

    async fn attach(&self, shard: &ShardAddr) -> QueueResult<Attached> {
        let config = &self.shared.config;
        let topic = self.shared.topic(shard);
        let client = self.shared.client().await?;
        let attached_at_ms = now_ms();
        let mut builder = client
            .consumer()
            .with_topic(&topic)
            .with_subscription(&self.subscription)
            .with_subscription_type(SubType::Shared)
            .with_batch_size(config.receiver_queue_size)
            .with_options(
                ConsumerOptions::default()
                    .with_initial_position(InitialPosition::Earliest)
                    .with_receiver_queue_size(config.receiver_queue_size)
                    .durable(true),
            );
        if config.ack_timeout_ms > 0 {
            builder = builder.with_unacked_message_resend_delay(Some(Duration::from_millis(
                config.ack_timeout_ms,
            )));
        }
        if config.max_redeliveries > 0 {
            builder = builder.with_dead_letter_policy(DeadLetterPolicy {
                max_redeliver_count: usize::try_from(config.max_redeliveries).unwrap_or(usize::MAX),
                dead_letter_topic: format!(
                    "{topic}-{}{}",
                    self.subscription, config.dead_letter_topic_suffix
                ),
            });
        }
        let subscribed =
            match tokio::time::timeout(config.operation_timeout(), builder.build()).await {
                Ok(Ok(consumer)) => Ok(consumer),
                Ok(Err(error)) => Err(unavailable(
                    &format!("could not subscribe to {topic}"),
                    &error,
                )),
                Err(_) => Err(QueueError::Unavailable(format!(
                    "subscribing to {topic} timed out after {} ms",
                    config.operation_timeout_ms
                ))),
            };
        let consumer = match subscribed {
            Ok(consumer) => consumer,
            Err(error) => {
                // After a broker restart the client's connection manager can keep
                // handing out a connection that never answers, so every later
                // subscribe would time out too: the next attempt connects afresh.
                self.shared.reset_client().await;
                return Err(error);
            }
        };
        Ok(Attached {
            topic,
            consumer,
            attached_at_ms,
            in_flight: HashMap::new(),
        })
    }

    /// Hands nacked messages whose delay is over back to the broker.
    async fn flush_due_nacks(&mut self) -> QueueResult<()> {
        if self.delayed_nacks.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.delayed_nacks)
            .into_iter()
            .partition(|(due_at, _)| *due_at <= now);
        self.delayed_nacks = waiting;
        for (_, tag) in due {
            self.nack_now(&tag).await?;
        }
        Ok(())
    }

    /// Asks the broker to redeliver one in-flight message now.
    async fn nack_now(&mut self, tag: &DeliveryTag) -> QueueResult<()> {
        let Some(attached) = self.attached.get_mut(&tag.shard) else {
            return Ok(());
        };
        let Some(id) = attached.in_flight.remove(&tag.position) else {
            return Ok(());
        };
        attached
            .consumer
            .nack_with_id(&attached.topic, id)
            .await
            .map_err(|error| {
                QueueError::Unavailable(format!(
                    "pulsar nack on {} failed: {error}",
                    attached.topic
                ))
            })
    }

    /// Turns a received message into a delivery and records it as in flight.
    fn deliver(
        &mut self,
        shard: &ShardAddr,
        message: pulsar::consumer::Message<Vec<u8>>,
    ) -> QueueResult<Delivery> {
        let Some(attached) = self.attached.get_mut(shard) else {
            return Err(QueueError::Unavailable(format!(
                "message for a detached shard {shard:?}"
            )));
        };
        let id = message.message_id.id.clone();
        let message = queue_message(shard, &id, message.payload)?;
        attached.in_flight.insert(message.position, id);
        let seen_here =
            self.shared
                .deliveries
                .note_delivery(&self.subscription, shard, message.position);
        let assume_after =
            i64::try_from(self.shared.config.assume_redelivered_after_ms).unwrap_or(i64::MAX);
        let old =
            assume_after > 0 && now_ms().saturating_sub(message.publish_time_ms) > assume_after;
        let redelivered = seen_here || message.publish_time_ms < attached.attached_at_ms || old;
        Ok(Delivery {
            message,
            redelivered,
        })
    }

    /// Takes already-fetched messages without waiting, one shard at a time in turn.
    fn take_ready(&mut self, max_messages: usize, out: &mut Vec<Delivery>) -> QueueResult<()> {
        let mut order: Vec<ShardAddr> = self
            .shards
            .iter()
            .filter(|shard| self.attached.contains_key(*shard))
            .cloned()
            .collect();
        if order.is_empty() {
            return Ok(());
        }
        let rotation = self.round_robin % order.len();
        order.rotate_left(rotation);
        self.round_robin = self.round_robin.wrapping_add(1);
        let mut exhausted = vec![false; order.len()];
        while out.len() < max_messages && exhausted.iter().any(|done| !done) {
            for (index, shard) in order.iter().enumerate() {
                if out.len() >= max_messages {
                    break;
                }
                if exhausted[index] {
                    continue;
                }
                let Some(attached) = self.attached.get_mut(shard) else {
                    exhausted[index] = true;
                    continue;
                };
                match attached.consumer.next().now_or_never() {
                    Some(Some(Ok(message))) => out.push(self.deliver(shard, message)?),
                    Some(Some(Err(error))) => {
                        exhausted[index] = true;
                        self.detach_broken(shard, &error.to_string());
                    }
                    Some(None) => {
                        exhausted[index] = true;
                        self.detach_broken(shard, "the consumer stopped");
                    }
                    None => exhausted[index] = true,
                }
            }
        }
        Ok(())
    }

    /// Drops a topic consumer that failed; it is attached again on the next receive,
    /// and the broker redelivers what it had in flight.
    fn detach_broken(&mut self, shard: &ShardAddr, why: &str) {
        tracing::warn!(subscription = %self.subscription, shard = ?shard, error = %why, "pulsar consumer failed, attaching again");
        self.attached.remove(shard);
        self.delayed_nacks.retain(|(_, tag)| &tag.shard != shard);
    }

    /// Waits until any attached topic consumer yields, or `until`.
    async fn wait_for_message(&mut self, until: Instant) -> QueueResult<Option<Delivery>> {
        if self.attached.is_empty() {
            tokio::time::sleep_until(until).await;
            return Ok(None);
        }
        let (shards, streams): (Vec<ShardAddr>, Vec<_>) = self
            .attached
            .iter_mut()
            .map(|(shard, attached)| (shard.clone(), attached.consumer.next()))
            .unzip();
        // `next()` on a stream is cancel-safe: a future dropped here loses no message.
        let first = tokio::select! {
            (item, index, _) = select_all(streams) => Some((item, index)),
            () = tokio::time::sleep_until(until) => None,
        };
        let Some((item, index)) = first else {
            return Ok(None);
        };
        let Some(shard) = shards.get(index).cloned() else {
            return Ok(None);
        };
        match item {
            Some(Ok(message)) => Ok(Some(self.deliver(&shard, message)?)),
            Some(Err(error)) => {
                self.detach_broken(&shard, &error.to_string());
                Ok(None)
            }
            None => {
                self.detach_broken(&shard, "the consumer stopped");
                Ok(None)
            }
        }
    }

    fn check_open(&mut self) -> QueueResult<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            // Closing the topic consumers hands their messages back to the broker.
            self.attached.clear();
            self.delayed_nacks.clear();
            return Err(QueueError::Closed);
        }
        Ok(())
    }
}

#[async_trait]
impl Consumer for PulsarConsumer {
    async fn receive(&mut self, max_messages: usize, wait: Duration) -> QueueResult<Vec<Delivery>> {
        self.check_open()?;
        if max_messages == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + wait;
        self.attach_missing().await?;
        let mut deliveries = Vec::new();
        loop {
            self.check_open()?;
            self.flush_due_nacks().await?;
            self.take_ready(max_messages, &mut deliveries)?;
            if !deliveries.is_empty() {
                return Ok(deliveries);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(deliveries);
            }
            if self.attached.len() < self.shards.len() {
                // A topic consumer failed meanwhile: attach it again before waiting.
                self.attach_missing().await?;
            }
            let next_nack = self.delayed_nacks.iter().map(|(due_at, _)| *due_at).min();
            let wake_at = next_nack.map_or(deadline, |due_at| due_at.min(deadline));
            if let Some(delivery) = self.wait_for_message(wake_at).await? {
                deliveries.push(delivery);
                // Take whatever else arrived with it, up to the limit.
                self.take_ready(max_messages, &mut deliveries)?;
                return Ok(deliveries);
            }
        }
    }

    async fn ack(&mut self, tags: &[DeliveryTag]) -> QueueResult<()> {
        self.delayed_nacks
            .retain(|(_, nacked)| !tags.contains(nacked));
        for tag in tags {
            let Some(attached) = self.attached.get_mut(&tag.shard) else {
                continue;
            };
            let Some(id) = attached.in_flight.remove(&tag.position) else {
                continue;
            };
            attached
                .consumer
                .ack_with_id(&attached.topic, id)
                .await
                .map_err(|error| {
                    QueueError::Unavailable(format!(
                        "pulsar ack on {} failed: {error}",
                        attached.topic
                    ))
                })?;
            self.shared
                .deliveries
                .forget(&self.subscription, &tag.shard, tag.position);
        }
        self.flush_due_nacks().await
    }

    async fn nack(&mut self, tags: &[DeliveryTag]) -> QueueResult<()> {
        let delay = Duration::from_millis(self.shared.config.nack_redelivery_delay_ms);
        let due_at = Instant::now() + delay;
        for tag in tags {
            let in_flight = self
                .attached
                .get(&tag.shard)
                .is_some_and(|attached| attached.in_flight.contains_key(&tag.position));
            let already_nacked = self.delayed_nacks.iter().any(|(_, nacked)| nacked == tag);
            if in_flight && !already_nacked {
                self.delayed_nacks.push((due_at, tag.clone()));
            }
        }
        self.flush_due_nacks().await
    }

    async fn set_shards(&mut self, shards: Vec<ShardAddr>) -> QueueResult<()> {
        self.check_open()?;
        for shard in &shards {
            super::validate_shard(shard)?;
        }
        // Dropping a topic consumer closes it: the broker hands its in-flight messages
        // to the other members of the subscription.
        self.attached.retain(|shard, _| shards.contains(shard));
        self.delayed_nacks
            .retain(|(_, tag)| shards.contains(&tag.shard));
        self.shards = shards;
        self.attach_missing().await
    }
}
