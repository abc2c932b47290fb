//! Tenants, API keys and limits: the same queries on SQLite and MySQL except for the
//! limits upsert and the project lock, so both stores get their methods from one macro.

use logpool_core::access::{Limits, Role};
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{ApiKey, MetadataError, MetadataResult, StoredLimits, Tenant};

/// The `limits.project` value of tenant-wide limits.
pub(crate) const TENANT_WIDE: &str = "";

/// Description of the operator's bootstrap key.
pub(crate) const BOOTSTRAP_DESCRIPTION: &str = "operator key from first start";

/// The key columns, in the order [`key_from_row`] reads them.
macro_rules! select_keys {
    ($rest:literal) => {
        concat!(
            "SELECT id, tenant, role, project, description, salt, hash, enabled, created_at_ms ",
            "FROM api_keys ",
            $rest
        )
    };
}

pub(crate) use select_keys;

pub(crate) fn tenant_not_found(name: &str) -> MetadataError {
    MetadataError::NotFound {
        kind: "tenant",
        name: name.to_string(),
    }
}

pub(crate) fn key_not_found(id: &str) -> MetadataError {
    MetadataError::NotFound {
        kind: "key",
        name: id.to_string(),
    }
}

pub(crate) fn project_not_found(name: &str) -> MetadataError {
    MetadataError::NotFound {
        kind: "project",
        name: name.to_string(),
    }
}

/// Decodes a tenant row; `db_error` is the store's own error mapping.
pub(crate) fn tenant_from_row<R>(
    row: &R,
    db_error: fn(sqlx::Error) -> MetadataError,
) -> MetadataResult<Tenant>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(Tenant {
        name: row.try_get("name").map_err(db_error)?,
        created_at_ms: row.try_get("created_at_ms").map_err(db_error)?,
    })
}

/// Decodes a key row; `db_error` is the store's own error mapping.
pub(crate) fn key_from_row<R>(
    row: &R,
    db_error: fn(sqlx::Error) -> MetadataError,
) -> MetadataResult<ApiKey>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
{
    let role: String = row.try_get("role").map_err(db_error)?;
    let enabled: i64 = row.try_get("enabled").map_err(db_error)?;
    Ok(ApiKey {
        id: row.try_get("id").map_err(db_error)?,
        tenant: row.try_get("tenant").map_err(db_error)?,
        role: Role::parse(&role)
            .ok_or_else(|| MetadataError::Database(format!("bad role column: `{role}`")))?,
        project: row.try_get("project").map_err(db_error)?,
        description: row.try_get("description").map_err(db_error)?,
        salt: row.try_get("salt").map_err(db_error)?,
        hash: row.try_get("hash").map_err(db_error)?,
        enabled: enabled != 0,
        created_at_ms: row.try_get("created_at_ms").map_err(db_error)?,
    })
}

pub(crate) fn limits_from_json(text: &str) -> MetadataResult<Limits> {
    serde_json::from_str(text).map_err(|e| MetadataError::Database(format!("bad limits: {e}")))
}

/// Decodes a limits row; `db_error` is the store's own error mapping.
pub(crate) fn stored_limits_from_row<R>(
    row: &R,
    db_error: fn(sqlx::Error) -> MetadataError,
) -> MetadataResult<StoredLimits>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let project: String = row.try_get("project").map_err(db_error)?;
    let limits: String = row.try_get("limits").map_err(db_error)?;
    Ok(StoredLimits {
        tenant: row.try_get("tenant").map_err(db_error)?,
        project: (project != TENANT_WIDE).then_some(project),
        limits: limits_from_json(&limits)?,
    })
}

