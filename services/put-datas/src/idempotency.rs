//! Idempotent PutDatas: a request carrying a key (`Idempotency-Key` header) stores
//! each of its records at most once, however often it is retried, within the
//! ledger's window (`[idempotency] window_secs`, at least a day).
//!
//! # Why this is needed
//! A request is split into one batch per shard, and the batches are produced
//! independently. When one produce fails the client gets a 503 although the other
//! batches are durable; a plain retry would store those again under new positions.
//!
//! # Design
//! Per key, the ledger ([`logpool_engines::idempotency`], shared by every put-datas
//! instance and durable across restarts) holds a [`RequestRecord`]: a hash of the
//! body, and for each part of the request (shard, record count) either the position
//! at which it is durable, or the *attempt* that may have stored it: a time before
//! the produce (less a margin for the clock) and a hash of the produced payload.
//!
//! 1. The shard split is a pure function of the key and the body (the key's hash
//!    replaces the rotating first shard), so a retry makes the same parts. A retry
//!    whose body differs from the first request's is refused (400).
//! 2. The request *claims* the key in the ledger (compare-and-set, for
//!    `claim_ms`). Another request with the key, on any instance, gets 409 with
//!    `Retry-After` while the claim lives, so two attempts never produce at once. A
//!    claim left by a killed process expires by itself.
//! 3. For each part with an attempt but no position, the queue is read from the
//!    first message published at or after the attempt's time for a message of the
//!    pool with the attempt's payload hash: if it is there, the part is durable (its produce was acknowledged but
//!    the answer was lost, or the process died before writing it down).
//! 4. Every part still missing gets a new attempt, and the attempts are written to
//!    the ledger **before** any produce starts. This is what closes the window
//!    between a produce being acknowledged and the ledger learning its position: a
//!    `kill -9` anywhere in that window leaves an attempt behind, which step 3 of the
//!    retry resolves by reading the queue. A new key is created with its claim and
//!    its attempts in one conditional write (steps 2 and 4 together, on the
//!    condition that the key is new), so the first attempt of a request costs two
//!    ledger writes and no read; only a retry reads the record.
//! 5. The parts are produced; the positions of those that succeeded are written down
//!    and the claim is released. If a part failed, the request answers its error
//!    (503) and the retry produces only what is missing.
//!
//! The payload of each attempt is unique (the records carry the attempt's arrival
//! time), so a 128-bit hash of it identifies the attempt's message among whatever
//! else was produced to the shard since. The scan of step 3 only happens after a
//! failure or a crash, and reads the shard from the attempt's time, at most
//! [`MAX_SCANNED_MESSAGES`] messages.
//!
//! When the ledger cannot be reached (etcd down), ingest goes on as it does for the
//! routing: a keyed request is stored as if it had no key ([`KeyedPut::LedgerUnavailable`]),
//! and the ledger is left alone for a few seconds so that requests do not each wait
//! for its timeout. A retry in that time may store batches twice.
//!
//! What is left to the operator: the claim must outlive the queue's produce timeout
//! (a produce still in flight when its claim expires could be missed by the scan of
//! a retry that took the key over), and the queue must retain a shard's messages as
//! long as a retry may come (a retry after queue retention removed the attempt's
//! message cannot find it).

use logpool_core::pool_id::PoolId;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use bytes::Bytes;
use futures::future::join_all;
use logpool_api::{ApiError, ErrorCode};
use logpool_core::batch::BATCH_FORMAT_VERSION;
use logpool_core::routing::ShardAddr;
use logpool_engines::idempotency::{IdempotencyConfig, IdempotencyLedger, LedgerError};
use logpool_engines::queue::{BatchProperties, Position, Queue, QueueError, ReadStart};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The request header that carries the key.
pub const KEY_HEADER: &str = "Idempotency-Key";

/// The longest accepted key, in bytes.
pub const MAX_KEY_LEN: usize = 128;

