//! Alerts on SQL: one table per object kind (rules, channels, silences) with the
//! user's document and the server's status, plus the evaluator's state, history and
//! outbox tables, all deleted with their rule.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row};

use super::rows::{not_found, now_ms};
use super::{db_error, sql_impl};
use crate::metadata::{
    AlertEvaluation, AlertGroupState, AlertObject, AlertObjectKind, AlertStore,
    AlertTransitionRecord, MetadataError, MetadataResult, OutboxEntry, OutboxOutcome,
};

/// The columns [`object_from_row`] reads from `table` (aliased `o`), with the project
/// joined in.
fn select_objects(kind: AlertObjectKind) -> String {
    format!(
        "SELECT o.id, pr.tenant, pr.name AS project, o.doc, o.status, o.created_by, \
         o.updated_by, o.created_at_ms, o.updated_at_ms \
         FROM {} o JOIN projects pr ON pr.id = o.project_id",
        kind.table()
    )
}

fn object_from_row<R>(
    row: &R,
    kind: AlertObjectKind,
    db_error: fn(sqlx::Error) -> MetadataError,
) -> MetadataResult<AlertObject>
where
    R: Row,
    &'static str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let text = |column: &'static str| row.try_get::<String, _>(column).map_err(db_error);
    let number = |column: &'static str| row.try_get::<i64, _>(column).map_err(db_error);
    Ok(AlertObject {
        id: number("id")?,
        kind,
        tenant: text("tenant")?,
        project: text("project")?,
        doc: text("doc")?,
        status: text("status")?,
        created_by: text("created_by")?,
        updated_by: text("updated_by")?,
        created_at_ms: number("created_at_ms")?,
        updated_at_ms: number("updated_at_ms")?,
    })
}

fn missing(kind: AlertObjectKind, id: i64) -> MetadataError {
    not_found(kind.label(), &id.to_string())
}

sql_impl! {
    impl {
        async fn alert_object_row(
            &self,
            kind: AlertObjectKind,
            tenant: &str,
            project: &str,
            id: i64,
        ) -> MetadataResult<AlertObject> {
            let row = sqlx::query(AssertSqlSafe(format!(
                "{} WHERE pr.tenant = ? AND pr.name = ? AND o.id = ?",
                select_objects(kind)
            )))
            .bind(tenant)
            .bind(project)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error::<DB>)?
            .ok_or_else(|| missing(kind, id))?;
            object_from_row(&row, kind, db_error::<DB>)
        }
    }
}

