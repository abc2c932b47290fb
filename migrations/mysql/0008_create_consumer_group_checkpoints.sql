-- The last cursor a consumer group saved per shard. One DDL statement per file.
CREATE TABLE consumer_group_checkpoints (
    group_id        BIGINT       NOT NULL,
    shard           BIGINT       NOT NULL,
    checkpoint      TEXT         NOT NULL,
    updated_at_ms   BIGINT       NOT NULL,
    PRIMARY KEY (group_id, shard),
    CONSTRAINT consumer_group_checkpoints_group_fk FOREIGN KEY (group_id) REFERENCES consumer_groups (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
