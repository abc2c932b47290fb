//! The Pulsar queue: the [`Queue`] role on an Apache Pulsar broker (or a broker that
//! speaks the Pulsar binary protocol, such as pulsar-lite), through the `pulsar` crate.
//!
//! # Topics
//! Each project is a topic family `persistent://{tenant}/{namespace}/{project}`, and
//! each shard is one partition of it, addressed by its own name:
//! `persistent://{tenant}/{namespace}/{project}-partition-{k}` with `k` =
//! [`ShardAddr::partition`]. Addressing partitions by name works on Apache Pulsar (where
//! the control plane may create the partitioned topic through the admin API) and on
//! brokers without an admin API, where the partition topics are auto-created on first
//! use (pulsar-lite needs `default_partitions = 0` for that).
//!
//! # Messages
//! One [`Queue::produce`] call is one Pulsar message: the payload is the bytes given
//! (the batch format of `docs/queue-message-format.md`), the properties are
//! `pool_id`, `record_count` and `format_version` as decimal strings. Producers do no
//! client-side batching and no compression (the payload is already zstd-compressed),
//! so one message id always names exactly one batch.
//!
//! # Positions
//! A [`Position`] is the message id packed into 64 bits:
//! `ledger_id << 32 | entry_id`. Within a topic, Pulsar's (ledger, entry) pairs grow
//! strictly (a topic only ever moves to a ledger with a higher id, and entries count up
//! within a ledger), so positions are unique and strictly increasing per shard. Ids
//! that do not fit (ledger or entry ≥ 2³²) are refused with
//! [`QueueError::Unavailable`] rather than wrapped. Positions are not dense: the end
//! position is `last + 1`, and the next message may get a larger position (after a
//! ledger roll-over), never a smaller one.
//!
//! # Guarantees and their limits
//! - `produce` returns only after the broker's send receipt, within
//!   `produce_timeout_ms`; at most `max_in_flight_produces` receipts are awaited at
//!   once (further produces wait for a slot within the same time limit, then fail
//!   with [`QueueError::Full`]). A timeout or a connection failure is
//!   [`QueueError::Unavailable`]; the broker's backlog quota error is
//!   [`QueueError::Full`]. A timed-out message may still be stored later (the
//!   producer resends it); delivery is at-least-once anyway.
//! - Consumers ([`consumer`]) hold one Shared-subscription consumer per shard topic.
//!   Nacks are delayed by the queue itself (`nack_redelivery_delay_ms`), because the
//!   released pulsar-rs asks the broker for redelivery at once, which would make a
//!   failing consumer spin.
//! - [`Delivery::redelivered`]: pulsar-rs 6.9 does not expose the broker's per-message
//!   redelivery count, so the flag is computed here: it is set for a message this
//!   process delivered before (nack, a dropped consumer), for a message published
//!   before the consumer attached to the shard (a restart or a takeover may redeliver
//!   those), and for a message older than `assume_redelivered_after_ms` (it may have
//!   gone to a consumer in another process that died). A message that another
//!   process received and lost within that window is not flagged; consumers must
//!   therefore keep every write idempotent (document ids derived from positions do).
//! - Readers ([`reader`]) are non-durable consumers on one partition topic; one reader
//!   per shard is cached so that a cursor that reads on from where it stopped costs
//!   no new subscription.
//! - [`Queue::backlog`] reads the broker's Prometheus metrics when `metrics_url` is
//!   set ([`metrics`]: exact message count, bytes estimated from the average message
//!   size). Without it, it asks through a consumer of the subscription that takes no
//!   messages (`CONSUMER_STATS`, which pulsar-lite does not implement); the binary
//!   protocol reports no byte count, so `bytes` is 0 then, and asking creates the
//!   subscription if it did not exist (at the earliest message).
//! - [`Queue::delete_shards`]: without an admin API nothing can delete a topic over
//!   the binary protocol. The queue closes its producers and readers for those
//!   shards and unsubscribes the subscriptions it has consumed them with (where no
//!   other consumer is attached); the data then expires by the broker's retention.
//!   Pool ids are never reused and every message carries its `pool_id`, so data left
//!   in a re-used partition is recognisable. With `admin_url` set, a deleted
//!   project's whole partitioned topic is deleted through the admin REST API
//!   ([`Queue::drop_project`]); Pulsar cannot delete single partitions of it.

pub mod admin;
pub(crate) mod consumer;
pub(crate) mod metrics;
pub(crate) mod reader;

#[cfg(any(test, feature = "testsuite"))]
pub mod test_relay;
#[cfg(test)]
mod tests;

