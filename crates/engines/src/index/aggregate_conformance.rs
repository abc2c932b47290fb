//! The pipe-SQL aggregation suite every [`LogIndex`] runs: the same records, the
//! same plans, and answers compared with a plain computation over the records in
//! this file (loops and maps, no engine code).

use logpool_core::pool_id::PoolId;
use std::collections::{BTreeMap, BTreeSet};

use logpool_core::query::{parse_query, DefaultOperator, Query};
use logpool_core::record::FieldValue;
use logpool_core::routing::PoolRoute;
use logpool_core::sql::plan::{
    AggregateFn, AggregateGroup, AggregateValue, GroupKey, KeyValue, PlanShape,
};
use logpool_core::sql::{finish_aggregate, plan_sql};

use super::conformance::{doc, DAY_NS, T0};
use super::{AggregateRequest, IndexDoc, IndexError, LogIndex};

const HOSTS: [&str; 5] = ["web-1", "web-2", "db-1", "cache", "edge-7"];
const STATUSES: [i64; 4] = [200, 200, 404, 500];
const NUM_RECORDS: u64 = 360;
const MINUTE_NS: i64 = 60_000_000_000;

/// Records over three days: strings, integers, fractions, booleans, a sometimes
/// missing field and a dotted name.
pub(crate) fn aggregate_docs(pool_id: PoolId) -> Vec<IndexDoc> {
    (0..NUM_RECORDS)
        .map(|n| {
            let i = n as i64;
            // Spread over three days, several records per minute, out of order.
            let time_ns = T0 + (i % 3) * DAY_NS + ((i * 37) % 240) * MINUTE_NS + i;
            let mut fields: Vec<(&str, FieldValue)> = vec![
                (
                    "message",
                    FieldValue::Str(format!("request {n} from {}", HOSTS[(n % 5) as usize])),
                ),
                (
                    "host",
                    FieldValue::Str(HOSTS[((n * 7) % 5) as usize].into()),
                ),
                ("status", FieldValue::Long(STATUSES[(n % 4) as usize])),
                ("bytes", FieldValue::Long((i * 131) % 1_000)),
                (
                    "latency",
                    FieldValue::Double(((i * 53) % 900) as f64 + 0.25),
                ),
                ("ok", FieldValue::Bool(n % 3 != 0)),
                (
                    "http.method",
                    FieldValue::Str(["GET", "POST"][(n % 2) as usize].into()),
                ),
            ];
            if n % 4 != 1 {
                fields.push(("user", FieldValue::Str(format!("u{}", n % 11))));
            }
            doc(pool_id, n / 10, (n % 10) as u32, time_ns, &fields)
        })
        .collect()
}

fn key_of(record_value: Option<&FieldValue>) -> KeyValue {
    match record_value {
        None => KeyValue::Null,
        Some(FieldValue::Str(s)) => KeyValue::Str(s.clone()),
        Some(FieldValue::Long(n)) => KeyValue::Long(*n),
        Some(FieldValue::Double(x)) => KeyValue::Double(*x),
        Some(FieldValue::Bool(b)) => KeyValue::Bool(*b),
    }
}

/// A sortable text form of a key, for comparing group lists.
fn key_text(keys: &[KeyValue]) -> String {
    format!("{keys:?}")
}

/// What a group should hold, computed by hand.
#[derive(Debug, Default, Clone)]
struct Expected {
    count: u64,
    with_field: BTreeMap<usize, u64>,
    distinct: BTreeMap<usize, BTreeSet<String>>,
    numbers: BTreeMap<usize, Vec<f64>>,
}

