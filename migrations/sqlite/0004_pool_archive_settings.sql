-- Archive settings of a pool (JSON of logpool_core::archive::ArchiveSettings).
-- A pool without a row is not archived. Deleting the pool deletes its settings.
CREATE TABLE pool_archive_settings (
    pool_id         INTEGER PRIMARY KEY REFERENCES pools(id) ON DELETE CASCADE,
    settings        TEXT    NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);
