//! Tests of the tantivy index against real indexes in a temporary directory.

use logpool_core::pool_id::PoolId;
use std::collections::BTreeMap;

use logpool_core::query::{parse_query, DefaultOperator};
use logpool_core::record::FieldValue;
use logpool_core::routing::PoolRoute;

use super::*;
use crate::index::conformance::{doc, learned, request, sample_docs, T0};

const DAY: i64 = DAY_NS;

fn pool(pool_id: PoolId) -> PoolRoute {
    PoolRoute {
        pool_id,
        tenant: "default".into(),
        project: "p".into(),
        name: format!("pool{pool_id}"),
        partitions: vec![0, 1],
        retention_days: 7,
        field_hints: BTreeMap::new(),
        event_window: Default::default(),
        learned_types: Default::default(),
    }
}

/// Writes one record per `(time, message)` to pool 1 (partition 0, one batch) and
/// commits.
async fn write_messages(index: &TantivyIndex, messages: &[(i64, String)]) {
    write_values(index, "message", messages).await;
}

/// Writes one record per `(time, text)` with the text in field `name`, and commits.
async fn write_values(index: &TantivyIndex, name: &str, values: &[(i64, String)]) {
    let docs: Vec<IndexDoc> = values
        .iter()
        .enumerate()
        .map(|(n, (time_ns, text))| {
            doc(
                PoolId::new(1),
                0,
                n as u32,
                *time_ns,
                &[(name, FieldValue::Str(text.clone()))],
            )
        })
        .collect();
    index
        .write(&pool(PoolId::new(1)), docs, false)
        .await
        .expect("write");
    index.commit().await.expect("commit");
}

/// Matches of `query` in pool 1, over the conformance time range.
async fn total(index: &TantivyIndex, query: &str) -> u64 {
    total_in(index, &pool(PoolId::new(1)), query).await
}

/// Matches of `query` in `pool`, over the conformance time range.
async fn total_in(index: &TantivyIndex, pool: &PoolRoute, query: &str) -> u64 {
    index
        .search(pool, &request(query))
        .await
        .expect("search")
        .total
}

fn open(dir: &std::path::Path) -> TantivyIndex {
    TantivyIndex::open(TantivyIndexConfig {
        dir: dir.to_path_buf(),
        writer_memory_bytes: 15_000_000,
        writer_threads: 1,
        writer_merge_threads: 1,
        max_open_writers: 2,
    })
    .expect("open index")
}

#[tokio::test(flavor = "multi_thread")]
async fn test_conformance_queries() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::index::conformance::check_query_suite(&open(dir.path()), &pool(PoolId::new(1))).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test_conformance_loghub_agrees_with_the_evaluator() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::index::conformance::check_loghub_agreement(&open(dir.path()), &pool(PoolId::new(1)))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test_conformance_field_hints() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::index::conformance::check_field_hints(&open(dir.path()), &pool(PoolId::new(1))).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test_conformance_field_types_declared_and_learned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    let reopen = move || -> Box<dyn LogIndex> { Box::new(open(&path)) };
    crate::index::conformance::check_field_types(&open(dir.path()), &reopen, &pool(PoolId::new(1)))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test_conformance_context() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::index::conformance::check_context(&open(dir.path()), &pool(PoolId::new(1))).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test_conformance_paging() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::index::conformance::check_paging(&open(dir.path()), &pool(PoolId::new(1))).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test_conformance_idempotent_rewrites_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    crate::index::conformance::check_idempotent_rewrites(&index, &pool(PoolId::new(1))).await;
    drop(index);
    let index = open(dir.path());
    assert_eq!(
        index
            .search(&pool(PoolId::new(1)), &request(""))
            .await
            .expect("search")
            .total,
        4
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn test_histogram_buckets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    index
        .write(&pool(PoolId::new(1)), sample_docs(PoolId::new(1)), false)
        .await
        .expect("write");
    index.commit().await.expect("commit");
    let buckets = index
        .histogram(
            &pool(PoolId::new(1)),
            &HistogramRequest {
                query: parse_query("", DefaultOperator::And).expect("query"),
                from_ns: T0 - DAY,
                to_ns: T0 + 3 * DAY,
                interval_ns: DAY,
            },
        )
        .await
        .expect("histogram");
    let counts: Vec<u64> = buckets.iter().map(|b| b.count).collect();
    assert_eq!(counts, [2, 1, 1]);
    assert!(buckets.iter().all(|b| b.time_ns % DAY == 0));
}