fn expected_groups(
    docs: &[IndexDoc],
    filter: impl Fn(&IndexDoc) -> bool,
    group_by: &[GroupKey],
    aggregates: &[AggregateFn],
) -> BTreeMap<String, (Vec<KeyValue>, Expected)> {
    let mut groups: BTreeMap<String, (Vec<KeyValue>, Expected)> = BTreeMap::new();
    for doc in docs.iter().filter(|doc| filter(doc)) {
        let keys: Vec<KeyValue> = group_by
            .iter()
            .map(|key| match key {
                GroupKey::Field(field) => key_of(doc.record.fields.get(field)),
                GroupKey::TimeBucket { interval_ns } => {
                    KeyValue::Time(doc.record.time_ns.div_euclid(*interval_ns) * interval_ns)
                }
            })
            .collect();
        let entry = groups
            .entry(key_text(&keys))
            .or_insert_with(|| (keys.clone(), Expected::default()));
        entry.1.count += 1;
        for (index, aggregate) in aggregates.iter().enumerate() {
            let Some(value) = aggregate.field().and_then(|f| doc.record.fields.get(f)) else {
                continue;
            };
            *entry.1.with_field.entry(index).or_insert(0) += 1;
            entry
                .1
                .distinct
                .entry(index)
                .or_default()
                .insert(format!("{value:?}"));
            if let Some(number) = value.as_f64() {
                entry.1.numbers.entry(index).or_default().push(number);
            }
        }
    }
    groups
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

fn check_value(
    context: &str,
    aggregate: &AggregateFn,
    index: usize,
    expected: &Expected,
    got: AggregateValue,
) {
    let numbers = expected.numbers.get(&index).cloned().unwrap_or_default();
    match aggregate {
        AggregateFn::Count => assert_eq!(got, AggregateValue::Count(expected.count), "{context}"),
        AggregateFn::CountField(_) => assert_eq!(
            got,
            AggregateValue::Count(expected.with_field.get(&index).copied().unwrap_or(0)),
            "{context}"
        ),
        AggregateFn::CountDistinct(_) => assert_eq!(
            got,
            AggregateValue::Count(
                expected
                    .distinct
                    .get(&index)
                    .map_or(0, |set| set.len() as u64)
            ),
            "{context}"
        ),
        AggregateFn::Sum(_) | AggregateFn::Avg(_) | AggregateFn::Min(_) | AggregateFn::Max(_) => {
            let want = if numbers.is_empty() {
                None
            } else {
                Some(match aggregate {
                    AggregateFn::Sum(_) => numbers.iter().sum(),
                    AggregateFn::Avg(_) => numbers.iter().sum::<f64>() / numbers.len() as f64,
                    AggregateFn::Min(_) => numbers.iter().copied().fold(f64::INFINITY, f64::min),
                    _ => numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                })
            };
            let AggregateValue::Number(value) = got else {
                panic!("{context}: expected a number, got {got:?}")
            };
            match (want, value) {
                (None, None) => {}
                (Some(want), Some(value)) => {
                    assert!(close(want, value), "{context}: {value} != {want}")
                }
                _ => panic!("{context}: {value:?} != {want:?}"),
            }
        }
        AggregateFn::Percentile { percent, .. } => {
            let AggregateValue::Number(value) = got else {
                panic!("{context}: expected a number, got {got:?}")
            };
            if numbers.is_empty() {
                assert_eq!(value, None, "{context}");
                return;
            }
            // Approximate on purpose (t-digest, DDSketch): the answer must lie between
            // the values at the neighbouring ranks, give or take 1% of the spread.
            let mut sorted = numbers.clone();
            sorted.sort_by(f64::total_cmp);
            let rank = percent / 100.0 * (sorted.len() - 1) as f64;
            let spread = sorted[sorted.len() - 1] - sorted[0];
            let low_index = (rank.floor() as usize).saturating_sub(1);
            let high_index = (rank.ceil() as usize + 1).min(sorted.len() - 1);
            let value = value.unwrap_or(f64::NAN);
            assert!(
                value >= sorted[low_index] - spread * 0.01 - 1e-9
                    && value <= sorted[high_index] + spread * 0.01 + 1e-9,
                "{context}: percentile {value} outside [{}, {}]",
                sorted[low_index],
                sorted[high_index]
            );
        }
    }
}

fn parse(query: &str) -> Query {
    parse_query(query, DefaultOperator::And).expect("query parses")
}

fn request(
    query: Query,
    group_by: Vec<GroupKey>,
    aggregates: Vec<AggregateFn>,
) -> AggregateRequest {
    AggregateRequest {
        query,
        from_ns: T0 - DAY_NS,
        to_ns: T0 + 4 * DAY_NS,
        group_by,
        aggregates,
        max_groups: 10_000,
        memory: logpool_core::memory::RequestMemory::unlimited(),
    }
}

async fn check_plan(
    index: &dyn LogIndex,
    pool: &PoolRoute,
    docs: &[IndexDoc],
    request: AggregateRequest,
    filter: impl Fn(&IndexDoc) -> bool,
) -> Vec<AggregateGroup> {
    let context = format!(
        "{:?} {:?} where {:?}",
        request.group_by, request.aggregates, request.query
    );
    let got = index.aggregate(pool, &request).await.expect("aggregate");
    let expected = expected_groups(docs, filter, &request.group_by, &request.aggregates);
    let got_by_key: BTreeMap<String, &AggregateGroup> = got
        .iter()
        .map(|group| (key_text(&group.keys), group))
        .collect();
    assert_eq!(
        got_by_key.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{context}: group keys"
    );
    for (key, (_, want)) in &expected {
        let group = got_by_key[key];
        for (index, aggregate) in request.aggregates.iter().enumerate() {
            check_value(
                &format!("{context} group {key} {aggregate:?}"),
                aggregate,
                index,
                want,
                group.values[index],
            );
        }
    }
    got
}

/// Runs the suite against `index`, writing into `pool`.
pub(crate) async fn check_aggregations(index: &dyn LogIndex, pool: &PoolRoute) {
    let docs = aggregate_docs(pool.pool_id);
    index.ensure_pool(pool).await.expect("ensure pool");
    let report = index.write(pool, docs.clone(), false).await.expect("write");
    assert!(
        report.rejected.is_empty(),
        "rejected: {:?}",
        report.rejected
    );
    index.commit().await.expect("commit");
    let field = |name: &str| GroupKey::Field(name.to_string());
    let metrics = |name: &str| {
        vec![
            AggregateFn::Count,
            AggregateFn::CountField(name.to_string()),
            AggregateFn::CountDistinct("user".to_string()),
            AggregateFn::Sum(name.to_string()),
            AggregateFn::Avg(name.to_string()),
            AggregateFn::Min(name.to_string()),
            AggregateFn::Max(name.to_string()),
            AggregateFn::Percentile {
                field: name.to_string(),
                percent: 90.0,
            },
        ]
    };
    let all = |_: &IndexDoc| true;

    // One key of each type, plus a key that is missing in some records (null group).
    for key in ["host", "status", "ok", "user", "http.method"] {
        check_plan(
            index,
            pool,
            &docs,
            request(Query::All, vec![field(key)], metrics("latency")),
            all,
        )
        .await;
    }
    // Two keys, integer metrics.
    check_plan(
        index,
        pool,
        &docs,
        request(
            Query::All,
            vec![field("status"), field("host")],
            metrics("bytes"),
        ),
        all,
    )
    .await;
    // Time buckets across partitions, alone and with a field.
    for interval_ns in [MINUTE_NS, 60 * MINUTE_NS, DAY_NS] {
        check_plan(
            index,
            pool,
            &docs,
            request(
                Query::All,
                vec![GroupKey::TimeBucket { interval_ns }],
                vec![AggregateFn::Count],
            ),
            all,
        )
        .await;
    }
    check_plan(
        index,
        pool,
        &docs,
        request(
            Query::All,
            vec![
                GroupKey::TimeBucket {
                    interval_ns: 5 * MINUTE_NS,
                },
                field("host"),
            ],
            vec![AggregateFn::Count, AggregateFn::Max("bytes".into())],
        ),
        all,
    )
    .await;
    // A filter from the query language, a global aggregate, and one over nothing.
    let is_error = |doc: &IndexDoc| doc.record.fields.get("status") == Some(&FieldValue::Long(500));
    check_plan(
        index,
        pool,
        &docs,
        request(parse("status:500"), vec![field("host")], metrics("latency")),
        is_error,
    )
    .await;
    check_plan(
        index,
        pool,
        &docs,
        request(parse("status:500"), Vec::new(), metrics("bytes")),
        is_error,
    )
    .await;
    let nothing = index
        .aggregate(
            pool,
            &request(parse("status:999"), Vec::new(), vec![AggregateFn::Count]),
        )
        .await
        .expect("aggregate over nothing");
    assert!(
        nothing.is_empty(),
        "no group when nothing matches: {nothing:?}"
    );

    // The planned statement end to end: a top-N by count equals the hand-made one.
    let plan = plan_sql(
        " SELECT host, count(*) AS c GROUP BY host HAVING c > 10 ORDER BY c DESC, host LIMIT 3",
        &pool.name,
        parse("ok:true"),
    )
    .expect("plans");
    let PlanShape::Aggregate(aggregate) = &plan.shape else {
        panic!("expected an aggregate plan")
    };
    let groups = index
        .aggregate(
            pool,
            &request(
                plan.filter.clone(),
                aggregate.group_by.clone(),
                aggregate.aggregates.clone(),
            ),
        )
        .await
        .expect("aggregate");
    let table = finish_aggregate(aggregate, groups);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for doc in docs
        .iter()
        .filter(|doc| doc.record.fields.get("ok") == Some(&FieldValue::Bool(true)))
    {
        if let Some(FieldValue::Str(host)) = doc.record.fields.get("host") {
            *counts.entry(host.clone()).or_insert(0) += 1;
        }
    }
    let mut expected: Vec<(String, u64)> = counts.into_iter().filter(|(_, c)| *c > 10).collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    expected.truncate(3);
    let expected_rows: Vec<Vec<serde_json::Value>> = expected
        .into_iter()
        .map(|(host, count)| vec![serde_json::json!(host), serde_json::json!(count)])
        .collect();
    assert_eq!(table.rows, expected_rows);

    // More groups than allowed is an error, never a silent cut.
    let mut capped = request(Query::All, vec![field("bytes")], vec![AggregateFn::Count]);
    capped.max_groups = 50;
    match index.aggregate(pool, &capped).await {
        Err(IndexError::LimitExceeded(_)) => {}
        other => panic!("expected LimitExceeded, got {other:?}"),
    }

    // A group table larger than the memory budget is an error too, naming the
    // budget; the same request within its budget answers.
    let mut budgeted = request(Query::All, vec![field("bytes")], vec![AggregateFn::Count]);
    budgeted.memory = logpool_core::memory::RequestMemory::limited(2_000);
    match index.aggregate(pool, &budgeted).await {
        Err(IndexError::OverMemoryBudget {
            budget: logpool_core::memory::OverBudget::Request { limit: 2_000 },
            ..
        }) => {}
        other => panic!("expected OverMemoryBudget, got {other:?}"),
    }
    budgeted.memory = logpool_core::memory::RequestMemory::limited(10_000_000);
    assert!(index.aggregate(pool, &budgeted).await.is_ok());
}
