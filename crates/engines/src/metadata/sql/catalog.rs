//! Projects, pools, server secrets and health on SQL.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row};

use super::rows::{
    already_exists, is_unique_violation, not_found, now_ms, pool_from_row, project_from_row,
    to_json, SELECT_POOLS, SELECT_PROJECTS,
};
use super::{db_error, sql_impl};
use crate::metadata::{
    CatalogStore, MetadataError, MetadataResult, NewPool, Pool, PoolPatch, PoolRef, Project,
};

fn partitions_exhausted() -> MetadataError {
    MetadataError::Conflict("partition numbers exhausted".into())
}

sql_impl! {
    impl {
        pub(super) async fn project_row(
            &self,
            tenant: &str,
            name: &str,
        ) -> MetadataResult<Project> {
            let row = sqlx::query(AssertSqlSafe(format!(
                "{SELECT_PROJECTS} WHERE tenant = ? AND name = ?"
            )))
            .bind(tenant)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error::<DB>)?
            .ok_or_else(|| not_found("project", name))?;
            project_from_row(&row, db_error::<DB>)
        }

        /// The rows `select` (which joins the project as `pr`) finds in one project,
        /// in `order_by` order; `NotFound` for an unknown project.
        pub(super) async fn rows_of_project(
            &self,
            select: &str,
            order_by: &str,
            tenant: &str,
            project: &str,
        ) -> MetadataResult<Vec<DB::Row>> {
            self.project_row(tenant, project).await?;
            sqlx::query(AssertSqlSafe(format!(
                "{select} WHERE pr.tenant = ? AND pr.name = ? ORDER BY {order_by}"
            )))
            .bind(tenant)
            .bind(project)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error::<DB>)
        }

        /// Locks the project row for the rest of the transaction and returns its id
        /// and next free partition number.
        pub(super) async fn lock_project(
            conn: &mut DB::Connection,
            tenant: &str,
            name: &str,
        ) -> MetadataResult<(i64, u32)> {
            let row = sqlx::query(AssertSqlSafe(format!(
                "SELECT id, next_partition FROM projects WHERE tenant = ? AND name = ?{}",
                DB::FOR_UPDATE
            )))
            .bind(tenant)
            .bind(name)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error::<DB>)?
            .ok_or_else(|| not_found("project", name))?;
            let project_id: i64 = row.try_get("id").map_err(db_error::<DB>)?;
            let next_partition: i64 = row.try_get("next_partition").map_err(db_error::<DB>)?;
            let next_partition =
                u32::try_from(next_partition).map_err(|_| partitions_exhausted())?;
            Ok((project_id, next_partition))
        }

        /// Hands out `count` partition numbers of a project locked by
        /// [`Self::lock_project`].
        async fn allocate_partitions(
            conn: &mut DB::Connection,
            project_id: i64,
            first: u32,
            count: u32,
        ) -> MetadataResult<std::ops::Range<u32>> {
            let end = first.checked_add(count).ok_or_else(partitions_exhausted)?;
            sqlx::query("UPDATE projects SET next_partition = ? WHERE id = ?")
                .bind(i64::from(end))
                .bind(project_id)
                .execute(&mut *conn)
                .await
                .map_err(db_error::<DB>)?;
            Ok(first..end)
        }

        /// Reads one pool of a locked project by name, locking its row.
        async fn pool_for_update(
            conn: &mut DB::Connection,
            project_id: i64,
            name: &str,
        ) -> MetadataResult<Pool> {
            let row = sqlx::query(AssertSqlSafe(format!(
                "{SELECT_POOLS} WHERE p.project_id = ? AND p.name = ?{}",
                DB::FOR_UPDATE
            )))
            .bind(project_id)
            .bind(name)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error::<DB>)?
            .ok_or_else(|| not_found("pool", name))?;
            pool_from_row(&row, db_error::<DB>)
        }
    }
}

