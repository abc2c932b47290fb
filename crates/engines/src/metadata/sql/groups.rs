//! Consumer groups on SQL. A heartbeat or checkpoint locks its group row
//! ([`Dialect::FOR_UPDATE`]) first, so concurrent heartbeats through several
//! processes are serialised per group and see one consistent assignment. Locks are
//! taken project, pool, group, then the group's rows, the same order as pool deletion
//! (which cascades to groups), so these transactions cannot deadlock.

use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row, Transaction};

use super::rows::{
    already_exists, checkpoint_from_row, group_from_row, is_unique_violation, not_found, now_ms,
    SELECT_GROUPS,
};
use super::{db_error, sql_impl};
use crate::metadata::consumer_groups::rebalance;
use crate::metadata::{
    Checkpoint, ConsumerGroup, ConsumerGroupStore, MetadataError, MetadataResult, NewConsumerGroup,
};
use crate::metadata::{GroupRef, PoolRef};

/// A group row with its pool's shard count.
struct GroupRow {
    group: ConsumerGroup,
    num_shards: u32,
}

sql_impl! {
    impl {
        /// Finds a group in a transaction (after checking that its pool exists, so an
        /// unknown pool and an unknown group give different errors).
        async fn group_in(
            &self,
            tx: &mut Transaction<'static, DB>,
            group: &GroupRef,
        ) -> MetadataResult<GroupRow> {
            let pool_row = self.get_pool_in(tx, &group.pool).await?;
            let group = group.group.as_str();
            let row = sqlx::query(AssertSqlSafe(format!(
                "{SELECT_GROUPS} WHERE pool_id = ? AND name = ?{}",
                DB::FOR_UPDATE
            )))
            .bind(pool_row.0)
            .bind(group)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_error::<DB>)?
            .ok_or_else(|| not_found("consumer group", group))?;
            Ok(GroupRow {
                group: group_from_row(&row, db_error::<DB>)?,
                num_shards: pool_row.1,
            })
        }

        /// Returns a pool's id and shard count.
        async fn get_pool_in(
            &self,
            tx: &mut Transaction<'static, DB>,
            pool: &PoolRef,
        ) -> MetadataResult<(i64, u32)> {
            let (tenant, project, pool) = (
                pool.tenant.as_str(),
                pool.project.as_str(),
                pool.pool.as_str(),
            );
            let project_exists =
                sqlx::query("SELECT id FROM projects WHERE tenant = ? AND name = ?")
                    .bind(tenant)
                    .bind(project)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(db_error::<DB>)?;
            let Some(project_row) = project_exists else {
                return Err(not_found("project", project));
            };
            let project_id: i64 = project_row.try_get("id").map_err(db_error::<DB>)?;
            let row =
                sqlx::query("SELECT id, partitions FROM pools WHERE project_id = ? AND name = ?")
                    .bind(project_id)
                    .bind(pool)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(db_error::<DB>)?
                    .ok_or_else(|| not_found("pool", pool))?;
            let partitions: String = row.try_get("partitions").map_err(db_error::<DB>)?;
            let partitions: Vec<u32> = serde_json::from_str(&partitions)
                .map_err(|e| MetadataError::Database(format!("bad partitions column: {e}")))?;
            Ok((
                row.try_get("id").map_err(db_error::<DB>)?,
                u32::try_from(partitions.len()).unwrap_or(u32::MAX),
            ))
        }
    }
}