/// Implements the `*_impl` methods of tenants, keys and limits on `$store` (whose
/// connection type is `$conn`, and whose module's parent has `db_error`).
/// `$upsert_limits` is the dialect's insert-or-replace of `(tenant, project, limits,
/// updated_at_ms)`. `$share_lock` is appended to the project lookup before a key or
/// limit of that project is written, so that a concurrent `delete_project` (which
/// locks the project row) cannot leave the new row behind for a re-created project
/// of the same name to inherit.
macro_rules! access_queries {
    ($store:ty, $conn:ty, $upsert_limits:literal, $share_lock:literal) => {
        impl $store {
    /// Fails with NotFound (kind `tenant`) when the tenant does not exist. Tenants are
    /// never deleted, so the answer cannot go stale.
    pub(super) async fn ensure_tenant(&self, tenant: &str) -> $crate::metadata::MetadataResult<()> {
        sqlx::query("SELECT name FROM tenants WHERE name = ?")
            .bind(tenant)
            .fetch_optional(&self.pool)
            .await
            .map_err(super::db_error)?
            .ok_or_else(|| $crate::metadata::access_sql::tenant_not_found(tenant))?;
        Ok(())
    }

    pub(super) async fn create_tenant_impl(
        &self,
        name: &str,
    ) -> $crate::metadata::MetadataResult<$crate::metadata::Tenant> {
        let tenant = $crate::metadata::Tenant {
            name: name.to_string(),
            created_at_ms: $crate::metadata::rows::now_ms(),
        };
        let inserted = sqlx::query("INSERT INTO tenants (name, created_at_ms) VALUES (?, ?)")
            .bind(&tenant.name)
            .bind(tenant.created_at_ms)
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => Ok(tenant),
            Err(error) if $crate::metadata::rows::is_unique_violation(&error) => {
                Err($crate::metadata::MetadataError::AlreadyExists {
                    kind: "tenant",
                    name: name.to_string(),
                })
            }
            Err(error) => Err(super::db_error(error)),
        }
    }

    pub(super) async fn list_tenants_impl(
        &self,
    ) -> $crate::metadata::MetadataResult<Vec<$crate::metadata::Tenant>> {
        let rows = sqlx::query("SELECT name, created_at_ms FROM tenants ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(super::db_error)?;
        rows.iter()
            .map(|row| $crate::metadata::access_sql::tenant_from_row(row, super::db_error))
            .collect()
    }

    pub(super) async fn get_tenant_impl(
        &self,
        name: &str,
    ) -> $crate::metadata::MetadataResult<$crate::metadata::Tenant> {
        let row = sqlx::query("SELECT name, created_at_ms FROM tenants WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(super::db_error)?
            .ok_or_else(|| $crate::metadata::access_sql::tenant_not_found(name))?;
        $crate::metadata::access_sql::tenant_from_row(&row, super::db_error)
    }

    pub(super) async fn create_key_impl(
        &self,
        key: $crate::metadata::NewApiKey,
    ) -> $crate::metadata::MetadataResult<$crate::metadata::ApiKey> {
        self.ensure_tenant(&key.tenant).await?;
        let mut tx = self.pool.begin().await.map_err(super::db_error)?;
        if let Some(project) = &key.project {
            // A key for a project that does not exist would be inherited by a project
            // created later under that name.
            sqlx::query(concat!(
                "SELECT id FROM projects WHERE tenant = ? AND name = ?",
                $share_lock
            ))
            .bind(&key.tenant)
            .bind(project)
            .fetch_optional(&mut *tx)
            .await
            .map_err(super::db_error)?
            .ok_or_else(|| $crate::metadata::access_sql::project_not_found(project))?;
        }
        let stored = $crate::metadata::ApiKey {
            id: key.id,
            tenant: key.tenant,
            role: key.role,
            project: key.project,
            description: key.description,
            enabled: true,
            created_at_ms: $crate::metadata::rows::now_ms(),
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
        .bind(stored.project.as_deref())
        .bind(&stored.description)
        .bind(&stored.salt)
        .bind(&stored.hash)
        .bind(stored.created_at_ms)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(error) if $crate::metadata::rows::is_unique_violation(&error) => {
                return Err($crate::metadata::MetadataError::AlreadyExists {
                    kind: "key",
                    name: stored.id,
                });
            }
            Err(error) => return Err(super::db_error(error)),
        }
        tx.commit().await.map_err(super::db_error)?;
        Ok(stored)
    }

    pub(super) async fn save_bootstrap_key_impl(
        &self,
        salt: &str,
        hash: &str,
    ) -> $crate::metadata::MetadataResult<bool> {
        // Insert first and update only when the id is taken: of several processes
        // starting at once exactly one sees `true`.
        let inserted = sqlx::query(
            "INSERT INTO api_keys (id, tenant, role, project, description, salt, hash, enabled, created_at_ms) \
             VALUES (?, ?, ?, NULL, ?, ?, ?, 1, ?)",
        )
        .bind(logpool_core::access::BOOTSTRAP_KEY_ID)
        .bind(logpool_core::access::DEFAULT_TENANT)
        .bind(logpool_core::access::Role::Operator.as_str())
        .bind($crate::metadata::access_sql::BOOTSTRAP_DESCRIPTION)
        .bind(salt)
        .bind(hash)
        .bind($crate::metadata::rows::now_ms())
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(error) if $crate::metadata::rows::is_unique_violation(&error) => {
                // The id is reserved for the operator: restore tenant and role too.
                sqlx::query(
                    "UPDATE api_keys SET tenant = ?, role = ?, project = NULL, salt = ?, hash = ?, enabled = 1 WHERE id = ?",
                )
                .bind(logpool_core::access::DEFAULT_TENANT)
                .bind(logpool_core::access::Role::Operator.as_str())
                .bind(salt)
                .bind(hash)
                .bind(logpool_core::access::BOOTSTRAP_KEY_ID)
                .execute(&self.pool)
                .await
                .map_err(super::db_error)?;
                Ok(false)
            }
            Err(error) => Err(super::db_error(error)),
        }
    }

    pub(super) async fn get_key_impl(
        &self,
        tenant: &str,
        id: &str,
    ) -> $crate::metadata::MetadataResult<$crate::metadata::ApiKey> {
        let row = sqlx::query($crate::metadata::access_sql::select_keys!(
            "WHERE tenant = ? AND id = ?"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(super::db_error)?
        .ok_or_else(|| $crate::metadata::access_sql::key_not_found(id))?;
        $crate::metadata::access_sql::key_from_row(&row, super::db_error)
    }

    pub(super) async fn list_keys_impl(
        &self,
        tenant: &str,
    ) -> $crate::metadata::MetadataResult<Vec<$crate::metadata::ApiKey>> {
        let rows = sqlx::query($crate::metadata::access_sql::select_keys!(
            "WHERE tenant = ? ORDER BY created_at_ms, id"
        ))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await
        .map_err(super::db_error)?;
        rows.iter()
            .map(|row| $crate::metadata::access_sql::key_from_row(row, super::db_error))
            .collect()
    }

    pub(super) async fn set_key_enabled_impl(
        &self,
        tenant: &str,
        id: &str,
        enabled: bool,
    ) -> $crate::metadata::MetadataResult<$crate::metadata::ApiKey> {
        // Not judged by the affected row count: MySQL counts only changed rows, so
        // disabling a disabled key would look like a missing one.
        sqlx::query("UPDATE api_keys SET enabled = ? WHERE tenant = ? AND id = ?")
            .bind(i64::from(enabled))
            .bind(tenant)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(super::db_error)?;
        self.get_key_impl(tenant, id).await
    }

    pub(super) async fn delete_key_impl(
        &self,
        tenant: &str,
        id: &str,
    ) -> $crate::metadata::MetadataResult<()> {
        let deleted = sqlx::query("DELETE FROM api_keys WHERE tenant = ? AND id = ?")
            .bind(tenant)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(super::db_error)?;
        if deleted.rows_affected() == 0 {
            return Err($crate::metadata::access_sql::key_not_found(id));
        }
        Ok(())
    }

    pub(super) async fn all_keys_impl(
        &self,
    ) -> $crate::metadata::MetadataResult<Vec<$crate::metadata::ApiKey>> {
        let rows = sqlx::query($crate::metadata::access_sql::select_keys!("ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(super::db_error)?;
        rows.iter()
            .map(|row| $crate::metadata::access_sql::key_from_row(row, super::db_error))
            .collect()
    }

    pub(super) async fn set_limits_impl(
        &self,
        tenant: &str,
        project: Option<&str>,
        limits: &logpool_core::access::Limits,
    ) -> $crate::metadata::MetadataResult<()> {
        self.ensure_tenant(tenant).await?;
        let mut tx = self.pool.begin().await.map_err(super::db_error)?;
        if let Some(project) = project {
            sqlx::query(concat!(
                "SELECT id FROM projects WHERE tenant = ? AND name = ?",
                $share_lock
            ))
            .bind(tenant)
            .bind(project)
            .fetch_optional(&mut *tx)
            .await
            .map_err(super::db_error)?
            .ok_or_else(|| $crate::metadata::access_sql::project_not_found(project))?;
        }
        sqlx::query($upsert_limits)
            .bind(tenant)
            .bind(project.unwrap_or($crate::metadata::access_sql::TENANT_WIDE))
            .bind($crate::metadata::rows::to_json(limits)?)
            .bind($crate::metadata::rows::now_ms())
            .execute(&mut *tx)
            .await
            .map_err(super::db_error)?;
        tx.commit().await.map_err(super::db_error)?;
        Ok(())
    }

    pub(super) async fn get_limits_impl(
        &self,
        tenant: &str,
        project: Option<&str>,
    ) -> $crate::metadata::MetadataResult<logpool_core::access::Limits> {
        let row = sqlx::query("SELECT limits FROM limits WHERE tenant = ? AND project = ?")
            .bind(tenant)
            .bind(project.unwrap_or($crate::metadata::access_sql::TENANT_WIDE))
            .fetch_optional(&self.pool)
            .await
            .map_err(super::db_error)?;
        match row {
            Some(row) => $crate::metadata::access_sql::limits_from_json(
                &sqlx::Row::try_get::<String, _>(&row, "limits").map_err(super::db_error)?,
            ),
            None => Ok(logpool_core::access::Limits::default()),
        }
    }

    pub(super) async fn all_limits_impl(
        &self,
    ) -> $crate::metadata::MetadataResult<Vec<$crate::metadata::StoredLimits>> {
        let rows = sqlx::query("SELECT tenant, project, limits FROM limits ORDER BY tenant, project")
            .fetch_all(&self.pool)
            .await
            .map_err(super::db_error)?;
        rows.iter()
            .map(|row| $crate::metadata::access_sql::stored_limits_from_row(row, super::db_error))
            .collect()
    }

    /// Deletes the keys scoped to a project and the project's limits, inside the
    /// transaction that deletes the project: a project re-created under the same
    /// name must not inherit an old key or limit.
    pub(super) async fn delete_project_access_in(
        conn: &mut $conn,
        tenant: &str,
        project: &str,
    ) -> $crate::metadata::MetadataResult<()> {
        sqlx::query("DELETE FROM api_keys WHERE tenant = ? AND project = ?")
            .bind(tenant)
            .bind(project)
            .execute(&mut *conn)
            .await
            .map_err(super::db_error)?;
        sqlx::query("DELETE FROM limits WHERE tenant = ? AND project = ?")
            .bind(tenant)
            .bind(project)
            .execute(&mut *conn)
            .await
            .map_err(super::db_error)?;
        Ok(())
    }
        }
    };
}

pub(crate) use access_queries;
