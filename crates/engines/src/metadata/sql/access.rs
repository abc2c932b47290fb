//! Tenants, API keys and limits on SQL.

use async_trait::async_trait;
use logpool_core::access::{Limits, Role, BOOTSTRAP_KEY_ID, DEFAULT_TENANT};
use sqlx::{AssertSqlSafe, Row};

use super::rows::{
    is_unique_violation, key_from_row, limits_from_json, not_found, now_ms, stored_limits_from_row,
    tenant_from_row, to_json, SELECT_KEYS, TENANT_WIDE,
};
use super::{db_error, sql_impl};
use crate::metadata::{
    AccessStore, ApiKey, MetadataError, MetadataResult, NewApiKey, StoredLimits, Tenant,
};

/// Description of the operator's bootstrap key.
const BOOTSTRAP_DESCRIPTION: &str = "operator key from first start";

sql_impl! {
    impl {
        /// Fails with NotFound (kind `tenant`) when the tenant does not exist. Tenants are
        /// never deleted, so the answer cannot go stale.
        pub(super) async fn ensure_tenant(&self, tenant: &str) -> MetadataResult<()> {
            sqlx::query("SELECT name FROM tenants WHERE name = ?")
                .bind(tenant)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error::<DB>)?
                .ok_or_else(|| not_found("tenant", tenant))?;
            Ok(())
        }

        /// Fails with NotFound (kind `project`) when the project does not exist, and
        /// keeps it from being deleted until the transaction ends: a key or limit for a
        /// project that does not exist would be inherited by a project created later
        /// under that name. `delete_project` locks the project row for update, so it
        /// waits for the key or limit being written, and the write waits for a deletion.
        async fn hold_project_in(
            conn: &mut DB::Connection,
            tenant: &str,
            project: &str,
        ) -> MetadataResult<()> {
            sqlx::query(AssertSqlSafe(format!(
                "SELECT id FROM projects WHERE tenant = ? AND name = ?{}",
                DB::FOR_SHARE
            )))
            .bind(tenant)
            .bind(project)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error::<DB>)?
            .ok_or_else(|| not_found("project", project))?;
            Ok(())
        }

        /// Deletes the keys scoped to a project and the project's limits, inside the
        /// transaction that deletes the project: a project re-created under the same
        /// name must not inherit an old key or limit.
        pub(super) async fn delete_project_access_in(
            conn: &mut DB::Connection,
            tenant: &str,
            project: &str,
        ) -> MetadataResult<()> {
            sqlx::query("DELETE FROM api_keys WHERE tenant = ? AND project = ?")
                .bind(tenant)
                .bind(project)
                .execute(&mut *conn)
                .await
                .map_err(db_error::<DB>)?;
            sqlx::query("DELETE FROM limits WHERE tenant = ? AND project = ?")
                .bind(tenant)
                .bind(project)
                .execute(&mut *conn)
                .await
                .map_err(db_error::<DB>)?;
            Ok(())
        }
    }
}

