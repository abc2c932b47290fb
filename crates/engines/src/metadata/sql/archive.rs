//! Archive settings of pools on SQL: one row per pool, the settings as JSON.

use logpool_core::pool_id::PoolId;
use std::collections::BTreeMap;

use async_trait::async_trait;
use logpool_core::archive::ArchiveSettings;
use sqlx::{AssertSqlSafe, Row};

use super::rows::{now_ms, settings_from_json, to_json};
use super::{db_error, sql_impl};
use crate::metadata::{ArchiveStore, CatalogStore, MetadataResult, PoolRef};

sql_impl! {
    #[async_trait]
    impl ArchiveStore {
        async fn set_archive_settings(
            &self,
            pool: &PoolRef,
            settings: &ArchiveSettings,
        ) -> MetadataResult<()> {
            let pool = self.get_pool(pool).await?;
            sqlx::query(AssertSqlSafe(DB::upsert(
                    "INSERT INTO pool_archive_settings (pool_id, settings, updated_at_ms) VALUES (?, ?, ?)",
                    &["pool_id"],
                    &["settings", "updated_at_ms"],
                )))
                .bind(pool.id.get())
                .bind(to_json(settings)?)
                .bind(now_ms())
                .execute(&self.pool)
                .await
                .map_err(db_error::<DB>)?;
            Ok(())
        }

        async fn get_archive_settings(
            &self,
            pool: &PoolRef,
        ) -> MetadataResult<Option<ArchiveSettings>> {
            let pool = self.get_pool(pool).await?;
            let row = sqlx::query("SELECT settings FROM pool_archive_settings WHERE pool_id = ?")
                .bind(pool.id.get())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error::<DB>)?;
            match row {
                Some(row) => Ok(Some(settings_from_json(
                    &row.try_get::<String, _>("settings")
                        .map_err(db_error::<DB>)?,
                )?)),
                None => Ok(None),
            }
        }

        async fn all_archive_settings(&self) -> MetadataResult<BTreeMap<PoolId, ArchiveSettings>> {
            // Joined with pools: settings of a deleted pool never reach a snapshot.
            let rows = sqlx::query(
                    "SELECT a.pool_id, a.settings FROM pool_archive_settings a JOIN pools p ON p.id = a.pool_id ORDER BY a.pool_id",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(db_error::<DB>)?;
            let mut all = BTreeMap::new();
            for row in rows {
                let pool_id = PoolId::new(row.try_get("pool_id").map_err(db_error::<DB>)?);
                let text: String = row.try_get("settings").map_err(db_error::<DB>)?;
                all.insert(pool_id, settings_from_json(&text)?);
            }
            Ok(all)
        }
    }
}
