//! Pattern mining at ingest: every record with a `message` gets the id of its
//! pool's pattern in the `_pattern` field (a keyword, see
//! [`logpool_core::field_types::infer_type`]) before it is indexed, so
//! `_pattern:ID` is a query, every hit carries its id and pipe SQL can
//! `GROUP BY _pattern`.
//!
//! # Persistence and crashes
//! Each pool's miner state (its pattern table: ids, templates, counts, first
//! and last seen, merges) is an object of the object store,
//! `patterns/{pool_id}/miner.json`: it sits next to the archive, survives
//! restarts and failover to another loghub, and needs no schema in the
//! metadata store. It is loaded the first time a pool's records arrive and
//! saved after an index commit and before its messages are acked, at most
//! every [`SAVE_INTERVAL`] and always at shutdown.
//!
//! A kill -9 can lose the mining done since the last save, never a record:
//! messages not acked are redelivered and mined again. A redelivered line gets
//! the same id because an id is the hash of the masked tokens of the line that
//! founded the pattern: replayed on the saved state, the line either joins the
//! pattern it joined before (the state already holds it) or founds it again
//! with the same masked tokens, hence the same id. Only a pattern that merged
//! in between gives its redelivered lines the id it merged into.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use logpool_core::patterns::{MinerConfig, PatternMiner, PATTERN_FIELD};
use logpool_core::pool_id::PoolId;
use logpool_core::record::{FieldValue, Record};
use logpool_engines::object_store::{ObjectStore, ObjectStoreError};

/// Longest a dirty pattern table waits to be saved after a commit.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(5);

/// The object that holds a pool's miner state.
pub fn state_key(pool_id: PoolId) -> String {
    format!("patterns/{pool_id}/miner.json")
}

struct PoolMiner {
    miner: PatternMiner,
    dirty: bool,
}

/// The miners of every pool this loghub has seen records of.
#[derive(Default)]
pub struct PoolPatterns {
    enabled: bool,
    miners: Mutex<HashMap<PoolId, PoolMiner>>,
    last_save: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for PoolPatterns {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PoolPatterns")
            .field("enabled", &self.enabled)
            .field("pools", &self.miners().len())
            .finish()
    }
}

impl PoolPatterns {
    /// Miners that assign patterns when `enabled` (otherwise records pass as sent).
    pub fn new(enabled: bool) -> PoolPatterns {
        PoolPatterns {
            enabled,
            ..PoolPatterns::default()
        }
    }

    /// Whether records get a pattern id.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn miners(&self) -> MutexGuard<'_, HashMap<PoolId, PoolMiner>> {
        self.miners.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Loads the saved state of the pools in `pool_ids` not loaded yet. A pool
    /// whose state cannot be read starts empty (its ids stay the same, see the
    /// module doc) and the failure is logged.
    pub async fn load(&self, object_store: &dyn ObjectStore, pool_ids: HashSet<PoolId>) {
        if !self.enabled {
            return;
        }
        let missing: Vec<PoolId> = {
            let miners = self.miners();
            pool_ids
                .into_iter()
                .filter(|pool_id| !miners.contains_key(pool_id))
                .collect()
        };
        for pool_id in missing {
            let miner = match object_store.get(&state_key(pool_id)).await {
                Ok(bytes) => match serde_json::from_slice::<PatternMiner>(&bytes) {
                    Ok(mut miner) => {
                        miner.restore_index();
                        miner
                    }
                    Err(error) => {
                        tracing::warn!(%error, %pool_id, "the saved pattern table is unreadable; starting a new one");
                        PatternMiner::new(MinerConfig::default())
                    }
                },
                Err(ObjectStoreError::NotFound(_)) => PatternMiner::new(MinerConfig::default()),
                Err(error) => {
                    tracing::warn!(%error, %pool_id, "the saved pattern table cannot be read; starting a new one");
                    PatternMiner::new(MinerConfig::default())
                }
            };
            self.miners().entry(pool_id).or_insert(PoolMiner {
                miner,
                dirty: false,
            });
        }
    }

