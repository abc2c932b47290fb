//! Aggregations (`aggs`) as Grafana's metric panels send them: `date_histogram` and
//! `terms` buckets, nested, with `avg`, `sum`, `min`, `max`, `percentiles`,
//! `cardinality` and `value_count` metrics inside.
//!
//! Nothing here counts records: each bucket aggregation becomes one request to the
//! engine's grouped aggregation (the one pipe SQL uses), grouped by the keys of its
//! own and its parents' buckets, with `count(*)` for `doc_count` and the metrics
//! directly under it. Reading the groups back by their parents' keys gives every
//! bucket at every level its own exact numbers, so a `terms` ordered by a metric is
//! ordered by that metric over the whole bucket, as Elasticsearch does. See
//! [`super::buckets`] for the answer's shape.

use logpool_core::sql::plan::{AggregateFn, GroupKey};
use serde_json::{Map, Value};

use super::error::EsError;
use super::query::{field_name, is_utc, TIME_FIELD};

/// Buckets one `date_histogram` may give (Elasticsearch's `search.max_buckets` is
/// 65 536; a chart needs far fewer).
pub const MAX_DATE_BUCKETS: i64 = 10_000;
/// Default `size` of `terms`.
pub const DEFAULT_TERMS_SIZE: usize = 10;
/// Largest `size` of `terms`.
pub const MAX_TERMS_SIZE: usize = 10_000;

/// One named aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct Agg {
    /// Its name in the request (Grafana uses ids like `"2"`).
    pub name: String,
    /// What it computes.
    pub kind: AggKind,
}

/// What an aggregation computes.
#[derive(Debug, Clone, PartialEq)]
pub enum AggKind {
    /// Buckets, with sub-aggregations in each.
    Buckets(BucketSpec, Vec<Agg>),
    /// One metric of the enclosing bucket.
    Metric(Metric),
}

/// A bucket aggregation.
#[derive(Debug, Clone, PartialEq)]
pub enum BucketSpec {
    /// Fixed-width time buckets.
    DateHistogram(DateHistogram),
    /// The most common values of a field.
    Terms(Terms),
}

/// `date_histogram`.
#[derive(Debug, Clone, PartialEq)]
pub struct DateHistogram {
    /// Bucket width, ns (whole milliseconds).
    pub interval_ns: i64,
    /// Buckets with fewer records are left out (0: empty buckets are listed).
    pub min_doc_count: u64,
    /// `extended_bounds` in ns: empty buckets are listed from `min` to `max`.
    pub bounds: Option<(i64, i64)>,
    /// `key_as_string` as epoch milliseconds (`format: epoch_millis`) or RFC 3339.
    pub epoch_millis_strings: bool,
}

/// `terms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Terms {
    /// Field.
    pub field: String,
    /// Buckets kept.
    pub size: usize,
    /// Buckets with fewer records are left out.
    pub min_doc_count: u64,
    /// Bucket order.
    pub order: TermsOrder,
    /// Descending.
    pub descending: bool,
}

/// What `terms` buckets are ordered by.
#[derive(Debug, Clone, PartialEq)]
pub enum TermsOrder {
    /// `_count` (ties by key, ascending).
    Count,
    /// `_key` (or the old `_term`).
    Key,
    /// A metric directly under the `terms`, by its name.
    Metric(String),
}

/// A metric aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Which.
    pub kind: MetricKind,
    /// The field it reads.
    pub field: String,
}

/// Kinds of metric.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricKind {
    /// `avg`.
    Avg,
    /// `sum`.
    Sum,
    /// `min`.
    Min,
    /// `max`.
    Max,
    /// `cardinality` (distinct values).
    Cardinality,
    /// `value_count` (records with the field).
    ValueCount,
    /// `percentiles` at these percents.
    Percentiles(Vec<f64>),
}

