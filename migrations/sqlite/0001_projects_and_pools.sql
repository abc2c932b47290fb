-- Projects: a tenant's application, the unit of access control and one queue topic family.
CREATE TABLE projects (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant          TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    -- Next queue partition number to hand to a pool; never reused within a project.
    next_partition  INTEGER NOT NULL DEFAULT 0,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    UNIQUE (tenant, name)
);

-- Log pools: named streams of logs in a project, each owning queue partitions.
CREATE TABLE pools (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    -- JSON array of partition numbers, in shard order.
    partitions      TEXT    NOT NULL,
    retention_days  INTEGER NOT NULL,
    -- JSON object: field name -> type hint.
    field_hints     TEXT    NOT NULL DEFAULT '{}',
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    UNIQUE (project_id, name)
);