use logpool_core::pool_id::PoolId;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use logpool_core::routing::ShardAddr;
use pulsar::consumer::InitialPosition;
use pulsar::error::{ConnectionError, ConsumerError, ProducerError, ServiceDiscoveryError};
use pulsar::proto::{MessageIdData, ServerError};
use pulsar::{
    ConnectionRetryOptions, ConsumerOptions, OperationRetryOptions, Producer, ProducerOptions,
    Pulsar, SubType, TokioExecutor,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use self::consumer::PulsarConsumer;
use self::reader::{OwnedReader, ReaderCache};
use crate::queue::{
    BatchProperties, Consumer, Position, Queue, QueueError, QueueMessage, QueueResult, ReadStart,
    ShardBacklog, ShardReader,
};

/// How long a producer refused with [`QueueError::Full`] should wait.
const FULL_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Message property names (the public message format, `docs/queue-message-format.md`).
const PROPERTY_POOL_ID: &str = "pool_id";
const PROPERTY_RECORD_COUNT: &str = "record_count";
const PROPERTY_FORMAT_VERSION: &str = "format_version";

/// Pool id given to a message without a readable `pool_id` property (a foreign
/// producer): real pool ids are positive, so consumers can recognise and skip it.
pub const UNKNOWN_POOL_ID: PoolId = PoolId::new(-1);

/// Configuration of the Pulsar queue (`[queue]` with `type = "pulsar"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PulsarQueueConfig {
    /// Broker service URL: `pulsar://host:6650`, or `pulsar+ssl://host:6651` for TLS.
    pub url: String,
    /// Namespace, under each tenant, that holds the project topics:
    /// `persistent://{tenant}/{namespace}/{project}-partition-{k}`.
    pub namespace: String,
    /// A produce fails with "unavailable" (HTTP 503) when the broker's send receipt
    /// has not arrived within this many milliseconds, including connecting and
    /// creating the producer.
    pub produce_timeout_ms: u64,
    /// Most produces awaiting a broker receipt at once, over all shards. Further
    /// produces wait for a slot (within `produce_timeout_ms`) and then fail as "full".
    pub max_in_flight_produces: usize,
    /// Time limit, in milliseconds, for connecting to the broker and for each request
    /// other than produce (lookup, subscribe, reading, statistics).
    pub operation_timeout_ms: u64,
    /// Delay before a nacked message is delivered again, in milliseconds. The queue
    /// holds nacked messages this long before asking the broker to redeliver them.
    pub nack_redelivery_delay_ms: u64,
    /// A delivered message that is neither acked nor nacked within this many
    /// milliseconds is delivered again. 0 (the default) keeps it with its consumer
    /// until the consumer acks, nacks or goes away, like the embedded queue.
    pub ack_timeout_ms: u64,
    /// Messages each consumer and reader fetches ahead from each shard. Each message is
    /// one batch, so this bounds client memory to about this many batches per shard.
    pub receiver_queue_size: u32,
    /// After this many redeliveries a message is moved to the dead-letter topic
    /// `{shard topic}-{subscription}{dead_letter_topic_suffix}` and acked. 0 (the
    /// default) never dead-letters: a nacked message is retried forever.
    pub max_redeliveries: u32,
    /// Suffix of dead-letter topic names (see `max_redeliveries`).
    pub dead_letter_topic_suffix: String,
    /// A delivery of a message published longer ago than this many milliseconds is
    /// flagged `redelivered`, because another process may have received it before and
    /// died (the Pulsar client does not expose the broker's redelivery count). 0 turns
    /// this off.
    pub assume_redelivered_after_ms: u64,
    /// The broker's Prometheus endpoint (`http://host:8080/metrics`, plain HTTP), from
    /// which subscription backlogs are read. Unset: backlogs are asked for over the
    /// binary protocol, which some brokers (pulsar-lite) do not answer.
    pub metrics_url: Option<String>,
    /// The broker's admin REST API (`http://broker:8080`). When set, the control plane
    /// creates and grows each project's partitioned topic there and deletes it with
    /// the project ([`admin`]); unset, partition topics are auto-created on first use.
    pub admin_url: Option<String>,
    /// Bearer token for the admin API, when the broker requires authentication.
    pub admin_token: Option<admin::AdminToken>,
}

impl Default for PulsarQueueConfig {
    fn default() -> PulsarQueueConfig {
        PulsarQueueConfig {
            url: "pulsar://127.0.0.1:6650".to_string(),
            namespace: "logs".to_string(),
            produce_timeout_ms: 5_000,
            max_in_flight_produces: 1_000,
            operation_timeout_ms: 10_000,
            nack_redelivery_delay_ms: 1_000,
            ack_timeout_ms: 0,
            receiver_queue_size: 64,
            max_redeliveries: 0,
            dead_letter_topic_suffix: "-DLQ".to_string(),
            assume_redelivered_after_ms: 60_000,
            metrics_url: None,
            admin_url: None,
            admin_token: None,
        }
    }
}

