//! Read-your-writes: `wait_for=<write_token>` on a search, histogram, SQL query or
//! context holds the answer until the records of that PutDatas are searchable.
//!
//! A token names the queue messages of one request
//! ([`logpool_core::write_token`]). A message is indexed and committed as a whole,
//! under document ids made from its position, so the request is searchable once
//! the first record of each of its messages is found in the index. The index is
//! asked for those records until all are there or `wait_timeout_ms` runs out; then
//! the answer is 408 `wait_timeout` with what is still missing, and the client may
//! retry (the records are durable in the queue, only not indexed yet).

use logpool_core::pool_id::PoolId;
use std::sync::Arc;
use std::time::Duration;

use logpool_api::{ApiError, ErrorCode};
use logpool_core::query::Query;
use logpool_core::routing::PoolRoute;
use logpool_core::write_token::{WriteToken, WrittenBatch};
use logpool_engines::index::{ContextRequest, LogIndex};
use tokio::time::Instant;

/// How long a read waits for its `wait_for` token when `wait_timeout_ms` is not
/// given, in milliseconds.
pub const DEFAULT_WAIT_TIMEOUT_MS: u64 = 10_000;

/// The longest accepted `wait_timeout_ms`.
pub const MAX_WAIT_TIMEOUT_MS: u64 = 60_000;

/// The first pause between two looks at the index, and the longest: short enough
/// that a read answers soon after the indexer's commit, long enough that a waiting
/// read costs the index little.
const FIRST_POLL: Duration = Duration::from_millis(50);
const MAX_POLL: Duration = Duration::from_millis(500);

/// A validated `wait_for`: the batches to wait for and for how long.
#[derive(Debug)]
pub struct WaitFor {
    pool_id: PoolId,
    batches: Vec<WrittenBatch>,
    timeout: Duration,
}

impl WaitFor {
    /// Checks `wait_for` and `wait_timeout_ms` against the pool read; `None` when
    /// the read does not wait.
    ///
    /// # Errors
    /// 400 naming the field: a token that is malformed, too long or of another
    /// pool, a timeout without a token or above [`MAX_WAIT_TIMEOUT_MS`].
    pub fn parse(
        route: &PoolRoute,
        token: Option<&str>,
        timeout_ms: Option<u64>,
    ) -> Result<Option<WaitFor>, ApiError> {
        if let Some(timeout_ms) = timeout_ms {
            if timeout_ms > MAX_WAIT_TIMEOUT_MS {
                return Err(ApiError::bad_request(format!(
                    "`wait_timeout_ms` must be at most {MAX_WAIT_TIMEOUT_MS}, got {timeout_ms}"
                ))
                .with_detail("field", "wait_timeout_ms")
                .with_detail("limit", MAX_WAIT_TIMEOUT_MS));
            }
        }
        let Some(text) = token else {
            if timeout_ms.is_some() {
                return Err(ApiError::bad_request(
                    "`wait_timeout_ms` is only valid with `wait_for`",
                )
                .with_detail("field", "wait_timeout_ms"));
            }
            return Ok(None);
        };
        let token = WriteToken::parse(text).map_err(|error| {
            let mut api_error = ApiError::bad_request(format!("`wait_for` {error}"))
                .with_detail("field", "wait_for");
            if matches!(
                error,
                logpool_core::write_token::WriteTokenError::TooLong(_)
            ) {
                api_error =
                    api_error.with_detail("limit", logpool_core::write_token::MAX_TOKEN_LEN);
            }
            api_error
        })?;
        let foreign = token.pool_id != route.pool_id
            || token
                .batches
                .iter()
                .any(|batch| !route.partitions.contains(&batch.partition));
        if foreign {
            return Err(ApiError::bad_request(format!(
                "`wait_for` names a write to another pool than `{}`",
                route.name
            ))
            .with_detail("field", "wait_for"));
        }
        Ok(Some(WaitFor {
            pool_id: token.pool_id,
            batches: token.batches,
            timeout: Duration::from_millis(timeout_ms.unwrap_or(DEFAULT_WAIT_TIMEOUT_MS)),
        }))
    }

    /// Returns once every batch of the token is searchable.
    ///
    /// # Errors
    /// 408 `wait_timeout` with the batches and records still missing when the
    /// timeout runs out first; the index's own errors.
    pub async fn until_searchable(
        mut self,
        index: &Arc<dyn LogIndex>,
        route: &PoolRoute,
    ) -> Result<(), ApiError> {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let mut pause = FIRST_POLL;
        loop {
            let mut missing = Vec::with_capacity(self.batches.len());
            for batch in self.batches {
                if !is_searchable(index, route, self.pool_id, &batch).await? {
                    missing.push(batch);
                }
            }
            self.batches = missing;
            if self.batches.is_empty() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(self.timed_out(started.elapsed()));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    fn timed_out(&self, waited: Duration) -> ApiError {
        let records: u64 = self
            .batches
            .iter()
            .map(|batch| u64::from(batch.records))
            .sum();
        ApiError::new(
            ErrorCode::WaitTimeout,
            format!(
                "the records of `wait_for` are not all searchable after {} ms: {} batch(es) \
                 with {records} record(s) are still being indexed; retry, or raise \
                 `wait_timeout_ms` (at most {MAX_WAIT_TIMEOUT_MS})",
                waited.as_millis(),
                self.batches.len(),
            ),
        )
        .with_detail("field", "wait_for")
        .with_detail("pending_batches", self.batches.len())
        .with_detail("pending_records", records)
        .with_detail("waited_ms", waited.as_millis() as u64)
        .with_retry_after(Duration::from_secs(1))
    }
}

/// Whether the first record of `batch` is in the index.
async fn is_searchable(
    index: &Arc<dyn LogIndex>,
    route: &PoolRoute,
    pool_id: PoolId,
    batch: &WrittenBatch,
) -> Result<bool, ApiError> {
    let request = ContextRequest {
        anchor: batch.first_record(pool_id),
        filter: Query::All,
        before: 0,
        after: 0,
    };
    Ok(index.context(route, &request).await?.anchor.is_some())
}
