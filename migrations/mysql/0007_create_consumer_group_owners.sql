-- Which member of a consumer group owns which shard (shard index in the pool).
-- One DDL statement per file.
CREATE TABLE consumer_group_owners (
    group_id        BIGINT       NOT NULL,
    shard           BIGINT       NOT NULL,
    consumer        VARCHAR(255) NOT NULL,
    PRIMARY KEY (group_id, shard),
    CONSTRAINT consumer_group_owners_group_fk FOREIGN KEY (group_id) REFERENCES consumer_groups (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