sql_impl! {
    #[async_trait]
    impl AlertStore {
        async fn create_alert_object(
            &self,
            kind: AlertObjectKind,
            tenant: &str,
            project: &str,
            doc: &str,
            by: &str,
            max_per_tenant: u32,
        ) -> MetadataResult<AlertObject> {
            // The project row lock makes the count and the insert one step for the
            // project's writers across replicas.
            let mut tx = self.pool.begin().await.map_err(db_error::<DB>)?;
            let (project_id, _) = Self::lock_project(&mut tx, tenant, project).await?;
            let count: i64 = sqlx::query(AssertSqlSafe(format!(
                "SELECT COUNT(*) AS n FROM {} o JOIN projects pr ON pr.id = o.project_id \
                 WHERE pr.tenant = ?",
                kind.table()
            )))
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error::<DB>)?
            .try_get("n")
            .map_err(db_error::<DB>)?;
            if count >= i64::from(max_per_tenant) {
                return Err(MetadataError::TooMany {
                    kind: "tenant",
                    what: match kind {
                        AlertObjectKind::Rule => "alert rules",
                        AlertObjectKind::Channel => "alert channels",
                        AlertObjectKind::Silence => "alert silences",
                    },
                    max: max_per_tenant,
                });
            }
            let now = now_ms();
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {} (project_id, doc, status, created_by, updated_by, \
                 created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                kind.table()
            )))
            .bind(project_id)
            .bind(doc)
            .bind("")
            .bind(by)
            .bind(by)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_error::<DB>)?;
            // The newest row of the project is the one just inserted: the project is
            // locked, so no other insert into it ran in between.
            let row = sqlx::query(AssertSqlSafe(format!(
                "{} WHERE o.project_id = ? ORDER BY o.id DESC LIMIT 1",
                select_objects(kind)
            )))
            .bind(project_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error::<DB>)?;
            let created = object_from_row(&row, kind, db_error::<DB>)?;
            tx.commit().await.map_err(db_error::<DB>)?;
            Ok(created)
        }

        async fn list_alert_objects(
            &self,
            kind: AlertObjectKind,
            tenant: &str,
            project: &str,
        ) -> MetadataResult<Vec<AlertObject>> {
            let select = select_objects(kind);
            let rows = self.rows_of_project(&select, "o.id", tenant, project).await?;
            rows.iter()
                .map(|row| object_from_row(row, kind, db_error::<DB>))
                .collect()
        }

        async fn get_alert_object(
            &self,
            kind: AlertObjectKind,
            tenant: &str,
            project: &str,
            id: i64,
        ) -> MetadataResult<AlertObject> {
            self.project_row(tenant, project).await?;
            self.alert_object_row(kind, tenant, project, id).await
        }

        async fn update_alert_object(
            &self,
            kind: AlertObjectKind,
            tenant: &str,
            project: &str,
            id: i64,
            doc: &str,
            by: &str,
        ) -> MetadataResult<AlertObject> {
            let project_row = self.project_row(tenant, project).await?;
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE {} SET doc = ?, updated_by = ?, updated_at_ms = ? \
                 WHERE project_id = ? AND id = ?",
                kind.table()
            )))
            .bind(doc)
            .bind(by)
            .bind(now_ms())
            .bind(project_row.id)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_error::<DB>)?;
            // MySQL counts only rows whose values changed; the read tells a missing
            // object from an unchanged one.
            self.alert_object_row(kind, tenant, project, id).await
        }

        async fn delete_alert_object(
            &self,
            kind: AlertObjectKind,
            tenant: &str,
            project: &str,
            id: i64,
        ) -> MetadataResult<()> {
            let project_row = self.project_row(tenant, project).await?;
            let result = sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {} WHERE project_id = ? AND id = ?",
                kind.table()
            )))
            .bind(project_row.id)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_error::<DB>)?;
            if DB::rows_affected(&result) == 0 {
                return Err(missing(kind, id));
            }
            Ok(())
        }

        async fn all_alert_objects(&self, kind: AlertObjectKind) -> MetadataResult<Vec<AlertObject>> {
            let rows = sqlx::query(AssertSqlSafe(format!("{} ORDER BY o.id", select_objects(kind))))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error::<DB>)?;
            rows.iter()
                .map(|row| object_from_row(row, kind, db_error::<DB>))
                .collect()
        }

        async fn set_alert_status(
            &self,
            kind: AlertObjectKind,
            id: i64,
            status: &str,
        ) -> MetadataResult<()> {
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE {} SET status = ? WHERE id = ?",
                kind.table()
            )))
            .bind(status)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_error::<DB>)?;
            Ok(())
        }

        async fn alert_states(&self, rule_id: i64) -> MetadataResult<Vec<AlertGroupState>> {
            let rows = sqlx::query(
                "SELECT group_key, doc FROM alert_states WHERE rule_id = ? ORDER BY group_key",
            )
            .bind(rule_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error::<DB>)?;
            rows.iter()
                .map(|row| {
                    Ok(AlertGroupState {
                        group: row.try_get("group_key").map_err(db_error::<DB>)?,
                        doc: row.try_get("doc").map_err(db_error::<DB>)?,
                    })
                })
                .collect()
        }

        async fn record_alert_evaluation(
            &self,
            evaluation: &AlertEvaluation,
        ) -> MetadataResult<usize> {
            let mut tx = self.pool.begin().await.map_err(db_error::<DB>)?;
            // Locking the rule row orders this write after a concurrent delete: a
            // deleted rule leaves nothing behind.
            let exists = sqlx::query(AssertSqlSafe(format!(
                "SELECT id FROM alert_rules WHERE id = ?{}",
                DB::FOR_UPDATE
            )))
            .bind(evaluation.rule_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error::<DB>)?;
            if exists.is_none() {
                return Ok(0);
            }
            let now = now_ms();
            sqlx::query("UPDATE alert_rules SET status = ? WHERE id = ?")
                .bind(&evaluation.status)
                .bind(evaluation.rule_id)
                .execute(&mut *tx)
                .await
                .map_err(db_error::<DB>)?;
            let upsert = DB::upsert(
                "INSERT INTO alert_states (rule_id, group_key, doc, updated_at_ms) VALUES (?, ?, ?, ?)",
                &["rule_id", "group_key"],
                &["doc", "updated_at_ms"],
            );
            for state in &evaluation.states {
                sqlx::query(AssertSqlSafe(upsert.clone()))
                    .bind(evaluation.rule_id)
                    .bind(&state.group)
                    .bind(&state.doc)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error::<DB>)?;
            }
            for group in &evaluation.forgotten_groups {
                sqlx::query("DELETE FROM alert_states WHERE rule_id = ? AND group_key = ?")
                    .bind(evaluation.rule_id)
                    .bind(group)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error::<DB>)?;
            }
            for transition in &evaluation.transitions {
                sqlx::query(
                    "INSERT INTO alert_history (rule_id, group_key, doc, at_ms) VALUES (?, ?, ?, ?)",
                )
                .bind(evaluation.rule_id)
                .bind(&transition.group)
                .bind(&transition.doc)
                .bind(transition.at_ms)
                .execute(&mut *tx)
                .await
                .map_err(db_error::<DB>)?;
            }
            let mut enqueued = 0;
            for entry in &evaluation.outbox {
                let result = sqlx::query(AssertSqlSafe(format!(
                    "{} INTO alert_outbox (rule_id, channel_id, dedupe_key, payload, \
                     created_at_ms, next_attempt_ms, attempts, sent_at_ms, last_error) \
                     VALUES (?, ?, ?, ?, ?, ?, 0, 0, '')",
                    DB::INSERT_OR_IGNORE
                )))
                .bind(evaluation.rule_id)
                .bind(entry.channel_id)
                .bind(&entry.dedupe_key)
                .bind(&entry.payload)
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error::<DB>)?;
                enqueued += DB::rows_affected(&result) as usize;
            }
            tx.commit().await.map_err(db_error::<DB>)?;
            Ok(enqueued)
        }

        async fn alert_history(
            &self,
            rule_id: i64,
            limit: u32,
        ) -> MetadataResult<Vec<AlertTransitionRecord>> {
            let rows = sqlx::query(
                "SELECT group_key, doc, at_ms FROM alert_history WHERE rule_id = ? \
                 ORDER BY id DESC LIMIT ?",
            )
            .bind(rule_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error::<DB>)?;
            rows.iter()
                .map(|row| {
                    Ok(AlertTransitionRecord {
                        group: row.try_get("group_key").map_err(db_error::<DB>)?,
                        doc: row.try_get("doc").map_err(db_error::<DB>)?,
                        at_ms: row.try_get("at_ms").map_err(db_error::<DB>)?,
                    })
                })
                .collect()
        }

        async fn due_outbox(&self, now_ms: i64, limit: u32) -> MetadataResult<Vec<OutboxEntry>> {
            let rows = sqlx::query(
                "SELECT id, rule_id, channel_id, dedupe_key, payload, attempts, created_at_ms \
                 FROM alert_outbox WHERE sent_at_ms = 0 AND next_attempt_ms <= ? \
                 ORDER BY id LIMIT ?",
            )
            .bind(now_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error::<DB>)?;
            rows.iter()
                .map(|row| {
                    Ok(OutboxEntry {
                        id: row.try_get("id").map_err(db_error::<DB>)?,
                        rule_id: row.try_get("rule_id").map_err(db_error::<DB>)?,
                        channel_id: row.try_get("channel_id").map_err(db_error::<DB>)?,
                        dedupe_key: row.try_get("dedupe_key").map_err(db_error::<DB>)?,
                        payload: row.try_get("payload").map_err(db_error::<DB>)?,
                        attempts: row.try_get("attempts").map_err(db_error::<DB>)?,
                        created_at_ms: row.try_get("created_at_ms").map_err(db_error::<DB>)?,
                    })
                })
                .collect()
        }

        async fn finish_outbox_attempt(
            &self,
            id: i64,
            outcome: &OutboxOutcome,
        ) -> MetadataResult<()> {
            let (sent_at_ms, next_attempt_ms, error) = match outcome {
                OutboxOutcome::Sent { at_ms } => (*at_ms, *at_ms, ""),
                OutboxOutcome::Retry { next_attempt_ms, error } => (0, *next_attempt_ms, error.as_str()),
                OutboxOutcome::GiveUp { error } => (-1, now_ms(), error.as_str()),
            };
            sqlx::query(
                "UPDATE alert_outbox SET sent_at_ms = ?, next_attempt_ms = ?, \
                 attempts = attempts + 1, last_error = ? WHERE id = ? AND sent_at_ms = 0",
            )
            .bind(sent_at_ms)
            .bind(next_attempt_ms)
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_error::<DB>)?;
            Ok(())
        }

        async fn prune_alert_records(
            &self,
            outbox_before_ms: i64,
            history_before_ms: i64,
        ) -> MetadataResult<u64> {
            let outbox = sqlx::query(
                "DELETE FROM alert_outbox WHERE sent_at_ms <> 0 AND created_at_ms < ?",
            )
            .bind(outbox_before_ms)
            .execute(&self.pool)
            .await
            .map_err(db_error::<DB>)?;
            let history = sqlx::query("DELETE FROM alert_history WHERE at_ms < ?")
                .bind(history_before_ms)
                .execute(&self.pool)
                .await
                .map_err(db_error::<DB>)?;
            Ok(DB::rows_affected(&outbox) + DB::rows_affected(&history))
        }
    }
}
