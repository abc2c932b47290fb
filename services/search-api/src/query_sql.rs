//! `POST /v1/projects/{project}/pools/{pool}/query`: pipe SQL.
//!
//! `{"query": "status:500 | SELECT host, count(*) AS c GROUP BY host ORDER BY c DESC
//! LIMIT 10", "from": "-1h"}` answers `{"columns": [{"name", "type"}], "rows": [[...]]}`.
//! The search before the pipe and the statement's WHERE filter in the engine; the
//! engine groups and aggregates ([`LogIndex::aggregate`]); HAVING, ORDER BY, LIMIT
//! and the projection run here over every group ([`finish_aggregate`]). A statement
//! without aggregates returns records, newest first, through a plain search.
//!
//! [`LogIndex::aggregate`]: logpool_engines::index::LogIndex::aggregate

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::Json;
use logpool_api::{ApiError, AppJson};
use logpool_core::limits::QueryLimits;
use logpool_core::memory::OverBudget;
use logpool_core::record::format_time_ns;
use logpool_core::sql::finish::value_type;
use logpool_core::sql::plan::{PlanShape, RowColumn, RowsPlan};
use logpool_core::sql::{finish_aggregate, plan_pipeline, split_pipeline, Planned, SqlError};
use logpool_engines::index::{AggregateRequest, IndexError, SearchHit, SearchRequest};
use logpool_wire::search::{SqlColumn, SqlTable};
use serde_json::Value;

use crate::params::{Resolve, SearchParams};
use crate::wait_for::WaitFor;
use crate::SearchState;

/// Groups one statement may produce; more is a 400 rather than a silent cut, since
/// HAVING and ORDER BY need every group to be exact.
pub const MAX_GROUPS: usize = 100_000;

pub use logpool_wire::search::SqlQueryParams;

/// The statement of a pipeline that ends with an extraction stage.
const IMPLICIT_SELECT: &str = "SELECT *";

pub(crate) async fn query_post(
    State(state): State<SearchState>,
    limiter: crate::limiter::TenantQueries,
    Path((project, pool)): Path<(String, String)>,
    AppJson(params): AppJson<SqlQueryParams>,
) -> Result<Json<SqlTable>, ApiError> {
    let route = state.routing.pool(limiter.tenant(), &project, &pool)?;
    let wait = WaitFor::parse(&route, params.wait_for.as_deref(), params.wait_timeout_ms)?;
    let pipeline = split_pipeline(&params.query)
        .map_err(sql_error)?
        .ok_or_else(|| {
            ApiError::bad_request(
                "`query` needs `| SELECT ...` after the search, e.g. `* | SELECT count(*)`; \
                 use /search for a plain search",
            )
            .with_detail("field", "query")
        })?;
    let search = SearchParams {
        query: Some(pipeline.query.to_string()),
        from: params.from,
        to: params.to,
        default_operator: params.default_operator,
        ..SearchParams::default()
    }
    .resolve(&state.config)?;
    limiter.check_range(search.from_ns, search.to_ns)?;
    let sql = pipeline.sql.unwrap_or(IMPLICIT_SELECT);
    let planned = plan_pipeline(
        sql,
        &route.name,
        search.query,
        pipeline.stages,
        &QueryLimits::default(),
    )
    .map_err(|error| {
        sql_error(match pipeline.sql {
            Some(_) => error.shifted(pipeline.sql_offset),
            None => error,
        })
    })?;
    let _permit = limiter.try_acquire()?;
    if let Some(wait) = wait {
        wait.until_searchable(&state.index, &route).await?;
    }
    let plan = match planned {
        Planned::Pushed(plan) => plan,
        Planned::Evaluated { filter, plan } => {
            let scan = crate::query_eval::Scan {
                index: &state.index,
                route: &route,
                filter,
                from_ns: search.from_ns,
                to_ns: search.to_ns,
                config: &state.config,
                limiter: &limiter,
                max_groups: MAX_GROUPS,
            };
            return Ok(Json(table_of(scan.run(&plan).await?)));
        }
    };
    let table = match plan.shape {
        PlanShape::Aggregate(aggregate) => {
            let request = AggregateRequest {
                query: plan.filter,
                from_ns: search.from_ns,
                to_ns: search.to_ns,
                group_by: aggregate.group_by.clone(),
                aggregates: aggregate.aggregates.clone(),
                max_groups: MAX_GROUPS,
                memory: limiter.query_memory(),
            };
            let groups = state.index.aggregate(&route, &request).await?;
            table_of(finish_aggregate(&aggregate, groups))
        }
        PlanShape::Rows(rows) => {
            let limit = rows.limit.unwrap_or(state.config.default_limit);
            if limit == 0 || limit > state.config.max_limit {
                return Err(ApiError::bad_request(format!(
                    "LIMIT must be between 1 and {} without GROUP BY, got {limit}",
                    state.config.max_limit
                ))
                .with_detail("field", "query")
                .with_detail("limit", state.config.max_limit));
            }
            let request = SearchRequest {
                query: plan.filter,
                from_ns: search.from_ns,
                to_ns: search.to_ns,
                limit,
                after: None,
                order: logpool_engines::index::SortOrder::Desc,
                memory: limiter.query_memory(),
            };
            let memory_limit = request.memory.limit();
            let page = state.index.search(&route, &request).await?;
            if page.truncated {
                // A table has no cursor: fewer rows than LIMIT would look complete.
                return Err(ApiError::from(IndexError::OverMemoryBudget {
                    message: format!(
                        "the {limit} rows asked for hold more than the query's memory budget; \
                         lower LIMIT or select fewer records"
                    ),
                    budget: OverBudget::Request {
                        limit: memory_limit,
                    },
                }));
            }
            rows_table(&rows, &page.hits)
        }
    };
    Ok(Json(table))
}

