-- Limits of a tenant (`project` = '') or of one of its projects: JSON of
-- logpool_core::access::Limits. Deleting the project deletes its row. One DDL
-- statement per file (see 0001).
CREATE TABLE limits (
    tenant          VARCHAR(255) NOT NULL,
    project         VARCHAR(255) NOT NULL,
    limits          TEXT         NOT NULL,
    updated_at_ms   BIGINT       NOT NULL,
    PRIMARY KEY (tenant, project),
    CONSTRAINT limits_tenant_fk FOREIGN KEY (tenant) REFERENCES tenants (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
