-- Tenants: the unit of isolation. Projects belong to one; `default` always exists and
-- holds the operator key's own projects. Tenants of projects made before this
-- migration are kept, so no project is left without its tenant.
CREATE TABLE tenants (
    name            TEXT    PRIMARY KEY,
    created_at_ms   INTEGER NOT NULL
);

INSERT INTO tenants (name, created_at_ms)
SELECT tenant, MIN(created_at_ms) FROM projects GROUP BY tenant;

INSERT OR IGNORE INTO tenants (name, created_at_ms)
VALUES ('default', CAST(strftime('%s', 'now') AS INTEGER) * 1000);

-- API keys: only a salted hash of the secret is stored. `project` is NULL for keys
-- that act on every project of their tenant. `role` is the role's wire name.
CREATE TABLE api_keys (
    id              TEXT    PRIMARY KEY,
    tenant          TEXT    NOT NULL REFERENCES tenants(name),
    role            TEXT    NOT NULL,
    project         TEXT,
    description     TEXT    NOT NULL DEFAULT '',
    salt            TEXT    NOT NULL,
    hash            TEXT    NOT NULL,
    -- 1: accepted; 0: refused.
    enabled         INTEGER NOT NULL,
    created_at_ms   INTEGER NOT NULL
);

CREATE INDEX api_keys_tenant_project ON api_keys (tenant, project);

-- Limits of a tenant (`project` = '') or of one of its projects: JSON of
-- logpool_core::access::Limits. Deleting the project deletes its row.
CREATE TABLE limits (
    tenant          TEXT    NOT NULL REFERENCES tenants(name),
    project         TEXT    NOT NULL,
    limits          TEXT    NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (tenant, project)
);
