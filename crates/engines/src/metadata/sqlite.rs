//! SQLite metadata store (embedded mode), with migrations from `migrations/sqlite`:
//! the SQL store ([`super::sql`]) in the SQLite [`Dialect`].
//!
//! One connection: control-plane writes are rare, and a single writer avoids
//! SQLite's "database is locked" under concurrent writes entirely. Each transaction
//! therefore runs alone, and the dialect needs no row locks.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Sqlite;

use super::sql::{db_error, Dialect, SqlMetadataStore};
use super::{MetadataError, MetadataResult};

/// How long a statement waits for the database file's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of the SQLite store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteMetadataConfig {
    /// Database file.
    pub path: PathBuf,
}

impl Default for SqliteMetadataConfig {
    fn default() -> Self {
        SqliteMetadataConfig {
            path: PathBuf::from("metadata.sqlite"),
        }
    }
}

/// The SQLite implementation of the metadata traits.
pub type SqliteMetadataStore = SqlMetadataStore<Sqlite>;

impl Dialect for Sqlite {
    const LABEL: &'static str = "SQLite";
    // One connection: every transaction runs alone, so no lock is needed.
    const FOR_UPDATE: &'static str = "";
    const FOR_SHARE: &'static str = "";
    const INSERT_OR_IGNORE: &'static str = "INSERT OR IGNORE";
    const GREATEST: &'static str = "MAX";

    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    fn on_conflict_update(keys: &[&str]) -> String {
        format!("ON CONFLICT ({}) DO UPDATE SET", keys.join(", "))
    }

    fn proposed(column: &str) -> String {
        format!("excluded.{column}")
    }
}

impl SqlMetadataStore<Sqlite> {
    /// Opens (creating if needed) the database and applies migrations.
    ///
    /// # Errors
    /// Fails when the file cannot be opened or a migration fails.
    pub async fn open(config: &SqliteMetadataConfig) -> MetadataResult<SqliteMetadataStore> {
        if let Some(parent) = config.path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| MetadataError::Database(e.to_string()))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(&config.path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(db_error::<Sqlite>)?;
        sqlx::migrate!("../../migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| MetadataError::Database(format!("migration failed: {e}")))?;
        Ok(SqlMetadataStore::from_pool(pool, BUSY_TIMEOUT))
    }
}

#[cfg(test)]
mod tests {
    use crate::metadata::PoolRef;
    use std::collections::BTreeMap;

    use sqlx::SqlitePool;

    use super::*;
    use crate::metadata::{AccessStore, CatalogStore, NewPool, PoolPatch};

    fn new_pool(name: &str, shards: u32) -> NewPool {
        NewPool {
            name: name.into(),
            description: String::new(),
            shards,
            retention_days: 7,
            field_hints: BTreeMap::new(),
            event_window: Default::default(),
        }
    }

    #[tokio::test]
    async fn test_state_survives_reopen_and_partitions_are_never_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = SqliteMetadataConfig {
            path: dir.path().join("meta.sqlite"),
        };
        {
            let store = SqliteMetadataStore::open(&config).await.expect("open");
            store.create_tenant("t").await.expect("tenant");
            store
                .create_project("t", "shop", "d")
                .await
                .expect("project");
            let web = store
                .create_pool("t", "shop", new_pool("web", 2))
                .await
                .expect("pool");
            assert_eq!(web.partitions, [0, 1]);
            store
                .delete_pool(&PoolRef::new("t", "shop", "web"))
                .await
                .expect("delete");
        }
        let store = SqliteMetadataStore::open(&config).await.expect("reopen");
        assert_eq!(
            store
                .get_project("t", "shop")
                .await
                .expect("project")
                .description,
            "d"
        );
        let again = store
            .create_pool("t", "shop", new_pool("web", 1))
            .await
            .expect("pool");
        assert_eq!(
            again.partitions,
            [2],
            "partitions of a deleted pool are not reused"
        );
        assert!(matches!(
            store.create_pool("t", "shop", new_pool("web", 1)).await,
            Err(MetadataError::AlreadyExists { .. })
        ));
        assert!(matches!(
            store.get_pool(&PoolRef::new("t", "nope", "web")).await,
            Err(MetadataError::NotFound { .. })
        ));
        let grown = store
            .update_pool(
                &PoolRef::new("t", "shop", "web"),
                PoolPatch {
                    shards: Some(3),
                    ..PoolPatch::default()
                },
            )
            .await
            .expect("grow");
        assert_eq!(grown.partitions, [2, 3, 4]);
        assert!(matches!(
            store
                .update_pool(
                    &PoolRef::new("t", "shop", "web"),
                    PoolPatch {
                        shards: Some(1),
                        ..PoolPatch::default()
                    }
                )
                .await,
            Err(MetadataError::Conflict(_))
        ));
        assert_eq!(
            store
                .delete_project("t", "shop")
                .await
                .expect("delete")
                .len(),
            1
        );
        assert!(store.all_pools().await.expect("all").is_empty());
    }

    /// A database made before tenants were stored keeps every project reachable: the
    /// tenants of its projects become stored tenants, next to `default`.
    #[tokio::test]
    async fn test_upgrade_stores_the_tenants_of_existing_projects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old_migrations = dir.path().join("migrations");
        std::fs::create_dir(&old_migrations).expect("mkdir");
        let all = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/sqlite");
        for entry in std::fs::read_dir(all).expect("migrations") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .to_string();
            if name.as_str() < "0005" {
                std::fs::copy(&path, old_migrations.join(&name)).expect("copy");
            }
        }
        let config = SqliteMetadataConfig {
            path: dir.path().join("meta.sqlite"),
        };
        {
            let options = SqliteConnectOptions::new()
                .filename(&config.path)
                .create_if_missing(true);
            let pool = SqlitePool::connect_with(options).await.expect("connect");
            sqlx::migrate::Migrator::new(old_migrations.as_path())
                .await
                .expect("old migrations")
                .run(&pool)
                .await
                .expect("migrate to the old schema");
            sqlx::query(
                "INSERT INTO projects (tenant, name, description, created_at_ms, updated_at_ms) VALUES ('legacy', 'shop', '', 5, 5)",
            )
            .execute(&pool)
            .await
            .expect("old project");
            pool.close().await;
        }
        let store = SqliteMetadataStore::open(&config).await.expect("upgrade");
        let tenants = store.list_tenants().await.expect("tenants");
        let names: Vec<&str> = tenants.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["default", "legacy"]);
        assert_eq!(tenants[1].created_at_ms, 5, "the oldest project's time");
        assert!(tenants[0].created_at_ms > 0);
        store
            .set_limits(
                "legacy",
                Some("shop"),
                &logpool_core::access::Limits::default(),
            )
            .await
            .expect("the old project is usable");
    }

    /// A store in a temporary directory of its own.
    struct SqliteFixture {
        store: std::sync::Arc<SqliteMetadataStore>,
        _dir: tempfile::TempDir,
    }

    impl crate::metadata::conformance::ConformanceFixture for SqliteFixture {
        async fn open() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let config = SqliteMetadataConfig {
                path: dir.path().join("meta.sqlite"),
            };
            let store = SqliteMetadataStore::open(&config).await.expect("open");
            SqliteFixture {
                store: std::sync::Arc::new(store),
                _dir: dir,
            }
        }

        fn store(&self) -> std::sync::Arc<dyn crate::metadata::MetadataStore> {
            self.store.clone()
        }

        async fn close(self) {}
    }

    mod conformance {
        crate::metadata::conformance::metadata_conformance_tests!(super::SqliteFixture);
    }
}