pub(crate) fn sql_error(error: SqlError) -> ApiError {
    let mut api_error =
        ApiError::bad_request(format!("unsupported or invalid SQL: {}", error.message))
            .with_detail("field", "query");
    if let Some(limit) = error.limit {
        api_error = api_error.with_detail("limit", limit);
    }
    match error.position {
        Some(position) => api_error.with_detail("position", position),
        None => api_error,
    }
}

/// The wire form of a table the SQL stage finished.
pub(crate) fn table_of(table: logpool_core::sql::SqlTable) -> SqlTable {
    SqlTable {
        columns: table
            .columns
            .into_iter()
            .map(|column| SqlColumn {
                name: column.name,
                column_type: column.column_type,
            })
            .collect(),
        rows: table.rows,
    }
}

/// Records as rows: one column per selected field (`*`: `time` and every field of
/// the returned records, by name).
fn rows_table(plan: &RowsPlan, hits: &[SearchHit]) -> SqlTable {
    enum Source {
        Time,
        Field(String),
    }
    let mut names_and_sources: Vec<(String, Source)> = Vec::new();
    for column in &plan.columns {
        match column {
            RowColumn::Time { name } => names_and_sources.push((name.clone(), Source::Time)),
            RowColumn::Field { name, field } => {
                names_and_sources.push((name.clone(), Source::Field(field.clone())))
            }
            RowColumn::AllFields => {
                names_and_sources.push(("time".to_string(), Source::Time));
                let fields: BTreeSet<&String> =
                    hits.iter().flat_map(|hit| hit.fields.keys()).collect();
                names_and_sources.extend(
                    fields
                        .into_iter()
                        .map(|field| (field.clone(), Source::Field(field.clone()))),
                );
            }
        }
    }
    let rows: Vec<Vec<Value>> = hits
        .iter()
        .map(|hit| {
            names_and_sources
                .iter()
                .map(|(_, source)| match source {
                    Source::Time => Value::String(format_time_ns(hit.time_ns)),
                    Source::Field(field) => hit.fields.get(field).cloned().unwrap_or(Value::Null),
                })
                .collect()
        })
        .collect();
    let columns = names_and_sources
        .iter()
        .enumerate()
        .map(|(index, (name, source))| SqlColumn {
            name: name.clone(),
            column_type: match source {
                Source::Time => "timestamp".to_string(),
                Source::Field(_) => value_type(rows.iter().map(|row| &row[index])),
            },
        })
        .collect();
    SqlTable { columns, rows }
}