/// The histogram collector keeps the bucket of the previous document open; times
/// that jump back and forth inside one segment must still land in their buckets.
#[tokio::test(flavor = "multi_thread")]
async fn test_histogram_counts_times_out_of_order() {
    const HOUR: i64 = DAY / 24;
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    // The start of T0's day: buckets are aligned to the epoch, all in one partition.
    let day = T0 - T0.rem_euclid(DAY);
    let offsets = [5 * HOUR, HOUR, 5 * HOUR + 1, HOUR + 1, 23 * HOUR, HOUR + 2];
    let messages: Vec<(i64, String)> = offsets
        .iter()
        .enumerate()
        .map(|(i, offset)| (day + offset, format!("event {i}")))
        .collect();
    write_messages(&index, &messages).await;
    let buckets = index
        .histogram(
            &pool(PoolId::new(1)),
            &HistogramRequest {
                query: parse_query("", DefaultOperator::And).expect("query"),
                from_ns: day,
                to_ns: day + DAY,
                interval_ns: HOUR,
            },
        )
        .await
        .expect("histogram");
    let counts: Vec<(i64, u64)> = buckets
        .iter()
        .map(|b| ((b.time_ns - day) / HOUR, b.count))
        .collect();
    assert_eq!(counts, [(1, 3), (5, 2), (23, 1)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn test_retention_and_drop_pool_touch_only_their_pool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    index
        .write(&pool(PoolId::new(1)), sample_docs(PoolId::new(1)), false)
        .await
        .expect("write");
    let other: Vec<IndexDoc> = sample_docs(PoolId::new(1))
        .into_iter()
        .map(|mut d| {
            d.identity.pool_id = PoolId::new(2);
            d
        })
        .collect();
    index
        .write(&pool(PoolId::new(2)), other, false)
        .await
        .expect("write");
    index.commit().await.expect("commit");
    // Seven-day retention, evaluated 8 days and 1 hour after T0 (22:13 UTC): only the
    // day of T0 has ended more than seven days ago.
    let mut short = pool(PoolId::new(1));
    short.retention_days = 7;
    let dropped = index
        .drop_expired(&short, T0 + 8 * DAY + 3_600_000_000_000)
        .await
        .expect("retention");
    assert_eq!(dropped, 1);
    assert_eq!(
        index
            .search(&pool(PoolId::new(1)), &request(""))
            .await
            .expect("search")
            .total,
        2
    );
    assert_eq!(
        index
            .search(&pool(PoolId::new(2)), &request(""))
            .await
            .expect("search")
            .total,
        4
    );
    index.drop_pool(PoolId::new(1)).await.expect("drop");
    assert_eq!(
        index
            .search(&pool(PoolId::new(1)), &request(""))
            .await
            .expect("search")
            .total,
        0
    );
    assert_eq!(
        index
            .search(&pool(PoolId::new(2)), &request(""))
            .await
            .expect("search")
            .total,
        4
    );
    // Pools live under their tenant's directory; the dropped one is gone from it.
    assert!(!dir.path().join("default").join("1").exists());
    assert!(dir.path().join("default").join("2").is_dir());
}

#[tokio::test(flavor = "multi_thread")]
async fn test_many_days_close_writers_without_losing_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    for day in 0..5 {
        index
            .write(
                &pool(PoolId::new(1)),
                vec![doc(
                    PoolId::new(1),
                    day as u64,
                    0,
                    T0 + day * DAY,
                    &[("message", FieldValue::Str("x".into()))],
                )],
                false,
            )
            .await
            .expect("write");
        index.commit().await.expect("commit");
    }
    assert_eq!(
        index
            .search(&pool(PoolId::new(1)), &request("x"))
            .await
            .expect("search")
            .total,
        5
    );
    index.shutdown().await.expect("shutdown");
}

/// One write whose records span many days never holds more than `max_open_writers`
/// writers, and a redelivery of the same messages replaces them: the writers closed
/// early were committed, nothing is lost and nothing doubled.
#[tokio::test(flavor = "multi_thread")]
async fn test_one_write_over_many_days_stays_within_the_writer_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    let days = 40;
    let batch = || -> Vec<IndexDoc> {
        (0..days)
            .map(|day| {
                doc(
                    PoolId::new(1),
                    7,
                    day as u32,
                    T0 - day * DAY,
                    &[("message", FieldValue::Str("spread".into()))],
                )
            })
            .collect()
    };
    index
        .write(&pool(PoolId::new(1)), batch(), false)
        .await
        .expect("write");
    assert_eq!(
        index
            .peak_open_writers
            .load(std::sync::atomic::Ordering::Relaxed),
        2,
        "the bound of the test index"
    );
    index.commit().await.expect("commit");
    index
        .write(&pool(PoolId::new(1)), batch(), true)
        .await
        .expect("redelivery");
    index.commit().await.expect("commit");
    let page = index
        .search(&pool(PoolId::new(1)), &request("spread"))
        .await
        .expect("search");
    assert_eq!(page.total, days as u64, "every day once");
    assert!(
        index
            .peak_open_writers
            .load(std::sync::atomic::Ordering::Relaxed)
            <= 2
    );
    index.shutdown().await.expect("shutdown");
}