impl Metric {
    /// The engine's aggregates for this metric (one per percent for `percentiles`).
    pub fn functions(&self) -> Vec<AggregateFn> {
        let field = self.field.clone();
        match &self.kind {
            MetricKind::Avg => vec![AggregateFn::Avg(field)],
            MetricKind::Sum => vec![AggregateFn::Sum(field)],
            MetricKind::Min => vec![AggregateFn::Min(field)],
            MetricKind::Max => vec![AggregateFn::Max(field)],
            MetricKind::Cardinality => vec![AggregateFn::CountDistinct(field)],
            MetricKind::ValueCount => vec![AggregateFn::CountField(field)],
            MetricKind::Percentiles(percents) => percents
                .iter()
                .map(|percent| AggregateFn::Percentile {
                    field: field.clone(),
                    percent: *percent,
                })
                .collect(),
        }
    }
}

impl BucketSpec {
    /// The engine's group key.
    pub fn group_key(&self) -> GroupKey {
        match self {
            BucketSpec::DateHistogram(histogram) => GroupKey::TimeBucket {
                interval_ns: histogram.interval_ns,
            },
            BucketSpec::Terms(terms) => GroupKey::Field(terms.field.clone()),
        }
    }
}

/// Percents of `percentiles` when the request names none (Elasticsearch's).
const DEFAULT_PERCENTS: [f64; 7] = [1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0];

/// Reads an `aggs` object.
///
/// # Errors
/// A `parsing_exception` naming the aggregation or key that is not supported.
pub fn parse_aggs(value: &Value, now_ns: i64) -> Result<Vec<Agg>, EsError> {
    let object = value
        .as_object()
        .ok_or_else(|| EsError::parsing("[aggs] must be an object"))?;
    object
        .iter()
        .map(|(name, body)| parse_agg(name, body, now_ns))
        .collect()
}

fn parse_agg(name: &str, body: &Value, now_ns: i64) -> Result<Agg, EsError> {
    let object = body
        .as_object()
        .ok_or_else(|| EsError::parsing(format!("aggregation [{name}] must be an object")))?;
    let mut kind = None;
    let mut children = Vec::new();
    for (key, value) in object {
        match key.as_str() {
            "aggs" | "aggregations" => children = parse_aggs(value, now_ns)?,
            "meta" => {}
            _ if kind.is_some() => {
                return Err(EsError::parsing(format!(
                    "aggregation [{name}] has two types: [{key}] and another"
                )))
            }
            _ => kind = Some((key.as_str(), value)),
        }
    }
    let (type_name, settings) =
        kind.ok_or_else(|| EsError::parsing(format!("aggregation [{name}] has no type")))?;
    let settings = settings
        .as_object()
        .ok_or_else(|| EsError::parsing(format!("[{type_name}] of [{name}] must be an object")))?;
    let kind = match type_name {
        "date_histogram" => AggKind::Buckets(
            BucketSpec::DateHistogram(date_histogram(name, settings, now_ns)?),
            children,
        ),
        "terms" => AggKind::Buckets(
            BucketSpec::Terms(terms(name, settings, &children)?),
            children,
        ),
        metric => {
            if !children.is_empty() {
                return Err(EsError::parsing(format!(
                    "aggregation [{name}] of type [{metric}] cannot have sub-aggregations"
                )));
            }
            AggKind::Metric(parse_metric(name, metric, settings)?)
        }
    };
    Ok(Agg {
        name: name.to_string(),
        kind,
    })
}

fn unsupported_setting(name: &str, type_name: &str, key: &str) -> EsError {
    EsError::unsupported(
        &format!("{type_name}.{key}"),
        &format!("in aggregation [{name}]"),
    )
}

