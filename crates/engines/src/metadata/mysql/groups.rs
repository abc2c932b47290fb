//! Consumer groups and server secrets on MySQL. A heartbeat or checkpoint locks its
//! group row (`SELECT ... FOR UPDATE`) first, so concurrent heartbeats through
//! several processes are serialised per group and see one consistent assignment.
//! Locks are taken project, pool, group, then the group's rows, the same order as
//! pool deletion (which cascades to groups), so these transactions cannot deadlock.

use std::collections::BTreeMap;

use sqlx::{MySql, Row, Transaction};

use super::{db_error, MysqlMetadataStore};
use crate::metadata::consumer_groups::rebalance;
use crate::metadata::rows::{is_unique_violation, now_ms};
use crate::metadata::{Checkpoint, ConsumerGroup, MetadataError, MetadataResult, NewConsumerGroup};

/// A group row with its pool's shard count.
struct GroupRow {
    group: ConsumerGroup,
    num_shards: u32,
}

fn group_not_found(name: &str) -> MetadataError {
    MetadataError::NotFound {
        kind: "consumer group",
        name: name.to_string(),
    }
}

fn group_from_row(row: &sqlx::mysql::MySqlRow) -> MetadataResult<ConsumerGroup> {
    let timeout_s: i64 = row.try_get("timeout_s").map_err(db_error)?;
    let in_order: i64 = row.try_get("in_order").map_err(db_error)?;
    Ok(ConsumerGroup {
        id: row.try_get("id").map_err(db_error)?,
        name: row.try_get("name").map_err(db_error)?,
        timeout_s: u32::try_from(timeout_s).unwrap_or(u32::MAX),
        in_order: in_order != 0,
        created_at_ms: row.try_get("created_at_ms").map_err(db_error)?,
    })
}

impl MysqlMetadataStore {
    /// Finds a group in a transaction (after checking that its pool exists, so an
    /// unknown pool and an unknown group give different errors).
    async fn group_in(
        &self,
        tx: &mut Transaction<'static, MySql>,
        tenant: &str,
        project: &str,
        pool: &str,
        group: &str,
    ) -> MetadataResult<GroupRow> {
        let pool_row = self.get_pool_in(tx, tenant, project, pool).await?;
        let row = sqlx::query(
            "SELECT id, name, timeout_s, in_order, created_at_ms FROM consumer_groups WHERE pool_id = ? AND name = ? FOR UPDATE",
        )
        .bind(pool_row.0)
        .bind(group)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?
        .ok_or_else(|| group_not_found(group))?;
        Ok(GroupRow {
            group: group_from_row(&row)?,
            num_shards: pool_row.1,
        })
    }

