-- Every state transition of an alert rule's groups, read newest first.
CREATE TABLE alert_history (
    id              BIGINT       NOT NULL AUTO_INCREMENT,
    rule_id         BIGINT       NOT NULL,
    group_key       VARCHAR(255) NOT NULL,
    doc             TEXT         NOT NULL,
    at_ms           BIGINT       NOT NULL,
    PRIMARY KEY (id),
    KEY alert_history_rule (rule_id, id),
    CONSTRAINT alert_history_rule_fk FOREIGN KEY (rule_id) REFERENCES alert_rules (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
