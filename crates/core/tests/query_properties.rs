//! Property tests of the query parser and the SQL planner: they never panic, never
//! return a query over the limits, and the flattened trees they build mean the same as
//! the conditions written. About two seconds in a debug build.

use std::collections::BTreeMap;

use logpool_core::limits::QueryLimits;
use logpool_core::query::eval::matches;
use logpool_core::query::limits::{check_query, measure};
use logpool_core::query::{parse_query, DefaultOperator, Query};
use logpool_core::record::{FieldValue, Record};
use logpool_core::sql::plan_sql;
use proptest::prelude::*;

/// A boolean condition over two numeric fields, evaluated directly.
#[derive(Debug, Clone)]
enum Condition {
    Equals(&'static str, i64),
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
}

impl Condition {
    fn holds(&self, a: i64, b: i64) -> bool {
        match self {
            Condition::Equals(field, value) => (if *field == "a" { a } else { b }) == *value,
            Condition::And(parts) => parts.iter().all(|part| part.holds(a, b)),
            Condition::Or(parts) => parts.iter().any(|part| part.holds(a, b)),
            Condition::Not(inner) => !inner.holds(a, b),
        }
    }

    /// In the search language, every group in parentheses.
    fn search(&self) -> String {
        match self {
            Condition::Equals(field, value) => format!("{field}:{value}"),
            Condition::And(parts) => Self::joined(parts, " AND ", Condition::search),
            Condition::Or(parts) => Self::joined(parts, " OR ", Condition::search),
            Condition::Not(inner) => format!("NOT ({})", inner.search()),
        }
    }

    /// As a SQL condition; `nested` puts every pair in its own parentheses (a
    /// right-deep tree) instead of writing a flat run that the parser makes left-deep.
    fn sql(&self, nested: bool) -> String {
        let join = |parts: &[Condition], operator: &str| -> String {
            if nested {
                let mut text = String::new();
                for (index, part) in parts.iter().enumerate().rev() {
                    text = if index + 1 == parts.len() {
                        part.sql(nested)
                    } else {
                        format!("({} {operator} ({text}))", part.sql(nested))
                    };
                }
                text
            } else {
                Self::joined(parts, &format!(" {operator} "), |part| part.sql(nested))
            }
        };
        match self {
            Condition::Equals(field, value) => format!("{field} = {value}"),
            Condition::And(parts) => join(parts, "AND"),
            Condition::Or(parts) => join(parts, "OR"),
            Condition::Not(inner) => format!("NOT ({})", inner.sql(nested)),
        }
    }

    fn joined(
        parts: &[Condition],
        separator: &str,
        render: impl Fn(&Condition) -> String,
    ) -> String {
        let inner: Vec<String> = parts.iter().map(render).collect();
        format!("({})", inner.join(separator))
    }
}

fn condition() -> impl Strategy<Value = Condition> {
    let leaf = (prop::sample::select(vec!["a", "b"]), 0i64..4)
        .prop_map(|(field, value)| Condition::Equals(field, value));
    leaf.prop_recursive(6, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..6).prop_map(Condition::And),
            prop::collection::vec(inner.clone(), 1..6).prop_map(Condition::Or),
            inner.prop_map(|part| Condition::Not(Box::new(part))),
        ]
    })
}

fn record(a: i64, b: i64) -> Record {
    let fields: BTreeMap<String, FieldValue> = [("a", a), ("b", b)]
        .into_iter()
        .map(|(name, value)| (name.to_string(), FieldValue::Long(value)))
        .collect();
    Record { time_ns: 0, fields }
}

/// Whether `query` and `condition` agree on every record over the values used.
fn agree(query: &Query, condition: &Condition) -> bool {
    (0..4).all(|a| (0..4).all(|b| matches(query, &record(a, b)) == condition.holds(a, b)))
}

/// Text made of the query language's and SQL's special characters and words.
fn hostile_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "\"",
        ":",
        "*",
        "?",
        "\\",
        "^2",
        "~",
        "+",
        "-",
        "!",
        " ",
        "AND ",
        "OR ",
        "NOT ",
        "&&",
        "||",
        "a",
        "b:",
        "x*",
        "TO",
        ">=",
        "<",
        "_exists_:",
        ",",
        "=",
        "1",
        "'s'",
        "SELECT ",
        "WHERE ",
        "GROUP BY ",
        "HAVING ",
        "count(*)",
        "LIKE ",
        "BETWEEN ",
        "CASE ",
        "END ",
        "IN ",
        "|",
    ]);
    prop::collection::vec(pieces, 0..200).prop_map(|pieces| pieces.concat())
}

