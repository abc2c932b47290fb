-- Dashboards: named grids of panels a project's team shares. One DDL statement per file
-- (see 0001). `panels` is a JSON array of panel documents as the API checked them;
-- `time_from` / `time_to` / `refresh` are the dashboard-wide range and auto-refresh;
-- `created_by` / `updated_by` hold key ids. Names are at most 100 characters (checked
-- by the API), so they fit the unique key. Deleting the project deletes its dashboards.
CREATE TABLE dashboards (
    id              BIGINT       NOT NULL AUTO_INCREMENT,
    project_id      BIGINT       NOT NULL,
    name            VARCHAR(255) NOT NULL,
    description     TEXT         NOT NULL,
    time_from       VARCHAR(255) NOT NULL,
    time_to         VARCHAR(255) NOT NULL,
    refresh         VARCHAR(16)  NOT NULL,
    panels          MEDIUMTEXT   NOT NULL,
    created_by      VARCHAR(255) NOT NULL,
    updated_by      VARCHAR(255) NOT NULL,
    created_at_ms   BIGINT       NOT NULL,
    updated_at_ms   BIGINT       NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY dashboards_project_name (project_id, name),
    CONSTRAINT dashboards_project_fk FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
