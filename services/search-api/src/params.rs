//! Search and histogram parameters: the same names in the query string (GET) and
//! the JSON body (POST), validated into engine requests with errors naming the field.

use logpool_api::{time::now_ns, ApiError};
use logpool_core::query::{parse_query, DefaultOperator, Query};
use logpool_core::timeexpr::{parse_duration_ns, parse_time_expr};
use logpool_engines::config::SearchConfig;
use logpool_engines::index::{SortKey, SortOrder};

use crate::interval::{auto_interval, buckets_needed};

pub use logpool_wire::search::{ContextParams, FieldsParams, HistogramParams, SearchParams};
pub use logpool_wire::TimeParam;

/// Checks request parameters into what the engine runs.
pub trait Resolve {
    /// The checked form.
    type Resolved;

    /// Validates the parameters.
    ///
    /// # Errors
    /// 400 naming the field (and the limit, where one is reached).
    fn resolve(self, config: &SearchConfig) -> Result<Self::Resolved, ApiError>;
}

/// Validated search parameters.
#[derive(Debug)]
pub struct ResolvedSearch {
    /// Parsed query.
    pub query: Query,
    /// Start, ns.
    pub from_ns: i64,
    /// End, ns.
    pub to_ns: i64,
    /// Page size.
    pub limit: usize,
    /// Continue after this key.
    pub after: Option<SortKey>,
    /// Newest first (default) or oldest first.
    pub order: SortOrder,
    /// Mark the matched words of each hit.
    pub highlight: bool,
    /// Count every match, not only those of the partitions that filled the page.
    pub track_total: bool,
}

/// Validated histogram parameters.
#[derive(Debug)]
pub struct ResolvedHistogram {
    /// Parsed query.
    pub query: Query,
    /// Start, ns.
    pub from_ns: i64,
    /// End, ns.
    pub to_ns: i64,
    /// Bucket width, ns.
    pub interval_ns: i64,
}

impl Resolve for SearchParams {
    type Resolved = ResolvedSearch;

    /// Validates the parameters.
    ///
    /// # Errors
    /// 400 naming the field.
    fn resolve(self, config: &SearchConfig) -> Result<ResolvedSearch, ApiError> {
        let now = now_ns();
        let query = parse_user_query(self.query.as_deref(), self.default_operator.as_deref())?;
        let from_ns = resolve_time("from", self.from.as_ref(), now)?.unwrap_or(i64::MIN);
        let to_ns = resolve_time("to", self.to.as_ref(), now)?.unwrap_or(i64::MAX);
        check_range(from_ns, to_ns, config)?;
        let limit = self.limit.unwrap_or(config.default_limit);
        if limit == 0 || limit > config.max_limit {
            return Err(ApiError::bad_request(format!(
                "`limit` must be between 1 and {}, got {limit}",
                config.max_limit
            ))
            .with_detail("field", "limit"));
        }
        let order = parse_order(self.order.as_deref())?;
        let after = self
            .cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|cursor| crate::cursor::decode_for(cursor, order))
            .transpose()?;
        Ok(ResolvedSearch {
            query,
            from_ns,
            to_ns,
            limit,
            after,
            order,
            highlight: self.highlight.unwrap_or(false),
            track_total: self.track_total.unwrap_or(true),
        })
    }
}

impl Resolve for FieldsParams {
    type Resolved = ResolvedSearch;

    /// Validates the parameters as a search over the newest sample of records.
    ///
    /// # Errors
    /// 400 naming the field.
    fn resolve(self, config: &SearchConfig) -> Result<ResolvedSearch, ApiError> {
        let now = now_ns();
        let query = parse_user_query(self.query.as_deref(), self.default_operator.as_deref())?;
        let from_ns = resolve_time("from", self.from.as_ref(), now)?.unwrap_or(i64::MIN);
        let to_ns = resolve_time("to", self.to.as_ref(), now)?.unwrap_or(i64::MAX);
        check_range(from_ns, to_ns, config)?;
        Ok(ResolvedSearch {
            query,
            from_ns,
            to_ns,
            limit: config.field_summary_sample_records,
            after: None,
            order: SortOrder::Desc,
            highlight: false,
            track_total: true,
        })
    }
}

/// Validated context parameters.
#[derive(Debug, Clone, Copy)]
pub struct ResolvedContext {
    /// Earlier records wanted.
    pub before: usize,
    /// Later records wanted.
    pub after: usize,
    /// Only the anchor's source.
    pub same_source: bool,
}

/// Records on each side of a context request when the request does not say.
pub const DEFAULT_CONTEXT_RECORDS: usize = 10;

impl Resolve for ContextParams {
    type Resolved = ResolvedContext;

