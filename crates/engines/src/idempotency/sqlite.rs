//! The ledger in a SQLite file of the data directory (with the local coordinator:
//! one process owns the data directory, so one file is the whole ledger).
//!
//! One row per key. Rows older than the window are invisible to reads, may be
//! replaced by a new request with the same key, and are deleted by a sweep that runs
//! at most once a minute, on a write.
//!
//! Writes are group-committed: one writer task takes every write waiting at the moment
//! and stores them with at most two statements (the new keys in one upsert, the
//! updates in one `UPDATE`), each telling through `RETURNING` which keys it wrote. A
//! request's write then costs a share of one round trip to SQLite's worker thread
//! instead of a round trip of its own: under load, with both cores busy, those round
//! trips (thread wake-ups) were what held PutDatas back, not SQLite's work.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::{now_ms, IdempotencyLedger, LedgerError, LedgerResult, Versioned};

/// How often expired rows are deleted, at most.
const SWEEP_EVERY_MS: i64 = 60_000;

/// Writes stored by one statement at most (4 parameters each, far below SQLite's
/// limit); more waiting writes take further rounds.
const MAX_WRITES_PER_ROUND: usize = 256;

/// Writes waiting for the writer task, at most; a caller beyond waits for room.
const MAX_WAITING_WRITES: usize = 4096;

/// The SQLite ledger.
#[derive(Debug)]
pub struct SqliteLedger {
    store: Arc<Store>,
    writes: mpsc::Sender<Write>,
}

/// The file and what the writer needs to know about it.
#[derive(Debug)]
struct Store {
    pool: SqlitePool,
    window_ms: i64,
    last_sweep_ms: AtomicI64,
}

/// One conditional write, waiting for the writer task.
#[derive(Debug)]
struct Write {
    key: String,
    value: Vec<u8>,
    /// `None`: the key must be new (or expired); `Some(v)`: it must be at version v.
    expected: Option<u64>,
    reply: oneshot::Sender<LedgerResult<Option<u64>>>,
}

fn db_error(error: sqlx::Error) -> LedgerError {
    LedgerError::Unavailable(error.to_string())
}

impl SqliteLedger {
    /// Opens (creating if needed) the ledger file; entries live `window_secs`.
    ///
    /// # Errors
    /// Fails when the file cannot be opened or its table created.
    pub async fn open(path: &Path, window_secs: u64) -> LedgerResult<SqliteLedger> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| LedgerError::Unavailable(e.to_string()))?;
        }
        // The entry written before a produce is what makes a crash right after it
        // safe. In WAL mode with synchronous = NORMAL a committed write survives the
        // process being killed (it is in the WAL, which the OS holds) without an
        // fsync per commit: with one per commit, the ledger's writes, serialised
        // behind SQLite's one writer, cut PutDatas' accepted rate by a third. Only
        // an OS crash or power loss can take back the last writes; a retry after
        // that may store a record twice (the queue itself is fsynced).
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        // One connection: writers queue in process instead of meeting SQLite's lock,
        // whose busy handler sleeps for milliseconds on every collision.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(db_error)?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS idempotency_keys (
                key TEXT PRIMARY KEY NOT NULL,
                value BLOB NOT NULL,
                version INTEGER NOT NULL,
                created_ms INTEGER NOT NULL
            )",
        )
        .execute(&pool)
        .await
        .map_err(db_error)?;
        sqlx::query(
            "CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_ms)",
        )
        .execute(&pool)
        .await
        .map_err(db_error)?;
        let store = Arc::new(Store {
            pool,
            window_ms: i64::try_from(window_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            last_sweep_ms: AtomicI64::new(0),
        });
        let (writes, waiting) = mpsc::channel(MAX_WAITING_WRITES);
        // The writer ends when the ledger (the only sender) is dropped.
        tokio::spawn(write_rounds(store.clone(), waiting));
        Ok(SqliteLedger { store, writes })
    }

    /// The connection pool (for tests that age rows).
    #[cfg(test)]
    fn pool(&self) -> &SqlitePool {
        &self.store.pool
    }
}

impl Store {
    fn cutoff_ms(&self) -> i64 {
        now_ms().saturating_sub(self.window_ms)
    }

