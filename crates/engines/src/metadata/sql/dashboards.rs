//! Dashboards on SQL: one row per dashboard, its panels one JSON text, joined to its
//! project by id so that deleting the project deletes them.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row};

use super::rows::{already_exists, is_unique_violation, not_found, now_ms};
use super::{db_error, sql_impl};
use crate::metadata::{
    Dashboard, DashboardFields, DashboardLimits, DashboardStore, MetadataError, MetadataResult,
};

/// The columns [`dashboard_from_row`] reads, with the project joined in.
const SELECT_DASHBOARDS: &str = "SELECT d.id, pr.tenant, pr.name AS project, d.name, \
     d.description, d.time_from, d.time_to, d.refresh, d.panels, d.created_by, d.updated_by, \
     d.created_at_ms, d.updated_at_ms \
     FROM dashboards d JOIN projects pr ON pr.id = d.project_id";

fn dashboard_from_row<R>(
    row: &R,
    db_error: fn(sqlx::Error) -> MetadataError,
) -> MetadataResult<Dashboard>
where
    R: Row,
    &'static str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let text = |column: &'static str| row.try_get::<String, _>(column).map_err(db_error);
    let number = |column: &'static str| row.try_get::<i64, _>(column).map_err(db_error);
    Ok(Dashboard {
        id: number("id")?,
        tenant: text("tenant")?,
        project: text("project")?,
        fields: DashboardFields {
            name: text("name")?,
            description: text("description")?,
            from: text("time_from")?,
            to: text("time_to")?,
            refresh: text("refresh")?,
            panels: text("panels")?,
        },
        created_by: text("created_by")?,
        updated_by: text("updated_by")?,
        created_at_ms: number("created_at_ms")?,
        updated_at_ms: number("updated_at_ms")?,
    })
}

/// The name a missing dashboard is reported by.
fn missing(id: i64) -> MetadataError {
    not_found("dashboard", &id.to_string())
}

sql_impl! {
    impl {
        async fn dashboard_row(
            &self,
            tenant: &str,
            project: &str,
            id: i64,
        ) -> MetadataResult<Dashboard> {
            let row = sqlx::query(AssertSqlSafe(format!(
                "{SELECT_DASHBOARDS} WHERE pr.tenant = ? AND pr.name = ? AND d.id = ?"
            )))
            .bind(tenant)
            .bind(project)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error::<DB>)?
            .ok_or_else(|| missing(id))?;
            dashboard_from_row(&row, db_error::<DB>)
        }

        /// Binds what a dashboard holds, in the order the INSERT and the UPDATE name
        /// its columns: name, description, time_from, time_to, refresh, panels.
        fn bind_dashboard<'q>(
            query: sqlx::query::Query<'q, DB, DB::Arguments>,
            fields: &DashboardFields,
        ) -> sqlx::query::Query<'q, DB, DB::Arguments> {
            query
                .bind(fields.name.clone())
                .bind(fields.description.clone())
                .bind(fields.from.clone())
                .bind(fields.to.clone())
                .bind(fields.refresh.clone())
                .bind(fields.panels.clone())
        }
    }
}

sql_impl! {
    #[async_trait]
    impl DashboardStore {
        async fn create_dashboard(
            &self,
            tenant: &str,
            project: &str,
            fields: &DashboardFields,
            by: &str,
            limits: DashboardLimits,
        ) -> MetadataResult<Dashboard> {
            // The project row lock makes the count and the insert one step across
            // replicas, so the limit holds under concurrent creates.
            let mut tx = self.pool.begin().await.map_err(db_error::<DB>)?;
            let (project_id, _) = Self::lock_project(&mut tx, tenant, project).await?;
            let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM dashboards WHERE project_id = ?")
                .bind(project_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error::<DB>)?
                .try_get("n")
                .map_err(db_error::<DB>)?;
            if count >= i64::from(limits.max_per_project) {
                return Err(MetadataError::TooMany {
                    kind: "project",
                    what: "dashboards",
                    max: limits.max_per_project,
                });
            }
            let now = now_ms();
            let insert = sqlx::query(
                    "INSERT INTO dashboards (project_id, name, description, time_from, time_to, \
                     refresh, panels, created_by, updated_by, created_at_ms, updated_at_ms) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(project_id);
            let inserted = Self::bind_dashboard(insert, fields)
                .bind(by)
                .bind(by)
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await;
            match inserted {
                Ok(_) => {}
                Err(error) if is_unique_violation(&error) => {
                    return Err(already_exists("dashboard", &fields.name));
                }
                Err(error) => return Err(db_error::<DB>(error)),
            }
            let row = sqlx::query(AssertSqlSafe(format!(
                "{SELECT_DASHBOARDS} WHERE d.project_id = ? AND d.name = ?"
            )))
            .bind(project_id)
            .bind(&fields.name)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error::<DB>)?;
            let created = dashboard_from_row(&row, db_error::<DB>)?;
            tx.commit().await.map_err(db_error::<DB>)?;
            Ok(created)
        }

        async fn list_dashboards(
            &self,
            tenant: &str,
            project: &str,
        ) -> MetadataResult<Vec<Dashboard>> {
            let rows = self
                .rows_of_project(SELECT_DASHBOARDS, "d.name, d.id", tenant, project)
                .await?;
            rows.iter()
                .map(|row| dashboard_from_row(row, db_error::<DB>))
                .collect()
        }

        async fn get_dashboard(
            &self,
            tenant: &str,
            project: &str,
            id: i64,
        ) -> MetadataResult<Dashboard> {
            self.project_row(tenant, project).await?;
            self.dashboard_row(tenant, project, id).await
        }

        async fn update_dashboard(
            &self,
            tenant: &str,
            project: &str,
            id: i64,
            fields: &DashboardFields,
            by: &str,
        ) -> MetadataResult<Dashboard> {
            let project_row = self.project_row(tenant, project).await?;
            let update = sqlx::query(
                "UPDATE dashboards SET name = ?, description = ?, time_from = ?, time_to = ?, \
                 refresh = ?, panels = ?, updated_by = ?, updated_at_ms = ? \
                 WHERE project_id = ? AND id = ?",
            );
            let updated = Self::bind_dashboard(update, fields)
                .bind(by)
                .bind(now_ms())
                .bind(project_row.id)
                .bind(id)
                .execute(&self.pool)
                .await;
            match updated {
                // MySQL counts only rows whose values changed; the read below tells
                // a missing dashboard from an unchanged one.
                Ok(_) => self.dashboard_row(tenant, project, id).await,
                Err(error) if is_unique_violation(&error) => {
                    Err(already_exists("dashboard", &fields.name))
                }
                Err(error) => Err(db_error::<DB>(error)),
            }
        }

        async fn delete_dashboard(
            &self,
            tenant: &str,
            project: &str,
            id: i64,
        ) -> MetadataResult<()> {
            let project_row = self.project_row(tenant, project).await?;
            let result = sqlx::query("DELETE FROM dashboards WHERE project_id = ? AND id = ?")
                .bind(project_row.id)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(db_error::<DB>)?;
            if DB::rows_affected(&result) == 0 {
                return Err(missing(id));
            }
            Ok(())
        }
    }
}
