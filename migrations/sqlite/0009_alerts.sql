-- Alerts: rules, the channels they notify and the silences that mute them, per
-- project. What the user wrote is kept as one JSON document (`doc`, checked by the API);
-- `status` is what the server writes back (a rule's last evaluation error, a channel's
-- last delivery) so that a user's edit and the server's report never overwrite each other.
-- Deleting the project deletes them; deleting a rule deletes its state, history and outbox.
CREATE TABLE alert_rules (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    doc             TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    updated_by      TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);

CREATE TABLE alert_channels (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    doc             TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    updated_by      TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);

CREATE TABLE alert_silences (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    doc             TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    updated_by      TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);

-- The evaluator's state per rule and group (`group_key` is empty without group_by), as
-- a JSON document, so that a new leader continues where the old one stopped.
CREATE TABLE alert_states (
    rule_id         INTEGER NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    group_key       TEXT    NOT NULL,
    doc             TEXT    NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (rule_id, group_key)
);

-- Every state transition, newest read first.
CREATE TABLE alert_history (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id         INTEGER NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    group_key       TEXT    NOT NULL,
    doc             TEXT    NOT NULL,
    at_ms           INTEGER NOT NULL
);
CREATE INDEX alert_history_rule ON alert_history (rule_id, id);

-- Notifications to send: written in the same transaction as the transition that causes
-- them, unique per channel and dedupe key (so a firing is enqueued once, whichever
-- process evaluates), marked sent only after the receiver accepted them.
-- `sent_at_ms` is 0 while pending and -1 once given up.
CREATE TABLE alert_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id         INTEGER NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    channel_id      INTEGER NOT NULL,
    dedupe_key      TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    sent_at_ms      INTEGER NOT NULL,
    last_error      TEXT    NOT NULL,
    UNIQUE (channel_id, dedupe_key)
);
CREATE INDEX alert_outbox_due ON alert_outbox (sent_at_ms, next_attempt_ms);
