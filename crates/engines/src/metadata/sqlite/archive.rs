//! Archive settings of pools on SQLite (queries shared with MySQL, see `archive_sql`).

use super::SqliteMetadataStore;

crate::metadata::archive_sql::archive_settings_queries!(
    SqliteMetadataStore,
    "INSERT INTO pool_archive_settings (pool_id, settings, updated_at_ms) VALUES (?, ?, ?) ON CONFLICT (pool_id) DO UPDATE SET settings = excluded.settings, updated_at_ms = excluded.updated_at_ms"
);