fn date_histogram(
    name: &str,
    settings: &Map<String, Value>,
    now_ns: i64,
) -> Result<DateHistogram, EsError> {
    let mut interval_ns = None;
    let mut min_doc_count = 1;
    let mut bounds = None;
    let mut epoch_millis_strings = false;
    for (key, value) in settings {
        match key.as_str() {
            "field" => {
                let field = value.as_str().map(field_name);
                if field.as_deref() != Some(TIME_FIELD) {
                    return Err(EsError::illegal(format!(
                        "[date_histogram.field] of [{name}] must be the time field `{TIME_FIELD}`"
                    )));
                }
            }
            "fixed_interval" | "interval" | "calendar_interval" => {
                interval_ns = Some(interval(name, key, value)?);
            }
            "min_doc_count" => min_doc_count = count_setting(name, key, value)?,
            "extended_bounds" => bounds = Some(extended_bounds(name, value, now_ns)?),
            "format" => epoch_millis_strings = value.as_str() == Some("epoch_millis"),
            "time_zone" if is_utc(value) => {}
            "offset" if matches!(value.as_str(), Some("" | "0" | "0s" | "+0s" | "0ms")) => {}
            "order" if value == &serde_json::json!({"_key": "asc"}) => {}
            "keyed" if value == &Value::Bool(false) => {}
            other => return Err(unsupported_setting(name, "date_histogram", other)),
        }
    }
    let interval_ns = interval_ns.ok_or_else(|| {
        EsError::parsing(format!(
            "[date_histogram] of [{name}] needs `fixed_interval`"
        ))
    })?;
    if let Some((min, max)) = bounds {
        check_bucket_count(name, min, max, interval_ns)?;
    }
    Ok(DateHistogram {
        interval_ns,
        min_doc_count,
        bounds,
        epoch_millis_strings,
    })
}

/// Refuses a histogram from `min` to `max` with more than [`MAX_DATE_BUCKETS`].
///
/// # Errors
/// An `illegal_argument_exception` naming the interval and the limit.
pub fn check_bucket_count(name: &str, min: i64, max: i64, interval_ns: i64) -> Result<(), EsError> {
    let buckets = (i128::from(max) - i128::from(min)) / i128::from(interval_ns) + 1;
    if buckets > i128::from(MAX_DATE_BUCKETS) {
        return Err(EsError::illegal(format!(
            "[date_histogram] of [{name}] would give {buckets} buckets, the limit is \
             {MAX_DATE_BUCKETS}; use a wider interval"
        )));
    }
    Ok(())
}

/// A fixed interval: `<n>ms|s|m|h|d`, or a calendar unit that is fixed in UTC.
fn interval(name: &str, key: &str, value: &Value) -> Result<i64, EsError> {
    let text = value.as_str().unwrap_or_default();
    let named = match text {
        "minute" | "1m" => Some(60_000_000_000),
        "hour" | "1h" => Some(3_600_000_000_000),
        "day" | "1d" => Some(86_400_000_000_000),
        _ => None,
    };
    let parsed = named.or_else(|| {
        let split = text.find(|c: char| !c.is_ascii_digit())?;
        let (digits, unit) = text.split_at(split);
        let amount: i64 = digits.parse().ok()?;
        let unit_ns: i64 = match unit {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            _ => return None,
        };
        amount.checked_mul(unit_ns)
    });
    match parsed {
        Some(interval) if interval > 0 => Ok(interval),
        _ => Err(EsError::illegal(format!(
            "[date_histogram.{key}] of [{name}] must be a fixed interval like `1000ms`, `30s`, \
             `5m`, `1h` or `1d`, got `{text}` (calendar weeks, months, quarters and years are \
             not supported)"
        ))),
    }
}

fn count_setting(name: &str, key: &str, value: &Value) -> Result<u64, EsError> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
        .ok_or_else(|| {
            EsError::illegal(format!(
                "[{key}] of [{name}] must be a whole number, got {value}"
            ))
        })
}

