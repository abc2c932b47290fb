//! The idempotency ledger: a small durable key-value store with compare-and-set, in
//! which PutDatas remembers what it did for each request key, so that a retried
//! request never stores its records twice.
//!
//! The ledger only stores opaque values; what they mean (which shards of a request
//! are durable at which positions, which attempt may be in flight) is the ingest
//! service's business. What the ledger guarantees:
//! - a value written with [`IdempotencyLedger::put_if`] is durable before the call
//!   returns, and survives restarts of the process (and, on etcd, the loss of any one
//!   process: every put-datas instance sees the same ledger);
//! - writes are conditional on the version the writer read, so two requests with the
//!   same key can never both believe they own it;
//! - an entry is removed once it is older than the window (at least
//!   [`IdempotencyConfig::window_secs`] after it was created), which bounds what the
//!   ledger holds: one small entry per keyed request in the window, kept on disk
//!   (SQLite) or in etcd's store, never in this process's memory.
//!
//! Engines: [`sqlite::SqliteLedger`] (a file in the data directory, with the local
//! coordinator) and [`etcd::EtcdLedger`] (under the coordinator's etcd prefix, with
//! the etcd coordinator). [`memory::MemoryLedger`] is for unit tests.

#[cfg(feature = "etcd")]
pub mod etcd;
pub mod memory;
pub mod sqlite;

use std::fmt::Debug;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::{Config, CoordinationConfig};

/// Result alias for ledger operations.
pub type LedgerResult<T> = Result<T, LedgerError>;

/// Errors of the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The ledger cannot be read or written right now.
    #[error("idempotency ledger unavailable: {0}")]
    Unavailable(String),
}

/// A stored value and the version a conditional write must name to replace it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The stored bytes.
    pub value: Vec<u8>,
    /// Changes on every write of this key.
    pub version: u64,
}

/// The ledger role. See the module documentation for the contract.
#[async_trait]
pub trait IdempotencyLedger: Send + Sync + Debug + 'static {
    /// Reads the entry of `key`, if it exists and is inside the window.
    async fn get(&self, key: &str) -> LedgerResult<Option<Versioned>>;

    /// Writes `value` under `key` if the entry is still as the caller read it:
    /// absent when `expected` is `None`, at that version otherwise. Returns the new
    /// version, or `None` when someone else wrote in between (nothing is written).
    async fn put_if(
        &self,
        key: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> LedgerResult<Option<u64>>;
}

/// Idempotency settings of PutDatas (`[idempotency]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencyConfig {
    /// How long a request key is remembered, in seconds: a retry with the same key
    /// within this time stores nothing twice. At least 86400 (one day).
    pub window_secs: u64,
    /// How long one request holds its key while it produces, in milliseconds. A
    /// retry that arrives meanwhile gets 409 with `Retry-After`; a key held by a
    /// process that died is taken over after this time. Must be well above the
    /// queue's produce timeout.
    pub claim_ms: u64,
    /// Test setting, never set in production: the first produce of this process to
    /// the shard with this index (in any pool) fails as if the queue were
    /// unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_fail_first_produce_to_shard: Option<usize>,
    /// Test setting, never set in production: a request's shards are produced one
    /// after another, with a pause of this many milliseconds after each one is
    /// durable, so a crash test can kill the process between shards.
    #[serde(skip_serializing_if = "is_zero")]
    pub test_pause_after_shard_produce_ms: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// The smallest accepted `window_secs`.
pub const MIN_WINDOW_SECS: u64 = 86_400;

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            window_secs: MIN_WINDOW_SECS,
            claim_ms: 60_000,
            test_fail_first_produce_to_shard: None,
            test_pause_after_shard_produce_ms: 0,
        }
    }
}

impl IdempotencyConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// Names the setting that is out of range.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.window_secs < MIN_WINDOW_SECS {
            anyhow::bail!(
                "`idempotency.window_secs` (LOGPOOL_IDEMPOTENCY__WINDOW_SECS) must be at least {MIN_WINDOW_SECS}, got {}",
                self.window_secs
            );
        }
        if self.claim_ms == 0 {
            anyhow::bail!(
                "`idempotency.claim_ms` (LOGPOOL_IDEMPOTENCY__CLAIM_MS) must be positive"
            );
        }
        Ok(())
    }
}

/// Opens the ledger that goes with the configured coordination: a SQLite file in the
/// data directory with the local coordinator, etcd with the etcd coordinator.
///
/// # Errors
/// Fails with context naming the store that could not be opened.
pub async fn open(config: &Config) -> anyhow::Result<Arc<dyn IdempotencyLedger>> {
    let window_secs = config.idempotency.window_secs;
    match &config.coordination {
        CoordinationConfig::Local => {
            let path = config.data_dir.join("idempotency.sqlite");
            let ledger = sqlite::SqliteLedger::open(&path, window_secs)
                .await
                .with_context(|| {
                    format!("failed to open the idempotency ledger {}", path.display())
                })?;
            Ok(Arc::new(ledger))
        }
        #[cfg(feature = "etcd")]
        CoordinationConfig::Etcd(c) => {
            let ledger = etcd::EtcdLedger::connect(c, window_secs)
                .await
                .with_context(|| {
                    format!(
                        "failed to connect the idempotency ledger to etcd at {:?}",
                        c.endpoints
                    )
                })?;
            Ok(Arc::new(ledger))
        }
    }
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
pub(crate) mod conformance {
    //! What every ledger must do, run on each engine.

    use super::IdempotencyLedger;

    /// Absent keys, create-if-absent, compare-and-set on the version.
    pub(crate) async fn check_compare_and_set(ledger: &dyn IdempotencyLedger, key: &str) {
        assert_eq!(ledger.get(key).await.expect("get"), None);
        let first = ledger
            .put_if(key, b"one", None)
            .await
            .expect("create")
            .expect("created");
        assert_eq!(
            ledger
                .put_if(key, b"again", None)
                .await
                .expect("create twice"),
            None,
            "a second create of the same key must lose"
        );
        let read = ledger.get(key).await.expect("get").expect("stored");
        assert_eq!((read.value.as_slice(), read.version), (&b"one"[..], first));
        let second = ledger
            .put_if(key, b"two", Some(first))
            .await
            .expect("update")
            .expect("updated");
        assert_ne!(second, first);
        assert_eq!(
            ledger
                .put_if(key, b"stale", Some(first))
                .await
                .expect("stale update"),
            None,
            "an update naming an old version must lose"
        );
        let read = ledger.get(key).await.expect("get").expect("stored");
        assert_eq!((read.value.as_slice(), read.version), (&b"two"[..], second));
    }
}
