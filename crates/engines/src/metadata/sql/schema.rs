//! Learned field types on SQL: one row per pool and field, keyed by a digest of the
//! field's name so that names of any length fit the unique key.

use logpool_core::pool_id::PoolId;
use std::collections::HashMap;

use async_trait::async_trait;
use logpool_core::routing::FieldType;
use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Row};

use super::rows::now_ms;
use super::{db_error, sql_impl};
use crate::metadata::schema::{LearnedTypes, SchemaStore};
use crate::metadata::{MetadataError, MetadataResult};

/// Rows per `INSERT`: a batch rarely brings more new fields, and the statement stays
/// far below every placeholder limit.
const ROWS_PER_INSERT: usize = 100;

sql_impl! {
    #[async_trait]
    impl SchemaStore {
        async fn learn_field_types(
            &self,
            pool_id: PoolId,
            new: &LearnedTypes,
        ) -> MetadataResult<LearnedTypes> {
            let entries: Vec<(&String, &FieldType)> = new.iter().collect();
            for chunk in entries.chunks(ROWS_PER_INSERT) {
                let rows = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                let statement = format!(
                    "{} INTO pool_field_types (pool_id, field_digest, field, field_type, created_at_ms) VALUES {rows}",
                    DB::INSERT_OR_IGNORE
                );
                let mut query = sqlx::query(AssertSqlSafe(statement));
                let created_at_ms = now_ms();
                for (field, field_type) in chunk {
                    query = query
                        .bind(pool_id.get())
                        .bind(field_digest(field))
                        .bind(field.as_str())
                        .bind(field_type.name())
                        .bind(created_at_ms);
                }
                query.execute(&self.pool).await.map_err(db_error::<DB>)?;
            }
            let rows = sqlx::query("SELECT field, field_type FROM pool_field_types WHERE pool_id = ?")
                .bind(pool_id.get())
                .fetch_all(&self.pool)
                .await
                .map_err(db_error::<DB>)?;
            let mut types = LearnedTypes::new();
            for row in &rows {
                let (field, field_type) = type_from_row(row, db_error::<DB>)?;
                types.insert(field, field_type);
            }
            Ok(types)
        }

        async fn all_learned_field_types(&self) -> MetadataResult<HashMap<PoolId, LearnedTypes>> {
            let rows = sqlx::query("SELECT pool_id, field, field_type FROM pool_field_types")
                .fetch_all(&self.pool)
                .await
                .map_err(db_error::<DB>)?;
            let mut pools: HashMap<PoolId, LearnedTypes> = HashMap::new();
            for row in &rows {
                let pool_id = PoolId::new(row.try_get("pool_id").map_err(db_error::<DB>)?);
                let (field, field_type) = type_from_row(row, db_error::<DB>)?;
                pools.entry(pool_id).or_default().insert(field, field_type);
            }
            Ok(pools)
        }

        async fn field_types_revision(&self) -> MetadataResult<i64> {
            sqlx::query("SELECT COALESCE(MAX(id), 0) AS revision FROM pool_field_types")
                .fetch_one(&self.pool)
                .await
                .and_then(|row| row.try_get("revision"))
                .map_err(db_error::<DB>)
        }
    }
}

/// The unique key of a field: the hex SHA-256 of its name.
fn field_digest(field: &str) -> String {
    Sha256::digest(field.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn type_from_row<R>(
    row: &R,
    db_error: fn(sqlx::Error) -> MetadataError,
) -> MetadataResult<(String, FieldType)>
where
    R: Row,
    for<'q> String: sqlx::Decode<'q, R::Database> + sqlx::Type<R::Database>,
    for<'q> &'q str: sqlx::ColumnIndex<R>,
{
    let field: String = row.try_get("field").map_err(db_error)?;
    let name: String = row.try_get("field_type").map_err(db_error)?;
    let field_type =
        serde_json::from_value(serde_json::Value::String(name.clone())).map_err(|_| {
            MetadataError::Database(format!("unknown learned type `{name}` of field `{field}`"))
        })?;
    Ok((field, field_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_type_names_round_trip() {
        for field_type in FieldType::ALL {
            // The stored name is the serde name, which reads back.
            let name = field_type.name();
            assert!(name.len() <= 16, "{name}");
            let back: FieldType =
                serde_json::from_value(serde_json::Value::String(name.to_string())).expect("parse");
            assert_eq!(back, field_type);
        }
        assert_eq!(field_digest("status").len(), 64);
        assert_ne!(field_digest("a"), field_digest("b"));
    }
}