/// The message is indexed once, under `fields.message`; bare terms, phrases and
/// wildcards still find it, phrases still never cross into another field, and a
/// message typed as a number by a hint keeps its text searchable as a bare term.
#[tokio::test(flavor = "multi_thread")]
async fn test_bare_queries_find_the_message_indexed_once() {
    use logpool_core::sql::plan::{AggregateFn, AggregateValue, GroupKey, KeyValue};

    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    let docs = vec![
        doc(
            PoolId::new(1),
            0,
            0,
            T0,
            &[
                ("message", FieldValue::Str("Disk full on sda".into())),
                ("host", FieldValue::Str("web-1".into())),
            ],
        ),
        doc(
            PoolId::new(1),
            0,
            1,
            T0 + 1,
            &[("host", FieldValue::Str("disk-2".into()))],
        ),
    ];
    let pool1 = learned(&pool(PoolId::new(1)), &docs);
    index.write(&pool1, docs, false).await.expect("write");
    let mut hinted = pool(PoolId::new(2));
    hinted
        .field_hints
        .insert("message".into(), logpool_core::routing::FieldType::Long);
    let numeric = vec![doc(
        PoolId::new(1),
        0,
        0,
        T0,
        &[("message", FieldValue::Str("404".into()))],
    )];
    index.write(&hinted, numeric, false).await.expect("write");
    index.commit().await.expect("commit");
    let total_in = |pool: PoolRoute, query: &'static str| {
        let index = &index;
        async move {
            index
                .search(&pool, &request(query))
                .await
                .expect("search")
                .total
        }
    };
    assert_eq!(total_in(pool1.clone(), "full").await, 1);
    assert_eq!(total_in(pool1.clone(), "\"disk full\"").await, 1);
    assert_eq!(total_in(pool1.clone(), "fu*").await, 1);
    assert_eq!(total_in(pool1.clone(), "disk").await, 2);
    assert_eq!(total_in(pool1.clone(), "message:disk").await, 1);
    assert_eq!(total_in(pool1.clone(), "NOT full").await, 1);
    assert_eq!(total_in(pool1.clone(), "\"sda web\"").await, 0);
    assert_eq!(total_in(hinted.clone(), "404").await, 1);
    assert_eq!(total_in(hinted, "message:404").await, 1);
    // The raw line is full text only: wildcards and ranges run on its tokens...
    assert_eq!(total_in(pool1.clone(), "message:dis*").await, 1);
    assert_eq!(total_in(pool1.clone(), "message:[Sd TO sdz]").await, 1);
    assert_eq!(total_in(pool1.clone(), "message:[t TO z]").await, 0);
    assert_eq!(total_in(pool1.clone(), "message:[100 TO 200]").await, 0);
    // ...and it has no column (pipe SQL refuses to group by it): every record
    // groups as null, while a short text field groups by value.
    let group_counts = |field: &'static str| {
        let index = &index;
        let pool1 = &pool1;
        async move {
            let request = crate::index::AggregateRequest {
                query: parse_query("", DefaultOperator::And).expect("query"),
                from_ns: T0 - DAY,
                to_ns: T0 + DAY,
                group_by: vec![GroupKey::Field(field.into())],
                aggregates: vec![AggregateFn::Count],
                max_groups: 100,
                memory: logpool_core::memory::RequestMemory::unlimited(),
            };
            let mut got: Vec<(KeyValue, AggregateValue)> = index
                .aggregate(pool1, &request)
                .await
                .expect("aggregate")
                .into_iter()
                .map(|group| (group.keys[0].clone(), group.values[0]))
                .collect();
            got.sort_by_key(|(key, _)| format!("{key:?}"));
            got
        }
    };
    assert_eq!(
        group_counts("message").await,
        vec![(KeyValue::Null, AggregateValue::Count(2))]
    );
    assert_eq!(
        group_counts("host").await,
        vec![
            (KeyValue::Str("disk-2".into()), AggregateValue::Count(1)),
            (KeyValue::Str("web-1".into()), AggregateValue::Count(1)),
        ]
    );
}

