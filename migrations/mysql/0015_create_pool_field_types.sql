-- Field types a pool learned from the first value of each field without a hint.
-- One DDL statement per file (see 0001). The first writer wins: the unique key makes
-- a second worker's INSERT IGNORE of the same field a no-op, and it reads the stored
-- type back. The key holds a SHA-256 of the name, so names of any length fit it.
-- `id` only grows (InnoDB keeps the counter across restarts), so MAX(id) tells
-- control-api that a type was learned since it last published the routing snapshot.
-- Deleting the pool deletes its types.
CREATE TABLE pool_field_types (
    id              BIGINT       NOT NULL AUTO_INCREMENT,
    pool_id         BIGINT       NOT NULL,
    field_digest    CHAR(64)     NOT NULL,
    field           TEXT         NOT NULL,
    field_type      VARCHAR(16)  NOT NULL,
    created_at_ms   BIGINT       NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY pool_field_types_pool_field (pool_id, field_digest),
    CONSTRAINT pool_field_types_pool_fk FOREIGN KEY (pool_id) REFERENCES pools (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