fn extended_bounds(name: &str, value: &Value, now_ns: i64) -> Result<(i64, i64), EsError> {
    let bound = |key: &str| -> Result<i64, EsError> {
        let bad = || {
            EsError::illegal(format!(
                "[date_histogram.extended_bounds.{key}] of [{name}] must be epoch milliseconds or a time"
            ))
        };
        match value.get(key) {
            Some(Value::Number(number)) => number
                .as_i64()
                .map(|ms| ms.saturating_mul(1_000_000))
                .ok_or_else(bad),
            Some(Value::String(text)) => match text.parse::<i64>() {
                Ok(ms) => Ok(ms.saturating_mul(1_000_000)),
                Err(_) => logpool_core::timeexpr::parse_time_expr(text, now_ns).map_err(|_| bad()),
            },
            _ => Err(bad()),
        }
    };
    let (min, max) = (bound("min")?, bound("max")?);
    if min > max {
        return Err(EsError::illegal(format!(
            "[date_histogram.extended_bounds] of [{name}]: `min` is after `max`"
        )));
    }
    Ok((min, max))
}

fn terms(name: &str, settings: &Map<String, Value>, children: &[Agg]) -> Result<Terms, EsError> {
    let mut field = None;
    let mut size = DEFAULT_TERMS_SIZE;
    let mut min_doc_count = 1;
    let mut order = (TermsOrder::Count, true);
    for (key, value) in settings {
        match key.as_str() {
            "field" => field = value.as_str().map(field_name),
            "size" => {
                size = usize::try_from(count_setting(name, key, value)?).unwrap_or(usize::MAX);
                if size == 0 || size > MAX_TERMS_SIZE {
                    return Err(EsError::illegal(format!(
                        "[terms.size] of [{name}] must be between 1 and {MAX_TERMS_SIZE}, got {size}"
                    )));
                }
            }
            // Zero is taken as one: a field's values come from the matching records.
            "min_doc_count" => min_doc_count = count_setting(name, key, value)?.max(1),
            "order" => order = terms_order(name, value, children)?,
            "shard_size" | "show_term_doc_count_error" | "execution_hint" | "collect_mode" => {}
            other => return Err(unsupported_setting(name, "terms", other)),
        }
    }
    let field =
        field.ok_or_else(|| EsError::parsing(format!("[terms] of [{name}] needs a `field`")))?;
    if field == TIME_FIELD {
        return Err(EsError::illegal(format!(
            "[terms.field] of [{name}] cannot be the time field; use date_histogram"
        )));
    }
    Ok(Terms {
        field,
        size,
        min_doc_count,
        order: order.0,
        descending: order.1,
    })
}

fn terms_order(name: &str, value: &Value, children: &[Agg]) -> Result<(TermsOrder, bool), EsError> {
    let single = match value {
        Value::Array(items) if items.len() == 1 => &items[0],
        other => other,
    };
    let entry = single
        .as_object()
        .filter(|object| object.len() == 1)
        .and_then(|object| object.iter().next())
        .ok_or_else(|| {
            EsError::unsupported(
                "terms.order",
                &format!("[{name}] may be ordered by one key only"),
            )
        })?;
    let (key, direction) = entry;
    let descending = match direction.as_str() {
        Some("desc") => true,
        Some("asc") => false,
        _ => {
            return Err(EsError::illegal(format!(
                "[terms.order.{key}] of [{name}] must be `asc` or `desc`"
            )))
        }
    };
    let order = match key.as_str() {
        "_count" => TermsOrder::Count,
        "_key" | "_term" => TermsOrder::Key,
        metric => {
            let single_valued = children.iter().any(|child| {
                child.name == metric
                    && matches!(&child.kind, AggKind::Metric(m) if !matches!(m.kind, MetricKind::Percentiles(_)))
            });
            if !single_valued {
                return Err(EsError::illegal(format!(
                    "[terms.order] of [{name}] names [{metric}], which is not a single-value metric \
                     directly under it"
                )));
            }
            TermsOrder::Metric(metric.to_string())
        }
    };
    Ok((order, descending))
}