sql_impl! {
    #[async_trait]
    impl ConsumerGroupStore {
        async fn create_consumer_group(
            &self,
            pool: &PoolRef,
            group: NewConsumerGroup,
        ) -> MetadataResult<ConsumerGroup> {
            let mut tx = self.pool.begin().await.map_err(db_error::<DB>)?;
            let (pool_id, _) = self.get_pool_in(&mut tx, pool).await?;
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
                    return Err(already_exists("consumer group", &group.name))
                }
                Err(error) => return Err(db_error::<DB>(error)),
            }
            let created = self
                .group_in(&mut tx, &pool.group(group.name.clone()))
                .await?;
            tx.commit().await.map_err(db_error::<DB>)?;
            Ok(created.group)
        }

        async fn list_consumer_groups(
            &self,
            pool: &PoolRef,
        ) -> MetadataResult<Vec<ConsumerGroup>> {
            let mut tx = self.pool.begin().await.map_err(db_error::<DB>)?;
            let (pool_id, _) = self.get_pool_in(&mut tx, pool).await?;
            let rows = sqlx::query(AssertSqlSafe(format!(
                "{SELECT_GROUPS} WHERE pool_id = ? ORDER BY name"
            )))
            .bind(pool_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error::<DB>)?;
            tx.commit().await.map_err(db_error::<DB>)?;
            rows.iter()
                .map(|row| group_from_row(row, db_error::<DB>))
                .collect()
        }

        async fn delete_consumer_group(
            &self,
            group: &GroupRef,
        ) -> MetadataResult<()> {
            let mut tx = self.pool.begin().await.map_err(db_error::<DB>)?;
            let found = self.group_in(&mut tx, group).await?;
            sqlx::query("DELETE FROM consumer_groups WHERE id = ?")
                .bind(found.group.id)
                .execute(&mut *tx)
                .await
                .map_err(db_error::<DB>)?;
            tx.commit().await.map_err(db_error::<DB>)
        }

        async fn consumer_group_heartbeat(
            &self,
            group: &GroupRef,
            consumer: &str,
            now_ms: i64,
        ) -> MetadataResult<Vec<u32>> {
            let mut tx = self.pool.begin().await.map_err(db_error::<DB>)?;
            let found = self.group_in(&mut tx, group).await?;
            let group_id = found.group.id;
            // A heartbeat that arrives late never moves the last one back in time.
            sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO consumer_group_members (group_id, consumer, last_heartbeat_ms) VALUES (?, ?, ?) \
                     {} last_heartbeat_ms = {}(last_heartbeat_ms, {})",
                    DB::on_conflict_update(&["group_id", "consumer"]),
                    DB::GREATEST,
                    DB::proposed("last_heartbeat_ms")
                )))
                .bind(group_id)
                .bind(consumer)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(db_error::<DB>)?;
            let expired_before = now_ms.saturating_sub(i64::from(found.group.timeout_s) * 1000);
            sqlx::query(
                "DELETE FROM consumer_group_members WHERE group_id = ? AND last_heartbeat_ms < ?",
            )
            .bind(group_id)
            .bind(expired_before)
            .execute(&mut *tx)
            .await
            .map_err(db_error::<DB>)?;
            // Locking reads: a plain read would see the snapshot taken before this
            // transaction waited for the group lock, missing the last heartbeat's writes.
            let live = sqlx::query(AssertSqlSafe(format!(
                    "SELECT consumer FROM consumer_group_members WHERE group_id = ? ORDER BY consumer{}",
                    DB::FOR_UPDATE
                )))
                .bind(group_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error::<DB>)?
                .iter()
                .map(|row| row.try_get::<String, _>("consumer"))
                .collect::<Result<Vec<String>, _>>()
                .map_err(db_error::<DB>)?;
            let owner_rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT shard, consumer FROM consumer_group_owners WHERE group_id = ?{}",
                DB::FOR_UPDATE
            )))
            .bind(group_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error::<DB>)?;
            let mut owners = BTreeMap::new();
            for row in &owner_rows {
                let shard: i64 = row.try_get("shard").map_err(db_error::<DB>)?;
                let owner: String = row.try_get("consumer").map_err(db_error::<DB>)?;
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
                    .map_err(db_error::<DB>)?;
                for (shard, owner) in &assignment {
                    sqlx::query(
                            "INSERT INTO consumer_group_owners (group_id, shard, consumer) VALUES (?, ?, ?)",
                        )
                        .bind(group_id)
                        .bind(i64::from(*shard))
                        .bind(owner)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error::<DB>)?;
                }
            }
            tx.commit().await.map_err(db_error::<DB>)?;
            Ok(assignment
                .into_iter()
                .filter(|(_, owner)| owner == consumer)
                .map(|(shard, _)| shard)
                .collect())
        }

        async fn save_checkpoint(
            &self,
            group: &GroupRef,
            shard: u32,
            cursor: &str,
        ) -> MetadataResult<Checkpoint> {
            let mut tx = self.pool.begin().await.map_err(db_error::<DB>)?;
            let found = self.group_in(&mut tx, group).await?;
            let updated_at_ms = now_ms();
            sqlx::query(AssertSqlSafe(DB::upsert(
                    "INSERT INTO consumer_group_checkpoints (group_id, shard, checkpoint, updated_at_ms) VALUES (?, ?, ?, ?)",
                    &["group_id", "shard"],
                    &["checkpoint", "updated_at_ms"],
                )))
                .bind(found.group.id)
                .bind(i64::from(shard))
                .bind(cursor)
                .bind(updated_at_ms)
                .execute(&mut *tx)
                .await
                .map_err(db_error::<DB>)?;
            tx.commit().await.map_err(db_error::<DB>)?;
            Ok(Checkpoint {
                shard,
                cursor: cursor.to_string(),
                updated_at_ms,
            })
        }

        async fn list_checkpoints(
            &self,
            group: &GroupRef,
        ) -> MetadataResult<Vec<Checkpoint>> {
            let mut tx = self.pool.begin().await.map_err(db_error::<DB>)?;
            let found = self.group_in(&mut tx, group).await?;
            let rows = sqlx::query(
                    "SELECT shard, checkpoint, updated_at_ms FROM consumer_group_checkpoints WHERE group_id = ? ORDER BY shard",
                )
                .bind(found.group.id)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error::<DB>)?;
            tx.commit().await.map_err(db_error::<DB>)?;
            rows.iter()
                .map(|row| checkpoint_from_row(row, db_error::<DB>))
                .collect()
        }
    }
}
