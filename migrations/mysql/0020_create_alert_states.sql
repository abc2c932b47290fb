-- The evaluator's state per alert rule and group (empty `group_key` without group_by),
-- as a JSON document, so that a new leader continues where the old one stopped.
-- Group values longer than 255 characters are cut by the evaluator before they get here.
CREATE TABLE alert_states (
    rule_id         BIGINT       NOT NULL,
    group_key       VARCHAR(255) NOT NULL,
    doc             TEXT         NOT NULL,
    updated_at_ms   BIGINT       NOT NULL,
    PRIMARY KEY (rule_id, group_key),
    CONSTRAINT alert_states_rule_fk FOREIGN KEY (rule_id) REFERENCES alert_rules (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
