-- API keys: only a salted hash of the secret is stored. `project` is NULL for keys
-- that act on every project of their tenant; `role` is the role's wire name.
-- `enabled` is 1 (accepted) or 0 (refused). One DDL statement per file (see 0001).
CREATE TABLE api_keys (
    id              VARCHAR(255) NOT NULL,
    tenant          VARCHAR(255) NOT NULL,
    role            VARCHAR(32)  NOT NULL,
    project         VARCHAR(255) NULL,
    description     TEXT         NOT NULL,
    salt            VARCHAR(255) NOT NULL,
    hash            VARCHAR(255) NOT NULL,
    enabled         BIGINT       NOT NULL,
    created_at_ms   BIGINT       NOT NULL,
    PRIMARY KEY (id),
    KEY api_keys_tenant_project (tenant, project),
    CONSTRAINT api_keys_tenant_fk FOREIGN KEY (tenant) REFERENCES tenants (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