    /// Deletes expired rows, at most once per [`SWEEP_EVERY_MS`].
    async fn sweep(&self) -> LedgerResult<()> {
        let now = now_ms();
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        if now - last < SWEEP_EVERY_MS
            || self
                .last_sweep_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Ok(());
        }
        sqlx::query("DELETE FROM idempotency_keys WHERE created_ms < ?")
            .bind(self.cutoff_ms())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}

#[async_trait]
impl IdempotencyLedger for SqliteLedger {
    async fn get(&self, key: &str) -> LedgerResult<Option<Versioned>> {
        let row = sqlx::query(
            "SELECT value, version FROM idempotency_keys WHERE key = ? AND created_ms >= ?",
        )
        .bind(key)
        .bind(self.store.cutoff_ms())
        .fetch_optional(&self.store.pool)
        .await
        .map_err(db_error)?;
        row.map(|row| {
            let version: i64 = row.try_get("version").map_err(db_error)?;
            Ok(Versioned {
                value: row.try_get("value").map_err(db_error)?,
                version: version as u64,
            })
        })
        .transpose()
    }

    async fn put_if(
        &self,
        key: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> LedgerResult<Option<u64>> {
        let (reply, written) = oneshot::channel();
        let write = Write {
            key: key.to_string(),
            value: value.to_vec(),
            expected,
            reply,
        };
        let stopped = || LedgerError::Unavailable("the ledger's writer stopped".to_string());
        self.writes.send(write).await.map_err(|_| stopped())?;
        written.await.map_err(|_| stopped())?
    }
}

/// The writer task: takes every write waiting, stores them in rounds, answers each.
async fn write_rounds(store: Arc<Store>, mut waiting: mpsc::Receiver<Write>) {
    while let Some(first) = waiting.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_WRITES_PER_ROUND {
            match waiting.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        if let Err(error) = store.sweep().await {
            for write in batch {
                let _ = write
                    .reply
                    .send(Err(LedgerError::Unavailable(error.to_string())));
            }
            continue;
        }
        // A key written twice in one round would match both of its writes' rows:
        // only its first write goes in a round, the next ones in the rounds after.
        while !batch.is_empty() {
            let mut keys = HashSet::new();
            let (round, later): (Vec<Write>, Vec<Write>) = batch
                .into_iter()
                .partition(|write| keys.insert(write.key.clone()));
            let (new, updates): (Vec<Write>, Vec<Write>) = round
                .into_iter()
                .partition(|write| write.expected.is_none());
            answer(store.insert_new(&new).await, new);
            answer(store.update(&updates).await, updates);
            batch = later;
        }
    }
}

/// Answers each write with its new version (`None` when its condition failed), or
/// every write with the round's error.
fn answer(outcome: LedgerResult<Vec<Option<u64>>>, writes: Vec<Write>) {
    match outcome {
        Ok(versions) => {
            for (write, version) in writes.into_iter().zip(versions) {
                let _ = write.reply.send(Ok(version));
            }
        }
        Err(error) => {
            let message = error.to_string();
            for write in writes {
                let _ = write
                    .reply
                    .send(Err(LedgerError::Unavailable(message.clone())));
            }
        }
    }
}

impl Store {
    /// Creates the entries of keys that are new or expired, in one statement.
    async fn insert_new(&self, writes: &[Write]) -> LedgerResult<Vec<Option<u64>>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        // A new entry's version is its creation time, so it never equals a version
        // of an expired entry it replaces (those are older than the window plus
        // their update count).
        let rows = vec!["(?, ?, ?, ?)"; writes.len()].join(", ");
        let statement = format!(
            "INSERT INTO idempotency_keys (key, value, version, created_ms) VALUES {rows}
             ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                 version = excluded.version, created_ms = excluded.created_ms
             WHERE idempotency_keys.created_ms < ?
             RETURNING key"
        );
        let mut query = sqlx::query(AssertSqlSafe(statement));
        for write in writes {
            query = query
                .bind(&write.key)
                .bind(&write.value)
                .bind(now)
                .bind(now);
        }
        let written = query
            .bind(self.cutoff_ms())
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        let written = returned_keys(&written)?;
        Ok(writes
            .iter()
            .map(|write| written.contains(&write.key).then_some(now as u64))
            .collect())
    }

