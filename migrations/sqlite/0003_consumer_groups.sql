-- Server secrets shared by every process on this store (e.g. the key that signs
-- queue read cursors). Hex-encoded; created once, never rotated implicitly.
CREATE TABLE server_secrets (
    name            TEXT    PRIMARY KEY,
    secret          TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL
);

-- Consumer groups: programs that share the reading of a pool's shards.
CREATE TABLE consumer_groups (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    pool_id         INTEGER NOT NULL REFERENCES pools(id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    timeout_s       INTEGER NOT NULL,
    -- 1: shards never move away from a live member.
    in_order        INTEGER NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    UNIQUE (pool_id, name)
);

-- Live members of a group and their last heartbeat.
CREATE TABLE consumer_group_members (
    group_id          INTEGER NOT NULL REFERENCES consumer_groups(id) ON DELETE CASCADE,
    consumer          TEXT    NOT NULL,
    last_heartbeat_ms INTEGER NOT NULL,
    PRIMARY KEY (group_id, consumer)
);

-- Which member owns which shard (shard index in the pool).
CREATE TABLE consumer_group_owners (
    group_id        INTEGER NOT NULL REFERENCES consumer_groups(id) ON DELETE CASCADE,
    shard           INTEGER NOT NULL,
    consumer        TEXT    NOT NULL,
    PRIMARY KEY (group_id, shard)
);

-- The last cursor a group saved per shard.
CREATE TABLE consumer_group_checkpoints (
    group_id        INTEGER NOT NULL REFERENCES consumer_groups(id) ON DELETE CASCADE,
    shard           INTEGER NOT NULL,
    checkpoint      TEXT    NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (group_id, shard)
);