sql_impl! {
    #[async_trait]
    impl CatalogStore {
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
                Ok(_) => self.project_row(tenant, name).await,
                Err(error) if is_unique_violation(&error) => Err(already_exists("project", name)),
                Err(error) => Err(db_error::<DB>(error)),
            }
        }

        async fn list_projects(&self, tenant: &str) -> MetadataResult<Vec<Project>> {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "{SELECT_PROJECTS} WHERE tenant = ? ORDER BY name"
            )))
            .bind(tenant)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error::<DB>)?;
            rows.iter()
                .map(|row| project_from_row(row, db_error::<DB>))
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
                    .map_err(db_error::<DB>)?;
            }
            self.project_row(tenant, name).await
        }

        async fn delete_project(&self, tenant: &str, name: &str) -> MetadataResult<Vec<Pool>> {
            let mut tx = self.pool.begin().await.map_err(db_error::<DB>)?;
            let (project_id, _) = Self::lock_project(&mut tx, tenant, name).await?;
            // Read the pools under the project lock, so the answer lists exactly the
            // pools this transaction deletes (no pool can be added in between).
            let rows = sqlx::query(AssertSqlSafe(format!(
                "{SELECT_POOLS} WHERE p.project_id = ? ORDER BY p.name"
            )))
            .bind(project_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error::<DB>)?;
            let pools = rows
                .iter()
                .map(|row| pool_from_row(row, db_error::<DB>))
                .collect::<MetadataResult<Vec<_>>>()?;
            // Remember where numbering stopped, so a project re-created under this
            // name never gets the old queue partitions back.
            sqlx::query(AssertSqlSafe(DB::upsert(
                "INSERT INTO retired_project_partitions (tenant, project, next_partition) \
                     SELECT tenant, name, next_partition FROM projects WHERE id = ?",
                &["tenant", "project"],
                &["next_partition"],
            )))
            .bind(project_id)
            .execute(&mut *tx)
            .await
            .map_err(db_error::<DB>)?;
            // Explicit, although the foreign key cascades: the behaviour must not
            // depend on the storage engine enforcing foreign keys.
            sqlx::query("DELETE FROM pools WHERE project_id = ?")
                .bind(project_id)
                .execute(&mut *tx)
                .await
                .map_err(db_error::<DB>)?;
            Self::delete_project_access_in(&mut tx, tenant, name).await?;
            sqlx::query("DELETE FROM projects WHERE id = ?")
                .bind(project_id)
                .execute(&mut *tx)
                .await
                .map_err(db_error::<DB>)?;
            tx.commit().await.map_err(db_error::<DB>)?;
            Ok(pools)
        }

        async fn create_pool(
            &self,
            tenant: &str,
            project: &str,
            pool: NewPool,
        ) -> MetadataResult<Pool> {
            let mut tx = self.pool.begin().await.map_err(db_error::<DB>)?;
            let (project_id, first) = Self::lock_project(&mut tx, tenant, project).await?;
            let partitions: Vec<u32> =
                Self::allocate_partitions(&mut tx, project_id, first, pool.shards)
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
            match inserted {
                Ok(_) => {}
                // Dropping `tx` rolls back, so the partitions allocated above are not
                // consumed by a failed creation.
                Err(error) if is_unique_violation(&error) => {
                    return Err(already_exists("pool", &pool.name));
                }
                Err(error) => return Err(db_error::<DB>(error)),
            }
            let created = Self::pool_for_update(&mut tx, project_id, &pool.name).await?;
            tx.commit().await.map_err(db_error::<DB>)?;
            Ok(created)
        }

        async fn list_pools(&self, tenant: &str, project: &str) -> MetadataResult<Vec<Pool>> {
            let rows = self
                .rows_of_project(SELECT_POOLS, "p.name", tenant, project)
                .await?;
            rows.iter()
                .map(|row| pool_from_row(row, db_error::<DB>))
                .collect()
        }

        async fn get_pool(&self, pool: &PoolRef) -> MetadataResult<Pool> {
            let (tenant, project, name) = (
                pool.tenant.as_str(),
                pool.project.as_str(),
                pool.pool.as_str(),
            );
            let row = sqlx::query(AssertSqlSafe(format!(
                "{SELECT_POOLS} WHERE pr.tenant = ? AND pr.name = ? AND p.name = ?"
            )))
            .bind(tenant)
            .bind(project)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error::<DB>)?;
            match row {
                Some(row) => pool_from_row(&row, db_error::<DB>),
                // Tell a missing project from a missing pool.
                None => {
                    self.project_row(tenant, project).await?;
                    Err(not_found("pool", name))
                }
            }
        }

        async fn update_pool(&self, pool: &PoolRef, patch: PoolPatch) -> MetadataResult<Pool> {
            let (tenant, project, name) = (
                pool.tenant.as_str(),
                pool.project.as_str(),
                pool.pool.as_str(),
            );
            let mut tx = self.pool.begin().await.map_err(db_error::<DB>)?;
            let (project_id, next_partition) = Self::lock_project(&mut tx, tenant, project).await?;
            let current = Self::pool_for_update(&mut tx, project_id, name).await?;
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
                        Self::allocate_partitions(
                            &mut tx,
                            project_id,
                            next_partition,
                            shards - have,
                        )
                        .await?,
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
                .bind(current.id.get())
                .execute(&mut *tx)
                .await
                .map_err(db_error::<DB>)?;
            let updated = Self::pool_for_update(&mut tx, project_id, name).await?;
            tx.commit().await.map_err(db_error::<DB>)?;
            Ok(updated)
        }

        async fn delete_pool(&self, pool: &PoolRef) -> MetadataResult<Pool> {
            let (tenant, project, name) = (
                pool.tenant.as_str(),
                pool.project.as_str(),
                pool.pool.as_str(),
            );
            let mut tx = self.pool.begin().await.map_err(db_error::<DB>)?;
            let (project_id, _) = Self::lock_project(&mut tx, tenant, project).await?;
            let pool = Self::pool_for_update(&mut tx, project_id, name).await?;
            sqlx::query("DELETE FROM pools WHERE id = ?")
                .bind(pool.id.get())
                .execute(&mut *tx)
                .await
                .map_err(db_error::<DB>)?;
            tx.commit().await.map_err(db_error::<DB>)?;
            Ok(pool)
        }

        async fn all_pools(&self) -> MetadataResult<Vec<Pool>> {
            let rows = sqlx::query(AssertSqlSafe(format!("{SELECT_POOLS} ORDER BY p.id")))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error::<DB>)?;
            rows.iter()
                .map(|row| pool_from_row(row, db_error::<DB>))
                .collect()
        }

        async fn check_health(&self) -> MetadataResult<()> {
            // The pool bounds the wait for a connection; the outer timeout also bounds
            // a server that accepted the connection but stopped answering.
            let ping = sqlx::query("SELECT 1").execute(&self.pool);
            match tokio::time::timeout(self.request_timeout, ping).await {
                Ok(result) => result.map(drop).map_err(db_error::<DB>),
                Err(_) => Err(MetadataError::Unavailable(format!(
                    "{} metadata store unreachable: no answer within {} ms",
                    DB::LABEL,
                    self.request_timeout.as_millis()
                ))),
            }
        }

        async fn get_or_create_secret(
            &self,
            name: &str,
            candidate: &str,
        ) -> MetadataResult<String> {
            sqlx::query(AssertSqlSafe(format!(
                "{} INTO server_secrets (name, secret, created_at_ms) VALUES (?, ?, ?)",
                DB::INSERT_OR_IGNORE
            )))
            .bind(name)
            .bind(candidate)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(db_error::<DB>)?;
            let row = sqlx::query("SELECT secret FROM server_secrets WHERE name = ?")
                .bind(name)
                .fetch_one(&self.pool)
                .await
                .map_err(db_error::<DB>)?;
            row.try_get("secret").map_err(db_error::<DB>)
        }
    }
}
