use super::*;
use crate::query::{parse_query, DefaultOperator};
use crate::sql::finish_aggregate;
use crate::sql::plan::{AggregateGroup, AggregateValue, KeyValue};

fn plan(sql: &str) -> Result<SqlPlan, SqlError> {
    plan_sql(sql, "web", Query::All)
}

fn aggregate(sql: &str) -> AggregatePlan {
    match plan(sql).expect("plans").shape {
        PlanShape::Aggregate(plan) => plan,
        PlanShape::Rows(_) => panic!("expected an aggregate plan for {sql}"),
    }
}

fn refused(sql: &str) -> SqlError {
    plan(sql).expect_err(sql)
}

#[test]
fn test_group_by_with_count_order_and_limit() {
    let plan = aggregate("SELECT host, count(*) AS c GROUP BY host ORDER BY c DESC LIMIT 10");
    assert_eq!(plan.group_by, vec![GroupKey::Field("host".into())]);
    assert_eq!(plan.aggregates, vec![AggregateFn::Count]);
    assert_eq!(plan.columns[0].name, "host");
    assert_eq!(plan.columns[1].name, "c");
    assert_eq!(
        plan.order_by,
        vec![OrderItem {
            operand: Operand::Aggregate(0),
            descending: true
        }]
    );
    assert_eq!(plan.limit, Some(10));
}

#[test]
fn test_every_aggregate_is_planned() {
    let plan = aggregate(
        "SELECT count(*), count(user), count(DISTINCT user), sum(bytes), avg(latency), \
         min(latency), max(latency), percentile(latency, 95), COUNT(1)",
    );
    assert!(plan.group_by.is_empty());
    assert_eq!(
        plan.aggregates,
        vec![
            AggregateFn::Count,
            AggregateFn::CountField("user".into()),
            AggregateFn::CountDistinct("user".into()),
            AggregateFn::Sum("bytes".into()),
            AggregateFn::Avg("latency".into()),
            AggregateFn::Min("latency".into()),
            AggregateFn::Max("latency".into()),
            AggregateFn::Percentile {
                field: "latency".into(),
                percent: 95.0
            },
        ]
    );
    // count(1) is count(*) and shares its aggregate.
    assert_eq!(plan.columns[8].operand, Operand::Aggregate(0));
    assert_eq!(plan.columns[0].name, "count(*)");
}

#[test]
fn test_time_buckets() {
    let plan = aggregate(
        "SELECT date_trunc('minute', time) AS m, count(*) FROM web GROUP BY m ORDER BY m",
    );
    assert_eq!(
        plan.group_by,
        vec![GroupKey::TimeBucket {
            interval_ns: 60_000_000_000
        }]
    );
    let plan = aggregate("SELECT time_bucket('5m', @timestamp), count(*) GROUP BY 1");
    assert_eq!(
        plan.group_by,
        vec![GroupKey::TimeBucket {
            interval_ns: 300_000_000_000
        }]
    );
    // The bucket in SELECT matches the one in GROUP BY by meaning, not by spelling.
    let plan = aggregate(
        "SELECT date_trunc('HOUR', \"@timestamp\"), count(*) GROUP BY date_trunc('hour', time)",
    );
    assert_eq!(plan.columns[0].operand, Operand::Key(0));
}

#[test]
fn test_dotted_and_quoted_fields() {
    let plan =
        aggregate("SELECT http.status, \"tags.env\", count(*) GROUP BY http.status, \"tags.env\"");
    assert_eq!(
        plan.group_by,
        vec![
            GroupKey::Field("http.status".into()),
            GroupKey::Field("tags.env".into())
        ]
    );
}

