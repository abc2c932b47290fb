-- Alert silences of a project (see migrations/sqlite/0009_alerts.sql for the design): what
-- the user wrote as one JSON document in `doc`, what the server writes back in `status`.
-- One DDL statement per file (see 0001). Deleting the project deletes them.
CREATE TABLE alert_silences (
    id              BIGINT       NOT NULL AUTO_INCREMENT,
    project_id      BIGINT       NOT NULL,
    doc             MEDIUMTEXT   NOT NULL,
    status          TEXT         NOT NULL,
    created_by      VARCHAR(255) NOT NULL,
    updated_by      VARCHAR(255) NOT NULL,
    created_at_ms   BIGINT       NOT NULL,
    updated_at_ms   BIGINT       NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT alert_silences_project_fk FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
