//! Runs an evaluated pipe-SQL statement: the records matching the engine's filter
//! are read page by page, newest first, and fed to the expression evaluator.
//!
//! Limits: the scan stops with a 400 naming `time_budget_ms` when it runs longer
//! than the search time budget, or naming `max_sql_scanned_records` past that many
//! records (an answer over part of the records would look complete). The group
//! table and kept rows are charged to the request's memory budget by the
//! evaluator; each page is charged to a budget of its own while it is read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use logpool_api::ApiError;
use logpool_core::query::Query;
use logpool_core::routing::PoolRoute;
use logpool_core::sql::eval::expr::EvalContext;
use logpool_core::sql::eval::{EvalError, EvalPlan, Evaluator};
use logpool_core::sql::SqlTable;
use logpool_engines::config::SearchConfig;
use logpool_engines::index::{IndexError, LogIndex, SearchRequest, SortOrder};

use crate::limiter::TenantQueries;

/// Records one evaluated statement may read.
pub(crate) const MAX_SCANNED_RECORDS: u64 = 20_000_000;

/// The largest string a function may build.
pub(crate) const MAX_SQL_VALUE_BYTES: usize = 1024 * 1024;

/// Records read per page (Elasticsearch answers at most 10,000 hits per request).
const PAGE_RECORDS: usize = 5_000;

/// One evaluated statement's scan.
pub(crate) struct Scan<'a> {
    /// The index.
    pub(crate) index: &'a Arc<dyn LogIndex>,
    /// The pool.
    pub(crate) route: &'a PoolRoute,
    /// The engine's filter (search AND pushed WHERE conditions).
    pub(crate) filter: Query,
    /// Inclusive lower time bound.
    pub(crate) from_ns: i64,
    /// Exclusive upper time bound.
    pub(crate) to_ns: i64,
    /// Limits and defaults.
    pub(crate) config: &'a SearchConfig,
    /// The tenant's limits.
    pub(crate) limiter: &'a TenantQueries,
    /// Groups the statement may make.
    pub(crate) max_groups: usize,
}

impl Scan<'_> {
    /// Reads every matching record (or the first ones, for rows without ORDER BY)
    /// into the evaluator and returns its table.
    ///
    /// # Errors
    /// Engine errors, and the evaluator's and the scan's limits as 4xx.
    pub(crate) async fn run(self, plan: &EvalPlan) -> Result<SqlTable, ApiError> {
        let default_limit = self.config.default_limit;
        if let logpool_core::sql::eval::EvalShape::Rows(rows) = &plan.shape {
            let limit = rows.limit.unwrap_or(default_limit);
            if limit == 0 || limit > self.config.max_limit {
                return Err(ApiError::bad_request(format!(
                    "LIMIT must be between 1 and {} without GROUP BY, got {limit}",
                    self.config.max_limit
                ))
                .with_detail("field", "query")
                .with_detail("limit", self.config.max_limit));
            }
        }
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| i64::try_from(since.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let ctx = EvalContext {
            now_ns,
            max_value_bytes: MAX_SQL_VALUE_BYTES,
        };
        let mut evaluator = Evaluator::new(
            plan,
            ctx,
            self.limiter.query_memory(),
            self.max_groups,
            default_limit,
        );
        let started = Instant::now();
        let budget = Duration::from_millis(self.config.time_budget_ms);
        let mut after = None;
        // Each page is searched below the previous page's last time (and after its
        // cursor, for ties), so the engine skips the partitions already read.
        let mut to_ns = self.to_ns;
        let mut scanned: u64 = 0;
        'pages: loop {
            let request = SearchRequest {
                query: self.filter.clone(),
                from_ns: self.from_ns,
                to_ns,
                limit: PAGE_RECORDS,
                after,
                order: SortOrder::Desc,
                memory: self.limiter.query_memory(),
            };
            let page = self.index.search(self.route, &request).await?;
            let Some(last) = page.hits.last() else {
                break;
            };
            after = Some(last.sort_key);
            to_ns = to_ns.min(last.time_ns.saturating_add(1));
            let full = page.hits.len() >= PAGE_RECORDS || page.truncated;
            for mut hit in page.hits {
                scanned += 1;
                let more = evaluator
                    .push(hit.time_ns, &mut hit.fields)
                    .map_err(eval_error)?;
                if !more {
                    break 'pages;
                }
            }
            if !full {
                break;
            }
            if scanned >= MAX_SCANNED_RECORDS {
                return Err(ApiError::bad_request(format!(
                    "the statement reads more than {MAX_SCANNED_RECORDS} records \
                     (`max_sql_scanned_records`); filter before the pipe or narrow the time range"
                ))
                .with_detail("field", "query")
                .with_detail("limit", "max_sql_scanned_records"));
            }
            if started.elapsed() > budget {
                return Err(ApiError::bad_request(format!(
                    "the statement read {scanned} records without finishing within the search \
                     time budget of {} ms (`time_budget_ms`); filter before the pipe or narrow \
                     the time range",
                    self.config.time_budget_ms
                ))
                .with_detail("field", "query")
                .with_detail("limit", "time_budget_ms"));
            }
        }
        evaluator.finish().map_err(eval_error)
    }
}

fn eval_error(error: EvalError) -> ApiError {
    match error {
        EvalError::OverBudget { budget } => ApiError::from(IndexError::OverMemoryBudget {
            message: error_text(&EvalError::OverBudget { budget }),
            budget,
        }),
        EvalError::TooManyGroups { limit } => ApiError::bad_request(error_text(&error))
            .with_detail("field", "query")
            .with_detail("limit", limit),
        EvalError::ValueTooLarge { limit, .. } => ApiError::bad_request(error_text(&error))
            .with_detail("field", "query")
            .with_detail("limit", limit),
        EvalError::Cast { .. } => {
            ApiError::bad_request(error_text(&error)).with_detail("field", "query")
        }
    }
}

fn error_text(error: &EvalError) -> String {
    error.to_string()
}
