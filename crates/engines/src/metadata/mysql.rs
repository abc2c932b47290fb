//! MySQL / MariaDB metadata store (distributed mode), with migrations from `migrations/mysql`.
//!
//! # Design
//!
//! - The schema is the SQLite one in MySQL dialect. MySQL commits every DDL statement on
//!   its own, so each migration file holds exactly one statement: a migration that fails
//!   can never be left half-applied (sqlx would mark it dirty and refuse to start).
//!   Migrations run at start-up; sqlx takes a database advisory lock while it migrates,
//!   so several control-api replicas may start at once.
//! - [`MysqlMetadataStore::connect`] creates the database named in the URL when it is
//!   missing, so a fresh server needs no manual step.
//! - The queries are those of the SQL store ([`super::sql`]); this module supplies the
//!   MySQL [`Dialect`] (upserts, `FOR UPDATE` row locks) and the connection.
//! - Names use the `utf8mb4_bin` collation, so they are case-sensitive exactly as in
//!   SQLite, and both dialects pass the same conformance suite (`metadata::conformance`).
//! - Losing the server is reported as [`MetadataError::Unavailable`], saying the
//!   store is unreachable; requests wait at most `connect_timeout_ms` for a
//!   connection, so control-api answers quickly instead of hanging.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::migrate::MigrateDatabase;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::MySql;

use super::sql::{Dialect, SqlMetadataStore};
use super::{MetadataError, MetadataResult};

/// Settings of the MySQL (or MariaDB) metadata store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MysqlMetadataConfig {
    /// Connection URL, `mysql://USER[:PASSWORD]@HOST:PORT/DATABASE`. The database is
    /// created at start-up when it does not exist yet.
    pub url: String,
    /// Largest number of open connections to the server.
    pub max_connections: u32,
    /// How long to wait for a connection (at start-up and per request) before the
    /// store is reported unreachable, in milliseconds.
    pub connect_timeout_ms: u64,
}

impl Default for MysqlMetadataConfig {
    fn default() -> Self {
        MysqlMetadataConfig {
            url: "mysql://root@127.0.0.1:3306/logpool".to_string(),
            max_connections: 10,
            connect_timeout_ms: 5_000,
        }
    }
}

/// The MySQL implementation of the metadata traits.
pub type MysqlMetadataStore = SqlMetadataStore<MySql>;

impl Dialect for MySql {
    const LABEL: &'static str = "MySQL";
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const FOR_SHARE: &'static str = " LOCK IN SHARE MODE";
    const INSERT_OR_IGNORE: &'static str = "INSERT IGNORE";
    const GREATEST: &'static str = "GREATEST";

    fn rows_affected(result: &sqlx::mysql::MySqlQueryResult) -> u64 {
        result.rows_affected()
    }

    fn on_conflict_update(_keys: &[&str]) -> String {
        "ON DUPLICATE KEY UPDATE".to_string()
    }

    fn proposed(column: &str) -> String {
        format!("VALUES({column})")
    }
}

impl SqlMetadataStore<MySql> {
    /// Connects to the server, creates the database if it is missing and applies the
    /// migrations of `migrations/mysql`.
    ///
    /// # Errors
    /// Returns [`MetadataError::Database`] when the URL is invalid or names no
    /// database, when the server cannot be reached within `connect_timeout_ms` (the
    /// message then says the store is unreachable), or when a migration fails.
    pub async fn connect(config: &MysqlMetadataConfig) -> MetadataResult<MysqlMetadataStore> {
        let options = MySqlConnectOptions::from_str(&config.url)
            .map_err(|e| MetadataError::Database(format!("invalid MySQL url: {e}")))?;
        if options.get_database().is_none() {
            return Err(MetadataError::Database(
                "the MySQL url must name a database, as in mysql://root@127.0.0.1:3306/logpool"
                    .to_string(),
            ));
        }
        let timeout = Duration::from_millis(config.connect_timeout_ms.max(1));
        let server = format!("{}:{}", options.get_host(), options.get_port());
        create_database_if_missing(&config.url, &server, timeout).await?;
        let pool = MySqlPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(timeout)
            .connect_with(options)
            .await
            .map_err(|e| unreachable(&server, &e))?;
        // sqlx holds a `GET_LOCK` advisory lock while migrating, so replicas that
        // start together apply each migration once.
        sqlx::migrate!("../../migrations/mysql")
            .run(&pool)
            .await
            .map_err(|e| MetadataError::Database(format!("MySQL migration failed: {e}")))?;
        Ok(SqlMetadataStore::from_pool(pool, timeout))
    }
}