/// The most messages one retry reads from a shard to find an earlier attempt.
pub const MAX_SCANNED_MESSAGES: usize = 200_000;

/// Messages read per queue call while scanning.
const SCAN_CHUNK: usize = 256;

/// Conditional ledger writes lost to another request before giving up.
const MAX_LEDGER_RACES: usize = 8;

/// A validated request key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey(String);

impl RequestKey {
    /// Checks a key taken from `field`: 1 to [`MAX_KEY_LEN`] characters of
    /// `A-Z a-z 0-9 - _ . :`.
    ///
    /// # Errors
    /// 400 naming the field and the limit.
    pub fn parse(field: &str, key: &str) -> Result<RequestKey, ApiError> {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(ApiError::bad_request(format!(
                "`{field}` must be 1 to {MAX_KEY_LEN} characters long, got {}",
                key.len()
            ))
            .with_detail("field", field)
            .with_detail("limit", MAX_KEY_LEN));
        }
        if let Some(bad) = key
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
        {
            return Err(ApiError::bad_request(format!(
                "`{field}` may only hold letters, digits, `-`, `_`, `.` and `:`; found `{}`",
                bad.escape_debug()
            ))
            .with_detail("field", field));
        }
        Ok(RequestKey(key.to_string()))
    }

    /// Reads the key of a request from its headers, if it has one.
    ///
    /// # Errors
    /// 400 for a key that is not valid text or breaks [`RequestKey::parse`].
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<RequestKey>, ApiError> {
        let Some(value) = headers.get(KEY_HEADER) else {
            return Ok(None);
        };
        let text = value.to_str().map_err(|_| {
            ApiError::bad_request(format!("`{KEY_HEADER}` must be ASCII text"))
                .with_detail("field", KEY_HEADER)
        })?;
        RequestKey::parse(KEY_HEADER, text.trim()).map(Some)
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One batch of a request, ready to produce.
#[derive(Debug, Clone)]
pub struct PlannedPart {
    /// Shard index within the pool.
    pub shard_index: usize,
    /// The shard.
    pub shard: ShardAddr,
    /// Records in the batch.
    pub records: usize,
    /// The encoded batch.
    pub payload: Bytes,
}

/// Where a part ended up: its shard index, position and record count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartReceipt {
    /// Shard index within the pool.
    pub shard_index: usize,
    /// Queue position of the batch.
    pub position: Position,
    /// Records in the batch.
    pub records: usize,
}

/// Test-only faults of the produce path ([`IdempotencyConfig`]'s `test_*`
/// settings); both off in production.
#[derive(Debug, Default)]
pub struct ProduceFaults {
    fail_first_to_shard: Option<usize>,
    failed_once: AtomicBool,
    pause_after_shard: Duration,
}

impl ProduceFaults {
    /// The faults the configuration asks for.
    pub fn from_config(config: &IdempotencyConfig) -> ProduceFaults {
        ProduceFaults {
            fail_first_to_shard: config.test_fail_first_produce_to_shard,
            failed_once: AtomicBool::new(false),
            pause_after_shard: Duration::from_millis(config.test_pause_after_shard_produce_ms),
        }
    }

    fn fails(&self, shard_index: usize) -> bool {
        self.fail_first_to_shard == Some(shard_index)
            && !self.failed_once.swap(true, Ordering::SeqCst)
    }
}

/// Produces every part, concurrently (one after another with a pause when the test
/// fault asks for it), and returns each part's outcome in order.
pub async fn produce_parts(
    queue: &Arc<dyn Queue>,
    faults: &ProduceFaults,
    pool_id: PoolId,
    parts: &[&PlannedPart],
) -> Vec<Result<Position, QueueError>> {
    let produce_one = |part: &PlannedPart| {
        let queue = queue.clone();
        let properties = BatchProperties {
            pool_id,
            record_count: part.records as u32,
            format_version: BATCH_FORMAT_VERSION,
        };
        let fails = faults.fails(part.shard_index);
        let shard = part.shard.clone();
        let payload = part.payload.clone();
        async move {
            if fails {
                return Err(QueueError::Unavailable(
                    "test fault: this shard's first produce fails".to_string(),
                ));
            }
            queue.produce(&shard, properties, payload).await
        }
    };
    if faults.pause_after_shard.is_zero() {
        return join_all(parts.iter().map(|part| produce_one(part))).await;
    }
    let mut outcomes = Vec::with_capacity(parts.len());
    for part in parts {
        outcomes.push(produce_one(part).await);
        tokio::time::sleep(faults.pause_after_shard).await;
    }
    outcomes
}