impl PulsarQueueConfig {
    /// Checks the values that the broker would otherwise reject later, naming the key.
    fn validate(&self) -> QueueResult<()> {
        let invalid = |key: &str, why: &str| {
            Err(QueueError::Unavailable(format!(
                "invalid pulsar queue config `{key}`: {why}"
            )))
        };
        if !(self.url.starts_with("pulsar://") || self.url.starts_with("pulsar+ssl://")) {
            return invalid("url", "must start with pulsar:// or pulsar+ssl://");
        }
        if !is_topic_name_part(&self.namespace) {
            return invalid("namespace", "must be a non-empty name without `/`");
        }
        if self
            .metrics_url
            .as_ref()
            .is_some_and(|url| !url.starts_with("http://"))
        {
            return invalid("metrics_url", "must start with http://");
        }
        if self
            .admin_url
            .as_ref()
            .is_some_and(|url| !url.starts_with("http://"))
        {
            return invalid("admin_url", "must start with http://");
        }
        if self.produce_timeout_ms == 0 {
            return invalid("produce_timeout_ms", "must be positive");
        }
        if self.operation_timeout_ms == 0 {
            return invalid("operation_timeout_ms", "must be positive");
        }
        if self.max_in_flight_produces == 0 {
            return invalid("max_in_flight_produces", "must be positive");
        }
        if self.receiver_queue_size == 0 {
            return invalid("receiver_queue_size", "must be positive");
        }
        if self.max_redeliveries > 0 && self.dead_letter_topic_suffix.is_empty() {
            return invalid(
                "dead_letter_topic_suffix",
                "must not be empty when max_redeliveries is set",
            );
        }
        Ok(())
    }

    fn produce_timeout(&self) -> Duration {
        Duration::from_millis(self.produce_timeout_ms)
    }

    fn operation_timeout(&self) -> Duration {
        Duration::from_millis(self.operation_timeout_ms)
    }
}

/// The client type used throughout.
type Client = Pulsar<TokioExecutor>;

/// One cached producer slot per shard; the async mutex serialises creation and the
/// (short) enqueueing of each send, which also keeps sends of one shard in order.
type ProducerSlot = Arc<tokio::sync::Mutex<Option<Producer<TokioExecutor>>>>;

/// State shared by the queue handle, its consumers and its readers.
pub(crate) struct Shared {
    pub(crate) config: PulsarQueueConfig,
    /// The client, connected lazily and re-created after a failed connection.
    client: tokio::sync::Mutex<Option<Client>>,
    pub(crate) closed: AtomicBool,
    /// Deliveries made by this process and not acked yet, per subscription.
    pub(crate) deliveries: DeliveryLedger,
    /// Subscription names consumed through this queue (for `delete_shards`).
    subscriptions: Mutex<std::collections::HashSet<String>>,
    /// The admin API client, when `admin_url` is configured.
    admin: Option<admin::PulsarAdmin>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Shared")
            .field("config", &self.config)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Returns the connected client, connecting first if needed (bounded by the
    /// operation timeout).
    pub(crate) async fn client(&self) -> QueueResult<Client> {
        if self.closed.load(Ordering::Acquire) {
            return Err(QueueError::Closed);
        }
        let mut client = self.client.lock().await;
        if let Some(client) = client.as_ref() {
            return Ok(client.clone());
        }
        let timeout = self.config.operation_timeout();
        let builder = Pulsar::builder(self.config.url.clone(), TokioExecutor)
            .with_connection_retry_options(ConnectionRetryOptions {
                min_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_secs(2),
                max_retries: 3,
                connection_timeout: timeout,
                ..ConnectionRetryOptions::default()
            })
            .with_operation_retry_options(OperationRetryOptions {
                operation_timeout: timeout.max(self.config.produce_timeout()),
                retry_delay: Duration::from_millis(200),
                max_retries: Some(5),
            })
            // Produces are bounded by `max_in_flight_produces`; a larger outbound queue
            // means a full one (SlowDown) only happens when acks and control frames
            // pile up on top of a full produce window.
            .with_outbound_channel_size(self.config.max_in_flight_produces.saturating_add(64));
        let connected = tokio::time::timeout(timeout, builder.build())
            .await
            .map_err(|_| {
                QueueError::Unavailable(format!(
                    "could not connect to the pulsar broker {} within {} ms",
                    self.config.url, self.config.operation_timeout_ms
                ))
            })?
            .map_err(|error| unavailable("could not connect to the pulsar broker", &error))?;
        *client = Some(connected.clone());
        Ok(connected)
    }

    /// Forgets the client after a connection-level failure, so the next call connects
    /// again instead of reusing a client whose connection manager gave up.
    async fn reset_client(&self) {
        *self.client.lock().await = None;
    }

    /// Returns the topic of a shard.
    pub(crate) fn topic(&self, shard: &ShardAddr) -> String {
        topic_name(&self.config.namespace, shard)
    }

    /// Records that `subscription` is consumed through this queue.
    pub(crate) fn note_subscription(&self, subscription: &str) {
        lock(&self.subscriptions).insert(subscription.to_string());
    }
}

/// The Pulsar [`Queue`]. See the module documentation.
pub struct PulsarQueue {
    shared: Arc<Shared>,
    producers: Mutex<HashMap<ShardAddr, ProducerSlot>>,
    in_flight_produces: Semaphore,
    readers: ReaderCache,
}

impl fmt::Debug for PulsarQueue {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PulsarQueue")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl PulsarQueue {
    /// Creates the queue without connecting: the broker is contacted on first use, and
    /// again after a failed connection, so the queue survives a broker that is down at
    /// start-up (each call then fails with [`QueueError::Unavailable`]).
    ///
    /// # Errors
    /// [`QueueError::Unavailable`] naming the config key when the configuration is invalid.
    pub fn new(config: PulsarQueueConfig) -> QueueResult<PulsarQueue> {
        config.validate()?;
        let in_flight_produces = Semaphore::new(config.max_in_flight_produces);
        let admin = match &config.admin_url {
            Some(url) => Some(admin::PulsarAdmin::new(
                url,
                &config.namespace,
                config.admin_token.as_ref().map(|t| t.expose().to_string()),
                config.operation_timeout(),
            )?),
            None => None,
        };
        Ok(PulsarQueue {
            shared: Arc::new(Shared {
                admin,
                config,
                client: tokio::sync::Mutex::new(None),
                closed: AtomicBool::new(false),
                deliveries: DeliveryLedger::default(),
                subscriptions: Mutex::new(std::collections::HashSet::new()),
            }),
            producers: Mutex::new(HashMap::new()),
            in_flight_produces,
            readers: ReaderCache::default(),
        })
    }

