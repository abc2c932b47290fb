-- Live members of a consumer group and their last heartbeat. One DDL statement per file.
CREATE TABLE consumer_group_members (
    group_id          BIGINT       NOT NULL,
    consumer          VARCHAR(255) NOT NULL,
    last_heartbeat_ms BIGINT       NOT NULL,
    PRIMARY KEY (group_id, consumer),
    CONSTRAINT consumer_group_members_group_fk FOREIGN KEY (group_id) REFERENCES consumer_groups (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