/// Creates the database of `url` when it does not exist. A concurrent creation by
/// another replica is not an error.
async fn create_database_if_missing(
    url: &str,
    server: &str,
    timeout: Duration,
) -> MetadataResult<()> {
    // These helpers open their own connection without a timeout of their own, so an
    // unreachable host would otherwise hang start-up.
    let exists = tokio::time::timeout(timeout, MySql::database_exists(url))
        .await
        .map_err(|_| timed_out(server, timeout))?
        .map_err(|e| unreachable(server, &e))?;
    if exists {
        return Ok(());
    }
    let created = tokio::time::timeout(timeout, MySql::create_database(url))
        .await
        .map_err(|_| timed_out(server, timeout))?;
    if let Err(error) = created {
        let exists_now = tokio::time::timeout(timeout, MySql::database_exists(url))
            .await
            .map_err(|_| timed_out(server, timeout))?
            .map_err(|e| unreachable(server, &e))?;
        if !exists_now {
            return Err(MetadataError::Database(format!(
                "cannot create the metadata database on {server}: {error}"
            )));
        }
    }
    Ok(())
}

fn unreachable(server: &str, error: &sqlx::Error) -> MetadataError {
    MetadataError::Unavailable(format!(
        "MySQL metadata store unreachable at {server}: {error}"
    ))
}

fn timed_out(server: &str, timeout: Duration) -> MetadataError {
    MetadataError::Unavailable(format!(
        "MySQL metadata store unreachable at {server}: no answer within {} ms",
        timeout.as_millis()
    ))
}

#[cfg(test)]
mod tests {
    use crate::metadata::PoolRef;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::Arc;

    use sqlx::MySqlPool;

    use super::*;
    use crate::metadata::conformance::new_pool;
    use crate::metadata::{AccessStore, CatalogStore};

    const TEST_TIMEOUT: Duration = Duration::from_secs(120);

    /// Returns the URL of a fresh database `logpool_test_<random>` on the test server.
    fn test_database_url() -> String {
        let base = std::env::var("LOGPOOL_TEST_MYSQL_URL").unwrap_or_else(|_| {
            panic!(
                "LOGPOOL_TEST_MYSQL_URL must be set (e.g. mysql://root@127.0.0.1:3306) \
                 to run the MySQL metadata tests; they need a running MySQL/MariaDB server"
            )
        });
        let (server, params) = match base.split_once('?') {
            Some((server, params)) => (server, format!("?{params}")),
            None => (base.as_str(), String::new()),
        };
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        format!(
            "{}/logpool_test_{:016x}{params}",
            server.trim_end_matches('/'),
            hasher.finish()
        )
    }

    fn test_config(url: &str) -> MysqlMetadataConfig {
        MysqlMetadataConfig {
            url: url.to_string(),
            max_connections: 4,
            connect_timeout_ms: 5_000,
        }
    }

    async fn drop_database(url: &str) {
        // Best effort: a leftover test database only costs disk space.
        let _ = MySql::drop_database(url).await;
    }

    /// A database of its own on the test server, dropped after the scenario.
    struct MysqlFixture {
        store: Arc<MysqlMetadataStore>,
        url: String,
    }

    impl crate::metadata::conformance::ConformanceFixture for MysqlFixture {
        async fn open() -> Self {
            let url = test_database_url();
            let store = MysqlMetadataStore::connect(&test_config(&url))
                .await
                .expect("connect");
            MysqlFixture {
                store: Arc::new(store),
                url,
            }
        }

        fn store(&self) -> Arc<dyn crate::metadata::MetadataStore> {
            self.store.clone()
        }

        async fn close(self) {
            self.store.pool().close().await;
            drop_database(&self.url).await;
        }
    }

    mod conformance {
        crate::metadata::conformance::metadata_conformance_tests!(super::MysqlFixture);
    }

