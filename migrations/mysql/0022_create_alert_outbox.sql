-- Notifications to send (see migrations/sqlite/0009_alerts.sql): unique per channel and
-- dedupe key, marked sent only after the receiver accepted them. `sent_at_ms` is 0 while
-- pending and -1 once given up.
CREATE TABLE alert_outbox (
    id              BIGINT       NOT NULL AUTO_INCREMENT,
    rule_id         BIGINT       NOT NULL,
    channel_id      BIGINT       NOT NULL,
    dedupe_key      VARCHAR(255) NOT NULL,
    payload         MEDIUMTEXT   NOT NULL,
    created_at_ms   BIGINT       NOT NULL,
    next_attempt_ms BIGINT       NOT NULL,
    attempts        BIGINT       NOT NULL,
    sent_at_ms      BIGINT       NOT NULL,
    last_error      TEXT         NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY alert_outbox_dedupe (channel_id, dedupe_key),
    KEY alert_outbox_due (sent_at_ms, next_attempt_ms),
    CONSTRAINT alert_outbox_rule_fk FOREIGN KEY (rule_id) REFERENCES alert_rules (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
