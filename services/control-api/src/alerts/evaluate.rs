//! One rule's values per group over a window, and the lines that show why.
//!
//! A rule is compiled with the parser and the pipe-SQL planner search-api uses
//! (`parse_query`, `plan_sql`), and run through the same index calls
//! (`LogIndex::aggregate` followed by `finish_aggregate` for SQL, the engine's
//! grouping by one field for a grouped search count, `LogIndex::search` for the
//! lines), so a rule and the console's search of the same window agree.

use std::collections::BTreeMap;

use logpool_core::memory::RequestMemory;
use logpool_core::query::{parse_query, DefaultOperator, Query, QueryParseError};
use logpool_core::record::format_time_ns;
use logpool_core::routing::PoolRoute;
use logpool_core::sql::plan::{AggregateFn, AggregatePlan, GroupKey, KeyValue, Operand, PlanShape};
use logpool_core::sql::{finish_aggregate, plan_sql, SqlError};
use logpool_engines::index::{AggregateRequest, IndexError, LogIndex, SearchRequest, SortOrder};
use logpool_wire::alerts::{NotificationLine, RuleBody};
use serde_json::Value;

/// Groups one evaluation may see; more fails the evaluation (the rule's
/// `last_error` says so) rather than alerting on a cut list.
pub const MAX_GROUPS: usize = 1_000;
/// Longest group value kept (longer ones are cut), so keys fit the store's columns.
pub const MAX_GROUP_CHARS: usize = 200;
/// Bytes one evaluation's group table or lines may hold.
const MEMORY_BYTES: usize = 32 * 1024 * 1024;

/// Why a rule cannot be compiled: the field, the message, and the character
/// position in that field when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// `query`, `sql` or `group_by`.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
    /// 0-based character offset in the field.
    pub position: Option<usize>,
}

impl CompileError {
    fn of_query(error: QueryParseError) -> CompileError {
        CompileError {
            field: "query",
            message: format!("invalid query: {error}"),
            position: Some(error.position),
        }
    }

    fn of_sql(error: SqlError) -> CompileError {
        CompileError {
            field: "sql",
            message: format!("unsupported or invalid SQL: {}", error.message),
            position: error.position,
        }
    }

    fn of(field: &'static str, message: impl Into<String>) -> CompileError {
        CompileError {
            field,
            message: message.into(),
            position: None,
        }
    }
}

/// What an evaluation computes.
#[derive(Debug, Clone)]
pub enum Measure {
    /// Matching records, per value of `group_by` when set.
    Count {
        /// The group field.
        group_by: Option<String>,
    },
    /// A pipe-SQL aggregate: the value column of each row, per group column.
    Sql {
        /// The plan.
        plan: AggregatePlan,
        /// Index of the group column in the result, when the rule groups.
        group_column: Option<usize>,
        /// Index of the value column in the result.
        value_column: usize,
        /// The record field the group column reads, to select a group's lines.
        group_field: Option<String>,
    },
}

/// A rule ready to run.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    /// The records the rule looks at (search AND the SQL's WHERE).
    pub filter: Query,
    /// What it computes.
    pub measure: Measure,
}

impl CompiledRule {
    /// The field a group's value is matched against when selecting its lines.
    pub fn group_field(&self) -> Option<&str> {
        match &self.measure {
            Measure::Count { group_by } => group_by.as_deref(),
            Measure::Sql { group_field, .. } => group_field.as_deref(),
        }
    }
}