    /// Creates the queue and connects to the broker now (fail fast at start-up).
    ///
    /// # Errors
    /// As [`PulsarQueue::new`], and [`QueueError::Unavailable`] when the broker cannot
    /// be reached within `operation_timeout_ms`.
    pub async fn connect(config: PulsarQueueConfig) -> QueueResult<PulsarQueue> {
        let queue = PulsarQueue::new(config)?;
        queue.check_health().await?;
        Ok(queue)
    }

    /// Returns the configuration.
    pub fn config(&self) -> &PulsarQueueConfig {
        &self.shared.config
    }

    /// Returns the topic name of a shard.
    pub fn topic(&self, shard: &ShardAddr) -> String {
        self.shared.topic(shard)
    }

    fn producer_slot(&self, shard: &ShardAddr) -> ProducerSlot {
        Arc::clone(lock(&self.producers).entry(shard.clone()).or_default())
    }

    /// Sends one message and waits for its receipt (no timeout: the caller bounds it).
    async fn send_and_wait(
        &self,
        shard: &ShardAddr,
        message: pulsar::producer::Message,
    ) -> QueueResult<MessageIdData> {
        let slot = self.producer_slot(shard);
        let receipt = {
            let mut producer = slot.lock().await;
            if producer.is_none() {
                let client = self.shared.client().await?;
                let created = client
                    .producer()
                    .with_topic(self.shared.topic(shard))
                    .with_options(ProducerOptions {
                        // One message per produce call: no client batching (its
                        // receipts would wait for a batch), no compression (the
                        // payload is zstd already).
                        batch_size: None,
                        compression: None,
                        ..ProducerOptions::default()
                    })
                    .build()
                    .await
                    .map_err(|error| {
                        classify_send_error(shard, "could not create a pulsar producer", &error)
                    })?;
                *producer = Some(created);
            }
            let Some(ready) = producer.as_mut() else {
                return Err(QueueError::Unavailable(
                    "pulsar producer vanished".to_string(),
                ));
            };
            match ready.send_non_blocking(message).await {
                Ok(receipt) => receipt,
                Err(error) => {
                    // A producer that failed to enqueue may be closed for good; a new
                    // one is created on the next call.
                    if is_producer_closed(&error) {
                        *producer = None;
                    }
                    return Err(classify_send_error(shard, "pulsar send failed", &error));
                }
            }
        };
        let receipt = receipt
            .await
            .map_err(|error| classify_send_error(shard, "pulsar send was not confirmed", &error))?;
        receipt.message_id.ok_or_else(|| {
            QueueError::Unavailable("pulsar send receipt without a message id".to_string())
        })
    }
}

#[async_trait]
impl Queue for PulsarQueue {
    async fn produce(
        &self,
        shard: &ShardAddr,
        properties: BatchProperties,
        payload: Bytes,
    ) -> QueueResult<Position> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(QueueError::Closed);
        }
        validate_shard(shard)?;
        let deadline = tokio::time::Instant::now() + self.shared.config.produce_timeout();
        let _permit = tokio::time::timeout_at(deadline, self.in_flight_produces.acquire())
            .await
            .map_err(|_| QueueError::Full {
                shard: shard.clone(),
                reason: format!(
                    "{} produces are already waiting for broker receipts (max_in_flight_produces)",
                    self.shared.config.max_in_flight_produces
                ),
                retry_after: FULL_RETRY_AFTER,
            })?
            .map_err(|_| QueueError::Closed)?;
        let message = pulsar::producer::Message {
            payload: payload.to_vec(),
            properties: HashMap::from([
                (PROPERTY_POOL_ID.to_string(), properties.pool_id.to_string()),
                (
                    PROPERTY_RECORD_COUNT.to_string(),
                    properties.record_count.to_string(),
                ),
                (
                    PROPERTY_FORMAT_VERSION.to_string(),
                    properties.format_version.to_string(),
                ),
            ]),
            ..pulsar::producer::Message::default()
        };
        let message_id = tokio::time::timeout_at(deadline, self.send_and_wait(shard, message))
            .await
            .map_err(|_| {
                QueueError::Unavailable(format!(
                    "no pulsar send receipt for shard {shard:?} within {} ms",
                    self.shared.config.produce_timeout_ms
                ))
            })??;
        position_of(&message_id)
    }

    async fn subscribe(
        &self,
        subscription: &str,
        shards: Vec<ShardAddr>,
    ) -> QueueResult<Box<dyn Consumer>> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(QueueError::Closed);
        }
        for shard in &shards {
            validate_shard(shard)?;
        }
        self.shared.note_subscription(subscription);
        let consumer =
            PulsarConsumer::join(Arc::clone(&self.shared), subscription.to_string(), shards)
                .await?;
        Ok(Box::new(consumer))
    }

    async fn read(
        &self,
        shard: &ShardAddr,
        start: ReadStart,
        max_messages: usize,
    ) -> QueueResult<Vec<QueueMessage>> {
        if max_messages == 0 || start == ReadStart::Latest {
            return Ok(Vec::new());
        }
        validate_shard(shard)?;
        self.readers
            .read(&self.shared, shard, start, max_messages)
            .await
    }

    async fn end_position(&self, shard: &ShardAddr) -> QueueResult<Position> {
        validate_shard(shard)?;
        self.readers.end_position(&self.shared, shard).await
    }

    async fn open_reader(
        &self,
        shard: &ShardAddr,
        start: ReadStart,
    ) -> QueueResult<Box<dyn ShardReader>> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(QueueError::Closed);
        }
        validate_shard(shard)?;
        let reader = OwnedReader::open(Arc::clone(&self.shared), shard.clone(), start).await?;
        Ok(Box::new(reader))
    }

    async fn begin_position(&self, shard: &ShardAddr) -> QueueResult<Position> {
        validate_shard(shard)?;
        // The end is taken first: a message produced between the two calls is then
        // at or after the answer, never skipped by a reader starting there.
        let end = self.readers.end_position(&self.shared, shard).await?;
        let oldest = self
            .readers
            .read(&self.shared, shard, ReadStart::Earliest, 1)
            .await?;
        Ok(oldest.first().map_or(end, |message| message.position))
    }

    async fn position_at_time(&self, shard: &ShardAddr, time_ms: i64) -> QueueResult<Position> {
        validate_shard(shard)?;
        // The end is taken first: a message produced between the two calls is then
        // at or after the answer, never skipped by a reader starting there.
        let end = self.readers.end_position(&self.shared, shard).await?;
        let first = self
            .readers
            .read(&self.shared, shard, ReadStart::PublishTime(time_ms), 1)
            .await?;
        Ok(first.first().map_or(end, |message| message.position))
    }

    async fn backlog(
        &self,
        subscription: &str,
        shards: &[ShardAddr],
    ) -> QueueResult<Vec<ShardBacklog>> {
        for shard in shards {
            validate_shard(shard)?;
        }
        let metrics = match &self.shared.config.metrics_url {
            Some(url) => Some(
                tokio::time::timeout(
                    self.shared.config.operation_timeout(),
                    metrics::BacklogMetrics::fetch(url),
                )
                .await
                .map_err(|_| QueueError::Unavailable(format!("fetching {url} timed out")))??,
            ),
            None => None,
        };
        let mut backlogs = Vec::with_capacity(shards.len());
        for shard in shards {
            let (messages, bytes) = match &metrics {
                Some(metrics) => {
                    metrics.backlog(&self.shared.config.namespace, shard, subscription)
                }
                // The binary protocol reports no backlog size in bytes.
                None => (self.subscription_backlog(subscription, shard).await?, 0),
            };
            let end_position = self.readers.end_position(&self.shared, shard).await?;
            backlogs.push(ShardBacklog {
                shard: shard.clone(),
                messages,
                bytes,
                end_position,
            });
        }
        Ok(backlogs)
    }

    async fn prepare_shards(&self, shards: &[ShardAddr]) -> QueueResult<()> {
        let Some(admin) = &self.shared.admin else {
            return Ok(());
        };
        for width in admin::required_widths(shards) {
            admin.ensure_width(&width).await?;
        }
        Ok(())
    }

    async fn drop_project(&self, tenant: &str, project: &str) -> QueueResult<()> {
        match &self.shared.admin {
            Some(admin) => admin.delete_topic(tenant, project).await,
            None => Ok(()),
        }
    }

    async fn delete_shards(&self, shards: &[ShardAddr]) -> QueueResult<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(QueueError::Closed);
        }
        for shard in shards {
            validate_shard(shard)?;
        }
        let slots: Vec<ProducerSlot> = {
            let mut producers = lock(&self.producers);
            shards
                .iter()
                .filter_map(|shard| producers.remove(shard))
                .collect()
        };
        for slot in slots {
            if let Some(mut producer) = slot.lock().await.take() {
                // Best effort: the producer goes away with the topic's data anyway.
                let _ =
                    tokio::time::timeout(self.shared.config.operation_timeout(), producer.close())
                        .await;
            }
        }
        self.readers.forget(shards).await;
        self.shared.deliveries.forget_shards(shards);
        let subscriptions: Vec<String> = lock(&self.shared.subscriptions).iter().cloned().collect();
        for shard in shards {
            for subscription in &subscriptions {
                if let Err(error) = self.unsubscribe(subscription, shard).await {
                    tracing::warn!(%error, subscription = %subscription, shard = ?shard, "could not unsubscribe from a deleted shard; its data expires by the broker's retention");
                }
            }
        }
        Ok(())
    }

    async fn check_health(&self) -> QueueResult<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(QueueError::Closed);
        }
        let client = self.shared.client().await?;
        // A lookup is a round trip to the broker that creates nothing. An error the
        // broker answers with (say, an unknown namespace) still proves it is up.
        let probe = format!(
            "persistent://public/{}/logpool-health-check",
            self.shared.config.namespace
        );
        match tokio::time::timeout(
            self.shared.config.operation_timeout(),
            client.lookup_topic(probe),
        )
        .await
        {
            Err(_) => Err(QueueError::Unavailable(format!(
                "the pulsar broker did not answer a lookup within {} ms",
                self.shared.config.operation_timeout_ms
            ))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(pulsar::Error::ServiceDiscovery(ServiceDiscoveryError::Query(..)))) => Ok(()),
            Ok(Err(error)) => {
                self.shared.reset_client().await;
                Err(unavailable("the pulsar broker is unreachable", &error))
            }
        }
    }

    async fn shutdown(&self) -> QueueResult<()> {
        self.shared.closed.store(true, Ordering::Release);
        let slots: Vec<ProducerSlot> = lock(&self.producers)
            .drain()
            .map(|(_, slot)| slot)
            .collect();
        for slot in slots {
            if let Some(mut producer) = slot.lock().await.take() {
                // Every produce has returned or timed out by now, or is cut off by the
                // close: nothing more can be flushed.
                if let Err(error) =
                    tokio::time::timeout(self.shared.config.operation_timeout(), producer.close())
                        .await
                        .unwrap_or(Ok(()))
                {
                    tracing::debug!(%error, "closing a pulsar producer failed");
                }
            }
        }
        self.readers.clear().await;
        // Consumers see `closed` and close their topic consumers on their next call.
        self.shared.client.lock().await.take();
        Ok(())
    }
}

