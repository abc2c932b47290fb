//! The largest and deepest queries the limits accept parse, plan, evaluate and drop
//! on a thread with a deliberately small stack, and the ones just over a limit are
//! refused naming it. Runs in well under a second.

use std::collections::BTreeMap;

use logpool_core::limits::QueryLimits;
use logpool_core::query::eval::matches;
use logpool_core::query::highlight::Highlighter;
use logpool_core::query::limits::measure;
use logpool_core::query::{parse_query, DefaultOperator, Query};
use logpool_core::record::{FieldValue, Record};
use logpool_core::sql::{plan_sql, SqlError, SqlPlan};

/// A quarter of a tokio worker's 2 MiB stack, in the unoptimised test build (whose
/// frames are several times larger than a release build's): the search parser's 64
/// nested groups need more than 256 KiB here, the SQL planner's worst cases less.
const SMALL_STACK: usize = 512 * 1024;

/// Runs `work` on a thread with [`SMALL_STACK`]; an overflow aborts the test binary.
fn on_small_stack<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(work)
        .expect("spawn")
        .join()
        .expect("no panic")
}

fn record() -> Record {
    let fields: BTreeMap<String, FieldValue> = [
        ("message", FieldValue::Str("disk full on a1".to_string())),
        ("a", FieldValue::Long(1)),
        ("host", FieldValue::Str("web-1".to_string())),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    Record {
        time_ns: 1_700_000_000_000_000_000,
        fields,
    }
}

/// Evaluates, highlights and drops `query`, as search, tail and alerts do.
fn exercise(query: Query) -> bool {
    let matched = matches(&query, &record());
    let highlighter = Highlighter::new(&query);
    drop(highlighter);
    drop(query);
    matched
}

fn plan(sql: &str) -> Result<SqlPlan, SqlError> {
    plan_sql(sql, "web", Query::All)
}

fn conditions(count: usize, joiner: &str) -> String {
    (0..count)
        .map(|i| format!("a={i}"))
        .collect::<Vec<_>>()
        .join(joiner)
}

/// `a AND (b OR (c AND (d OR …)))`, `levels` levels of AND / OR deep.
fn alternating(levels: usize) -> String {
    let mut text = "x".to_string();
    for level in 0..levels {
        let operator = if level % 2 == 0 { "AND" } else { "OR" };
        text = format!("t{level} {operator} ({text})");
    }
    text
}

#[test]
fn test_worst_accepted_search_queries_run_on_a_small_stack() {
    let limits = QueryLimits::default();
    on_small_stack(move || {
        let deepest = parse_query(&alternating(limits.max_depth), DefaultOperator::And)
            .expect("nesting at the limit is accepted");
        assert_eq!(measure(&deepest).depth, limits.max_depth);
        exercise(deepest);

        let widest = vec!["a1"; limits.max_terms].join(" OR ");
        let widest = parse_query(&widest, DefaultOperator::And).expect("max_terms terms");
        assert!(exercise(widest));

        let wildcards = vec!["a*"; limits.max_wildcards].join(" ");
        let wildcards = parse_query(&wildcards, DefaultOperator::And).expect("max_wildcards");
        assert!(exercise(wildcards));

        // Every NOT cancels or nests, and groups stop at their own limit.
        let nots = format!("{}a1", "NOT ".repeat(100_000));
        assert!(exercise(
            parse_query(&nots, DefaultOperator::And).expect("nots")
        ));
    });
}

#[test]
fn test_search_queries_just_over_a_limit_are_refused_by_name() {
    let limits = QueryLimits::default();
    let cases = [
        (alternating(limits.max_depth + 1), "max_depth"),
        (vec!["a1"; limits.max_terms + 1].join(" OR "), "max_terms"),
        (vec!["a1"; 200_000].join(" "), "max_terms"),
        (
            vec!["a*"; limits.max_wildcards + 1].join(" "),
            "max_wildcards",
        ),
        (vec!["a*"; 5_000].join(" OR "), "max_wildcards"),
        (
            format!("{}*", "a".repeat(limits.max_wildcard_chars)),
            "max_wildcard_chars",
        ),
        (
            format!("\"{}\"", vec!["w"; limits.max_terms + 1].join(" ")),
            "max_terms",
        ),
    ];
    for (query, limit) in cases {
        let error = on_small_stack(move || parse_query(&query, DefaultOperator::And))
            .expect_err("over the limit");
        let named = error.limit.as_ref().map(|hit| hit.limit);
        assert_eq!(named, Some(limit), "{error}");
        assert!(error.to_string().contains(limit), "{error}");
    }
}

#[test]
fn test_long_where_chains_are_flattened_and_run_on_a_small_stack() {
    let limits = QueryLimits::default();
    for joiner in [" AND ", " OR "] {
        let sql = format!(
            "SELECT count(*) WHERE {}",
            conditions(limits.max_terms, joiner)
        );
        let matched = on_small_stack(move || {
            let plan = plan(&sql).expect("max_terms conditions are accepted");
            let shape = measure(&plan.filter);
            assert_eq!(shape.depth, 1, "flattened into one node");
            assert_eq!(shape.terms, limits.max_terms);
            exercise(plan.filter)
        });
        assert_eq!(matched, joiner == " OR ", "only a=1 holds");
    }
    // Parentheses, NOT and mixed operators around a long chain.
    let sql = format!(
        "SELECT count(*) WHERE NOT (({}) AND (host = 'web-2' OR {}))",
        conditions(400, " OR "),
        conditions(400, " AND ")
    );
    let matched = on_small_stack(move || {
        let plan = plan(&sql).expect("accepted");
        assert!(measure(&plan.filter).depth <= 4);
        exercise(plan.filter)
    });
    assert!(matched, "the AND side fails, so NOT holds");
}

#[test]
fn test_worst_accepted_sql_shapes_run_on_a_small_stack() {
    let limits = QueryLimits::default();
    let depth = limits.max_sql_expression_depth;
    // Each case is at (or just under) the expression depth limit, so it parses; it may
    // then be refused as unsupported, which walks, prints and drops it.
    let cases = [
        format!(
            "SELECT count(*) WHERE a = 1{}",
            " + 1".repeat(depth / 2 - 4)
        ),
        format!("SELECT a{} AS x", " + a".repeat(depth / 2 - 3)),
        // A parenthesis costs three: the group and its two brackets.
        format!(
            "SELECT count(*) WHERE {}a = 1{}",
            "(".repeat(depth / 3 - 2),
            ")".repeat(depth / 3 - 2)
        ),
        // A call costs four: its name, brackets and group.
        format!(
            "SELECT {}a{}",
            "f(".repeat(depth / 4 - 1),
            ")".repeat(depth / 4 - 1)
        ),
        format!(
            "SELECT count(*) GROUP BY host HAVING {}",
            vec!["count(*) > 1"; depth / 8].join(" AND ")
        ),
        // Long chains that fail to parse are dropped by the parser itself.
        format!(
            "SELECT count(*) WHERE {} AND",
            conditions(limits.max_terms, " AND ")
        ),
        format!(
            "SELECT count(*) WHERE {} )",
            conditions(limits.max_terms, " OR ")
        ),
    ];
    for sql in cases {
        let limit = on_small_stack(move || match plan(&sql) {
            Ok(plan) => {
                exercise(plan.filter);
                None
            }
            Err(error) => error.limit,
        });
        assert_eq!(limit, None, "within every limit");
    }
}

#[test]
fn test_sql_just_over_a_limit_is_refused_by_name() {
    let limits = QueryLimits::default();
    let depth = limits.max_sql_expression_depth;
    let cases = [
        // The reported crashes: 450 ANDs, 600 ORs, 3,000 chained `+`.
        (
            format!(
                "SELECT count(*) WHERE {}",
                conditions(limits.max_terms + 1, " AND ")
            ),
            "max_terms",
        ),
        (
            format!("SELECT count(*) WHERE {}", conditions(5_000, " OR ")),
            "max_terms",
        ),
        (
            format!("SELECT count(*) WHERE a = 1{}", " + 1".repeat(3_000)),
            "max_sql_expression_depth",
        ),
        (
            format!("SELECT count(*) WHERE a = 1{}", " + 1".repeat(depth)),
            "max_sql_expression_depth",
        ),
        (
            format!("SELECT {}a{}", "f(".repeat(depth), ")".repeat(depth)),
            "max_sql_expression_depth",
        ),
        (
            format!(
                "SELECT count(*) WHERE f({}) = 1",
                vec!["a"; 3_000].join(" AND ")
            ),
            "max_sql_expression_depth",
        ),
        (
            format!(
                "SELECT count(*) WHERE CASE WHEN {} THEN 1 END = 1",
                vec!["a"; 3_000].join(" OR ")
            ),
            "max_sql_expression_depth",
        ),
        (
            format!(
                "SELECT count(*) WHERE a IN ({})",
                vec!["1"; limits.max_terms + 1].join(",")
            ),
            "max_terms",
        ),
        (
            format!(
                "SELECT count(*) WHERE a IN ({})",
                vec!["1"; 20_000].join(",")
            ),
            "max_sql_tokens",
        ),
        (
            format!(
                "SELECT count(*) WHERE {}",
                vec!["a LIKE 'x%'"; limits.max_wildcards + 1].join(" OR ")
            ),
            "max_wildcards",
        ),
    ];
    for (sql, limit) in cases {
        let error = on_small_stack(move || plan(&sql)).expect_err("over the limit");
        assert_eq!(error.limit, Some(limit), "{error}");
        assert!(error.message.contains(limit), "{}", error.message);
    }
}

#[test]
fn test_search_and_where_together_count_against_the_limits() {
    let limits = QueryLimits::default();
    let search = parse_query(
        &vec!["a1"; limits.max_terms / 2 + 1].join(" OR "),
        DefaultOperator::And,
    )
    .expect("half the terms");
    let sql = format!(
        "SELECT count(*) WHERE {}",
        conditions(limits.max_terms / 2, " OR ")
    );
    let error = plan_sql(&sql, "web", search).expect_err("together over max_terms");
    assert_eq!(error.limit, Some("max_terms"));
}
