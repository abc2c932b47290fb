//! Archive settings of pools on MySQL (queries shared with SQLite, see `archive_sql`).

use super::MysqlMetadataStore;

crate::metadata::archive_sql::archive_settings_queries!(
    MysqlMetadataStore,
    "INSERT INTO pool_archive_settings (pool_id, settings, updated_at_ms) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE settings = VALUES(settings), updated_at_ms = VALUES(updated_at_ms)"
);