impl PulsarQueue {
    /// Returns the backlog of `subscription` on `shard`, asking the broker through a
    /// consumer of the subscription that never grants permits, so nothing is
    /// dispatched to it.
    async fn subscription_backlog(
        &self,
        subscription: &str,
        shard: &ShardAddr,
    ) -> QueueResult<u64> {
        let timeout = self.shared.config.operation_timeout();
        let work = async {
            let client = self.shared.client().await?;
            let mut probe =
                stats_consumer(&client, &self.shared.topic(shard), subscription).await?;
            let stats = probe
                .get_stats()
                .await
                .map_err(|error| unavailable("could not read pulsar consumer statistics", &error));
            // Closing frees the consumer slot right away; dropping would too, later.
            let _ = probe.close().await;
            let stats = stats?;
            Ok::<_, QueueError>(
                stats
                    .first()
                    .and_then(|stats| stats.msg_backlog)
                    .unwrap_or(0),
            )
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| {
            QueueError::Unavailable(format!("pulsar backlog of {shard:?} timed out"))
        })?
    }

    /// Unsubscribes `subscription` from a shard's topic (the broker refuses while other
    /// consumers are attached).
    async fn unsubscribe(&self, subscription: &str, shard: &ShardAddr) -> QueueResult<()> {
        let timeout = self.shared.config.operation_timeout();
        let work = async {
            let client = self.shared.client().await?;
            let mut probe =
                stats_consumer(&client, &self.shared.topic(shard), subscription).await?;
            let result = probe
                .unsubscribe()
                .await
                .map_err(|error| unavailable("pulsar unsubscribe failed", &error));
            if result.is_err() {
                let _ = probe.close().await;
            }
            result
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| {
            QueueError::Unavailable(format!("pulsar unsubscribe from {shard:?} timed out"))
        })?
    }
}

