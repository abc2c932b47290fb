-- The `default` tenant, and the tenants of projects made before tenants were stored,
-- so that no project is left without its tenant. One statement per file (see 0001).
INSERT IGNORE INTO tenants (name, created_at_ms)
SELECT tenant, MIN(created_at_ms) FROM projects GROUP BY tenant
UNION ALL
SELECT 'default', CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED);
