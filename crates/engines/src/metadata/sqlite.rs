//! SQLite metadata store (embedded mode), with migrations from `migrations/sqlite`.
//!
//! One connection: control-plane writes are rare, and a single writer avoids
//! SQLite's "database is locked" under concurrent writes entirely.

mod access;
mod archive;
mod groups;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::rows::{is_unique_violation, now_ms, pool_from_row, project_from_row, to_json};
use super::{
    ApiKey, Checkpoint, ConsumerGroup, MetadataError, MetadataResult, MetadataStore, NewApiKey,
    NewConsumerGroup, NewPool, Pool, PoolPatch, Project, StoredLimits, Tenant,
};

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

/// The SQLite implementation of [`MetadataStore`].
#[derive(Debug, Clone)]
pub struct SqliteMetadataStore {
    pool: SqlitePool,
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

impl SqliteMetadataStore {
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
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(db_error)?;
        sqlx::migrate!("../../migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| MetadataError::Database(format!("migration failed: {e}")))?;
        Ok(SqliteMetadataStore { pool })
    }

    async fn project_row(&self, tenant: &str, name: &str) -> MetadataResult<Project> {
        let row = sqlx::query(
            "SELECT id, tenant, name, description, created_at_ms, updated_at_ms FROM projects WHERE tenant = ? AND name = ?",
        )
        .bind(tenant)
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .ok_or_else(|| MetadataError::NotFound { kind: "project", name: name.to_string() })?;
        project_from_row(&row, db_error)
    }
}

fn db_error(error: sqlx::Error) -> MetadataError {
    MetadataError::Database(error.to_string())
}

#[async_trait]
impl MetadataStore for SqliteMetadataStore {
    async fn create_project(
        &self,
        tenant: &str,
        name: &str,
        description: &str,
    ) -> MetadataResult<Project> {
        self.ensure_tenant(tenant).await?;
        let now = now_ms();
        let result = sqlx::query(
            "INSERT INTO projects (tenant, name, description, created_at_ms, updated_at_ms, next_partition) \
             VALUES (?, ?, ?, ?, ?, COALESCE((SELECT next_partition FROM retired_project_partitions WHERE tenant = ? AND project = ?), 0))",
        )
        .bind(tenant)
        .bind(name)
        .bind(description)
        .bind(now)
        .bind(now)
        .bind(tenant)
        .bind(name)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => self.project_row(tenant, name).await,
            Err(error) if is_unique_violation(&error) => Err(MetadataError::AlreadyExists {
                kind: "project",
                name: name.to_string(),
            }),
            Err(error) => Err(db_error(error)),
        }
    }

    async fn list_projects(&self, tenant: &str) -> MetadataResult<Vec<Project>> {
        let rows = sqlx::query(
            "SELECT id, tenant, name, description, created_at_ms, updated_at_ms FROM projects WHERE tenant = ? ORDER BY name",
        )
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
        let pools = self.list_pools(tenant, name).await?;
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // Remember where numbering stopped, so a project re-created under this name
        // never gets the old queue partitions back.
        sqlx::query(
            "INSERT INTO retired_project_partitions (tenant, project, next_partition) \
             SELECT tenant, name, next_partition FROM projects WHERE tenant = ? AND name = ? \
             ON CONFLICT (tenant, project) DO UPDATE SET next_partition = excluded.next_partition",
        )
        .bind(tenant)
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        sqlx::query("DELETE FROM pools WHERE project_id = (SELECT id FROM projects WHERE tenant = ? AND name = ?)")
            .bind(tenant)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        Self::delete_project_access_in(&mut tx, tenant, name).await?;
        let deleted = sqlx::query("DELETE FROM projects WHERE tenant = ? AND name = ?")
            .bind(tenant)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        if deleted.rows_affected() == 0 {
            return Err(MetadataError::NotFound {
                kind: "project",
                name: name.to_string(),
            });
        }
        tx.commit().await.map_err(db_error)?;
        Ok(pools)
    }