#[test]
fn test_where_is_pushed_into_the_engine_query() {
    let base = parse_query("error", DefaultOperator::And).expect("query");
    let plan = plan_sql(
        "SELECT count(*) WHERE status >= 500 AND host IN ('a', 'b') AND NOT path LIKE '/api%' \
         AND latency BETWEEN 10 AND 20 AND user IS NOT NULL AND 3 < retries",
        "web",
        base.clone(),
    )
    .expect("plans");
    let Query::And(parts) = plan.filter else {
        panic!("expected AND, got {:?}", plan.filter)
    };
    // The search and the WHERE conditions are one flat AND.
    assert_eq!(parts[0], base);
    assert_eq!(parts.len(), 7);
    let text = format!("{:?}", &parts[1..]);
    for expected in [
        "Range { field: \"status\", lower: Inclusive(\"500\"), upper: Unbounded }",
        "Term { field: Some(\"host\"), value: \"a\" }",
        "Not(Wildcard { field: Some(\"path\"), pattern: \"/api*\" })",
        "Range { field: \"latency\", lower: Inclusive(\"10\"), upper: Inclusive(\"20\") }",
        "Exists { field: \"user\" }",
        "Range { field: \"retries\", lower: Exclusive(\"3\"), upper: Unbounded }",
    ] {
        assert!(text.contains(expected), "{expected} not in {text}");
    }
}

#[test]
fn test_having_reads_aliases_and_aggregates_not_selected() {
    let plan = aggregate(
        "SELECT host, count(*) AS c GROUP BY host HAVING c > 1 AND max(latency) < 100 ORDER BY avg(latency)",
    );
    assert_eq!(plan.aggregates.len(), 3);
    assert!(plan.having.is_some());
    assert_eq!(plan.order_by[0].operand, Operand::Aggregate(2));
}

#[test]
fn test_projection_without_aggregates_returns_rows() {
    let plan = plan("SELECT time, host, message AS m ORDER BY time DESC LIMIT 10").expect("plans");
    assert_eq!(
        plan.shape,
        PlanShape::Rows(RowsPlan {
            columns: vec![
                RowColumn::Time {
                    name: "time".into()
                },
                RowColumn::Field {
                    name: "host".into(),
                    field: "host".into()
                },
                RowColumn::Field {
                    name: "m".into(),
                    field: "message".into()
                },
            ],
            limit: Some(10),
        })
    );
    assert!(matches!(
        plan_sql("SELECT *", "web", Query::All)
            .expect("plans")
            .shape,
        PlanShape::Rows(_)
    ));
}

#[test]
fn test_refused_constructs_are_named() {
    let cases = [
        (
            "SELECT a FROM web JOIN other ON web.a = other.a",
            "JOIN is not supported",
        ),
        (
            "SELECT foo(a), count(*) GROUP BY foo(a)",
            "GROUP BY `foo(a)` is not supported",
        ),
        (
            "SELECT upper(host), count(*) GROUP BY host",
            "function upper is not supported",
        ),
        (
            "SELECT count(*) FROM other",
            "FROM must name this pool `web`, found `other`",
        ),
        (
            "SELECT message, count(*) GROUP BY message",
            "message is the raw line, indexed for full-text search only",
        ),
        (
            "SELECT count(DISTINCT message)",
            "message is the raw line, indexed for full-text search only",
        ),
        (
            "SELECT count(*) FROM (SELECT 1)",
            "subqueries are not supported",
        ),
        (
            "SELECT a FROM web, other",
            "selecting from several tables is not supported",
        ),
        ("SELECT a UNION SELECT b", "UNION is not supported"),
        (
            "WITH t AS (SELECT 1) SELECT * FROM t",
            "WITH is not supported",
        ),
        ("SELECT DISTINCT host", "SELECT DISTINCT is not supported"),
        ("SELECT host, count(*)", "`host` must appear in GROUP BY"),
        (
            "SELECT count(*) WHERE count(*) > 1",
            "aggregate functions are not allowed in WHERE",
        ),
        (
            "SELECT sum(DISTINCT a)",
            "DISTINCT is supported in count only",
        ),
        ("SELECT count(*) OVER ()", "window functions"),
        (
            "SELECT count(*) GROUP BY time",
            "grouping by the raw time is not supported",
        ),
        (
            "SELECT date_trunc('month', time), count(*) GROUP BY 1",
            "date_trunc unit `month` is not supported",
        ),
        (
            "SELECT time_bucket('1x', time), count(*) GROUP BY 1",
            "time_bucket interval `1x`",
        ),
        (
            "SELECT date_trunc('hour', host), count(*) GROUP BY 1",
            "date_trunc works on `time` only",
        ),
        ("SELECT percentile(latency, 120)", "percent of percentile"),
        (
            "SELECT host ORDER BY host",
            "ORDER BY without GROUP BY supports only `time DESC`",
        ),
        (
            "SELECT count(*) LIMIT -1",
            "LIMIT must be a non-negative integer",
        ),
        ("DELETE FROM web", "DELETE statements are not supported"),
        ("SELECT 1; SELECT 2", "only one statement"),
        ("SELECT * , count(*)", "SELECT * cannot be combined"),
        (
            "SELECT count(*) WHERE a + 1 = 2",
            "WHERE compares a field with a constant",
        ),
        (
            "SELECT count(*) WHERE a = b",
            "expected a constant, found `b`",
        ),
        (
            "SELECT host, count(*) GROUP BY ROLLUP (host)",
            "is not supported",
        ),
        (
            "SELECT count(*) GROUP BY 3",
            "GROUP BY position 3 is not a column",
        ),
        (
            "SELECT host, count(*) AS c GROUP BY host ORDER BY c NULLS FIRST",
            "NULLS FIRST/LAST is not supported",
        ),
        ("SELEC count(*)", "invalid SQL"),
    ];
    for (sql, expected) in cases {
        let error = refused(sql);
        assert!(
            error.message.contains(expected),
            "`{sql}`: expected `{expected}` in `{}`",
            error.message
        );
    }
}

