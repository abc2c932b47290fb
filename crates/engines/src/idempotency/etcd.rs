//! The ledger in etcd, under the coordinator's prefix (`{prefix}/idempotency/{key}`),
//! so every put-datas instance of a deployment shares it and it outlives any of them.
//!
//! The version of an entry is its etcd `mod_revision`; conditional writes are etcd
//! transactions comparing it (or `create_revision == 0` for a new key). Entries
//! expire through leases: all keys created within one hour share one lease whose
//! time-to-live is the window plus that hour, so a key lives at least the window and
//! the ledger costs one lease grant an hour, not one per request.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{Client, Compare, CompareOp, ConnectOptions, PutOptions, Txn, TxnOp};
use tokio::sync::Mutex;

use super::{now_ms, IdempotencyLedger, LedgerError, LedgerResult, Versioned};
use crate::coordination::etcd::EtcdCoordinatorConfig;

/// How long one shared lease takes new keys.
const LEASE_SPAN_MS: i64 = 3_600_000;

/// The etcd ledger.
pub struct EtcdLedger {
    client: Client,
    prefix: String,
    window_secs: u64,
    request_timeout: Duration,
    /// The lease new keys are attached to, and when it was granted.
    lease: Mutex<Option<(i64, i64)>>,
}

impl std::fmt::Debug for EtcdLedger {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EtcdLedger")
            .field("prefix", &self.prefix)
            .field("window_secs", &self.window_secs)
            .finish_non_exhaustive()
    }
}

async fn timed<T>(
    timeout: Duration,
    what: &str,
    call: impl Future<Output = Result<T, etcd_client::Error>>,
) -> LedgerResult<T> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(LedgerError::Unavailable(format!(
            "etcd {what} failed: {error}"
        ))),
        Err(_) => Err(LedgerError::Unavailable(format!(
            "etcd {what}: no answer within {} ms",
            timeout.as_millis()
        ))),
    }
}

impl EtcdLedger {
    /// Connects to the coordinator's etcd; entries live at least `window_secs`.
    ///
    /// # Errors
    /// [`LedgerError::Unavailable`] when etcd does not answer.
    pub async fn connect(
        config: &EtcdCoordinatorConfig,
        window_secs: u64,
    ) -> LedgerResult<EtcdLedger> {
        let request_timeout = Duration::from_millis(config.connect_timeout_ms.max(1));
        let options = ConnectOptions::new().with_connect_timeout(request_timeout);
        let client = timed(
            request_timeout,
            "connect",
            Client::connect(&config.endpoints, Some(options)),
        )
        .await?;
        Ok(EtcdLedger {
            client,
            prefix: format!("{}/idempotency/", config.prefix.trim_end_matches('/')),
            window_secs,
            request_timeout,
            lease: Mutex::new(None),
        })
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The lease for keys created now, granting a new one each [`LEASE_SPAN_MS`].
    async fn current_lease(&self) -> LedgerResult<i64> {
        let mut held = self.lease.lock().await;
        let now = now_ms();
        if let Some((id, granted_ms)) = *held {
            if now - granted_ms < LEASE_SPAN_MS {
                return Ok(id);
            }
        }
        let ttl = i64::try_from(self.window_secs)
            .unwrap_or(i64::MAX / 2)
            .saturating_add(LEASE_SPAN_MS / 1000);
        let granted = timed(
            self.request_timeout,
            "grant an idempotency lease",
            self.client.lease_client().grant(ttl, None),
        )
        .await?;
        *held = Some((granted.id(), now));
        Ok(granted.id())
    }
}

#[async_trait]
impl IdempotencyLedger for EtcdLedger {
    async fn get(&self, key: &str) -> LedgerResult<Option<Versioned>> {
        let key = self.full_key(key);
        let response = timed(
            self.request_timeout,
            "read an idempotency key",
            self.client.kv_client().get(key.as_str(), None),
        )
        .await?;
        Ok(response.kvs().first().map(|kv| Versioned {
            value: kv.value().to_vec(),
            version: kv.mod_revision() as u64,
        }))
    }

    async fn put_if(
        &self,
        key: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> LedgerResult<Option<u64>> {
        let key = self.full_key(key);
        let txn = match expected {
            None => {
                let lease = self.current_lease().await?;
                Txn::new()
                    .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(
                        key.as_str(),
                        value,
                        Some(PutOptions::new().with_lease(lease)),
                    )])
            }
            // An update keeps the key's lease: it expires with its creation.
            Some(version) => Txn::new()
                .when([Compare::mod_revision(
                    key.as_str(),
                    CompareOp::Equal,
                    version as i64,
                )])
                .and_then([TxnOp::put(
                    key.as_str(),
                    value,
                    Some(PutOptions::new().with_ignore_lease()),
                )]),
        };
        let response = timed(
            self.request_timeout,
            "write an idempotency key",
            self.client.kv_client().txn(txn),
        )
        .await?;
        if !response.succeeded() {
            return Ok(None);
        }
        // The put is the transaction's only write: its revision is the key's new
        // mod_revision.
        Ok(response.header().map(|header| header.revision() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_etcd_ledger_compare_and_set() {
        let Some(endpoints) = crate::test_env::engine_address("LOGPOOL_TEST_ETCD_ENDPOINTS") else {
            return;
        };
        let config = EtcdCoordinatorConfig {
            endpoints: endpoints.split(',').map(str::to_string).collect(),
            prefix: format!("/logpool-ledger-test-{}", crate::test_env::unique_suffix()),
            ..EtcdCoordinatorConfig::default()
        };
        let ledger = EtcdLedger::connect(&config, 86_400).await.expect("connect");
        super::super::conformance::check_compare_and_set(&ledger, "k").await;
    }
}
