//! Tenants, API keys and limits on SQLite (queries shared with MySQL, see `access_sql`).

use super::SqliteMetadataStore;

crate::metadata::access_sql::access_queries!(
    SqliteMetadataStore,
    sqlx::SqliteConnection,
    "INSERT INTO limits (tenant, project, limits, updated_at_ms) VALUES (?, ?, ?, ?) ON CONFLICT (tenant, project) DO UPDATE SET limits = excluded.limits, updated_at_ms = excluded.updated_at_ms",
    // One connection: every transaction runs alone, so no lock is needed.
    ""
);
