-- Tenants: the unit of isolation. Projects belong to one; `default` always exists and
-- holds the operator key's own projects (its row is added by 0013). One DDL statement
-- per file (see 0001).
CREATE TABLE tenants (
    name            VARCHAR(255) NOT NULL,
    created_at_ms   BIGINT       NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