sql_impl! {
    #[async_trait]
    impl AccessStore {
        async fn create_tenant(&self, name: &str) -> MetadataResult<Tenant> {
            let tenant = Tenant {
                name: name.to_string(),
                created_at_ms: now_ms(),
            };
            let inserted = sqlx::query("INSERT INTO tenants (name, created_at_ms) VALUES (?, ?)")
                .bind(&tenant.name)
                .bind(tenant.created_at_ms)
                .execute(&self.pool)
                .await;
            match inserted {
                Ok(_) => Ok(tenant),
                Err(error) if is_unique_violation(&error) => Err(MetadataError::AlreadyExists {
                    kind: "tenant",
                    name: name.to_string(),
                }),
                Err(error) => Err(db_error::<DB>(error)),
            }
        }

        async fn list_tenants(&self) -> MetadataResult<Vec<Tenant>> {
            let rows = sqlx::query("SELECT name, created_at_ms FROM tenants ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(db_error::<DB>)?;
            rows.iter()
                .map(|row| tenant_from_row(row, db_error::<DB>))
                .collect()
        }

        async fn get_tenant(&self, name: &str) -> MetadataResult<Tenant> {
            let row = sqlx::query("SELECT name, created_at_ms FROM tenants WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error::<DB>)?
                .ok_or_else(|| not_found("tenant", name))?;
            tenant_from_row(&row, db_error::<DB>)
        }

        async fn create_key(&self, key: NewApiKey) -> MetadataResult<ApiKey> {
            self.ensure_tenant(&key.tenant).await?;
            let mut tx = self.pool.begin().await.map_err(db_error::<DB>)?;
            if let Some(project) = &key.project {
                Self::hold_project_in(&mut tx, &key.tenant, project).await?;
            }
            let stored = ApiKey {
                id: key.id,
                tenant: key.tenant,
                role: key.role,
                project: key.project,
                description: key.description,
                enabled: true,
                created_at_ms: now_ms(),
                salt: key.salt,
                hash: key.hash,
            };
            let inserted = sqlx::query(
                "INSERT INTO api_keys (id, tenant, role, project, description, salt, hash, enabled, created_at_ms) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)",
            )
            .bind(&stored.id)
            .bind(&stored.tenant)
            .bind(stored.role.as_str())
            .bind(stored.project.clone())
            .bind(&stored.description)
            .bind(&stored.salt)
            .bind(&stored.hash)
            .bind(stored.created_at_ms)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                Err(error) if is_unique_violation(&error) => {
                    return Err(MetadataError::AlreadyExists {
                        kind: "key",
                        name: stored.id,
                    });
                }
                Err(error) => return Err(db_error::<DB>(error)),
            }
            tx.commit().await.map_err(db_error::<DB>)?;
            Ok(stored)
        }

        async fn save_bootstrap_key(&self, salt: &str, hash: &str) -> MetadataResult<bool> {
            // Insert first and update only when the id is taken: of several processes
            // starting at once exactly one sees `true`.
            let inserted = sqlx::query(
                "INSERT INTO api_keys (id, tenant, role, project, description, salt, hash, enabled, created_at_ms) \
                 VALUES (?, ?, ?, NULL, ?, ?, ?, 1, ?)",
            )
            .bind(BOOTSTRAP_KEY_ID)
            .bind(DEFAULT_TENANT)
            .bind(Role::Operator.as_str())
            .bind(BOOTSTRAP_DESCRIPTION)
            .bind(salt)
            .bind(hash)
            .bind(now_ms())
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => Ok(true),
                Err(error) if is_unique_violation(&error) => {
                    // The id is reserved for the operator: restore tenant and role too.
                    sqlx::query(
                        "UPDATE api_keys SET tenant = ?, role = ?, project = NULL, salt = ?, hash = ?, enabled = 1 WHERE id = ?",
                    )
                    .bind(DEFAULT_TENANT)
                    .bind(Role::Operator.as_str())
                    .bind(salt)
                    .bind(hash)
                    .bind(BOOTSTRAP_KEY_ID)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error::<DB>)?;
                    Ok(false)
                }
                Err(error) => Err(db_error::<DB>(error)),
            }
        }

        async fn get_key(&self, tenant: &str, id: &str) -> MetadataResult<ApiKey> {
            let row = sqlx::query(AssertSqlSafe(format!(
                "{SELECT_KEYS} WHERE tenant = ? AND id = ?"
            )))
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error::<DB>)?
            .ok_or_else(|| not_found("key", id))?;
            key_from_row(&row, db_error::<DB>)
        }

        async fn list_keys(&self, tenant: &str) -> MetadataResult<Vec<ApiKey>> {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "{SELECT_KEYS} WHERE tenant = ? ORDER BY created_at_ms, id"
            )))
            .bind(tenant)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error::<DB>)?;
            rows.iter()
                .map(|row| key_from_row(row, db_error::<DB>))
                .collect()
        }

        async fn set_key_enabled(
            &self,
            tenant: &str,
            id: &str,
            enabled: bool,
        ) -> MetadataResult<ApiKey> {
            // Not judged by the affected row count: MySQL counts only changed rows, so
            // disabling a disabled key would look like a missing one.
            sqlx::query("UPDATE api_keys SET enabled = ? WHERE tenant = ? AND id = ?")
                .bind(i64::from(enabled))
                .bind(tenant)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(db_error::<DB>)?;
            self.get_key(tenant, id).await
        }

        async fn delete_key(&self, tenant: &str, id: &str) -> MetadataResult<()> {
            let deleted = sqlx::query("DELETE FROM api_keys WHERE tenant = ? AND id = ?")
                .bind(tenant)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(db_error::<DB>)?;
            if DB::rows_affected(&deleted) == 0 {
                return Err(not_found("key", id));
            }
            Ok(())
        }

        async fn all_keys(&self) -> MetadataResult<Vec<ApiKey>> {
            let rows = sqlx::query(AssertSqlSafe(format!("{SELECT_KEYS} ORDER BY id")))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error::<DB>)?;
            rows.iter()
                .map(|row| key_from_row(row, db_error::<DB>))
                .collect()
        }

        async fn set_limits(
            &self,
            tenant: &str,
            project: Option<&str>,
            limits: &Limits,
        ) -> MetadataResult<()> {
            self.ensure_tenant(tenant).await?;
            let mut tx = self.pool.begin().await.map_err(db_error::<DB>)?;
            if let Some(project) = project {
                Self::hold_project_in(&mut tx, tenant, project).await?;
            }
            sqlx::query(AssertSqlSafe(DB::upsert(
                "INSERT INTO limits (tenant, project, limits, updated_at_ms) VALUES (?, ?, ?, ?)",
                &["tenant", "project"],
                &["limits", "updated_at_ms"],
            )))
            .bind(tenant)
            .bind(project.unwrap_or(TENANT_WIDE))
            .bind(to_json(limits)?)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(db_error::<DB>)?;
            tx.commit().await.map_err(db_error::<DB>)?;
            Ok(())
        }

        async fn get_limits(&self, tenant: &str, project: Option<&str>) -> MetadataResult<Limits> {
            let row = sqlx::query("SELECT limits FROM limits WHERE tenant = ? AND project = ?")
                .bind(tenant)
                .bind(project.unwrap_or(TENANT_WIDE))
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error::<DB>)?;
            match row {
                Some(row) => {
                    limits_from_json(&row.try_get::<String, _>("limits").map_err(db_error::<DB>)?)
                }
                None => Ok(Limits::default()),
            }
        }

        async fn all_limits(&self) -> MetadataResult<Vec<StoredLimits>> {
            let rows =
                sqlx::query("SELECT tenant, project, limits FROM limits ORDER BY tenant, project")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error::<DB>)?;
            rows.iter()
                .map(|row| stored_limits_from_row(row, db_error::<DB>))
                .collect()
        }
    }
}