/// Compiles a rule over `pool`.
///
/// # Errors
/// A [`CompileError`] naming the field that does not parse or does not fit a rule.
pub fn compile(rule: &RuleBody, pool: &str) -> Result<CompiledRule, CompileError> {
    let query = parse_query(&rule.query, DefaultOperator::And).map_err(CompileError::of_query)?;
    let Some(sql) = rule.sql.as_deref().filter(|sql| !sql.trim().is_empty()) else {
        return Ok(CompiledRule {
            filter: query,
            measure: Measure::Count {
                group_by: rule.group_by.clone(),
            },
        });
    };
    let plan = plan_sql(sql, pool, query).map_err(CompileError::of_sql)?;
    let PlanShape::Aggregate(aggregate) = plan.shape else {
        return Err(CompileError::of(
            "sql",
            "`sql` must compute a value: an aggregate such as `SELECT count(*) AS c` \
             or `SELECT host, count(*) AS c GROUP BY host`",
        ));
    };
    let group_column = match (&rule.group_by, aggregate.group_by.is_empty()) {
        (None, true) => None,
        (None, false) => {
            return Err(CompileError::of(
                "group_by",
                "the SQL groups its rows: name its group column in `group_by`",
            ))
        }
        (Some(group_by), _) => {
            let index = aggregate
                .columns
                .iter()
                .position(|column| &column.name == group_by)
                .ok_or_else(|| {
                    CompileError::of(
                        "group_by",
                        format!("`group_by` names `{group_by}`, which the SQL does not select"),
                    )
                })?;
            Some(index)
        }
    };
    let value_column = (0..aggregate.columns.len())
        .rev()
        .find(|index| Some(*index) != group_column)
        .ok_or_else(|| {
            CompileError::of("sql", "`sql` selects no value column besides the group")
        })?;
    let group_field = group_column.and_then(|index| match &aggregate.columns[index].operand {
        Operand::Key(key) => match aggregate.group_by.get(*key) {
            Some(GroupKey::Field(field)) => Some(field.clone()),
            _ => None,
        },
        _ => None,
    });
    Ok(CompiledRule {
        filter: plan.filter,
        measure: Measure::Sql {
            plan: aggregate,
            group_column,
            value_column,
            group_field,
        },
    })
}

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    /// The index failed or refused the request.
    #[error("{0}")]
    Index(#[from] IndexError),
    /// More groups than [`MAX_GROUPS`].
    #[error("the rule yields more than {MAX_GROUPS} groups")]
    TooManyGroups,
}

/// The rule's value per group over `[from_ns, to_ns)`; a group's value is `None`
/// when its SQL value is null. A rule without groups has the one group `""`.
///
/// # Errors
/// When the index fails or there are too many groups.
pub async fn values(
    index: &dyn LogIndex,
    route: &PoolRoute,
    rule: &CompiledRule,
    from_ns: i64,
    to_ns: i64,
) -> Result<BTreeMap<String, Option<f64>>, EvaluateError> {
    let mut values = BTreeMap::new();
    match &rule.measure {
        Measure::Count { group_by } => {
            let request = AggregateRequest {
                query: rule.filter.clone(),
                from_ns,
                to_ns,
                group_by: group_by.iter().cloned().map(GroupKey::Field).collect(),
                aggregates: vec![AggregateFn::Count],
                max_groups: MAX_GROUPS,
                memory: RequestMemory::limited(MEMORY_BYTES),
            };
            let groups = index.aggregate(route, &request).await.map_err(too_many)?;
            if group_by.is_none() {
                let count = groups
                    .first()
                    .and_then(|group| group.values.first())
                    .map_or(0.0, aggregate_number);
                values.insert(String::new(), Some(count));
            } else {
                for group in groups {
                    // Records without the field are no host, service, ... to alert on.
                    let Some(key) = group.keys.first().and_then(key_text) else {
                        continue;
                    };
                    let count = group.values.first().map_or(0.0, aggregate_number);
                    values.insert(key, Some(count));
                }
            }
        }
        Measure::Sql {
            plan,
            group_column,
            value_column,
            ..
        } => {
            let request = AggregateRequest {
                query: rule.filter.clone(),
                from_ns,
                to_ns,
                group_by: plan.group_by.clone(),
                aggregates: plan.aggregates.clone(),
                max_groups: MAX_GROUPS,
                memory: RequestMemory::limited(MEMORY_BYTES),
            };
            let groups = index.aggregate(route, &request).await.map_err(too_many)?;
            let table = finish_aggregate(plan, groups);
            for row in table.rows {
                let group = match group_column {
                    Some(column) => match row.get(*column).and_then(value_text) {
                        Some(group) => group,
                        None => continue,
                    },
                    None => String::new(),
                };
                let value = row.get(*value_column).and_then(Value::as_f64);
                values.insert(group, value);
            }
        }
    }
    Ok(values)
}

