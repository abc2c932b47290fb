//! A ledger in this process's memory, for unit tests: nothing survives a restart and
//! nothing expires.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{IdempotencyLedger, LedgerError, LedgerResult, Versioned};

/// The in-memory ledger.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    entries: Mutex<HashMap<String, Versioned>>,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> MemoryLedger {
        MemoryLedger::default()
    }
}

#[async_trait]
impl IdempotencyLedger for MemoryLedger {
    async fn get(&self, key: &str) -> LedgerResult<Option<Versioned>> {
        let entries = self
            .entries
            .lock()
            .map_err(|_| LedgerError::Unavailable("ledger lock poisoned".to_string()))?;
        Ok(entries.get(key).cloned())
    }

    async fn put_if(
        &self,
        key: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> LedgerResult<Option<u64>> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| LedgerError::Unavailable("ledger lock poisoned".to_string()))?;
        let current = entries.get(key).map(|entry| entry.version);
        if current != expected {
            return Ok(None);
        }
        let version = current.map_or(1, |version| version + 1);
        entries.insert(
            key.to_string(),
            Versioned {
                value: value.to_vec(),
                version,
            },
        );
        Ok(Some(version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_memory_ledger_compare_and_set() {
        super::super::conformance::check_compare_and_set(&MemoryLedger::new(), "k").await;
    }
}
