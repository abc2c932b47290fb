-- Where partition numbering stopped for a deleted project name. A project re-created
-- under the same name continues from here, because its queue topics are named by
-- tenant, project name and partition number: restarting at 0 would hand the new
-- project the old topics (and, on brokers that keep them, their old messages).
CREATE TABLE retired_project_partitions (
    tenant          TEXT    NOT NULL,
    project         TEXT    NOT NULL,
    next_partition  INTEGER NOT NULL,
    PRIMARY KEY (tenant, project)
);
