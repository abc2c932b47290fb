-- Where partition numbering stopped for a deleted project name. A project re-created
-- under the same name continues from here, because its queue topics are named by
-- tenant, project name and partition number: restarting at 0 would hand the new
-- project the old topics (and, on brokers that keep them, their old messages).
CREATE TABLE retired_project_partitions (
    tenant          VARCHAR(255) NOT NULL,
    project         VARCHAR(255) NOT NULL,
    next_partition  BIGINT       NOT NULL,
    PRIMARY KEY (tenant, project)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