/// Creates a consumer of `subscription` that takes no messages (zero permits), for
/// statistics and unsubscribing.
async fn stats_consumer(
    client: &Client,
    topic: &str,
    subscription: &str,
) -> QueueResult<pulsar::Consumer<Vec<u8>, TokioExecutor>> {
    client
        .consumer()
        .with_topic(topic)
        .with_subscription(subscription)
        .with_subscription_type(SubType::Shared)
        // Zero permits: the broker dispatches nothing to this consumer.
        .with_batch_size(0)
        .with_options(
            ConsumerOptions::default()
                .with_initial_position(InitialPosition::Earliest)
                .durable(true),
        )
        .build()
        .await
        .map_err(|error| unavailable("could not attach to a pulsar subscription", &error))
}

/// Returns `persistent://{tenant}/{namespace}/{project}-partition-{k}`.
pub(crate) fn topic_name(namespace: &str, shard: &ShardAddr) -> String {
    format!(
        "persistent://{}/{}/{}-partition-{}",
        shard.tenant, namespace, shard.project, shard.partition
    )
}

/// Tenant, namespace and project names become topic name parts: `/` would change the
/// topic's structure and `:`/whitespace are not valid in Pulsar names.
fn is_topic_name_part(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '='))
}

/// Rejects shard addresses that would not make a valid partition topic name.
pub(crate) fn validate_shard(shard: &ShardAddr) -> QueueResult<()> {
    if is_topic_name_part(&shard.tenant) && is_topic_name_part(&shard.project) {
        Ok(())
    } else {
        Err(QueueError::Unavailable(format!(
            "invalid shard address {shard:?} for the pulsar queue"
        )))
    }
}

