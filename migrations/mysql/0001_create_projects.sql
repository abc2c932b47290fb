-- Projects: a tenant's application, the unit of access control and one queue topic family.
-- MySQL commits every DDL statement on its own, so each migration file holds exactly one
-- statement: a failure can then never leave a migration half-applied.
-- `utf8mb4_bin` keeps names case-sensitive, as they are in SQLite. TEXT columns carry no
-- DEFAULT because MySQL before 8.0.13 rejects one; the store always writes them.
CREATE TABLE projects (
    id              BIGINT       NOT NULL AUTO_INCREMENT,
    tenant          VARCHAR(255) NOT NULL,
    name            VARCHAR(255) NOT NULL,
    description     TEXT         NOT NULL,
    -- Next queue partition number to hand to a pool; never reused within a project.
    next_partition  BIGINT       NOT NULL DEFAULT 0,
    created_at_ms   BIGINT       NOT NULL,
    updated_at_ms   BIGINT       NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY projects_tenant_name (tenant, name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