    #[tokio::test]
    async fn test_state_survives_reconnect_and_migrations_run_once() {
        let url = test_database_url();
        tokio::time::timeout(TEST_TIMEOUT, async {
            let first_id = {
                let store = MysqlMetadataStore::connect(&test_config(&url))
                    .await
                    .expect("connect creates the database");
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
                web.id
            };
            // Connecting again re-runs the (already applied) migrations: a no-op.
            let store = MysqlMetadataStore::connect(&test_config(&url))
                .await
                .expect("reconnect");
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
            assert_eq!(again.partitions, [2], "partitions are never reused");
            assert!(again.id > first_id, "pool ids are never reused");
            let applied: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = TRUE")
                    .fetch_one(store.pool())
                    .await
                    .expect("count migrations");
            let files = std::fs::read_dir(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../migrations/mysql"
            ))
            .expect("migrations dir")
            .filter(|entry| {
                entry
                    .as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
            })
            .count();
            assert_eq!(applied as usize, files, "one row per migration file");
            store.check_health().await.expect("healthy");
        })
        .await
        .expect("test finishes in time");
        drop_database(&url).await;
    }

    /// A database made before tenants were stored keeps every project reachable: the
    /// tenants of its projects become stored tenants, next to `default`.
    #[tokio::test]
    async fn test_upgrade_stores_the_tenants_of_existing_projects() {
        let url = test_database_url();
        let dir = tempfile::tempdir().expect("tempdir");
        let all = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/mysql");
        for entry in std::fs::read_dir(all).expect("migrations") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .to_string();
            if name.as_str() < "0010" {
                std::fs::copy(&path, dir.path().join(&name)).expect("copy");
            }
        }
        tokio::time::timeout(TEST_TIMEOUT, async {
            MySql::create_database(&url).await.expect("create database");
            let pool = MySqlPool::connect(&url).await.expect("connect");
            sqlx::migrate::Migrator::new(dir.path())
                .await
                .expect("old migrations")
                .run(&pool)
                .await
                .expect("migrate to the old schema");
            for (tenant, created) in [("legacy", 7), ("legacy", 5), ("default", 9)] {
                sqlx::query(
                    "INSERT INTO projects (tenant, name, description, created_at_ms, updated_at_ms) VALUES (?, ?, '', ?, ?)",
                )
                .bind(tenant)
                .bind(format!("p{created}"))
                .bind(created)
                .bind(created)
                .execute(&pool)
                .await
                .expect("old project");
            }
            pool.close().await;
            let store = MysqlMetadataStore::connect(&test_config(&url))
                .await
                .expect("upgrade");
            let tenants = store.list_tenants().await.expect("tenants");
            let found: Vec<(&str, i64)> = tenants
                .iter()
                .map(|t| (t.name.as_str(), t.created_at_ms))
                .collect();
            assert_eq!(found, [("default", 9), ("legacy", 5)]);
            store
                .set_limits("legacy", Some("p5"), &logpool_core::access::Limits::default())
                .await
                .expect("the old project is usable");
        })
        .await
        .expect("test finishes in time");
        drop_database(&url).await;
    }

    #[tokio::test]
    async fn test_unreachable_server_is_unavailable_saying_so() {
        // Port 1 on loopback refuses connections: no server needs to be down for this.
        let config = MysqlMetadataConfig {
            url: "mysql://root@127.0.0.1:1/logpool".to_string(),
            max_connections: 1,
            connect_timeout_ms: 1_000,
        };
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            MysqlMetadataStore::connect(&config),
        )
        .await
        .expect("connect gives up within its timeout");
        match result {
            Err(MetadataError::Unavailable(message)) => {
                assert!(message.contains("unreachable"), "{message}");
                assert!(message.contains("127.0.0.1:1"), "{message}");
            }
            other => panic!("expected an unreachable error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn test_url_without_database_is_rejected() {
        let config = MysqlMetadataConfig {
            url: "mysql://root@127.0.0.1:3306".to_string(),
            ..MysqlMetadataConfig::default()
        };
        assert!(matches!(
            MysqlMetadataStore::connect(&config).await,
            Err(MetadataError::Database(message)) if message.contains("must name a database")
        ));
    }
}