    /// Validates the parameters.
    ///
    /// # Errors
    /// 400 naming `before` or `after` and the limit.
    fn resolve(self, config: &SearchConfig) -> Result<ResolvedContext, ApiError> {
        let max = config.max_context_records;
        let check = |field: &str, value: Option<usize>| -> Result<usize, ApiError> {
            let value = value.unwrap_or(DEFAULT_CONTEXT_RECORDS.min(max));
            if value > max {
                return Err(ApiError::bad_request(format!(
                    "`{field}` must be at most {max}, got {value}"
                ))
                .with_detail("field", field)
                .with_detail("limit", max));
            }
            Ok(value)
        };
        Ok(ResolvedContext {
            before: check("before", self.before)?,
            after: check("after", self.after)?,
            same_source: self.same_source.unwrap_or(false),
        })
    }
}

impl Resolve for HistogramParams {
    type Resolved = ResolvedHistogram;

    /// Validates the parameters and picks the interval.
    ///
    /// # Errors
    /// 400 naming the field.
    fn resolve(self, config: &SearchConfig) -> Result<ResolvedHistogram, ApiError> {
        let now = now_ns();
        let query = parse_user_query(self.query.as_deref(), self.default_operator.as_deref())?;
        let from_ns =
            resolve_time("from", self.from.as_ref(), now)?.unwrap_or(now - 15 * 60 * 1_000_000_000);
        let to_ns = resolve_time("to", self.to.as_ref(), now)?.unwrap_or(now);
        check_range(from_ns, to_ns, config)?;
        let span = to_ns.saturating_sub(from_ns);
        let interval_ns = match self.interval.as_deref() {
            None | Some("") | Some("auto") => auto_interval(span, config.max_histogram_buckets),
            Some(text) => {
                let interval = parse_duration_ns(text).filter(|i| *i > 0).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "`interval` `{text}` is not a duration like `30s`, `5m` or `1h`"
                    ))
                    .with_detail("field", "interval")
                })?;
                let needed = buckets_needed(span, interval);
                if needed > config.max_histogram_buckets {
                    return Err(ApiError::bad_request(format!(
                        "`interval` {text} gives {needed} buckets, the limit is {}; use a wider interval or omit it",
                        config.max_histogram_buckets
                    ))
                    .with_detail("field", "interval"));
                }
                interval
            }
        };
        Ok(ResolvedHistogram {
            query,
            from_ns,
            to_ns,
            interval_ns,
        })
    }
}

/// Reads `order`: `desc` (newest first, the default) or `asc`.
fn parse_order(order: Option<&str>) -> Result<SortOrder, ApiError> {
    match order.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("desc") => Ok(SortOrder::Desc),
        Some("asc") => Ok(SortOrder::Asc),
        Some(other) => Err(ApiError::bad_request(format!(
            "`order` must be `desc` or `asc`, got `{other}`"
        ))
        .with_detail("field", "order")),
    }
}

fn parse_user_query(
    query: Option<&str>,
    default_operator: Option<&str>,
) -> Result<Query, ApiError> {
    let operator = match default_operator.map(str::to_ascii_lowercase).as_deref() {
        None | Some("and") => DefaultOperator::And,
        Some("or") => DefaultOperator::Or,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`default_operator` must be `and` or `or`, got `{other}`"
            ))
            .with_detail("field", "default_operator"))
        }
    };
    parse_query(query.unwrap_or(""), operator).map_err(ApiError::from)
}

pub(crate) fn resolve_time(
    field: &str,
    value: Option<&TimeParam>,
    now: i64,
) -> Result<Option<i64>, ApiError> {
    match value {
        None => Ok(None),
        Some(TimeParam::Text(text)) if text.trim().is_empty() => Ok(None),
        // A number is read as its digits so that both forms meet the same range check.
        Some(time) => parse_time_expr(&time.as_text(), now)
            .map(Some)
            .map_err(|message| {
                ApiError::bad_request(format!("`{field}`: {message}")).with_detail("field", field)
            }),
    }
}

/// Checks the order of the bounds and, when both are given, the longest span. An
/// open bound is not capped: the search planner only visits partitions that hold data.
pub(crate) fn check_range(from_ns: i64, to_ns: i64, config: &SearchConfig) -> Result<(), ApiError> {
    if from_ns >= to_ns {
        return Err(
            ApiError::bad_request("`from` must be before `to`").with_detail("field", "from")
        );
    }
    let max_days = config.max_time_range_days;
    let max_span_ns = max_days.saturating_mul(DAY_NS);
    if from_ns != i64::MIN && to_ns != i64::MAX && to_ns.saturating_sub(from_ns) > max_span_ns {
        return Err(ApiError::bad_request(format!(
            "the time range from `from` to `to` may span at most {max_days} days"
        ))
        .with_detail("field", "from")
        .with_detail("limit", format!("{max_days}d")));
    }
    Ok(())
}

const DAY_NS: i64 = 86_400_000_000_000;