fn parse_metric(
    name: &str,
    type_name: &str,
    settings: &Map<String, Value>,
) -> Result<Metric, EsError> {
    let mut kind = match type_name {
        "avg" => MetricKind::Avg,
        "sum" => MetricKind::Sum,
        "min" => MetricKind::Min,
        "max" => MetricKind::Max,
        "cardinality" => MetricKind::Cardinality,
        "value_count" => MetricKind::ValueCount,
        "percentiles" => MetricKind::Percentiles(DEFAULT_PERCENTS.to_vec()),
        other => {
            return Err(EsError::unsupported(
                other,
                &format!(
                    "aggregation [{name}]: the supported aggregations are date_histogram, terms, \
                     avg, sum, min, max, percentiles, cardinality and value_count"
                ),
            ))
        }
    };
    let mut field = None;
    for (key, value) in settings {
        match (key.as_str(), &mut kind) {
            ("field", _) => field = value.as_str().map(field_name),
            ("percents", MetricKind::Percentiles(percents)) => {
                *percents = percent_list(name, value)?;
            }
            ("precision_threshold", MetricKind::Cardinality) => {}
            ("keyed", MetricKind::Percentiles(_)) if value == &Value::Bool(true) => {}
            (other, _) => return Err(unsupported_setting(name, type_name, other)),
        }
    }
    let field = field.ok_or_else(|| {
        EsError::parsing(format!(
            "[{type_name}] of [{name}] needs a `field` (scripts are not supported)"
        ))
    })?;
    if field == TIME_FIELD {
        return Err(EsError::illegal(format!(
            "[{type_name}.field] of [{name}] cannot be the time field"
        )));
    }
    Ok(Metric { kind, field })
}

/// Percents as numbers or numeric strings (Grafana sends strings).
fn percent_list(name: &str, value: &Value) -> Result<Vec<f64>, EsError> {
    let bad = || {
        EsError::illegal(format!(
            "[percentiles.percents] of [{name}] must be a list of numbers between 0 and 100"
        ))
    };
    let items = value.as_array().ok_or_else(bad)?;
    let percents = items
        .iter()
        .map(|item| {
            item.as_f64()
                .or_else(|| item.as_str().and_then(|text| text.trim().parse().ok()))
                .filter(|percent| (0.0..=100.0).contains(percent))
                .ok_or_else(bad)
        })
        .collect::<Result<Vec<f64>, EsError>>()?;
    if percents.is_empty() {
        return Err(bad());
    }
    Ok(percents)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn test_grafana_terms_with_metric_order() {
        let aggs = json!({"3": {"terms": {"field": "host.keyword", "size": 5, "order": {"1": "desc"}, "min_doc_count": 1},
            "aggs": {"1": {"avg": {"field": "latency"}}, "2": {"date_histogram": {"field": "@timestamp",
            "fixed_interval": "30s", "min_doc_count": 0, "extended_bounds": {"min": 1000, "max": 61000},
            "format": "epoch_millis"}, "aggs": {"1": {"avg": {"field": "latency"}}}}}}});
        let parsed = parse_aggs(&aggs, 0).expect("parse");
        let AggKind::Buckets(BucketSpec::Terms(terms), children) = &parsed[0].kind else {
            panic!("terms expected: {parsed:?}")
        };
        assert_eq!(terms.field, "host");
        assert_eq!(terms.order, TermsOrder::Metric("1".into()));
        let AggKind::Buckets(BucketSpec::DateHistogram(histogram), _) = &children[1].kind else {
            panic!("date_histogram expected")
        };
        assert_eq!(histogram.interval_ns, 30_000_000_000);
        assert_eq!(histogram.bounds, Some((1_000_000_000, 61_000_000_000)));
    }

    #[test]
    fn test_unsupported_aggregations_are_named() {
        let error = parse_aggs(&json!({"4": {"moving_avg": {"buckets_path": "1"}}}), 0)
            .expect_err("moving_avg");
        assert!(error.reason.contains("[moving_avg]"), "{}", error.reason);
        let error = parse_aggs(
            &json!({"2": {"date_histogram": {"field": "@timestamp", "calendar_interval": "1M"}}}),
            0,
        )
        .expect_err("month");
        assert!(
            error.reason.contains("calendar_interval"),
            "{}",
            error.reason
        );
    }
}