/// Strings longer than the keyword limit have no fast column entry: they group as
/// null, like an Elasticsearch keyword with `ignore_above`, while short ones group.
#[tokio::test(flavor = "multi_thread")]
async fn test_long_strings_group_as_null() {
    use logpool_core::sql::plan::{AggregateFn, AggregateValue, GroupKey, KeyValue};

    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    let at_limit = "a".repeat(schema::KEYWORD_IGNORE_ABOVE);
    let over_limit = "b".repeat(schema::KEYWORD_IGNORE_ABOVE + 1);
    let details: Vec<(i64, String)> = [&at_limit, &over_limit, &over_limit]
        .into_iter()
        .enumerate()
        .map(|(n, detail)| (T0 + n as i64, detail.clone()))
        .collect();
    write_values(&index, "detail", &details).await;
    let groups = index
        .aggregate(
            &pool(PoolId::new(1)),
            &crate::index::AggregateRequest {
                query: parse_query("", DefaultOperator::And).expect("query"),
                from_ns: T0 - DAY,
                to_ns: T0 + DAY,
                group_by: vec![GroupKey::Field("detail".into())],
                aggregates: vec![AggregateFn::Count],
                max_groups: 100,
                memory: logpool_core::memory::RequestMemory::unlimited(),
            },
        )
        .await
        .expect("aggregate");
    let mut got: Vec<(KeyValue, AggregateValue)> = groups
        .into_iter()
        .map(|group| (group.keys[0].clone(), group.values[0]))
        .collect();
    got.sort_by_key(|(key, _)| format!("{key:?}"));
    assert_eq!(
        got,
        vec![
            (KeyValue::Null, AggregateValue::Count(2)),
            (KeyValue::Str(at_limit), AggregateValue::Count(1)),
        ]
    );
}

/// Ids are rebuilt from the tiebreak; past its 16 bits of index in batch the id is
/// stored, so two records sharing a tiebreak keep their own ids and anchors.
#[tokio::test(flavor = "multi_thread")]
async fn test_ids_past_the_tiebreak_bounds_are_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    let line = |n: u32| [("message", FieldValue::Str(format!("line {n}")))];
    // 1 and 65,537 share a tiebreak.
    let docs = vec![
        doc(PoolId::new(1), 4, 1, T0, &line(1)),
        doc(PoolId::new(1), 4, 65_537, T0 + 1, &line(65_537)),
        doc(PoolId::new(1), 4, 2, T0 + 2, &line(2)),
    ];
    assert_eq!(docs[0].identity.tiebreak(), docs[1].identity.tiebreak());
    index
        .write(&pool(PoolId::new(1)), docs.clone(), false)
        .await
        .expect("write");
    index.commit().await.expect("commit");
    let page = index
        .search(&pool(PoolId::new(1)), &request(""))
        .await
        .expect("search");
    let mut ids: Vec<String> = page.hits.iter().map(|hit| hit.id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["1-0-4-1", "1-0-4-2", "1-0-4-65537"]);
    for doc in &docs {
        let context = index
            .context(
                &pool(PoolId::new(1)),
                &crate::index::ContextRequest {
                    anchor: doc.identity,
                    filter: logpool_core::query::Query::All,
                    before: 0,
                    after: 0,
                },
            )
            .await
            .expect("context");
        let anchor = context.anchor.expect("anchor found");
        assert_eq!(anchor.id, doc.identity.doc_id());
        assert_eq!(anchor.fields, doc.record.fields_json());
    }
}