    /// Replaces the entries whose version is still the one each write read, in one
    /// statement.
    async fn update(&self, writes: &[Write]) -> LedgerResult<Vec<Option<u64>>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let rows = vec!["(?, ?, ?)"; writes.len()].join(", ");
        let statement = format!(
            "WITH wanted (key, value, version) AS (VALUES {rows})
             UPDATE idempotency_keys
             SET value = (SELECT wanted.value FROM wanted WHERE wanted.key = idempotency_keys.key),
                 version = version + 1
             WHERE created_ms >= ?
               AND (key, version) IN (SELECT key, version FROM wanted)
             RETURNING key"
        );
        let mut query = sqlx::query(AssertSqlSafe(statement));
        for write in writes {
            let version = write.expected.unwrap_or_default() as i64;
            query = query.bind(&write.key).bind(&write.value).bind(version);
        }
        let written = query
            .bind(self.cutoff_ms())
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        let written = returned_keys(&written)?;
        Ok(writes
            .iter()
            .map(|write| {
                let expected = write.expected.unwrap_or_default();
                written.contains(&write.key).then_some(expected + 1)
            })
            .collect())
    }
}

fn returned_keys(rows: &[sqlx::sqlite::SqliteRow]) -> LedgerResult<HashSet<String>> {
    rows.iter()
        .map(|row| row.try_get::<String, _>("key").map_err(db_error))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_sqlite_ledger_compare_and_set_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.sqlite");
        let ledger = SqliteLedger::open(&path, 86_400).await.expect("open");
        super::super::conformance::check_compare_and_set(&ledger, "k").await;
        drop(ledger);
        let reopened = SqliteLedger::open(&path, 86_400).await.expect("reopen");
        let read = reopened.get("k").await.expect("get").expect("kept");
        assert_eq!(read.value, b"two");
    }

    #[tokio::test]
    async fn test_sqlite_ledger_forgets_entries_older_than_the_window() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = SqliteLedger::open(&dir.path().join("ledger.sqlite"), 86_400)
            .await
            .expect("open");
        ledger.put_if("old", b"v", None).await.expect("put");
        // Age the row past the window.
        sqlx::query("UPDATE idempotency_keys SET created_ms = created_ms - 86400001")
            .execute(ledger.pool())
            .await
            .expect("age");
        assert_eq!(ledger.get("old").await.expect("get"), None);
        assert!(
            ledger
                .put_if("old", b"new", None)
                .await
                .expect("put")
                .is_some(),
            "an expired key can be used again"
        );
    }

    /// Writes that meet in one group commit keep their conditions: of many claims of
    /// one key exactly one wins, of many updates from one version exactly one wins,
    /// and writes of different keys all land.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_concurrent_writes_keep_their_conditions_in_a_group_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Arc::new(
            SqliteLedger::open(&dir.path().join("ledger.sqlite"), 86_400)
                .await
                .expect("open"),
        );
        let spawn_all = |writes: Vec<(String, Option<u64>)>| {
            let tasks: Vec<_> = writes
                .into_iter()
                .map(|(key, expected)| {
                    let ledger = ledger.clone();
                    tokio::spawn(async move { ledger.put_if(&key, b"v", expected).await })
                })
                .collect();
            async move {
                let mut outcomes = Vec::new();
                for task in tasks {
                    outcomes.push(task.await.expect("task").expect("write"));
                }
                outcomes
            }
        };
        let distinct = spawn_all((0..300).map(|n| (format!("k{n}"), None)).collect()).await;
        assert!(distinct.iter().all(Option::is_some), "{distinct:?}");
        let same = spawn_all((0..50).map(|_| ("one".to_string(), None)).collect()).await;
        assert_eq!(
            same.iter().filter(|won| won.is_some()).count(),
            1,
            "{same:?}"
        );
        let version = same.into_iter().flatten().next().expect("a winner");
        let updates = spawn_all(
            (0..50)
                .map(|_| ("one".to_string(), Some(version)))
                .collect(),
        )
        .await;
        assert_eq!(
            updates.into_iter().flatten().collect::<Vec<_>>(),
            vec![version + 1],
            "one update from a version wins"
        );
        let read = ledger.get("one").await.expect("get").expect("kept");
        assert_eq!(read.version, version + 1);
    }
}