/// Packs a message id into a position (see the module documentation).
///
/// # Errors
/// [`QueueError::Unavailable`] when the ledger or entry id does not fit in 32 bits.
pub(crate) fn position_of(id: &MessageIdData) -> QueueResult<Position> {
    let (Ok(ledger), Ok(entry)) = (u32::try_from(id.ledger_id), u32::try_from(id.entry_id)) else {
        return Err(QueueError::Unavailable(format!(
            "pulsar message id {}:{} does not fit logpool's position scheme (32-bit ledger and entry ids)",
            id.ledger_id, id.entry_id
        )));
    };
    Ok((u64::from(ledger) << 32) | u64::from(entry))
}

/// Unpacks a position into the message id it was made from.
pub(crate) fn message_id_of(position: Position) -> MessageIdData {
    MessageIdData {
        ledger_id: position >> 32,
        entry_id: position & u64::from(u32::MAX),
        ..MessageIdData::default()
    }
}

/// Reads the batch properties of a received message. Properties a foreign producer
/// left out are taken from the payload header where it has them (format version,
/// record count) and the pool is [`UNKNOWN_POOL_ID`], so the message can still be
/// acked or dead-lettered by its consumer instead of blocking the subscription.
pub(crate) fn batch_properties(payload: &pulsar::Payload) -> BatchProperties {
    let property = |key: &str| {
        payload
            .metadata
            .properties
            .iter()
            .find(|property| property.key == key)
            .map(|property| property.value.as_str())
    };
    let data = &payload.data;
    let header_count = data
        .get(1..5)
        .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
        .map(u32::from_le_bytes);
    let pool_id = property(PROPERTY_POOL_ID).and_then(|value| value.parse().ok());
    let record_count = property(PROPERTY_RECORD_COUNT)
        .and_then(|value| value.parse().ok())
        .or(header_count);
    let format_version = property(PROPERTY_FORMAT_VERSION)
        .and_then(|value| value.parse().ok())
        .or_else(|| data.first().copied());
    if pool_id.is_none() || record_count.is_none() || format_version.is_none() {
        tracing::warn!(
            producer = %payload.metadata.producer_name,
            "pulsar message without valid logpool properties"
        );
    }
    BatchProperties {
        pool_id: pool_id.unwrap_or(UNKNOWN_POOL_ID),
        record_count: record_count.unwrap_or(0),
        format_version: format_version.unwrap_or(0),
    }
}

/// Turns a received Pulsar message into a queue message.
pub(crate) fn queue_message(
    shard: &ShardAddr,
    id: &MessageIdData,
    payload: pulsar::Payload,
) -> QueueResult<QueueMessage> {
    let position = position_of(id)?;
    let properties = batch_properties(&payload);
    Ok(QueueMessage {
        shard: shard.clone(),
        position,
        publish_time_ms: i64::try_from(payload.metadata.publish_time).unwrap_or(i64::MAX),
        properties,
        payload: Bytes::from(payload.data),
    })
}

