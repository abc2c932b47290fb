//! Saved searches on SQL: one row per search, joined to its project by id so that
//! deleting the project deletes them.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row};

use super::rows::{already_exists, is_unique_violation, not_found, now_ms, to_json};
use super::{db_error, sql_impl};
use crate::metadata::{
    MetadataError, MetadataResult, SavedSearch, SavedSearchFields, SavedSearchLimits,
    SavedSearchStore,
};

/// The columns [`saved_search_from_row`] reads, with the project joined in.
const SELECT_SAVED: &str = "SELECT s.id, pr.tenant, pr.name AS project, s.name, s.query, \
     s.time_from, s.time_to, s.pool, s.result_columns, s.chart_settings, s.created_by, \
     s.updated_by, s.created_at_ms, s.updated_at_ms \
     FROM saved_searches s JOIN projects pr ON pr.id = s.project_id";

fn saved_search_from_row<R>(
    row: &R,
    db_error: fn(sqlx::Error) -> MetadataError,
) -> MetadataResult<SavedSearch>
where
    R: Row,
    &'static str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let text = |column: &'static str| row.try_get::<String, _>(column).map_err(db_error);
    let number = |column: &'static str| row.try_get::<i64, _>(column).map_err(db_error);
    let columns: Vec<String> = serde_json::from_str(&text("result_columns")?)
        .map_err(|error| MetadataError::Database(format!("bad result_columns: {error}")))?;
    Ok(SavedSearch {
        id: number("id")?,
        tenant: text("tenant")?,
        project: text("project")?,
        fields: SavedSearchFields {
            name: text("name")?,
            query: text("query")?,
            from: text("time_from")?,
            to: text("time_to")?,
            pool: text("pool")?,
            columns,
            chart: text("chart_settings")?,
        },
        created_by: text("created_by")?,
        updated_by: text("updated_by")?,
        created_at_ms: number("created_at_ms")?,
        updated_at_ms: number("updated_at_ms")?,
    })
}

/// The name a missing saved search is reported by.
fn missing(id: i64) -> MetadataError {
    not_found("saved search", &id.to_string())
}

sql_impl! {
    impl {
        async fn saved_search_row(
            &self,
            tenant: &str,
            project: &str,
            id: i64,
        ) -> MetadataResult<SavedSearch> {
            let row = sqlx::query(AssertSqlSafe(format!(
                "{SELECT_SAVED} WHERE pr.tenant = ? AND pr.name = ? AND s.id = ?"
            )))
            .bind(tenant)
            .bind(project)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error::<DB>)?
            .ok_or_else(|| missing(id))?;
            saved_search_from_row(&row, db_error::<DB>)
        }

        /// Binds what a saved search holds, in the order the INSERT and the UPDATE
        /// name its columns: name, query, time_from, time_to, pool, result_columns,
        /// chart_settings.
        fn bind_fields<'q>(
            query: sqlx::query::Query<'q, DB, DB::Arguments>,
            fields: &SavedSearchFields,
        ) -> MetadataResult<sqlx::query::Query<'q, DB, DB::Arguments>> {
            Ok(query
                .bind(&fields.name)
                .bind(&fields.query)
                .bind(&fields.from)
                .bind(&fields.to)
                .bind(&fields.pool)
                .bind(to_json(&fields.columns)?)
                .bind(&fields.chart))
        }
    }
}

sql_impl! {
    #[async_trait]
    impl SavedSearchStore {
        async fn create_saved_search(
            &self,
            tenant: &str,
            project: &str,
            fields: &SavedSearchFields,
            by: &str,
            limits: SavedSearchLimits,
        ) -> MetadataResult<SavedSearch> {
            // The project row lock makes the count and the insert one step across
            // replicas, so the limit holds under concurrent creates.
            let mut tx = self.pool.begin().await.map_err(db_error::<DB>)?;
            let (project_id, _) = Self::lock_project(&mut tx, tenant, project).await?;
            let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM saved_searches WHERE project_id = ?")
                .bind(project_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error::<DB>)?
                .try_get("n")
                .map_err(db_error::<DB>)?;
            if count >= i64::from(limits.max_per_project) {
                return Err(MetadataError::TooMany {
                    kind: "project",
                    what: "saved searches",
                    max: limits.max_per_project,
                });
            }
            let now = now_ms();
            let insert = sqlx::query(
                    "INSERT INTO saved_searches (project_id, name, query, time_from, time_to, pool, \
                     result_columns, chart_settings, created_by, updated_by, created_at_ms, updated_at_ms) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(project_id);
            let inserted = Self::bind_fields(insert, fields)?
                .bind(by)
                .bind(by)
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await;
            match inserted {
                Ok(_) => {}
                Err(error) if is_unique_violation(&error) => {
                    return Err(already_exists("saved search", &fields.name));
                }
                Err(error) => return Err(db_error::<DB>(error)),
            }
            let row = sqlx::query(AssertSqlSafe(format!(
                "{SELECT_SAVED} WHERE s.project_id = ? AND s.name = ?"
            )))
            .bind(project_id)
            .bind(&fields.name)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error::<DB>)?;
            let created = saved_search_from_row(&row, db_error::<DB>)?;
            tx.commit().await.map_err(db_error::<DB>)?;
            Ok(created)
        }

        async fn list_saved_searches(
            &self,
            tenant: &str,
            project: &str,
        ) -> MetadataResult<Vec<SavedSearch>> {
            let rows = self
                .rows_of_project(SELECT_SAVED, "s.name, s.id", tenant, project)
                .await?;
            rows.iter()
                .map(|row| saved_search_from_row(row, db_error::<DB>))
                .collect()
        }

        async fn get_saved_search(
            &self,
            tenant: &str,
            project: &str,
            id: i64,
        ) -> MetadataResult<SavedSearch> {
            self.project_row(tenant, project).await?;
            self.saved_search_row(tenant, project, id).await
        }

        async fn update_saved_search(
            &self,
            tenant: &str,
            project: &str,
            id: i64,
            fields: &SavedSearchFields,
            by: &str,
        ) -> MetadataResult<SavedSearch> {
            let project_row = self.project_row(tenant, project).await?;
            let update = sqlx::query(
                "UPDATE saved_searches SET name = ?, query = ?, time_from = ?, time_to = ?, \
                 pool = ?, result_columns = ?, chart_settings = ?, updated_by = ?, updated_at_ms = ? \
                 WHERE project_id = ? AND id = ?",
            );
            let updated = Self::bind_fields(update, fields)?
                .bind(by)
                .bind(now_ms())
                .bind(project_row.id)
                .bind(id)
                .execute(&self.pool)
                .await;
            match updated {
                // MySQL counts only rows whose values changed; the read below tells
                // a missing search from an unchanged one.
                Ok(_) => self.saved_search_row(tenant, project, id).await,
                Err(error) if is_unique_violation(&error) => {
                    Err(already_exists("saved search", &fields.name))
                }
                Err(error) => Err(db_error::<DB>(error)),
            }
        }

        async fn delete_saved_search(
            &self,
            tenant: &str,
            project: &str,
            id: i64,
        ) -> MetadataResult<()> {
            let project_row = self.project_row(tenant, project).await?;
            let result = sqlx::query("DELETE FROM saved_searches WHERE project_id = ? AND id = ?")
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
