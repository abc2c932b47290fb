-- Archive settings of a pool (JSON of logpool_core::archive::ArchiveSettings).
-- One DDL statement per file (see 0001). A pool without a row is not archived;
-- deleting the pool deletes its settings.
CREATE TABLE pool_archive_settings (
    pool_id         BIGINT   NOT NULL,
    settings        TEXT     NOT NULL,
    updated_at_ms   BIGINT   NOT NULL,
    PRIMARY KEY (pool_id),
    CONSTRAINT pool_archive_settings_pool_fk FOREIGN KEY (pool_id) REFERENCES pools (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