/// The raw line has no positions: its phrases are checked on the stored line. They
/// match only words in a run, across segments, after a redelivery replaced records,
/// inside AND / NOT, and a line with escapes (read as an owned string) too.
#[tokio::test(flavor = "multi_thread")]
async fn test_phrases_on_the_raw_line_are_checked_on_the_stored_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    let line = |text: &str| FieldValue::Str(text.into());
    let first = vec![
        doc(
            PoolId::new(1),
            0,
            0,
            T0,
            &[
                ("message", line("connection reset by peer")),
                ("level", line("warn")),
            ],
        ),
        doc(
            PoolId::new(1),
            0,
            1,
            T0 + 1,
            &[("message", line("peer reset: by connection"))],
        ),
        doc(
            PoolId::new(1),
            0,
            2,
            T0 + 2,
            &[("message", line("Connection\tRESET \"by\" peer\n"))],
        ),
    ];
    index
        .write(&pool(PoolId::new(1)), first, false)
        .await
        .expect("write");
    index.commit().await.expect("commit");
    // A second segment, and a redelivery of message 1 that replaces its one record.
    let second = vec![doc(
        PoolId::new(1),
        0,
        3,
        T0 + 3,
        &[("message", line("reset by peer again"))],
    )];
    index
        .write(&pool(PoolId::new(1)), second, false)
        .await
        .expect("write");
    let mut redelivered = doc(
        PoolId::new(1),
        1,
        0,
        T0 + 4,
        &[("message", line("connection reset by peer"))],
    );
    index
        .write(&pool(PoolId::new(1)), vec![redelivered.clone()], false)
        .await
        .expect("write");
    index.commit().await.expect("commit");
    redelivered
        .record
        .fields
        .insert("message".into(), line("no words of it"));
    index
        .write(&pool(PoolId::new(1)), vec![redelivered], true)
        .await
        .expect("write");
    index.commit().await.expect("commit");
    assert_eq!(total(&index, "\"connection reset by peer\"").await, 2);
    assert_eq!(total(&index, "message:\"reset by peer\"").await, 3);
    assert_eq!(total(&index, "\"by connection\"").await, 1);
    assert_eq!(total(&index, "\"peer by reset\"").await, 0);
    assert_eq!(total(&index, "\"reset by peer\" AND level:warn").await, 1);
    assert_eq!(total(&index, "\"reset by peer\" AND NOT again").await, 2);
    assert_eq!(total(&index, "NOT \"reset by peer\"").await, 2);
    assert_eq!(total(&index, "reset AND by AND peer").await, 4);
    index.shutdown().await.expect("shutdown");
}

