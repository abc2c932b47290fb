-- Consumer groups: programs that share the reading of a pool's shards.
-- One DDL statement per file (see 0001). Deleting the pool deletes its groups.
CREATE TABLE consumer_groups (
    id              BIGINT       NOT NULL AUTO_INCREMENT,
    pool_id         BIGINT       NOT NULL,
    name            VARCHAR(255) NOT NULL,
    timeout_s       BIGINT       NOT NULL,
    -- 1: shards never move away from a live member.
    in_order        BIGINT       NOT NULL,
    created_at_ms   BIGINT       NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY consumer_groups_pool_name (pool_id, name),
    CONSTRAINT consumer_groups_pool_fk FOREIGN KEY (pool_id) REFERENCES pools (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
