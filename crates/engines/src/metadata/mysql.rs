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
//! - Every write that reads before it writes runs in one transaction that first locks
//!   the project row with `SELECT ... FOR UPDATE`. That serialises partition allocation
//!   per project across all replicas (partition numbers are handed out once and never
//!   reused, even after the pool that held them is deleted), and locking the project
//!   before any pool row everywhere gives one lock order, so these transactions cannot
//!   deadlock each other.
//! - Names use the `utf8mb4_bin` collation, so they are case-sensitive exactly as in
//!   SQLite, and both stores pass the same conformance suite (`metadata::conformance`).
//! - Losing the server is reported as [`MetadataError::Database`] with a message saying
//!   the store is unreachable; requests wait at most `connect_timeout_ms` for a
//!   connection, so control-api answers quickly instead of hanging.

mod access;
mod archive;
mod groups;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::migrate::MigrateDatabase;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPoolOptions, MySqlRow};
use sqlx::{MySql, MySqlPool, Row};

use super::rows::{is_unique_violation, now_ms, pool_from_row, project_from_row, to_json};
use super::{
    ApiKey, Checkpoint, ConsumerGroup, MetadataError, MetadataResult, MetadataStore, NewApiKey,
    NewConsumerGroup, NewPool, Pool, PoolPatch, Project, StoredLimits, Tenant,
};

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

/// The MySQL implementation of [`MetadataStore`].
#[derive(Debug, Clone)]
pub struct MysqlMetadataStore {
    pool: MySqlPool,
    request_timeout: Duration,
}

/// A pool query with its project joined in; a macro so the SQL stays a static string.
macro_rules! select_pools {
    ($rest:literal) => {
        concat!(
            "SELECT p.id, pr.tenant, pr.name AS project, p.name, p.description, p.partitions, ",
            "p.retention_days, p.field_hints, p.max_event_age_days, p.max_event_future_secs, ",
            "p.created_at_ms, p.updated_at_ms ",
            "FROM pools p JOIN projects pr ON pr.id = p.project_id ",
            $rest
        )
    };
}

/// The project columns, in the order [`project_from_row`] reads them.
macro_rules! select_projects {
    ($rest:literal) => {
        concat!(
            "SELECT id, tenant, name, description, created_at_ms, updated_at_ms FROM projects ",
            $rest
        )
    };
}

impl MysqlMetadataStore {
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
        Ok(MysqlMetadataStore {
            pool,
            request_timeout: timeout,
        })
    }

    async fn project_row(&self, tenant: &str, name: &str) -> MetadataResult<Project> {
        let row = sqlx::query(select_projects!("WHERE tenant = ? AND name = ?"))
            .bind(tenant)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .ok_or_else(|| project_not_found(name))?;
        project_from_row(&row, db_error)
    }

    /// Begins a transaction, waiting at most the connect timeout for a connection.
    async fn begin(&self) -> MetadataResult<sqlx::Transaction<'static, MySql>> {
        self.pool.begin().await.map_err(db_error)
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

/// Maps a sqlx error, saying "unreachable" for connection failures so operators (and
/// `/readyz`) can tell a dead server from a bad query.
fn db_error(error: sqlx::Error) -> MetadataError {
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
        MetadataError::Unavailable(format!("MySQL metadata store unreachable: {error}"))
    } else {
        MetadataError::Database(error.to_string())
    }
}

fn project_not_found(name: &str) -> MetadataError {
    MetadataError::NotFound {
        kind: "project",
        name: name.to_string(),
    }
}

fn pool_not_found(name: &str) -> MetadataError {
    MetadataError::NotFound {
        kind: "pool",
        name: name.to_string(),
    }
}