/// Numbers have a column and no terms: equality, ranges, bare numbers and sums are
/// answered from the column, and the segment holds no postings for them.
#[tokio::test(flavor = "multi_thread")]
async fn test_numbers_are_found_through_their_columns_without_terms() {
    use logpool_core::sql::plan::{AggregateFn, AggregateValue};

    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    let records = [
        (200, 1.5),
        (500, 2.0),
        (500, 0.25),
        (9_007_199_254_740_993, 7.0),
    ];
    let docs: Vec<IndexDoc> = records
        .iter()
        .enumerate()
        .map(|(n, (status, took))| {
            doc(
                PoolId::new(1),
                0,
                n as u32,
                T0 + n as i64,
                &[
                    ("status", FieldValue::Long(*status)),
                    ("took", FieldValue::Double(*took)),
                    ("host", FieldValue::Str(format!("web-{n}"))),
                ],
            )
        })
        .collect();
    let pool1 = learned(&pool(PoolId::new(1)), &docs);
    index.write(&pool1, docs, false).await.expect("write");
    index.commit().await.expect("commit");
    assert_eq!(total_in(&index, &pool1, "status:500").await, 2);
    assert_eq!(total_in(&index, &pool1, "status:500.0").await, 2);
    assert_eq!(total_in(&index, &pool1, "status:\"500\"").await, 2);
    assert_eq!(total_in(&index, &pool1, "status:500.5").await, 0);
    // Past 2^53: the column keeps the integer exactly.
    assert_eq!(total_in(&index, &pool1, "status:9007199254740993").await, 1);
    assert_eq!(total_in(&index, &pool1, "status:9007199254740992").await, 0);
    assert_eq!(total_in(&index, &pool1, "took:2").await, 1);
    assert_eq!(total_in(&index, &pool1, "took:0.25").await, 1);
    assert_eq!(total_in(&index, &pool1, "status:[300 TO 600]").await, 2);
    assert_eq!(total_in(&index, &pool1, "took:{1.5 TO 7]").await, 2);
    assert_eq!(total_in(&index, &pool1, "500").await, 2);
    assert_eq!(total_in(&index, &pool1, "1.5").await, 1);
    assert_eq!(
        total_in(&index, &pool1, "host:web-1 AND status:500").await,
        1
    );
    assert_eq!(total_in(&index, &pool1, "NOT status:500").await, 2);
    // Below every integer: tantivy would read such a bound as none on an integer
    // column and match every value.
    assert_eq!(total_in(&index, &pool1, "status:-1e20").await, 0);
    assert_eq!(total_in(&index, &pool1, "status:<-1e20").await, 0);
    assert_eq!(total_in(&index, &pool1, "status:>-1e20").await, 4);
    assert_eq!(total_in(&index, &pool1, "status:1e20").await, 0);
    let sum = index
        .aggregate(
            &pool1,
            &crate::index::AggregateRequest {
                query: parse_query("status:500", DefaultOperator::And).expect("query"),
                from_ns: T0 - DAY,
                to_ns: T0 + DAY,
                group_by: vec![],
                aggregates: vec![AggregateFn::Sum("took".into())],
                max_groups: 10,
                memory: logpool_core::memory::RequestMemory::unlimited(),
            },
        )
        .await
        .expect("aggregate");
    assert_eq!(sum[0].values[0], AggregateValue::Number(Some(2.25)));
    // No terms for the numbers: their paths are columns of `num` and nothing else.
    let partition = index
        .open_partition(
            PartitionKey {
                pool_id: PoolId::new(1),
                day: T0.div_euclid(DAY),
            },
            false,
        )
        .expect("open partition")
        .expect("the partition is on disk");
    let mut numeric_columns = std::collections::BTreeSet::new();
    for segment in partition.reader.searcher().segment_readers() {
        for field in segment.fields_metadata().expect("metadata") {
            if field.field_name.ends_with(".status") || field.field_name.ends_with(".took") {
                assert!(
                    field.postings_size.is_none() && field.fast_size.is_some(),
                    "{field:?}"
                );
                numeric_columns.insert(field.field_name);
            }
        }
    }
    assert_eq!(
        numeric_columns.into_iter().collect::<Vec<_>>(),
        ["num.status", "num.took"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn test_conformance_search_plan() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::index::conformance::check_search_plan(&open(dir.path()), &pool(PoolId::new(1))).await;
}

/// What the search planner saves: stepping through five day partitions one at a time
/// by time range lists the days again and compiles the query again at every step;
/// through a plan, the days are listed once and the query compiled once.
#[tokio::test(flavor = "multi_thread")]
async fn test_a_planned_search_lists_and_compiles_once_for_all_its_steps() {
    use crate::index::conformance::{
        five_days_of_docs, search_step_by_step_by_plan, search_step_by_step_by_range, PLAN_DAY0,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    index
        .write(
            &pool(PoolId::new(1)),
            five_days_of_docs(PoolId::new(1)),
            false,
        )
        .await
        .expect("write");
    index.commit().await.expect("commit");
    let query = parse_query("status:500 OR quarter", DefaultOperator::And).expect("query");
    let (from_ns, to_ns) = (PLAN_DAY0, PLAN_DAY0 + 5 * DAY);
    let work_of = |before: (u64, u64)| {
        let (listings, compilations) = index.work.counts();
        (listings - before.0, compilations - before.1)
    };

    // Without a plan: list the partitions, then search each one by its time range.
    let start = index.work.counts();
    let by_range =
        search_step_by_step_by_range(&index, &pool(PoolId::new(1)), &query, from_ns, to_ns).await;
    assert_eq!(work_of(start), (6, 5), "listings and compilations by range");

    // With a plan: one listing and one compilation for the five steps.
    let start = index.work.counts();
    let (plan, planned) =
        search_step_by_step_by_plan(&index, &pool(PoolId::new(1)), &query, from_ns, to_ns).await;
    assert_eq!(plan.partitions().len(), 5);
    assert_eq!(
        work_of(start),
        (1, 1),
        "listings and compilations of a plan"
    );
    assert_eq!(planned.len(), 15);
    assert_eq!(planned, by_range, "the same hits either way");

    // A histogram and an aggregation are one call each: one listing, one compilation.
    let start = index.work.counts();
    index
        .histogram(
            &pool(PoolId::new(1)),
            &HistogramRequest {
                query: query.clone(),
                from_ns,
                to_ns,
                interval_ns: DAY,
            },
        )
        .await
        .expect("histogram");
    assert_eq!(work_of(start), (1, 1), "histogram");
    let start = index.work.counts();
    index
        .aggregate(
            &pool(PoolId::new(1)),
            &crate::index::AggregateRequest {
                query,
                from_ns,
                to_ns,
                group_by: Vec::new(),
                aggregates: vec![logpool_core::sql::plan::AggregateFn::Count],
                max_groups: 10,
                memory: logpool_core::memory::RequestMemory::unlimited(),
            },
        )
        .await
        .expect("aggregate");
    assert_eq!(work_of(start), (1, 1), "aggregate");
}

/// Phrases over the raw line find exactly the records a scan finds: case,
/// separators, dropped long tokens, repeated words, words with digits and words
/// present but apart.
#[tokio::test(flavor = "multi_thread")]
async fn test_line_phrases_agree_with_a_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    let long = "x".repeat(logpool_core::query::MAX_TOKEN_BYTES + 1);
    let lines = [
        "Connection reset by peer".to_string(),
        "connection-RESET, by peer".to_string(),
        "reset connection by peer".to_string(),
        "a b x b c".to_string(),
        "a b c".to_string(),
        format!("connection {long} reset"),
        "error 42 in worker 7".to_string(),
        "error 42in worker".to_string(),
        "worker worker worker".to_string(),
        "Straße kaputt ÖL".to_string(),
    ];
    let messages: Vec<(i64, String)> = lines
        .iter()
        .enumerate()
        .map(|(n, line)| (T0 + n as i64, line.clone()))
        .collect();
    write_messages(&index, &messages).await;
    let queries = [
        "\"connection reset\"",
        "\"reset by\"",
        "\"reset by peer\"",
        "\"peer by\"",
        "\"a b c\"",
        "\"b c\"",
        "\"x b\"",
        "\"error 42\"",
        "\"42 in worker\"",
        "\"worker worker\"",
        "\"worker worker worker worker\"",
        "\"straße kaputt\"",
        "\"KAPUTT öl\"",
        "message:\"connection reset\"",
        "\"connection reset\" AND NOT \"reset by\"",
    ];
    for query in queries {
        let parsed = parse_query(query, DefaultOperator::And).expect(query);
        let expected = messages
            .iter()
            .filter(|(_, line)| {
                let record = logpool_core::record::Record {
                    time_ns: 0,
                    fields: [("message".to_string(), FieldValue::Str(line.clone()))].into(),
                };
                logpool_core::query::eval::matches(&parsed, &record)
            })
            .count() as u64;
        assert_eq!(total(&index, query).await, expected, "{query}");
    }
    // Two lines, and the one where a dropped long token stood between the words.
    assert_eq!(total(&index, "\"connection reset\"").await, 3);
    assert_eq!(total(&index, "\"a b c\"").await, 1);
}