/// Up to `max_lines` newest records of the rule's window, of `group` when the rule
/// groups by a field.
///
/// # Errors
/// When the index fails.
pub async fn lines(
    index: &dyn LogIndex,
    route: &PoolRoute,
    rule: &CompiledRule,
    group: &str,
    from_ns: i64,
    to_ns: i64,
    max_lines: usize,
) -> Result<Vec<NotificationLine>, IndexError> {
    if max_lines == 0 {
        return Ok(Vec::new());
    }
    let query = match rule.group_field() {
        Some(field) if !group.is_empty() => Query::And(vec![
            rule.filter.clone(),
            Query::Term {
                field: Some(field.to_string()),
                value: group.to_string(),
            },
        ]),
        _ => rule.filter.clone(),
    };
    let request = SearchRequest {
        query,
        from_ns,
        to_ns,
        limit: max_lines,
        after: None,
        order: SortOrder::Desc,
        memory: RequestMemory::limited(MEMORY_BYTES),
    };
    let page = index.search(route, &request).await?;
    Ok(page
        .hits
        .into_iter()
        .map(|hit| {
            let line = match hit.fields.get("message") {
                Some(Value::String(message)) => message.clone(),
                _ => Value::Object(hit.fields.clone()).to_string(),
            };
            NotificationLine {
                time: format_time_ns(hit.time_ns),
                id: hit.id,
                line,
                fields: hit.fields,
            }
        })
        .collect())
}

fn too_many(error: IndexError) -> EvaluateError {
    match error {
        IndexError::LimitExceeded(_) => EvaluateError::TooManyGroups,
        other => EvaluateError::Index(other),
    }
}

fn aggregate_number(value: &logpool_core::sql::plan::AggregateValue) -> f64 {
    match value {
        logpool_core::sql::plan::AggregateValue::Count(count) => *count as f64,
        logpool_core::sql::plan::AggregateValue::Number(number) => number.unwrap_or(0.0),
    }
}

fn cut(text: String) -> String {
    if text.chars().count() <= MAX_GROUP_CHARS {
        text
    } else {
        text.chars().take(MAX_GROUP_CHARS).collect()
    }
}

fn key_text(key: &KeyValue) -> Option<String> {
    let text = match key {
        KeyValue::Null => return None,
        KeyValue::Bool(value) => value.to_string(),
        KeyValue::Long(value) => value.to_string(),
        KeyValue::Double(value) => value.to_string(),
        KeyValue::Str(value) => value.clone(),
        KeyValue::Time(time_ns) => format_time_ns(*time_ns),
    };
    Some(cut(text))
}

fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(cut(text.clone())),
        other => Some(cut(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(query: &str, sql: Option<&str>, group_by: Option<&str>) -> RuleBody {
        serde_json::from_value(serde_json::json!({
            "name": "r", "pool": "web", "query": query, "sql": sql, "group_by": group_by,
            "window_secs": 60, "every_secs": 10,
            "condition": {"op": ">", "threshold": 1.0},
        }))
        .expect("rule")
    }

    #[test]
    fn test_compile_names_the_field_and_position_of_a_parse_error() {
        let error = compile(&rule("status:(500", None, None), "web").expect_err("bad query");
        assert_eq!(error.field, "query");
        assert!(error.position.is_some());
        let error =
            compile(&rule("*", Some("SELECT count(* FROM x"), None), "web").expect_err("bad sql");
        assert_eq!(error.field, "sql");
    }

    #[test]
    fn test_compile_finds_the_group_and_value_columns() {
        let compiled = compile(
            &rule(
                "level:error",
                Some("SELECT host, count(*) AS c GROUP BY host"),
                Some("host"),
            ),
            "web",
        )
        .expect("compiles");
        let Measure::Sql {
            group_column,
            value_column,
            ..
        } = &compiled.measure
        else {
            panic!("an SQL measure");
        };
        assert_eq!((*group_column, *value_column), (Some(0), 1));
        assert_eq!(compiled.group_field(), Some("host"));
        let error = compile(
            &rule("*", Some("SELECT host, count(*) AS c GROUP BY host"), None),
            "web",
        )
        .expect_err("group column unnamed");
        assert_eq!(error.field, "group_by");
        let error = compile(&rule("*", Some("SELECT host"), None), "web").expect_err("no value");
        assert_eq!(error.field, "sql");
    }
}