    /// Returns a pool's id and shard count.
    async fn get_pool_in(
        &self,
        tx: &mut Transaction<'static, MySql>,
        tenant: &str,
        project: &str,
        pool: &str,
    ) -> MetadataResult<(i64, u32)> {
        let project_exists = sqlx::query("SELECT id FROM projects WHERE tenant = ? AND name = ?")
            .bind(tenant)
            .bind(project)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_error)?;
        let Some(project_row) = project_exists else {
            return Err(MetadataError::NotFound {
                kind: "project",
                name: project.to_string(),
            });
        };
        let project_id: i64 = project_row.try_get("id").map_err(db_error)?;
        let row = sqlx::query("SELECT id, partitions FROM pools WHERE project_id = ? AND name = ?")
            .bind(project_id)
            .bind(pool)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_error)?
            .ok_or_else(|| MetadataError::NotFound {
                kind: "pool",
                name: pool.to_string(),
            })?;
        let partitions: String = row.try_get("partitions").map_err(db_error)?;
        let partitions: Vec<u32> = serde_json::from_str(&partitions)
            .map_err(|e| MetadataError::Database(format!("bad partitions column: {e}")))?;
        Ok((
            row.try_get("id").map_err(db_error)?,
            u32::try_from(partitions.len()).unwrap_or(u32::MAX),
        ))
    }

    pub(super) async fn get_or_create_secret_impl(
        &self,
        name: &str,
        candidate: &str,
    ) -> MetadataResult<String> {
        sqlx::query(
            "INSERT IGNORE INTO server_secrets (name, secret, created_at_ms) VALUES (?, ?, ?)",
        )
        .bind(name)
        .bind(candidate)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        sqlx::query_scalar("SELECT secret FROM server_secrets WHERE name = ?")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)
    }

    pub(super) async fn create_consumer_group_impl(
        &self,
        tenant: &str,
        project: &str,
        pool: &str,
        group: NewConsumerGroup,
    ) -> MetadataResult<ConsumerGroup> {
        let mut tx = self.begin().await?;
        let (pool_id, _) = self.get_pool_in(&mut tx, tenant, project, pool).await?;
        let inserted = sqlx::query(
            "INSERT INTO consumer_groups (pool_id, name, timeout_s, in_order, created_at_ms) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(pool_id)
        .bind(&group.name)
        .bind(i64::from(group.timeout_s))
        .bind(i64::from(group.in_order))
        .bind(now_ms())
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(MetadataError::AlreadyExists {
                    kind: "consumer group",
                    name: group.name,
                })
            }
            Err(error) => return Err(db_error(error)),
        }
        let created = self
            .group_in(&mut tx, tenant, project, pool, &group.name)
            .await?;
        tx.commit().await.map_err(db_error)?;
        Ok(created.group)
    }

    pub(super) async fn list_consumer_groups_impl(
        &self,
        tenant: &str,
        project: &str,
        pool: &str,
    ) -> MetadataResult<Vec<ConsumerGroup>> {
        let mut tx = self.begin().await?;
        let (pool_id, _) = self.get_pool_in(&mut tx, tenant, project, pool).await?;
        let rows = sqlx::query(
            "SELECT id, name, timeout_s, in_order, created_at_ms FROM consumer_groups WHERE pool_id = ? ORDER BY name",
        )
        .bind(pool_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        rows.iter().map(group_from_row).collect()
    }

    pub(super) async fn delete_consumer_group_impl(
        &self,
        tenant: &str,
        project: &str,
        pool: &str,
        group: &str,
    ) -> MetadataResult<()> {
        let mut tx = self.begin().await?;
        let found = self.group_in(&mut tx, tenant, project, pool, group).await?;
        sqlx::query("DELETE FROM consumer_groups WHERE id = ?")
            .bind(found.group.id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    pub(super) async fn consumer_group_heartbeat_impl(
        &self,
        tenant: &str,
        project: &str,
        pool: &str,
        group: &str,
        consumer: &str,
        now_ms: i64,
    ) -> MetadataResult<Vec<u32>> {
        let mut tx = self.begin().await?;
        let found = self.group_in(&mut tx, tenant, project, pool, group).await?;
        let group_id = found.group.id;
        sqlx::query(
            "INSERT INTO consumer_group_members (group_id, consumer, last_heartbeat_ms) VALUES (?, ?, ?) \
             ON DUPLICATE KEY UPDATE last_heartbeat_ms = GREATEST(last_heartbeat_ms, VALUES(last_heartbeat_ms))",
        )
        .bind(group_id)
        .bind(consumer)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let expired_before = now_ms.saturating_sub(i64::from(found.group.timeout_s) * 1000);
        sqlx::query(
            "DELETE FROM consumer_group_members WHERE group_id = ? AND last_heartbeat_ms < ?",
        )
        .bind(group_id)
        .bind(expired_before)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let live: Vec<String> = sqlx::query_scalar(
            // Locking reads: a plain read would see the snapshot taken before this
            // transaction waited for the group lock, missing the last heartbeat's writes.
            "SELECT consumer FROM consumer_group_members WHERE group_id = ? ORDER BY consumer FOR UPDATE",
        )
        .bind(group_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        let owner_rows = sqlx::query(
            "SELECT shard, consumer FROM consumer_group_owners WHERE group_id = ? FOR UPDATE",
        )
        .bind(group_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        let mut owners = BTreeMap::new();
        for row in &owner_rows {
            let shard: i64 = row.try_get("shard").map_err(db_error)?;
            let owner: String = row.try_get("consumer").map_err(db_error)?;
            if let Ok(shard) = u32::try_from(shard) {
                owners.insert(shard, owner);
            }
        }
        let assignment = rebalance(found.num_shards, &live, &owners, found.group.in_order);
        if assignment != owners {
            sqlx::query("DELETE FROM consumer_group_owners WHERE group_id = ?")
                .bind(group_id)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            for (shard, owner) in &assignment {
                sqlx::query(
                    "INSERT INTO consumer_group_owners (group_id, shard, consumer) VALUES (?, ?, ?)",
                )
                .bind(group_id)
                .bind(i64::from(*shard))
                .bind(owner)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            }
        }
        tx.commit().await.map_err(db_error)?;
        Ok(assignment
            .into_iter()
            .filter(|(_, owner)| owner == consumer)
            .map(|(shard, _)| shard)
            .collect())
    }

    pub(super) async fn save_checkpoint_impl(
        &self,
        tenant: &str,
        project: &str,
        pool: &str,
        group: &str,
        shard: u32,
        cursor: &str,
    ) -> MetadataResult<Checkpoint> {
        let mut tx = self.begin().await?;
        let found = self.group_in(&mut tx, tenant, project, pool, group).await?;
        let updated_at_ms = now_ms();
        sqlx::query(
            "INSERT INTO consumer_group_checkpoints (group_id, shard, checkpoint, updated_at_ms) VALUES (?, ?, ?, ?) \
             ON DUPLICATE KEY UPDATE checkpoint = VALUES(checkpoint), updated_at_ms = VALUES(updated_at_ms)",
        )
        .bind(found.group.id)
        .bind(i64::from(shard))
        .bind(cursor)
        .bind(updated_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(Checkpoint {
            shard,
            cursor: cursor.to_string(),
            updated_at_ms,
        })
    }

    pub(super) async fn list_checkpoints_impl(
        &self,
        tenant: &str,
        project: &str,
        pool: &str,
        group: &str,
    ) -> MetadataResult<Vec<Checkpoint>> {
        let mut tx = self.begin().await?;
        let found = self.group_in(&mut tx, tenant, project, pool, group).await?;
        let rows = sqlx::query(
            "SELECT shard, checkpoint, updated_at_ms FROM consumer_group_checkpoints WHERE group_id = ? ORDER BY shard",
        )
        .bind(found.group.id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        rows.iter()
            .map(|row| {
                let shard: i64 = row.try_get("shard").map_err(db_error)?;
                Ok(Checkpoint {
                    shard: u32::try_from(shard).unwrap_or(u32::MAX),
                    cursor: row.try_get("checkpoint").map_err(db_error)?,
                    updated_at_ms: row.try_get("updated_at_ms").map_err(db_error)?,
                })
            })
            .collect()
    }
}