    /// Sets `_pattern` on each record of `pool_id` that has a message.
    /// Blocking: call it off the async threads.
    pub fn assign(&self, pool_id: PoolId, records: &mut [Record]) {
        if !self.enabled {
            return;
        }
        let mut miners = self.miners();
        let pool = miners.entry(pool_id).or_insert_with(|| PoolMiner {
            miner: PatternMiner::new(MinerConfig::default()),
            dirty: false,
        });
        for record in records {
            let id = match record.fields.get(logpool_core::record::MESSAGE_FIELD) {
                Some(FieldValue::Str(message)) => {
                    pool.miner.assign(message, record.time_ns / 1_000_000)
                }
                Some(other) => pool
                    .miner
                    .assign(&other.as_text(), record.time_ns / 1_000_000),
                None => continue,
            };
            record
                .fields
                .insert(PATTERN_FIELD.to_owned(), FieldValue::Str(id.to_string()));
            pool.dirty = true;
        }
    }

    /// Saves the dirty tables if [`SAVE_INTERVAL`] has passed since the last
    /// save, or whenever `force` is set (shutdown). A failed save stays dirty
    /// and is tried again.
    pub async fn save(&self, object_store: &dyn ObjectStore, force: bool) {
        if !self.enabled {
            return;
        }
        {
            let last_save = self
                .last_save
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !force && last_save.is_some_and(|at| at.elapsed() < SAVE_INTERVAL) {
                return;
            }
        }
        let snapshots: Vec<(PoolId, Result<Vec<u8>, serde_json::Error>)> = {
            let mut miners = self.miners();
            miners
                .iter_mut()
                .filter(|(_, pool)| pool.dirty)
                .map(|(pool_id, pool)| {
                    pool.dirty = false;
                    (*pool_id, serde_json::to_vec(&pool.miner))
                })
                .collect()
        };
        for (pool_id, snapshot) in snapshots {
            let saved = match snapshot {
                Ok(bytes) => object_store
                    .put(&state_key(pool_id), Bytes::from(bytes))
                    .await
                    .map_err(|error| error.to_string()),
                Err(error) => Err(error.to_string()),
            };
            if let Err(error) = saved {
                tracing::warn!(%error, %pool_id, "failed to save the pattern table; will retry");
                if let Some(pool) = self.miners().get_mut(&pool_id) {
                    pool.dirty = true;
                }
            }
        }
        *self
            .last_save
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    /// Forgets the miner of a deleted pool.
    pub fn forget(&self, pool_id: PoolId) {
        self.miners().remove(&pool_id);
    }

    /// Approximate bytes of every pattern table held (for the benchmark).
    pub fn approximate_bytes(&self) -> usize {
        self.miners()
            .values()
            .map(|pool| {
                pool.miner
                    .patterns()
                    .iter()
                    .map(|pattern| {
                        96 + pattern
                            .tokens
                            .iter()
                            .map(|token| token.capacity() + 24)
                            .sum::<usize>()
                    })
                    .sum::<usize>()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logpool_engines::object_store::local_file::{
        LocalFileObjectStore, LocalFileObjectStoreConfig,
    };

    fn record(message: &str) -> Record {
        let mut record = Record {
            time_ns: 1_000_000_000,
            fields: Default::default(),
        };
        record.fields.insert(
            logpool_core::record::MESSAGE_FIELD.to_owned(),
            FieldValue::Str(message.to_owned()),
        );
        record
    }

    fn pattern_of(record: &Record) -> String {
        record.fields[PATTERN_FIELD].as_text()
    }

    #[tokio::test]
    async fn test_saved_tables_give_the_same_ids_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalFileObjectStore::open(&LocalFileObjectStoreConfig {
            dir: dir.path().to_owned(),
        })
        .expect("store");
        let pool_id = PoolId::new(7);
        let before = PoolPatterns::new(true);
        before.load(&store, HashSet::from([pool_id])).await;
        let mut records = vec![
            record("user alice logged in from 10.0.0.1"),
            record("disk sda is full"),
        ];
        before.assign(pool_id, &mut records);
        before.save(&store, true).await;

        let after = PoolPatterns::new(true);
        after.load(&store, HashSet::from([pool_id])).await;
        // The same templates, with other values where the miner masks them.
        let mut again = vec![
            record("disk sda is full"),
            record("user alice logged in from 10.0.0.2"),
        ];
        after.assign(pool_id, &mut again);
        assert_eq!(pattern_of(&again[1]), pattern_of(&records[0]));
        assert_eq!(pattern_of(&again[0]), pattern_of(&records[1]));
        assert_ne!(pattern_of(&records[0]), pattern_of(&records[1]));
    }

    #[test]
    fn test_disabled_mining_leaves_records_as_sent() {
        let patterns = PoolPatterns::new(false);
        let mut records = vec![record("hello")];
        patterns.assign(PoolId::new(1), &mut records);
        assert!(!records[0].fields.contains_key(PATTERN_FIELD));
    }
}
