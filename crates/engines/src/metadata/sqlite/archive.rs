//! Archive settings of pools on SQLite: one row per pool, the settings as JSON.

use std::collections::BTreeMap;

use logpool_core::archive::ArchiveSettings;
use sqlx::Row;

use super::{db_error, SqliteMetadataStore};
use crate::metadata::rows::{now_ms, to_json};
use crate::metadata::{MetadataError, MetadataResult, MetadataStore};

fn settings_from_json(text: &str) -> MetadataResult<ArchiveSettings> {
    serde_json::from_str(text)
        .map_err(|e| MetadataError::Database(format!("bad archive settings: {e}")))
}

impl SqliteMetadataStore {
    pub(super) async fn set_archive_settings_impl(
        &self,
        tenant: &str,
        project: &str,
        pool: &str,
        settings: &ArchiveSettings,
    ) -> MetadataResult<()> {
        let pool = self.get_pool(tenant, project, pool).await?;
        sqlx::query(
            "INSERT INTO pool_archive_settings (pool_id, settings, updated_at_ms) VALUES (?, ?, ?) ON CONFLICT (pool_id) DO UPDATE SET settings = excluded.settings, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(pool.id)
        .bind(to_json(settings)?)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    pub(super) async fn get_archive_settings_impl(
        &self,
        tenant: &str,
        project: &str,
        pool: &str,
    ) -> MetadataResult<Option<ArchiveSettings>> {
        let pool = self.get_pool(tenant, project, pool).await?;
        let row = sqlx::query("SELECT settings FROM pool_archive_settings WHERE pool_id = ?")
            .bind(pool.id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        match row {
            Some(row) => Ok(Some(settings_from_json(
                &row.try_get::<String, _>("settings").map_err(db_error)?,
            )?)),
            None => Ok(None),
        }
    }

    pub(super) async fn all_archive_settings_impl(
        &self,
    ) -> MetadataResult<BTreeMap<i64, ArchiveSettings>> {
        // Joined with pools: settings of a deleted pool never reach a snapshot.
        let rows = sqlx::query(
            "SELECT a.pool_id, a.settings FROM pool_archive_settings a JOIN pools p ON p.id = a.pool_id ORDER BY a.pool_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let mut all = BTreeMap::new();
        for row in rows {
            let pool_id: i64 = row.try_get("pool_id").map_err(db_error)?;
            let text: String = row.try_get("settings").map_err(db_error)?;
            all.insert(pool_id, settings_from_json(&text)?);
        }
        Ok(all)
    }
}
