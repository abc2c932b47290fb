//! Plans pipelines and runs them over records in memory.

use serde_json::{json, Map, Value as Json};

use super::expr::EvalContext;
use super::{EvalError, Evaluator};
use crate::limits::QueryLimits;
use crate::memory::RequestMemory;
use crate::query::Query;
use crate::sql::finish::SqlTable;
use crate::sql::{plan_pipeline, split_pipeline, Planned};

const CTX: EvalContext = EvalContext {
    now_ns: 0,
    max_value_bytes: 1 << 20,
};

fn plan(text: &str) -> Planned {
    let pipeline = split_pipeline(text).expect("valid").expect("pipe");
    plan_pipeline(
        pipeline.sql.unwrap_or("SELECT *"),
        "web",
        Query::All,
        pipeline.stages,
        &QueryLimits::default(),
    )
    .expect("plans")
}

fn records() -> Vec<(i64, Map<String, Json>)> {
    let lines = [
        ("a", r#"10.0.0.1 GET /x?id=1 200 12"#, 60),
        ("a", r#"10.0.0.2 GET /y 500 7"#, 61),
        ("b", r#"192.168.0.9 POST /x?id=2 200 30"#, 125),
        ("b", r#"192.168.0.9 GET /x?id=1 404 1"#, 130),
        ("c", r#"8.8.8.8 GET /z 200 100"#, 200),
    ];
    lines
        .iter()
        .map(|(host, line, secs)| {
            let fields = json!({ "host": host, "message": line, "n": line.len() });
            let Json::Object(fields) = fields else {
                unreachable!("an object")
            };
            (secs * 1_000_000_000, fields)
        })
        .collect()
}

fn run_with(text: &str, memory: RequestMemory, max_groups: usize) -> Result<SqlTable, EvalError> {
    let Planned::Evaluated { plan, .. } = plan(text) else {
        panic!("`{text}` is pushed down");
    };
    let mut evaluator = Evaluator::new(&plan, CTX, memory, max_groups, 100);
    for (time_ns, mut fields) in records() {
        if !evaluator.push(time_ns, &mut fields)? {
            break;
        }
    }
    evaluator.finish()
}

fn run(text: &str) -> Json {
    let table = run_with(text, RequestMemory::unlimited(), 1000).expect("runs");
    Json::Array(table.rows.into_iter().map(Json::Array).collect())
}

#[test]
fn test_plain_group_bys_stay_pushed_down() {
    assert!(matches!(
        plan("* | SELECT host, count(*) GROUP BY host"),
        Planned::Pushed(_)
    ));
    assert!(matches!(
        plan("* | SELECT date_trunc('minute', time) AS m, avg(n) GROUP BY m"),
        Planned::Pushed(_)
    ));
    assert!(matches!(
        plan("* | SELECT lower(host), count(*) GROUP BY 1"),
        Planned::Evaluated { .. }
    ));
}

#[test]
fn test_where_conditions_on_fields_go_to_the_engine() {
    let Planned::Evaluated { filter, plan } =
        plan("* | SELECT count(*) WHERE host = 'a' AND length(message) > 3 AND n >= 2")
    else {
        panic!("evaluated");
    };
    let Query::And(parts) = filter else {
        panic!("{filter:?}");
    };
    assert_eq!(parts.len(), 2, "host and n are pushed: {parts:?}");
    assert!(plan.residual.is_some(), "length() is checked per record");
}

#[test]
fn test_expressions_group_and_aggregate() {
    assert_eq!(
        run("* | SELECT host, count(*) AS c, sum(n) AS s, count_if(message LIKE '%GET%') AS g GROUP BY host ORDER BY c DESC, host"),
        json!([["a", 2, 48, 2], ["b", 2, 60, 1], ["c", 1, 22, 1]])
    );
    assert_eq!(
        run("* | SELECT split_part(message, ' ', 2) AS method, percentile(CAST(split_part(message, ' ', 5) AS BIGINT), 50) AS p GROUP BY method ORDER BY method"),
        json!([["GET", 9.5], ["POST", 30.0]])
    );
    assert_eq!(
        run("* | SELECT date_trunc('minute', time) AS m, count_if(n > 0) AS c GROUP BY m HAVING count(*) > 1 ORDER BY m"),
        json!([["1970-01-01T00:01:00Z", 2], ["1970-01-01T00:02:00Z", 2]])
    );
}

#[test]
fn test_windows_run_over_the_groups() {
    assert_eq!(
        run("* | SELECT host, count(*) AS c, lag(count(*), 1, 0) OVER (ORDER BY host) AS prev, sum(count(*)) OVER (ORDER BY host) AS running, rank() OVER (ORDER BY count(*) DESC) AS r GROUP BY host ORDER BY host"),
        json!([["a", 2, 0, 2, 1], ["b", 2, 2, 4, 1], ["c", 1, 2, 5, 3]])
    );
}

#[test]
fn test_rows_are_ordered_limited_and_projected() {
    assert_eq!(
        run("* | SELECT upper(host) AS h, n FROM web WHERE n > 20 ORDER BY n DESC, h LIMIT 2"),
        json!([["B", 31], ["B", 29]])
    );
}

#[test]
fn test_extraction_stages_feed_the_statement() {
    assert_eq!(
        run(
            r#"* | pattern "<ip> <method> <path> <status> <bytes>" | SELECT url_extract_path(path) AS p, count(*) AS c, sum(bytes) AS b WHERE status <> '500' GROUP BY p ORDER BY p"#
        ),
        json!([["/x", 3, 43], ["/z", 1, 100]])
    );
    assert_eq!(
        run(
            r#"* | regexp "^(?P<ip>\S+)" | SELECT ip_prefix(ip, 16) AS net, count(*) AS c GROUP BY net ORDER BY c DESC, net LIMIT 1"#
        ),
        json!([["10.0.0.0/16", 2]])
    );
}

#[test]
fn test_limits_are_enforced() {
    let too_many = run_with(
        "* | SELECT message, count(*) GROUP BY message",
        RequestMemory::unlimited(),
        3,
    );
    assert_eq!(too_many, Err(EvalError::TooManyGroups { limit: 3 }));
    let over = run_with(
        "* | SELECT message, count(*) GROUP BY message",
        RequestMemory::limited(200),
        1000,
    );
    assert!(
        matches!(over, Err(EvalError::OverBudget { .. })),
        "{over:?}"
    );
    let cast = run_with(
        "* | SELECT CAST(host AS BIGINT) AS x LIMIT 1",
        RequestMemory::unlimited(),
        10,
    );
    assert!(matches!(cast, Err(EvalError::Cast { .. })), "{cast:?}");
}

#[test]
fn test_errors_name_the_construct_and_position() {
    let error = |text: &str| {
        let pipeline = split_pipeline(text).expect("valid").expect("pipe");
        plan_pipeline(
            pipeline.sql.unwrap_or("SELECT *"),
            "web",
            Query::All,
            pipeline.stages,
            &QueryLimits::default(),
        )
        .expect_err("refused")
    };
    let invalid = error("* | SELECT regexp_like(message, 'a(b')");
    assert!(
        invalid.message.contains("invalid regular expression"),
        "{invalid:?}"
    );
    // At the unclosed `(` of the pattern.
    assert_eq!(invalid.position, Some(31), "{invalid:?}");
    let unknown = error("* | SELECT nope(message)");
    assert_eq!(unknown.position, Some(8), "{unknown:?}");
    let ungrouped = error("* | SELECT host, lower(message), count(*) GROUP BY host");
    assert!(
        ungrouped.message.contains("must appear in GROUP BY"),
        "{ungrouped:?}"
    );
}

#[test]
fn test_json_stage_fields_are_named_by_their_path() {
    let Planned::Evaluated { plan, .. } = plan(
        "* | json from payload | SELECT user.country AS country, count(*) AS c, if(true, 1) AS one GROUP BY country ORDER BY country",
    ) else {
        panic!("evaluated");
    };
    let mut evaluator = Evaluator::new(&plan, CTX, RequestMemory::unlimited(), 10, 10);
    for (n, country) in ["de", "fr", "de"].iter().enumerate() {
        let payload = format!(r#"{{"user":{{"country":"{country}","id":{n}}}}}"#);
        let mut fields = Map::new();
        fields.insert("payload".into(), Json::String(payload));
        evaluator.push(0, &mut fields).expect("push");
    }
    let table = evaluator.finish().expect("finish");
    assert_eq!(
        table.rows,
        vec![
            vec![json!("de"), json!(2), json!(1)],
            vec![json!("fr"), json!(1), json!(1)]
        ]
    );
}
