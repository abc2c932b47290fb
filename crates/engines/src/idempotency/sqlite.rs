//! The ledger in a SQLite file of the data directory (with the local coordinator:
//! one process owns the data directory, so one file is the whole ledger).
//!
//! One row per key. Rows older than the window are invisible to reads, may be
//! replaced by a new request with the same key, and are deleted by a sweep that runs
//! at most once a minute, on a write.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::{now_ms, IdempotencyLedger, LedgerError, LedgerResult, Versioned};

/// How often expired rows are deleted, at most.
const SWEEP_EVERY_MS: i64 = 60_000;

/// The SQLite ledger.
#[derive(Debug)]
pub struct SqliteLedger {
    pool: SqlitePool,
    window_ms: i64,
    last_sweep_ms: AtomicI64,
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
        Ok(SqliteLedger {
            pool,
            window_ms: i64::try_from(window_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            last_sweep_ms: AtomicI64::new(0),
        })
    }

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
        .bind(self.cutoff_ms())
        .fetch_optional(&self.pool)
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
        match expected {
            None => {
                self.sweep().await?;
                let now = now_ms();
                // A new entry's version is its creation time, so it never equals a
                // version of an expired entry it replaces (those are older than the
                // window plus their update count).
                let written = sqlx::query(
                    "INSERT INTO idempotency_keys (key, value, version, created_ms) VALUES (?, ?, ?, ?)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                         version = excluded.version, created_ms = excluded.created_ms
                     WHERE idempotency_keys.created_ms < ?",
                )
                .bind(key)
                .bind(value)
                .bind(now)
                .bind(now)
                .bind(self.cutoff_ms())
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok((written.rows_affected() == 1).then_some(now as u64))
            }
            Some(version) => {
                let written = sqlx::query(
                    "UPDATE idempotency_keys SET value = ?, version = version + 1
                     WHERE key = ? AND version = ? AND created_ms >= ?",
                )
                .bind(value)
                .bind(key)
                .bind(version as i64)
                .bind(self.cutoff_ms())
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok((written.rows_affected() == 1).then_some(version + 1))
            }
        }
    }
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
            .execute(&ledger.pool)
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
}
