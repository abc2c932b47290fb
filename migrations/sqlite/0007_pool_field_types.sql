-- Field types a pool learned from the first value of each field without a hint.
-- The first writer wins: the unique key makes a second INSERT OR IGNORE of the same
-- field a no-op, and the writer reads the stored type back. The key holds a SHA-256
-- of the name, as on MySQL. `id` is never reused (AUTOINCREMENT), so MAX(id) tells
-- control-api that a type was learned since it last published the routing snapshot.
-- Deleting the pool deletes its types.
CREATE TABLE pool_field_types (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    pool_id         INTEGER NOT NULL REFERENCES pools(id) ON DELETE CASCADE,
    field_digest    TEXT    NOT NULL,
    field           TEXT    NOT NULL,
    field_type      TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    UNIQUE (pool_id, field_digest)
);
