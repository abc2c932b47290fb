//! The in-memory stage after the engine: HAVING, ORDER BY, OFFSET/LIMIT and the
//! projection over the groups an engine computed.
//!
//! It is exact because engines hand over every group of the request, not a top-N.

use std::cmp::Ordering;

use serde::Serialize;
use serde_json::Value;

use super::plan::{
    AggregateGroup, AggregatePlan, AggregateValue, CompareOp, GroupKey, KeyValue, Literal, Operand,
    Predicate,
};
use crate::record::format_time_ns;

/// One column of a result table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SqlColumn {
    /// Name: the alias, or the expression as written.
    pub name: String,
    /// `long`, `double`, `bool`, `string`, `timestamp`, `mixed` (values of several
    /// types) or `null` (no value at all).
    #[serde(rename = "type")]
    pub column_type: String,
}

/// The answer to a pipe-SQL request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SqlTable {
    /// Columns.
    pub columns: Vec<SqlColumn>,
    /// Rows, one value per column.
    pub rows: Vec<Vec<Value>>,
}

/// A value read from a group while filtering and ordering.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    Number(f64),
    Str(String),
}

/// Applies HAVING, ORDER BY, OFFSET/LIMIT and the projection to an engine's groups.
pub fn finish_aggregate(plan: &AggregatePlan, mut groups: Vec<AggregateGroup>) -> SqlTable {
    // Without GROUP BY there is exactly one group, even over no records (count = 0).
    if plan.group_by.is_empty() && groups.is_empty() {
        groups.push(AggregateGroup {
            keys: Vec::new(),
            values: plan
                .aggregates
                .iter()
                .map(|aggregate| {
                    if aggregate.is_count() {
                        AggregateValue::Count(0)
                    } else {
                        AggregateValue::Number(None)
                    }
                })
                .collect(),
        });
    }
    if let Some(having) = &plan.having {
        groups.retain(|group| evaluate(having, group) == Some(true));
    }
    groups.sort_by(|a, b| {
        for item in &plan.order_by {
            let ordering = compare_scalars(&read(&item.operand, a), &read(&item.operand, b));
            let ordering = if item.descending {
                ordering.reverse()
            } else {
                ordering
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        // Ties (and no ORDER BY) fall back to the keys, so answers are deterministic.
        a.keys
            .iter()
            .zip(&b.keys)
            .map(|(x, y)| compare_scalars(&key_scalar(x), &key_scalar(y)))
            .find(|ordering| *ordering != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    });
    let rows: Vec<Vec<Value>> = groups
        .iter()
        .skip(plan.offset)
        .take(plan.limit.unwrap_or(usize::MAX))
        .map(|group| {
            plan.columns
                .iter()
                .map(|column| output_value(&column.operand, group))
                .collect()
        })
        .collect();
    let columns = plan
        .columns
        .iter()
        .enumerate()
        .map(|(index, column)| SqlColumn {
            name: column.name.clone(),
            column_type: column_type(plan, &column.operand, &rows, index),
        })
        .collect();
    SqlTable { columns, rows }
}

fn column_type(
    plan: &AggregatePlan,
    operand: &Operand,
    rows: &[Vec<Value>],
    index: usize,
) -> String {
    match operand {
        Operand::Aggregate(n) if plan.aggregates.get(*n).is_some_and(|a| a.is_count()) => "long",
        Operand::Aggregate(_) | Operand::Literal(_) => "double",
        Operand::Key(n) => match plan.group_by.get(*n) {
            Some(GroupKey::TimeBucket { .. }) => "timestamp",
            _ => return value_type(rows.iter().map(|row| &row[index])),
        },
    }
    .to_string()
}

/// Returns the type of a column's values: one type, `mixed` or `null`.
pub fn value_type<'a>(values: impl Iterator<Item = &'a Value>) -> String {
    let mut found: Option<&str> = None;
    for value in values {
        let this = match value {
            Value::Null => continue,
            Value::Bool(_) => "bool",
            Value::Number(n) if n.is_i64() || n.is_u64() => "long",
            Value::Number(_) => "double",
            Value::String(_) => "string",
            _ => "json",
        };
        found = match found {
            None => Some(this),
            Some(known) if known == this => Some(known),
            Some("long") | Some("double") if this == "long" || this == "double" => Some("double"),
            Some(_) => Some("mixed"),
        };
    }
    found.unwrap_or("null").to_string()
}

fn output_value(operand: &Operand, group: &AggregateGroup) -> Value {
    match operand {
        Operand::Key(n) => match group.keys.get(*n) {
            Some(KeyValue::Time(time_ns)) => Value::String(format_time_ns(*time_ns)),
            Some(KeyValue::Null) | None => Value::Null,
            Some(KeyValue::Bool(b)) => Value::Bool(*b),
            Some(KeyValue::Long(n)) => Value::from(*n),
            Some(KeyValue::Double(x)) => number(*x),
            Some(KeyValue::Str(s)) => Value::String(s.clone()),
        },
        Operand::Aggregate(n) => match group.values.get(*n) {
            Some(AggregateValue::Count(count)) => Value::from(*count),
            Some(AggregateValue::Number(Some(x))) => number(*x),
            Some(AggregateValue::Number(None)) | None => Value::Null,
        },
        Operand::Literal(literal) => match literal_scalar(literal) {
            Scalar::Number(x) => number(x),
            Scalar::Str(s) => Value::String(s),
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Null => Value::Null,
        },
    }
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn read(operand: &Operand, group: &AggregateGroup) -> Scalar {
    match operand {
        Operand::Key(n) => group.keys.get(*n).map(key_scalar).unwrap_or(Scalar::Null),
        Operand::Aggregate(n) => match group.values.get(*n) {
            Some(AggregateValue::Count(count)) => Scalar::Number(*count as f64),
            Some(AggregateValue::Number(Some(x))) => Scalar::Number(*x),
            Some(AggregateValue::Number(None)) | None => Scalar::Null,
        },
        Operand::Literal(literal) => literal_scalar(literal),
    }
}

fn key_scalar(key: &KeyValue) -> Scalar {
    match key {
        KeyValue::Null => Scalar::Null,
        KeyValue::Bool(b) => Scalar::Bool(*b),
        KeyValue::Long(n) => Scalar::Number(*n as f64),
        KeyValue::Double(x) => Scalar::Number(*x),
        KeyValue::Str(s) => Scalar::Str(s.clone()),
        KeyValue::Time(t) => Scalar::Number(*t as f64),
    }
}

fn literal_scalar(literal: &Literal) -> Scalar {
    match literal {
        Literal::Null => Scalar::Null,
        Literal::Number(x) => Scalar::Number(*x),
        Literal::Str(s) => Scalar::Str(s.clone()),
        Literal::Bool(b) => Scalar::Bool(*b),
    }
}

/// Orders nulls first, then booleans, numbers and strings.
fn compare_scalars(a: &Scalar, b: &Scalar) -> Ordering {
    fn rank(scalar: &Scalar) -> u8 {
        match scalar {
            Scalar::Null => 0,
            Scalar::Bool(_) => 1,
            Scalar::Number(_) => 2,
            Scalar::Str(_) => 3,
        }
    }
    match (a, b) {
        (Scalar::Bool(x), Scalar::Bool(y)) => x.cmp(y),
        (Scalar::Number(x), Scalar::Number(y)) => x.total_cmp(y),
        (Scalar::Str(x), Scalar::Str(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// SQL's three-valued logic: `None` is unknown (a comparison with null).
fn evaluate(predicate: &Predicate, group: &AggregateGroup) -> Option<bool> {
    match predicate {
        Predicate::Compare(left, op, right) => {
            let (left, right) = (read(left, group), read(right, group));
            let ordering = match (&left, &right) {
                (Scalar::Null, _) | (_, Scalar::Null) => return None,
                (Scalar::Number(_), Scalar::Number(_))
                | (Scalar::Str(_), Scalar::Str(_))
                | (Scalar::Bool(_), Scalar::Bool(_)) => compare_scalars(&left, &right),
                // Values of different types are never equal and never ordered.
                _ => return Some(*op == CompareOp::NotEq),
            };
            Some(match op {
                CompareOp::Eq => ordering == Ordering::Equal,
                CompareOp::NotEq => ordering != Ordering::Equal,
                CompareOp::Lt => ordering == Ordering::Less,
                CompareOp::LtEq => ordering != Ordering::Greater,
                CompareOp::Gt => ordering == Ordering::Greater,
                CompareOp::GtEq => ordering != Ordering::Less,
            })
        }
        Predicate::IsNull { operand, negated } => {
            Some((read(operand, group) == Scalar::Null) != *negated)
        }
        Predicate::And(a, b) => match (evaluate(a, group), evaluate(b, group)) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        Predicate::Or(a, b) => match (evaluate(a, group), evaluate(b, group)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
        Predicate::Not(inner) => evaluate(inner, group).map(|value| !value),
    }
}
