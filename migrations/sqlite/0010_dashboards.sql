-- Dashboards: named grids of panels a project's team shares. `panels` is a JSON array
-- of panel documents (what each shows, its chart settings and place in the grid), as
-- the API checked them. `time_from` / `time_to` / `refresh` are the dashboard-wide
-- range and auto-refresh. `created_by` / `updated_by` hold key ids. Deleting the
-- project deletes them.
CREATE TABLE dashboards (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    time_from       TEXT    NOT NULL,
    time_to         TEXT    NOT NULL,
    refresh         TEXT    NOT NULL,
    panels          TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    updated_by      TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    UNIQUE (project_id, name)
);