/// Locks the project row for the rest of the transaction and returns its id and next
/// free partition number.
async fn lock_project(
    conn: &mut MySqlConnection,
    tenant: &str,
    name: &str,
) -> MetadataResult<(i64, u32)> {
    let row = sqlx::query(
        "SELECT id, next_partition FROM projects WHERE tenant = ? AND name = ? FOR UPDATE",
    )
    .bind(tenant)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?
    .ok_or_else(|| project_not_found(name))?;
    let project_id: i64 = row.try_get("id").map_err(db_error)?;
    let next_partition: i64 = row.try_get("next_partition").map_err(db_error)?;
    let next_partition = u32::try_from(next_partition)
        .map_err(|_| MetadataError::Conflict("partition numbers exhausted".into()))?;
    Ok((project_id, next_partition))
}

/// Hands out `count` partition numbers of a project locked by [`lock_project`].
async fn allocate_partitions(
    conn: &mut MySqlConnection,
    project_id: i64,
    first: u32,
    count: u32,
) -> MetadataResult<std::ops::Range<u32>> {
    let end = first
        .checked_add(count)
        .ok_or_else(|| MetadataError::Conflict("partition numbers exhausted".into()))?;
    sqlx::query("UPDATE projects SET next_partition = ? WHERE id = ?")
        .bind(i64::from(end))
        .bind(project_id)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    Ok(first..end)
}

/// Reads one pool by id inside a transaction, locking its row.
async fn pool_by_id_for_update(conn: &mut MySqlConnection, id: i64) -> MetadataResult<MySqlRow> {
    sqlx::query(select_pools!("WHERE p.id = ? FOR UPDATE"))
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_error)
}

/// Reads one pool of a locked project by name, locking its row.
async fn pool_by_name_for_update(
    conn: &mut MySqlConnection,
    project_id: i64,
    name: &str,
) -> MetadataResult<Pool> {
    let row = sqlx::query(select_pools!(
        "WHERE p.project_id = ? AND p.name = ? FOR UPDATE"
    ))
    .bind(project_id)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?
    .ok_or_else(|| pool_not_found(name))?;
    pool_from_row(&row, db_error)
}

#[async_trait]
impl MetadataStore for MysqlMetadataStore {
    async fn create_project(
        &self,
        tenant: &str,
        name: &str,
        description: &str,
    ) -> MetadataResult<Project> {
        self.ensure_tenant(tenant).await?;
        let now = now_ms();
        let result = sqlx::query(
            "INSERT INTO projects (tenant, name, description, next_partition, created_at_ms, updated_at_ms) \
             VALUES (?, ?, ?, COALESCE((SELECT r.next_partition FROM retired_project_partitions r \
             WHERE r.tenant = ? AND r.project = ?), 0), ?, ?)",
        )
        .bind(tenant)
        .bind(name)
        .bind(description)
        .bind(tenant)
        .bind(name)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await;
        match result {
            Ok(done) => Ok(Project {
                id: i64::try_from(done.last_insert_id()).unwrap_or(i64::MAX),
                tenant: tenant.to_string(),
                name: name.to_string(),
                description: description.to_string(),
                created_at_ms: now,
                updated_at_ms: now,
            }),
            Err(error) if is_unique_violation(&error) => Err(MetadataError::AlreadyExists {
                kind: "project",
                name: name.to_string(),
            }),
            Err(error) => Err(db_error(error)),
        }
    }

