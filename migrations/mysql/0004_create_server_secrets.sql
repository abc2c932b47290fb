-- Server secrets shared by every process on this store (e.g. the key that signs
-- queue read cursors). Hex-encoded; created once. One DDL statement per file (see 0001).
CREATE TABLE server_secrets (
    name            VARCHAR(255) NOT NULL,
    secret          TEXT         NOT NULL,
    created_at_ms   BIGINT       NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