/// Returns the server error code inside a client error, if the broker sent one.
fn server_error_of(error: &pulsar::Error) -> Option<ServerError> {
    let from_connection = |error: &ConnectionError| match error {
        ConnectionError::PulsarError(code, _) => *code,
        _ => None,
    };
    match error {
        pulsar::Error::Connection(error)
        | pulsar::Error::Producer(ProducerError::Connection(error))
        | pulsar::Error::Consumer(ConsumerError::Connection(error))
        | pulsar::Error::ServiceDiscovery(ServiceDiscoveryError::Connection(error)) => {
            from_connection(error)
        }
        pulsar::Error::ServiceDiscovery(ServiceDiscoveryError::Query(code, _)) => *code,
        _ => None,
    }
}

fn is_producer_closed(error: &pulsar::Error) -> bool {
    matches!(
        error,
        pulsar::Error::Producer(ProducerError::Closed | ProducerError::Fenced)
    ) || matches!(
        server_error_of(error),
        Some(ServerError::TopicTerminatedError | ServerError::ProducerFenced)
    )
}

/// Maps a produce-side client error: the broker's backlog quota and the client's
/// full send queue are backpressure ([`QueueError::Full`]); everything else means the
/// broker cannot take the message now ([`QueueError::Unavailable`]).
fn classify_send_error(shard: &ShardAddr, context: &str, error: &pulsar::Error) -> QueueError {
    let quota = matches!(
        server_error_of(error),
        Some(
            ServerError::ProducerBlockedQuotaExceededError
                | ServerError::ProducerBlockedQuotaExceededException
        )
    ) || {
        // Send errors arrive as an unexpected response carrying the broker's text.
        let text = format!("{error:?}");
        text.contains("QuotaExceeded") || text.contains("quota exceeded")
    };
    if quota {
        return QueueError::Full {
            shard: shard.clone(),
            reason: format!("the broker's backlog quota is exceeded: {error}"),
            retry_after: FULL_RETRY_AFTER,
        };
    }
    let slow_down = matches!(
        error,
        pulsar::Error::Producer(ProducerError::Connection(ConnectionError::SlowDown))
            | pulsar::Error::Connection(ConnectionError::SlowDown)
    );
    if slow_down {
        return QueueError::Full {
            shard: shard.clone(),
            reason: "the pulsar client's send queue is full".to_string(),
            retry_after: FULL_RETRY_AFTER,
        };
    }
    unavailable(context, error)
}

/// Wraps a client error as [`QueueError::Unavailable`].
pub(crate) fn unavailable(context: &str, error: &pulsar::Error) -> QueueError {
    QueueError::Unavailable(format!("{context}: {error}"))
}

/// Deliveries this process made and that were not acked yet, per subscription: a
/// second delivery of one of them is a redelivery. Entries of messages whose consumer
/// went away stay until some consumer here acks them, or until they age out.
#[derive(Debug, Default)]
pub(crate) struct DeliveryLedger {
    seen: Mutex<HashMap<String, TrackedDeliveries>>,
}

/// One subscription's deliveries in flight in this process, with when they were made.
type TrackedDeliveries = HashMap<(ShardAddr, Position), Instant>;

/// Entries per subscription above which old ones are pruned (messages acked by
/// another process never come back to be removed here).
const MAX_TRACKED_DELIVERIES: usize = 100_000;
/// Age after which a tracked delivery may be pruned; `assume_redelivered_after_ms`
/// flags older messages anyway.
const TRACKED_DELIVERY_MAX_AGE: Duration = Duration::from_secs(3600);

impl DeliveryLedger {
    /// Records a delivery and returns whether this process delivered it before.
    pub(crate) fn note_delivery(
        &self,
        subscription: &str,
        shard: &ShardAddr,
        position: Position,
    ) -> bool {
        let mut seen = lock(&self.seen);
        let deliveries = seen.entry(subscription.to_string()).or_default();
        let now = Instant::now();
        let before = deliveries.insert((shard.clone(), position), now).is_some();
        if deliveries.len() > MAX_TRACKED_DELIVERIES {
            deliveries.retain(|_, at| now.duration_since(*at) < TRACKED_DELIVERY_MAX_AGE);
            if deliveries.len() > MAX_TRACKED_DELIVERIES {
                deliveries.clear();
            }
        }
        before
    }

    /// Forgets an acked delivery.
    pub(crate) fn forget(&self, subscription: &str, shard: &ShardAddr, position: Position) {
        if let Some(deliveries) = lock(&self.seen).get_mut(subscription) {
            deliveries.remove(&(shard.clone(), position));
        }
    }

    /// Forgets every delivery of deleted shards.
    fn forget_shards(&self, shards: &[ShardAddr]) {
        for deliveries in lock(&self.seen).values_mut() {
            deliveries.retain(|(shard, _), _| !shards.contains(shard));
        }
    }
}

/// Returns the current time in milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// Locks a mutex, ignoring poisoning: the maps behind these locks stay consistent
/// after a panic elsewhere, so one panic should not spread to every request.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
