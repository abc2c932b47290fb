//! Tenants, API keys and limits on MySQL (queries shared with SQLite, see `access_sql`).

use super::MysqlMetadataStore;

crate::metadata::access_sql::access_queries!(
    MysqlMetadataStore,
    sqlx::MySqlConnection,
    "INSERT INTO limits (tenant, project, limits, updated_at_ms) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE limits = VALUES(limits), updated_at_ms = VALUES(updated_at_ms)",
    // `delete_project` locks the project row for update, so it waits for a key or
    // limit being written for that project, and the write waits for a deletion.
    " LOCK IN SHARE MODE"
);
