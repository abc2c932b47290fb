//! Archive settings of pools, one row per pool with the settings as JSON: the same
//! queries on SQLite and MySQL except for the upsert, so both stores get their
//! methods from one macro.

use logpool_core::archive::ArchiveSettings;

use super::{MetadataError, MetadataResult};

pub(crate) fn settings_from_json(text: &str) -> MetadataResult<ArchiveSettings> {
    serde_json::from_str(text)
        .map_err(|e| MetadataError::Database(format!("bad archive settings: {e}")))
}

/// Implements `set_archive_settings_impl`, `get_archive_settings_impl` and
/// `all_archive_settings_impl` on `$store`, whose module's parent has `db_error`;
/// `$upsert` is the dialect's insert-or-replace of `(pool_id, settings, updated_at_ms)`.
macro_rules! archive_settings_queries {
    ($store:ty, $upsert:literal) => {
        impl $store {
    pub(super) async fn set_archive_settings_impl(
        &self,
        tenant: &str,
        project: &str,
        pool: &str,
        settings: &logpool_core::archive::ArchiveSettings,
    ) -> $crate::metadata::MetadataResult<()> {
        let pool = $crate::metadata::MetadataStore::get_pool(self, tenant, project, pool).await?;
        sqlx::query(
            $upsert,
        )
        .bind(pool.id)
        .bind($crate::metadata::rows::to_json(settings)?)
        .bind($crate::metadata::rows::now_ms())
        .execute(&self.pool)
        .await
        .map_err(super::db_error)?;
        Ok(())
    }

    pub(super) async fn get_archive_settings_impl(
        &self,
        tenant: &str,
        project: &str,
        pool: &str,
    ) -> $crate::metadata::MetadataResult<Option<logpool_core::archive::ArchiveSettings>> {
        let pool = $crate::metadata::MetadataStore::get_pool(self, tenant, project, pool).await?;
        let row = sqlx::query("SELECT settings FROM pool_archive_settings WHERE pool_id = ?")
            .bind(pool.id)
            .fetch_optional(&self.pool)
            .await
            .map_err(super::db_error)?;
        match row {
            Some(row) => Ok(Some($crate::metadata::archive_sql::settings_from_json(
                &sqlx::Row::try_get::<String, _>(&row, "settings").map_err(super::db_error)?,
            )?)),
            None => Ok(None),
        }
    }

    pub(super) async fn all_archive_settings_impl(
        &self,
    ) -> $crate::metadata::MetadataResult<std::collections::BTreeMap<i64, logpool_core::archive::ArchiveSettings>> {
        // Joined with pools: settings of a deleted pool never reach a snapshot.
        let rows = sqlx::query(
            "SELECT a.pool_id, a.settings FROM pool_archive_settings a JOIN pools p ON p.id = a.pool_id ORDER BY a.pool_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(super::db_error)?;
        let mut all = std::collections::BTreeMap::new();
        for row in rows {
            let pool_id: i64 = sqlx::Row::try_get(&row, "pool_id").map_err(super::db_error)?;
            let text: String = sqlx::Row::try_get(&row, "settings").map_err(super::db_error)?;
            all.insert(pool_id, $crate::metadata::archive_sql::settings_from_json(&text)?);
        }
        Ok(all)
    }
        }
    };
}

pub(crate) use archive_settings_queries;
