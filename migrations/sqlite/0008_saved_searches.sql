-- Saved searches: named searches a project's team shares. `result_columns` is a JSON array
-- of field names, `chart_settings` the console's chart settings as JSON text (empty for
-- none). `created_by` / `updated_by` hold key ids. Deleting the project deletes them.
CREATE TABLE saved_searches (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    query           TEXT    NOT NULL,
    time_from       TEXT    NOT NULL,
    time_to         TEXT    NOT NULL,
    pool            TEXT    NOT NULL,
    result_columns  TEXT    NOT NULL,
    chart_settings  TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    updated_by      TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    UNIQUE (project_id, name)
);