    async fn list_projects(&self, tenant: &str) -> MetadataResult<Vec<Project>> {
        let rows = sqlx::query(select_projects!("WHERE tenant = ? ORDER BY name"))
            .bind(tenant)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| project_from_row(row, db_error))
            .collect()
    }

    async fn get_project(&self, tenant: &str, name: &str) -> MetadataResult<Project> {
        self.project_row(tenant, name).await
    }

    async fn update_project(
        &self,
        tenant: &str,
        name: &str,
        description: Option<String>,
    ) -> MetadataResult<Project> {
        let project = self.project_row(tenant, name).await?;
        if let Some(description) = description {
            sqlx::query("UPDATE projects SET description = ?, updated_at_ms = ? WHERE id = ?")
                .bind(description)
                .bind(now_ms())
                .bind(project.id)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        }
        self.project_row(tenant, name).await
    }

    async fn delete_project(&self, tenant: &str, name: &str) -> MetadataResult<Vec<Pool>> {
        let mut tx = self.begin().await?;
        let (project_id, _) = lock_project(&mut tx, tenant, name).await?;
        // Read the pools under the project lock, so the answer lists exactly the pools
        // this transaction deletes (no pool can be added in between).
        let rows = sqlx::query(select_pools!("WHERE p.project_id = ? ORDER BY p.name"))
            .bind(project_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        let pools = rows
            .iter()
            .map(|row| pool_from_row(row, db_error))
            .collect::<MetadataResult<Vec<_>>>()?;
        // Remember where numbering stopped, so a project re-created under this name
        // never gets the old queue partitions back.
        sqlx::query(
            "INSERT INTO retired_project_partitions (tenant, project, next_partition) \
             SELECT tenant, name, next_partition FROM projects WHERE id = ? \
             ON DUPLICATE KEY UPDATE next_partition = VALUES(next_partition)",
        )
        .bind(project_id)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        // Explicit, although the foreign key cascades: the behaviour must not depend
        // on the storage engine enforcing foreign keys.
        sqlx::query("DELETE FROM pools WHERE project_id = ?")
            .bind(project_id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        Self::delete_project_access_in(&mut tx, tenant, name).await?;
        sqlx::query("DELETE FROM projects WHERE id = ?")
            .bind(project_id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(pools)
    }

    async fn create_pool(
        &self,
        tenant: &str,
        project: &str,
        pool: NewPool,
    ) -> MetadataResult<Pool> {
        let mut tx = self.begin().await?;
        let (project_id, first) = lock_project(&mut tx, tenant, project).await?;
        let partitions: Vec<u32> = allocate_partitions(&mut tx, project_id, first, pool.shards)
            .await?
            .collect();
        let now = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO pools (project_id, name, description, partitions, retention_days, field_hints, \
             max_event_age_days, max_event_future_secs, created_at_ms, updated_at_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(project_id)
        .bind(&pool.name)
        .bind(&pool.description)
        .bind(to_json(&partitions)?)
        .bind(i64::from(pool.retention_days))
        .bind(to_json(&pool.field_hints)?)
        .bind(pool.event_window.max_event_age_days.map(i64::from))
        .bind(pool.event_window.max_event_future_secs.map(i64::from))
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await;
        let pool_id = match inserted {
            Ok(done) => i64::try_from(done.last_insert_id()).unwrap_or(i64::MAX),
            // Dropping `tx` rolls back, so the partitions allocated above are not
            // consumed by a failed creation.
            Err(error) if is_unique_violation(&error) => {
                return Err(MetadataError::AlreadyExists {
                    kind: "pool",
                    name: pool.name,
                });
            }
            Err(error) => return Err(db_error(error)),
        };
        let row = pool_by_id_for_update(&mut tx, pool_id).await?;
        let created = pool_from_row(&row, db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(created)
    }

    async fn list_pools(&self, tenant: &str, project: &str) -> MetadataResult<Vec<Pool>> {
        self.project_row(tenant, project).await?;
        let rows = sqlx::query(select_pools!(
            "WHERE pr.tenant = ? AND pr.name = ? ORDER BY p.name"
        ))
        .bind(tenant)
        .bind(project)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| pool_from_row(row, db_error))
            .collect()
    }

    async fn get_pool(&self, tenant: &str, project: &str, name: &str) -> MetadataResult<Pool> {
        let row = sqlx::query(select_pools!(
            "WHERE pr.tenant = ? AND pr.name = ? AND p.name = ?"
        ))
        .bind(tenant)
        .bind(project)
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        match row {
            Some(row) => pool_from_row(&row, db_error),
            // Tell a missing project from a missing pool, as the SQLite store does.
            None => {
                self.project_row(tenant, project).await?;
                Err(pool_not_found(name))
            }
        }
    }

    async fn update_pool(
        &self,
        tenant: &str,
        project: &str,
        name: &str,
        patch: PoolPatch,
    ) -> MetadataResult<Pool> {
        let mut tx = self.begin().await?;
        let (project_id, next_partition) = lock_project(&mut tx, tenant, project).await?;
        let current = pool_by_name_for_update(&mut tx, project_id, name).await?;
        let mut partitions = current.partitions.clone();
        if let Some(shards) = patch.shards {
            let have = u32::try_from(partitions.len()).unwrap_or(u32::MAX);
            if shards < have {
                return Err(MetadataError::Conflict(format!(
                    "`shards` can only grow: pool `{name}` has {have} shards, asked for {shards}"
                )));
            }
            if shards > have {
                partitions.extend(
                    allocate_partitions(&mut tx, project_id, next_partition, shards - have).await?,
                );
            }
        }
        let event_window = patch.event_window(current.event_window);
        let mut hints = current.field_hints.clone();
        if let Some(new_hints) = patch.field_hints {
            hints.extend(new_hints);
        }
        sqlx::query(
            "UPDATE pools SET description = ?, partitions = ?, retention_days = ?, field_hints = ?, \
             max_event_age_days = ?, max_event_future_secs = ?, updated_at_ms = ? WHERE id = ?",
        )
        .bind(patch.description.unwrap_or(current.description))
        .bind(to_json(&partitions)?)
        .bind(i64::from(patch.retention_days.unwrap_or(current.retention_days)))
        .bind(to_json(&hints)?)
        .bind(event_window.max_event_age_days.map(i64::from))
        .bind(event_window.max_event_future_secs.map(i64::from))
        .bind(now_ms())
        .bind(current.id)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let row = pool_by_id_for_update(&mut tx, current.id).await?;
        let updated = pool_from_row(&row, db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(updated)
    }

    async fn delete_pool(&self, tenant: &str, project: &str, name: &str) -> MetadataResult<Pool> {
        let mut tx = self.begin().await?;
        let (project_id, _) = lock_project(&mut tx, tenant, project).await?;
        let pool = pool_by_name_for_update(&mut tx, project_id, name).await?;
        sqlx::query("DELETE FROM pools WHERE id = ?")
            .bind(pool.id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(pool)
    }

    async fn all_pools(&self) -> MetadataResult<Vec<Pool>> {
        let rows = sqlx::query(select_pools!("ORDER BY p.id"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| pool_from_row(row, db_error))
            .collect()
    }

    async fn check_health(&self) -> MetadataResult<()> {
        // The pool bounds the wait for a connection; the outer timeout also bounds a
        // server that accepted the connection but stopped answering.
        let ping = sqlx::query("SELECT 1").execute(&self.pool);
        match tokio::time::timeout(self.request_timeout, ping).await {
            Ok(result) => result.map(drop).map_err(db_error),
            Err(_) => Err(MetadataError::Unavailable(format!(
                "MySQL metadata store unreachable: no answer within {} ms",
                self.request_timeout.as_millis()
            ))),
        }
    }

    async fn get_or_create_secret(&self, name: &str, candidate: &str) -> MetadataResult<String> {
        self.get_or_create_secret_impl(name, candidate).await
    }

    async fn create_consumer_group(
        &self,
        tenant: &str,
        project: &str,
        pool: &str,
        group: NewConsumerGroup,
    ) -> MetadataResult<ConsumerGroup> {
        self.create_consumer_group_impl(tenant, project, pool, group)
            .await
    }

    async fn list_consumer_groups(
        &self,
        tenant: &str,
        project: &str,
        pool: &str,
    ) -> MetadataResult<Vec<ConsumerGroup>> {
        self.list_consumer_groups_impl(tenant, project, pool).await
    }

    async fn delete_consumer_group(
        &self,
        tenant: &str,
        project: &str,
        pool: &str,
        group: &str,
    ) -> MetadataResult<()> {
        self.delete_consumer_group_impl(tenant, project, pool, group)
            .await
    }

    async fn consumer_group_heartbeat(
        &self,
        tenant: &str,
        project: &str,
        pool: &str,
        group: &str,
        consumer: &str,
        now_ms: i64,
    ) -> MetadataResult<Vec<u32>> {
        self.consumer_group_heartbeat_impl(tenant, project, pool, group, consumer, now_ms)
            .await
    }

    async fn save_checkpoint(
        &self,
        tenant: &str,
        project: &str,
        pool: &str,
        group: &str,
        shard: u32,
        cursor: &str,
    ) -> MetadataResult<Checkpoint> {
        self.save_checkpoint_impl(tenant, project, pool, group, shard, cursor)
            .await
    }

    async fn list_checkpoints(
        &self,
        tenant: &str,
        project: &str,
        pool: &str,
        group: &str,
    ) -> MetadataResult<Vec<Checkpoint>> {
        self.list_checkpoints_impl(tenant, project, pool, group)
            .await
    }

    async fn set_archive_settings(
        &self,
        tenant: &str,
        project: &str,
        pool: &str,
        settings: &logpool_core::archive::ArchiveSettings,
    ) -> MetadataResult<()> {
        self.set_archive_settings_impl(tenant, project, pool, settings)
            .await
    }

    async fn get_archive_settings(
        &self,
        tenant: &str,
        project: &str,
        pool: &str,
    ) -> MetadataResult<Option<logpool_core::archive::ArchiveSettings>> {
        self.get_archive_settings_impl(tenant, project, pool).await
    }

    async fn all_archive_settings(
        &self,
    ) -> MetadataResult<std::collections::BTreeMap<i64, logpool_core::archive::ArchiveSettings>>
    {
        self.all_archive_settings_impl().await
    }

    async fn create_tenant(&self, name: &str) -> MetadataResult<Tenant> {
        self.create_tenant_impl(name).await
    }

    async fn list_tenants(&self) -> MetadataResult<Vec<Tenant>> {
        self.list_tenants_impl().await
    }

    async fn get_tenant(&self, name: &str) -> MetadataResult<Tenant> {
        self.get_tenant_impl(name).await
    }

    async fn create_key(&self, key: NewApiKey) -> MetadataResult<ApiKey> {
        self.create_key_impl(key).await
    }

    async fn save_bootstrap_key(&self, salt: &str, hash: &str) -> MetadataResult<bool> {
        self.save_bootstrap_key_impl(salt, hash).await
    }

    async fn get_key(&self, tenant: &str, id: &str) -> MetadataResult<ApiKey> {
        self.get_key_impl(tenant, id).await
    }

    async fn list_keys(&self, tenant: &str) -> MetadataResult<Vec<ApiKey>> {
        self.list_keys_impl(tenant).await
    }

    async fn set_key_enabled(
        &self,
        tenant: &str,
        id: &str,
        enabled: bool,
    ) -> MetadataResult<ApiKey> {
        self.set_key_enabled_impl(tenant, id, enabled).await
    }

    async fn delete_key(&self, tenant: &str, id: &str) -> MetadataResult<()> {
        self.delete_key_impl(tenant, id).await
    }

    async fn all_keys(&self) -> MetadataResult<Vec<ApiKey>> {
        self.all_keys_impl().await
    }

    async fn set_limits(
        &self,
        tenant: &str,
        project: Option<&str>,
        limits: &logpool_core::access::Limits,
    ) -> MetadataResult<()> {
        self.set_limits_impl(tenant, project, limits).await
    }

    async fn get_limits(
        &self,
        tenant: &str,
        project: Option<&str>,
    ) -> MetadataResult<logpool_core::access::Limits> {
        self.get_limits_impl(tenant, project).await
    }

    async fn all_limits(&self) -> MetadataResult<Vec<StoredLimits>> {
        self.all_limits_impl().await
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::Arc;

    use super::*;
    use crate::metadata::conformance::{new_pool, run_metadata_conformance};

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

    #[tokio::test]
    async fn test_metadata_conformance_on_mysql() {
        let url = test_database_url();
        tokio::time::timeout(TEST_TIMEOUT, async {
            let store = MysqlMetadataStore::connect(&test_config(&url))
                .await
                .expect("connect");
            run_metadata_conformance(Arc::new(store)).await;
        })
        .await
        .expect("the conformance suite finishes in time");
        drop_database(&url).await;
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
                store.delete_pool("t", "shop", "web").await.expect("delete");
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
                    .fetch_one(&store.pool)
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