#[test]
fn test_errors_carry_positions() {
    let error = refused("SELECT a FROM web JOIN other ON web.a = other.a");
    assert_eq!(error.position, Some(23));
    let error = refused("SELECT host,\n  upper(host), count(*) GROUP BY host");
    assert_eq!(error.position, Some(15));
    let error = refused("SELECT count(*) FROM");
    assert!(
        error.message.starts_with("invalid SQL"),
        "{}",
        error.message
    );
    assert!(error.position.is_some(), "{error:?}");
    assert_eq!(
        error.clone().shifted(5).position,
        error.position.map(|p| p + 5)
    );
}

#[test]
fn test_finish_orders_filters_and_limits_groups() {
    let plan = aggregate(
        "SELECT host, count(*) AS c, avg(latency) GROUP BY host HAVING c >= 2 ORDER BY c DESC, host LIMIT 2",
    );
    let group = |host: &str, count: u64, avg: Option<f64>| AggregateGroup {
        keys: vec![KeyValue::Str(host.into())],
        values: vec![AggregateValue::Count(count), AggregateValue::Number(avg)],
    };
    let table = finish_aggregate(
        &plan,
        vec![
            group("a", 2, Some(1.5)),
            group("b", 5, None),
            group("c", 1, Some(3.0)),
            group("d", 2, Some(2.0)),
        ],
    );
    let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["host", "c", "avg(latency)"]);
    let types: Vec<&str> = table
        .columns
        .iter()
        .map(|c| c.column_type.as_str())
        .collect();
    assert_eq!(types, ["string", "long", "double"]);
    assert_eq!(
        table.rows,
        vec![
            vec![
                serde_json::json!("b"),
                serde_json::json!(5),
                serde_json::Value::Null
            ],
            vec![
                serde_json::json!("a"),
                serde_json::json!(2),
                serde_json::json!(1.5)
            ],
        ]
    );
}

#[test]
fn test_finish_answers_a_global_aggregate_over_nothing() {
    let plan = aggregate("SELECT count(*), max(latency)");
    let table = finish_aggregate(&plan, Vec::new());
    assert_eq!(
        table.rows,
        vec![vec![serde_json::json!(0), serde_json::Value::Null]]
    );
}