    async fn create_pool(
        &self,
        tenant: &str,
        project: &str,
        pool: NewPool,
    ) -> MetadataResult<Pool> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let row =
            sqlx::query("SELECT id, next_partition FROM projects WHERE tenant = ? AND name = ?")
                .bind(tenant)
                .bind(project)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?
                .ok_or_else(|| MetadataError::NotFound {
                    kind: "project",
                    name: project.to_string(),
                })?;
        let project_id: i64 = row.try_get("id").map_err(db_error)?;
        let next_partition: i64 = row.try_get("next_partition").map_err(db_error)?;
        let first = u32::try_from(next_partition)
            .map_err(|_| MetadataError::Conflict("partition numbers exhausted".into()))?;
        let partitions: Vec<u32> = (first..first + pool.shards).collect();
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
        match inserted {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(MetadataError::AlreadyExists {
                    kind: "pool",
                    name: pool.name,
                });
            }
            Err(error) => return Err(db_error(error)),
        }
        sqlx::query("UPDATE projects SET next_partition = ? WHERE id = ?")
            .bind(i64::from(first + pool.shards))
            .bind(project_id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        self.get_pool(tenant, project, &pool.name).await
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
        self.project_row(tenant, project).await?;
        let row = sqlx::query(select_pools!(
            "WHERE pr.tenant = ? AND pr.name = ? AND p.name = ?"
        ))
        .bind(tenant)
        .bind(project)
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .ok_or_else(|| MetadataError::NotFound {
            kind: "pool",
            name: name.to_string(),
        })?;
        pool_from_row(&row, db_error)
    }

    async fn update_pool(
        &self,
        tenant: &str,
        project: &str,
        name: &str,
        patch: PoolPatch,
    ) -> MetadataResult<Pool> {
        let current = self.get_pool(tenant, project, name).await?;
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let mut partitions = current.partitions.clone();
        if let Some(shards) = patch.shards {
            let have = partitions.len() as u32;
            if shards < have {
                return Err(MetadataError::Conflict(format!(
                    "`shards` can only grow: pool `{name}` has {have} shards, asked for {shards}"
                )));
            }
            if shards > have {
                let row = sqlx::query(
                    "SELECT id, next_partition FROM projects WHERE tenant = ? AND name = ?",
                )
                .bind(tenant)
                .bind(project)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
                let project_id: i64 = row.try_get("id").map_err(db_error)?;
                let next: i64 = row.try_get("next_partition").map_err(db_error)?;
                let first = u32::try_from(next)
                    .map_err(|_| MetadataError::Conflict("partition numbers exhausted".into()))?;
                partitions.extend(first..first + (shards - have));
                sqlx::query("UPDATE projects SET next_partition = ? WHERE id = ?")
                    .bind(i64::from(first + (shards - have)))
                    .bind(project_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
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
        tx.commit().await.map_err(db_error)?;
        self.get_pool(tenant, project, name).await
    }

    async fn delete_pool(&self, tenant: &str, project: &str, name: &str) -> MetadataResult<Pool> {
        let pool = self.get_pool(tenant, project, name).await?;
        sqlx::query("DELETE FROM pools WHERE id = ?")
            .bind(pool.id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
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
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
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
    use std::collections::BTreeMap;

    use super::*;

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
            store.delete_pool("t", "shop", "web").await.expect("delete");
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
            store.get_pool("t", "nope", "web").await,
            Err(MetadataError::NotFound { .. })
        ));
        let grown = store
            .update_pool(
                "t",
                "shop",
                "web",
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
                    "t",
                    "shop",
                    "web",
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

    #[tokio::test]
    async fn test_metadata_conformance_on_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = SqliteMetadataConfig {
            path: dir.path().join("meta.sqlite"),
        };
        let store = SqliteMetadataStore::open(&config).await.expect("open");
        tokio::time::timeout(
            std::time::Duration::from_secs(60),
            crate::metadata::conformance::run_metadata_conformance(std::sync::Arc::new(store)),
        )
        .await
        .expect("the conformance suite finishes within 60 s");
    }
}
