-- Log pools: named streams of logs in a project, each owning queue partitions.
-- One DDL statement per file (see 0001). InnoDB keeps the AUTO_INCREMENT counter across
-- restarts (MariaDB >= 10.2.4, MySQL >= 8.0), so pool ids are never reused.
CREATE TABLE pools (
    id              BIGINT       NOT NULL AUTO_INCREMENT,
    project_id      BIGINT       NOT NULL,
    name            VARCHAR(255) NOT NULL,
    description     TEXT         NOT NULL,
    -- JSON array of partition numbers, in shard order.
    partitions      TEXT         NOT NULL,
    retention_days  BIGINT       NOT NULL,
    -- JSON object: field name -> type hint.
    field_hints     TEXT         NOT NULL,
    created_at_ms   BIGINT       NOT NULL,
    updated_at_ms   BIGINT       NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY pools_project_name (project_id, name),
    CONSTRAINT pools_project_fk FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