/// What the ledger holds for one request key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RequestRecord {
    /// Hash of the body and the parameters that shape the split.
    body: String,
    /// The request that owns the key right now, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claim: Option<Claim>,
    /// One entry per part of the request, in split order.
    parts: Vec<PartRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Claim {
    token: u64,
    until_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PartRecord {
    shard: usize,
    records: usize,
    /// Where the part is durable, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    position: Option<Position>,
    /// The last produce that may have stored the part, while its outcome is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attempt: Option<Attempt>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Attempt {
    /// A time (ms since the epoch) before the produce, less [`CLOCK_MARGIN_MS`]:
    /// the message is published at or after it. A time, not the shard's end
    /// position, because reading the end costs a broker round trip (and a reader)
    /// per shard on every request, while the time is only looked up on a retry.
    since_ms: i64,
    /// Hash of the produced payload.
    payload: String,
}

/// How far before the produce a retry starts looking for an attempt's message, so
/// that a small step back of the clock does not hide it.
const CLOCK_MARGIN_MS: i64 = 10_000;

impl Attempt {
    /// An attempt to produce `part` now.
    fn now(part: &PlannedPart) -> Attempt {
        Attempt {
            since_ms: now_ms().saturating_sub(CLOCK_MARGIN_MS),
            payload: digest(&[&part.payload]),
        }
    }
}

/// Idempotent produce of requests with a key.
#[derive(Debug, Clone)]
pub struct Idempotency {
    ledger: Arc<dyn IdempotencyLedger>,
    claim: Duration,
    /// Until when (ms since the epoch) the ledger is not asked after it failed.
    ledger_resting_until_ms: Arc<AtomicI64>,
}

/// How long keyed requests skip the ledger after it could not be reached, so that
/// each of them does not wait for a ledger that is down (etcd's timeout).
const LEDGER_REST: Duration = Duration::from_secs(5);

/// What [`Idempotency::put_once`] did.
#[derive(Debug)]
pub enum KeyedPut {
    /// Every part is stored once; where each one is.
    Stored(Vec<PartReceipt>),
    /// The ledger could not be reached and nothing was produced: the caller
    /// stores the request as if it had no key, so that ingest goes on while the
    /// ledger (etcd) is down, without the key's protection.
    LedgerUnavailable,
}

/// The hex of the first 16 bytes of SHA-256 over `pieces`.
pub fn digest(pieces: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for piece in pieces {
        hasher.update((piece.len() as u64).to_le_bytes());
        hasher.update(piece);
    }
    hasher.finalize()[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn ledger_error(error: LedgerError) -> ApiError {
    tracing::warn!(%error, "idempotency ledger unavailable");
    ApiError::new(
        ErrorCode::Unavailable,
        "the idempotency ledger is unavailable; retry later",
    )
    .with_retry_after(Duration::from_secs(1))
}

fn now_ms() -> i64 {
    logpool_api::time::now_ns() / 1_000_000
}

impl Idempotency {
    /// Uses `ledger`, holding keys for `config.claim_ms`.
    pub fn new(ledger: Arc<dyn IdempotencyLedger>, config: &IdempotencyConfig) -> Idempotency {
        Idempotency {
            ledger,
            claim: Duration::from_millis(config.claim_ms),
            ledger_resting_until_ms: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Stores the parts of the request with `key` in `pool_id` that are not stored
    /// yet, and returns where every part is. `body` identifies the request's content
    /// (see [`digest`]). See the module documentation for the steps.
    ///
    /// When the ledger cannot be reached before anything is produced, answers
    /// [`KeyedPut::LedgerUnavailable`] at once, and for [`LEDGER_REST`] after that.
    ///
    /// # Errors
    /// 400 when the key was used with another body, 409 while another request holds
    /// the key, 503 when the ledger fails midway or the queue cannot serve.
    pub async fn put_once(
        &self,
        queue: &Arc<dyn Queue>,
        faults: &ProduceFaults,
        pool_id: PoolId,
        key: &RequestKey,
        body: String,
        parts: &[PlannedPart],
    ) -> Result<KeyedPut, ApiError> {
        let ledger_key = format!("{pool_id}/{}", key.as_str());
        let token: u64 = rand::random();
        if now_ms() < self.ledger_resting_until_ms.load(Ordering::Relaxed) {
            return Ok(KeyedPut::LedgerUnavailable);
        }
        // A new key (the common case) costs one ledger write: its claim and its
        // attempts are written at once, on the condition that the key is new. Only
        // when it is not (a retry) are the stored attempts read and settled.
        let fresh = RequestRecord {
            body: body.clone(),
            claim: Some(Claim {
                token,
                until_ms: now_ms().saturating_add(self.claim.as_millis() as i64),
            }),
            parts: parts
                .iter()
                .map(|part| PartRecord {
                    shard: part.shard_index,
                    records: part.records,
                    position: None,
                    attempt: Some(Attempt::now(part)),
                })
                .collect(),
        };
        match self
            .ledger
            .put_if(&ledger_key, &encode(&fresh)?, None)
            .await
        {
            Ok(Some(version)) => {
                let pending: Vec<usize> = (0..parts.len()).collect();
                return self
                    .produce_pending(
                        queue,
                        faults,
                        pool_id,
                        &ledger_key,
                        fresh,
                        version,
                        parts,
                        pending,
                    )
                    .await
                    .map(KeyedPut::Stored);
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(
                    %error,
                    rest_secs = LEDGER_REST.as_secs(),
                    "idempotency ledger unavailable; keyed requests are stored without it meanwhile"
                );
                let until = now_ms().saturating_add(LEDGER_REST.as_millis() as i64);
                self.ledger_resting_until_ms.store(until, Ordering::Relaxed);
                return Ok(KeyedPut::LedgerUnavailable);
            }
        }
        let (mut record, mut version) = self.claim(&ledger_key, token, body, parts).await?;

        // Step 3: settle the parts whose earlier attempt may have stored them.
        for (stored, part) in record.parts.iter_mut().zip(parts) {
            if stored.position.is_some() {
                continue;
            }
            if let Some(attempt) = &stored.attempt {
                if let Some(position) = find_attempt(queue, &part.shard, pool_id, attempt).await? {
                    stored.position = Some(position);
                    stored.attempt = None;
                }
            }
        }

        // Step 4: a new attempt for every part still missing, written down before
        // anything is produced.
        let mut pending = Vec::new();
        for (index, (stored, part)) in record.parts.iter_mut().zip(parts).enumerate() {
            if stored.position.is_none() {
                stored.attempt = Some(Attempt::now(part));
                pending.push(index);
            }
        }
        if !pending.is_empty() {
            version = self.write(&ledger_key, &record, version).await?;
        }
        self.produce_pending(
            queue,
            faults,
            pool_id,
            &ledger_key,
            record,
            version,
            parts,
            pending,
        )
        .await
        .map(KeyedPut::Stored)
    }

    /// Step 5: produces the `pending` parts (their attempts are in the ledger), then
    /// writes down what is durable and releases the key.
    #[allow(clippy::too_many_arguments)]
    async fn produce_pending(
        &self,
        queue: &Arc<dyn Queue>,
        faults: &ProduceFaults,
        pool_id: PoolId,
        ledger_key: &str,
        mut record: RequestRecord,
        version: u64,
        parts: &[PlannedPart],
        pending: Vec<usize>,
    ) -> Result<Vec<PartReceipt>, ApiError> {
        let to_produce: Vec<&PlannedPart> = pending.iter().map(|&index| &parts[index]).collect();
        let outcomes = produce_parts(queue, faults, pool_id, &to_produce).await;
        let mut first_error = None;
        for (&index, outcome) in pending.iter().zip(outcomes) {
            match outcome {
                Ok(position) => {
                    record.parts[index].position = Some(position);
                    record.parts[index].attempt = None;
                }
                // The attempt stays: the produce may have stored the batch anyway
                // (an answer lost on the way back), which a retry finds in the queue.
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        record.claim = None;
        if let Err(error) = self.write(ledger_key, &record, version).await {
            // Nothing is lost: the attempts written before the produces let a retry
            // find these batches in the queue.
            tracing::warn!(key = %ledger_key, error = %error.message, "could not record produced parts");
        }
        if let Some(error) = first_error {
            return Err(error.into());
        }
        record
            .parts
            .iter()
            .map(|part| {
                part.position
                    .map(|position| PartReceipt {
                        shard_index: part.shard,
                        position,
                        records: part.records,
                    })
                    .ok_or_else(|| ApiError::internal("a produced part has no position"))
            })
            .collect()
    }

    /// Steps 1 and 2 of a key seen before: reads its record (or creates one without
    /// attempts, when it expired meanwhile) and takes its claim.
    async fn claim(
        &self,
        ledger_key: &str,
        token: u64,
        body: String,
        parts: &[PlannedPart],
    ) -> Result<(RequestRecord, u64), ApiError> {
        for _ in 0..MAX_LEDGER_RACES {
            let now = now_ms();
            let claim = Claim {
                token,
                until_ms: now.saturating_add(self.claim.as_millis() as i64),
            };
            let stored = self.ledger.get(ledger_key).await.map_err(ledger_error)?;
            let (record, expected) = match stored {
                None => (
                    RequestRecord {
                        body: body.clone(),
                        claim: Some(claim),
                        parts: parts
                            .iter()
                            .map(|part| PartRecord {
                                shard: part.shard_index,
                                records: part.records,
                                position: None,
                                attempt: None,
                            })
                            .collect(),
                    },
                    None,
                ),
                Some(stored) => {
                    let mut record: RequestRecord = serde_json::from_slice(&stored.value)
                        .map_err(|e| ApiError::internal(format!("unreadable ledger entry: {e}")))?;
                    let same_split = record.parts.len() == parts.len()
                        && record
                            .parts
                            .iter()
                            .zip(parts)
                            .all(|(a, b)| a.shard == b.shard_index && a.records == b.records);
                    if record.body != body || !same_split {
                        return Err(ApiError::bad_request(format!(
                            "`{KEY_HEADER}` was used before with a different request body; \
                             a retry must send the same body, a new request a new key"
                        ))
                        .with_detail("field", KEY_HEADER));
                    }
                    if let Some(held) = record.claim.filter(|held| held.until_ms > now) {
                        let wait = Duration::from_millis((held.until_ms - now).max(1) as u64);
                        return Err(ApiError::new(
                            ErrorCode::Conflict,
                            format!(
                                "a request with this `{KEY_HEADER}` is in progress; retry after it ends"
                            ),
                        )
                        .with_detail("field", KEY_HEADER)
                        .with_retry_after(wait.max(Duration::from_secs(1))));
                    }
                    record.claim = Some(claim);
                    (record, Some(stored.version))
                }
            };
            let value = encode(&record)?;
            if let Some(version) = self
                .ledger
                .put_if(ledger_key, &value, expected)
                .await
                .map_err(ledger_error)?
            {
                return Ok((record, version));
            }
            // Another request with the key wrote in between: read what it wrote.
        }
        Err(ApiError::new(
            ErrorCode::Conflict,
            format!("requests with this `{KEY_HEADER}` keep racing; retry later"),
        )
        .with_detail("field", KEY_HEADER)
        .with_retry_after(Duration::from_secs(1)))
    }

    /// Writes the record over the version this request wrote last.
    async fn write(
        &self,
        ledger_key: &str,
        record: &RequestRecord,
        version: u64,
    ) -> Result<u64, ApiError> {
        let value = encode(record)?;
        self.ledger
            .put_if(ledger_key, &value, Some(version))
            .await
            .map_err(ledger_error)?
            .ok_or_else(|| {
                // Only a request that took an expired claim over writes in between.
                ApiError::new(
                    ErrorCode::Conflict,
                    format!(
                        "this request's hold on its `{KEY_HEADER}` expired and another \
                         request took it over"
                    ),
                )
                .with_detail("field", KEY_HEADER)
                .with_retry_after(Duration::from_secs(1))
            })
    }
}

fn encode(record: &RequestRecord) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(record).map_err(ApiError::internal)
}

/// Step 3: looks for the message of `attempt` in `shard`, from the first message
/// published at or after the attempt's time to the shard's current end.
async fn find_attempt(
    queue: &Arc<dyn Queue>,
    shard: &ShardAddr,
    pool_id: PoolId,
    attempt: &Attempt,
) -> Result<Option<Position>, ApiError> {
    let end = queue.end_position(shard).await?;
    let mut from = queue.position_at_time(shard, attempt.since_ms).await?;
    let mut scanned = 0usize;
    while from < end {
        let messages = queue
            .read(shard, ReadStart::Position(from), SCAN_CHUNK)
            .await?;
        let Some(last) = messages.last() else {
            break;
        };
        from = last.position.saturating_add(1);
        for message in &messages {
            if message.position >= end {
                return Ok(None);
            }
            if message.properties.pool_id == pool_id
                && digest(&[&message.payload]) == attempt.payload
            {
                return Ok(Some(message.position));
            }
        }
        scanned += messages.len();
        if scanned >= MAX_SCANNED_MESSAGES {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                format!(
                    "could not tell whether an earlier attempt of this request was stored \
                     within {MAX_SCANNED_MESSAGES} queue messages; nothing was stored again"
                ),
            )
            .with_detail("limit", MAX_SCANNED_MESSAGES)
            .with_retry_after(Duration::from_secs(1)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use logpool_engines::idempotency::memory::MemoryLedger;
    use logpool_engines::idempotency::Versioned;
    use logpool_engines::queue::{EmbeddedQueue, EmbeddedQueueConfig};

    fn shard(partition: u32) -> ShardAddr {
        ShardAddr {
            tenant: "t".to_string(),
            project: "p".to_string(),
            partition,
        }
    }

    fn parts() -> Vec<PlannedPart> {
        (0..3)
            .map(|index| PlannedPart {
                shard_index: index,
                shard: shard(index as u32),
                records: 1,
                payload: Bytes::from(format!("payload {index}")),
            })
            .collect()
    }

    fn stored(put: KeyedPut) -> Vec<PartReceipt> {
        match put {
            KeyedPut::Stored(receipts) => receipts,
            KeyedPut::LedgerUnavailable => panic!("the ledger is up"),
        }
    }

    /// A ledger that is down, counting how often it is asked.
    #[derive(Debug, Default)]
    struct DownLedger {
        calls: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl IdempotencyLedger for DownLedger {
        async fn get(
            &self,
            _key: &str,
        ) -> logpool_engines::idempotency::LedgerResult<Option<Versioned>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Err(LedgerError::Unavailable("down".into()))
        }

        async fn put_if(
            &self,
            _key: &str,
            _value: &[u8],
            _expected: Option<u64>,
        ) -> logpool_engines::idempotency::LedgerResult<Option<u64>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Err(LedgerError::Unavailable("down".into()))
        }
    }

    #[tokio::test]
    async fn test_a_ledger_that_is_down_is_skipped_without_producing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let queue: Arc<dyn Queue> = Arc::new(
            EmbeddedQueue::open(EmbeddedQueueConfig {
                dir: dir.path().to_path_buf(),
                ..EmbeddedQueueConfig::default()
            })
            .await
            .expect("queue"),
        );
        let ledger = Arc::new(DownLedger::default());
        let idempotency = Idempotency::new(ledger.clone(), &IdempotencyConfig::default());
        let key = RequestKey::parse("k", "down").expect("key");
        for _ in 0..3 {
            let put = idempotency
                .put_once(
                    &queue,
                    &ProduceFaults::default(),
                    PoolId::new(7),
                    &key,
                    "body".into(),
                    &parts(),
                )
                .await
                .expect("no error");
            assert!(matches!(put, KeyedPut::LedgerUnavailable), "{put:?}");
        }
        assert_eq!(
            ledger.calls.load(Ordering::SeqCst),
            1,
            "after one failure the ledger rests"
        );
        assert_eq!(
            stored_messages(&queue).await,
            0,
            "the caller produces, not put_once"
        );
    }

    async fn stored_messages(queue: &Arc<dyn Queue>) -> usize {
        let mut total = 0;
        for index in 0..3 {
            total += queue
                .read(&shard(index), ReadStart::Earliest, 100)
                .await
                .expect("read")
                .len();
        }
        total
    }

    #[test]
    fn test_keys_are_checked() {
        assert!(RequestKey::parse("k", "abc-1_2.3:4").is_ok());
        assert!(RequestKey::parse("k", "").is_err());
        assert!(RequestKey::parse("k", &"a".repeat(MAX_KEY_LEN + 1)).is_err());
        assert!(RequestKey::parse("k", "a b").is_err());
        assert!(RequestKey::parse("k", "a/b").is_err());
    }

    #[tokio::test]
    async fn test_a_retry_after_a_failed_shard_stores_only_the_missing_part() {
        let dir = tempfile::tempdir().expect("tempdir");
        let queue: Arc<dyn Queue> = Arc::new(
            EmbeddedQueue::open(EmbeddedQueueConfig {
                dir: dir.path().to_path_buf(),
                ..EmbeddedQueueConfig::default()
            })
            .await
            .expect("queue"),
        );
        let config = IdempotencyConfig {
            test_fail_first_produce_to_shard: Some(1),
            ..IdempotencyConfig::default()
        };
        let faults = ProduceFaults::from_config(&config);
        let idempotency = Idempotency::new(Arc::new(MemoryLedger::new()), &config);
        let key = RequestKey::parse("k", "request-1").expect("key");
        let parts = parts();
        let first = idempotency
            .put_once(&queue, &faults, PoolId::new(7), &key, "body".into(), &parts)
            .await;
        assert!(first.is_err(), "the failed shard fails the request");
        assert_eq!(stored_messages(&queue).await, 2);
        let second = idempotency
            .put_once(&queue, &faults, PoolId::new(7), &key, "body".into(), &parts)
            .await
            .map(stored)
            .expect("retry");
        assert_eq!(second.len(), 3);
        assert_eq!(
            stored_messages(&queue).await,
            3,
            "only the missing part is added"
        );
        let third = idempotency
            .put_once(&queue, &faults, PoolId::new(7), &key, "body".into(), &parts)
            .await
            .map(stored)
            .expect("second retry");
        assert_eq!(
            third, second,
            "a retry of a complete request answers the same"
        );
        assert_eq!(stored_messages(&queue).await, 3);
        let other_body = idempotency
            .put_once(
                &queue,
                &faults,
                PoolId::new(7),
                &key,
                "other".into(),
                &parts,
            )
            .await;
        assert_eq!(
            other_body.map_err(|e| e.code.http_status()).err(),
            Some(400)
        );
    }

    #[tokio::test]
    async fn test_an_attempt_whose_answer_was_lost_is_found_in_the_queue() {
        let dir = tempfile::tempdir().expect("tempdir");
        let queue: Arc<dyn Queue> = Arc::new(
            EmbeddedQueue::open(EmbeddedQueueConfig {
                dir: dir.path().to_path_buf(),
                ..EmbeddedQueueConfig::default()
            })
            .await
            .expect("queue"),
        );
        let ledger = Arc::new(MemoryLedger::new());
        let config = IdempotencyConfig::default();
        let idempotency = Idempotency::new(ledger.clone(), &config);
        let parts = parts();
        // What a process killed right after its produces leaves behind: attempts in
        // the ledger, the batches in the queue, no positions and an expired claim.
        let mut record = RequestRecord {
            body: "body".into(),
            claim: Some(Claim {
                token: 1,
                until_ms: now_ms() - 1,
            }),
            parts: Vec::new(),
        };
        for part in &parts {
            let attempt = Attempt::now(part);
            // Someone else's message lands in between.
            queue
                .produce(
                    &part.shard,
                    BatchProperties {
                        pool_id: PoolId::new(7),
                        record_count: 1,
                        format_version: BATCH_FORMAT_VERSION,
                    },
                    Bytes::from_static(b"another request"),
                )
                .await
                .expect("produce");
            record.parts.push(PartRecord {
                shard: part.shard_index,
                records: part.records,
                position: None,
                attempt: Some(attempt),
            });
        }
        // Only the first two parts made it to the queue before the crash.
        let faults = ProduceFaults::default();
        let produced =
            produce_parts(&queue, &faults, PoolId::new(7), &[&parts[0], &parts[1]]).await;
        assert!(produced.iter().all(Result::is_ok));
        let value = encode(&record).expect("encode");
        ledger
            .put_if("7/request-2", &value, None)
            .await
            .expect("seed")
            .expect("seeded");
        assert_eq!(stored_messages(&queue).await, 5);
        let key = RequestKey::parse("k", "request-2").expect("key");
        let receipts = idempotency
            .put_once(&queue, &faults, PoolId::new(7), &key, "body".into(), &parts)
            .await
            .map(stored)
            .expect("retry");
        assert_eq!(
            stored_messages(&queue).await,
            6,
            "only the lost part is produced"
        );
        assert_eq!(
            receipts[0].position,
            produced[0].as_ref().copied().unwrap_or(0)
        );
        assert_eq!(
            receipts[1].position,
            produced[1].as_ref().copied().unwrap_or(0)
        );
    }

    #[tokio::test]
    async fn test_a_live_claim_refuses_a_concurrent_retry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let queue: Arc<dyn Queue> = Arc::new(
            EmbeddedQueue::open(EmbeddedQueueConfig {
                dir: dir.path().to_path_buf(),
                ..EmbeddedQueueConfig::default()
            })
            .await
            .expect("queue"),
        );
        let ledger = Arc::new(MemoryLedger::new());
        let record = RequestRecord {
            body: "body".into(),
            claim: Some(Claim {
                token: 1,
                until_ms: now_ms() + 60_000,
            }),
            parts: parts()
                .iter()
                .map(|part| PartRecord {
                    shard: part.shard_index,
                    records: part.records,
                    position: None,
                    attempt: None,
                })
                .collect(),
        };
        ledger
            .put_if("7/busy", &encode(&record).expect("encode"), None)
            .await
            .expect("seed");
        let idempotency = Idempotency::new(ledger, &IdempotencyConfig::default());
        let key = RequestKey::parse("k", "busy").expect("key");
        let refused = idempotency
            .put_once(
                &queue,
                &ProduceFaults::default(),
                PoolId::new(7),
                &key,
                "body".into(),
                &parts(),
            )
            .await;
        let error = refused.expect_err("refused");
        assert_eq!(error.code.http_status(), 409);
        assert!(error.retry_after.is_some());
        assert_eq!(stored_messages(&queue).await, 0);
    }
}
