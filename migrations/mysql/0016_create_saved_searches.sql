-- Saved searches: named searches a project's team shares. One DDL statement per file
-- (see 0001). `result_columns` is a JSON array of field names, `chart_settings` the console's chart
-- settings as JSON text (empty for none); `created_by` / `updated_by` hold key ids.
-- Names are at most 100 characters (checked by the API), so they fit the unique key.
-- Deleting the project deletes its searches.
CREATE TABLE saved_searches (
    id              BIGINT       NOT NULL AUTO_INCREMENT,
    project_id      BIGINT       NOT NULL,
    name            VARCHAR(255) NOT NULL,
    query           TEXT         NOT NULL,
    time_from       VARCHAR(255) NOT NULL,
    time_to         VARCHAR(255) NOT NULL,
    pool            VARCHAR(255) NOT NULL,
    result_columns  TEXT         NOT NULL,
    chart_settings  MEDIUMTEXT   NOT NULL,
    created_by      VARCHAR(255) NOT NULL,
    updated_by      VARCHAR(255) NOT NULL,
    created_at_ms   BIGINT       NOT NULL,
    updated_at_ms   BIGINT       NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY saved_searches_project_name (project_id, name),
    CONSTRAINT saved_searches_project_fk FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
