//! The SQL metadata store: one implementation of every metadata trait, generic over
//! the [`Dialect`] of its database. SQLite (embedded) and MySQL/MariaDB (distributed)
//! are the two dialects; they differ only in a few SQL fragments (upserts, row locks,
//! insert-or-ignore), which the dialect supplies.
//!
//! # Design
//!
//! - Every write that reads before it writes runs in one transaction that first locks
//!   the project row ([`Dialect::FOR_UPDATE`]). That serialises partition allocation
//!   per project across all replicas (partition numbers are handed out once and never
//!   reused, even after the pool that held them is deleted), and locking the project
//!   before any pool row everywhere gives one lock order, so these transactions cannot
//!   deadlock each other. On SQLite the store has one connection, so each transaction
//!   runs alone and the lock clauses are empty.
//! - Everything a transaction reads is read through that transaction: with one SQLite
//!   connection, a read through the pool inside a transaction would wait for itself.
//! - Both dialects pass the same conformance suite (`metadata::conformance`).

mod access;
mod alerts;
mod archive;
mod catalog;
mod dashboards;
mod groups;
pub(crate) mod rows;
mod saved_searches;
mod schema;

use std::fmt::Debug;
use std::marker::PhantomData;
use std::time::Duration;

use sqlx::{Database, Pool};

use super::MetadataError;

/// What one SQL database says differently from the others. Everything else of the
/// store is plain SQL that SQLite and MySQL read alike.
pub trait Dialect: Database {
    /// The database's name in messages ("MySQL").
    const LABEL: &'static str;
    /// Appended to a `SELECT` to lock the rows it reads until the transaction ends.
    const FOR_UPDATE: &'static str;
    /// Appended to a `SELECT` to keep the rows it reads from being changed or
    /// deleted by others until the transaction ends.
    const FOR_SHARE: &'static str;
    /// The start of an `INSERT` that skips a row whose key exists.
    const INSERT_OR_IGNORE: &'static str;
    /// The scalar function returning the larger of two values.
    const GREATEST: &'static str;

    /// How many rows a statement changed (sqlx has no trait for it).
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// The clause that turns an `INSERT` into an upsert on a conflict over `keys`,
    /// up to the first assignment.
    fn on_conflict_update(keys: &[&str]) -> String;

    /// The value the conflicting `INSERT` proposed for `column`, in an upsert's
    /// assignments.
    fn proposed(column: &str) -> String;

    /// `insert` (an `INSERT ... VALUES (...)`) as an upsert over `keys` that replaces
    /// each of `replaced` with the proposed value.
    fn upsert(insert: &str, keys: &[&str], replaced: &[&str]) -> String {
        let assignments: Vec<String> = replaced
            .iter()
            .map(|column| format!("{column} = {}", Self::proposed(column)))
            .collect();
        format!(
            "{insert} {} {}",
            Self::on_conflict_update(keys),
            assignments.join(", ")
        )
    }
}

/// The metadata store on a SQL database of dialect `DB`.
pub struct SqlMetadataStore<DB: Dialect> {
    pool: Pool<DB>,
    /// Bounds a health check on a server that accepted the connection but stopped
    /// answering.
    request_timeout: Duration,
    /// `fn() -> DB` rather than `DB`: the store holds no value of the dialect, so it
    /// is `Send + Sync` whatever the dialect type is.
    dialect: PhantomData<fn() -> DB>,
}

impl<DB: Dialect> SqlMetadataStore<DB> {
    /// Wraps a connected pool whose migrations have run.
    pub(crate) fn from_pool(pool: Pool<DB>, request_timeout: Duration) -> Self {
        SqlMetadataStore {
            pool,
            request_timeout,
            dialect: PhantomData,
        }
    }

    /// The connection pool (for the MySQL tests that look at the schema).
    #[cfg(all(test, feature = "mysql"))]
    pub(crate) fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

impl<DB: Dialect> Clone for SqlMetadataStore<DB> {
    fn clone(&self) -> Self {
        SqlMetadataStore::from_pool(self.pool.clone(), self.request_timeout)
    }
}

impl<DB: Dialect> Debug for SqlMetadataStore<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlMetadataStore")
            .field("dialect", &DB::LABEL)
            .field("pool", &self.pool)
            .finish()
    }
}

/// Maps a sqlx error, saying "unreachable" for connection failures so operators (and
/// `/readyz`) can tell a dead server from a bad query.
pub(crate) fn db_error<DB: Dialect>(error: sqlx::Error) -> MetadataError {
    let connection_lost = match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // SQLSTATE class 08 is "connection exception" (e.g. server shutdown, 08S01).
        sqlx::Error::Database(db) => db.code().is_some_and(|code| code.starts_with("08")),
        _ => false,
    };
    if connection_lost {
        MetadataError::Unavailable(format!("{} metadata store unreachable: {error}", DB::LABEL))
    } else {
        MetadataError::Database(error.to_string())
    }
}

/// The bounds every generic part of the store needs from its database: executing on
/// a connection, and encoding and decoding the column types the schema uses (integers
/// and text; JSON is stored as text). Written once here and repeated on each `impl`
/// through this macro, because Rust does not yet imply such bounds from a trait.
macro_rules! sql_impl {
    ($(#[$attr:meta])* impl $($trait:ident)? { $($body:tt)* }) => {
        $(#[$attr])*
        impl<DB> $($trait for)? $crate::metadata::sql::SqlMetadataStore<DB>
        where
            DB: $crate::metadata::sql::Dialect,
            for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
            DB::Arguments: sqlx::IntoArguments<DB>,
            for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
            for<'q> String: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
            for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB> + sqlx::ColumnIndex<DB::Row>,
            for<'q> Option<i64>: sqlx::Encode<'q, DB>,
            for<'q> Option<String>: sqlx::Encode<'q, DB>,
        {
            $($body)*
        }
    };
}

pub(crate) use sql_impl;