fn within_limits(query: &Query) -> bool {
    check_query(query, &QueryLimits::default()).is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn prop_parser_never_panics_nor_exceeds_the_limits(text in hostile_text()) {
        for operator in [DefaultOperator::And, DefaultOperator::Or] {
            if let Ok(query) = parse_query(&text, operator) {
                prop_assert!(within_limits(&query), "{text:?}");
            }
        }
    }

    #[test]
    fn prop_planner_never_panics_nor_exceeds_the_limits(text in hostile_text()) {
        if let Ok(plan) = plan_sql(&format!("SELECT count(*) WHERE {text}"), "web", Query::All) {
            prop_assert!(within_limits(&plan.filter), "{text:?}");
        }
        if let Ok(plan) = plan_sql(&text, "web", Query::All) {
            prop_assert!(within_limits(&plan.filter), "{text:?}");
        }
    }

    #[test]
    fn prop_parsed_search_means_what_was_written(condition in condition()) {
        let text = condition.search();
        let query = parse_query(&text, DefaultOperator::And).expect("parses");
        prop_assert!(within_limits(&query));
        prop_assert!(agree(&query, &condition), "{text}");
    }

    #[test]
    fn prop_flat_and_nested_sql_plan_the_same_meaning(condition in condition()) {
        let flat = plan_sql(&format!("SELECT count(*) WHERE {}", condition.sql(false)), "web", Query::All);
        let nested = plan_sql(&format!("SELECT count(*) WHERE {}", condition.sql(true)), "web", Query::All);
        // A nested form may be over the expression depth limit; then it says so.
        let flat = flat.expect("the flat form plans");
        prop_assert!(agree(&flat.filter, &condition), "{}", condition.sql(false));
        match nested {
            Ok(nested) => prop_assert!(agree(&nested.filter, &condition), "{}", condition.sql(true)),
            Err(error) => prop_assert!(error.limit.is_some(), "{}", error.message),
        }
    }

    #[test]
    fn prop_long_chains_flatten_to_one_level(count in 1usize..1024, or in any::<bool>()) {
        let operator = if or { " OR " } else { " AND " };
        let sql = format!(
            "SELECT count(*) WHERE {}",
            (0..count).map(|i| format!("a = {}", i % 4)).collect::<Vec<_>>().join(operator)
        );
        let plan = plan_sql(&sql, "web", Query::All).expect("plans");
        let shape = measure(&plan.filter);
        prop_assert_eq!(shape.terms, count);
        prop_assert!(shape.depth <= 1);
    }

    #[test]
    fn prop_nesting_is_accepted_up_to_the_limit_and_refused_past_it(
        levels in 0usize..80,
        operators in prop::collection::vec(any::<bool>(), 80),
    ) {
        // `t0 AND (t1 OR (t2 AND …))`, alternating where `operators` says so.
        let mut text = "x".to_string();
        let mut depth = 0;
        let mut previous: Option<bool> = None;
        for (level, is_and) in operators.iter().take(levels).enumerate() {
            let operator = if *is_and { "AND" } else { "OR" };
            text = format!("t{level} {operator} ({text})");
            // A run of one operator is flattened into one level.
            if previous != Some(*is_and) {
                depth += 1;
            }
            previous = Some(*is_and);
        }
        let limits = QueryLimits::default();
        match parse_query(&text, DefaultOperator::And) {
            Ok(query) => {
                prop_assert_eq!(measure(&query).depth, depth);
                prop_assert!(depth <= limits.max_depth);
            }
            Err(error) => {
                let over_depth = error.limit.as_ref().is_some_and(|hit| hit.limit == "max_depth");
                let over_groups = levels > logpool_core::query::parser::MAX_GROUP_DEPTH;
                prop_assert!(over_depth || over_groups, "{error}");
                prop_assert!(depth > limits.max_depth || over_groups);
            }
        }
    }
}
