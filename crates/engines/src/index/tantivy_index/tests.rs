//! Tests of the tantivy index against real indexes in a temporary directory.

use std::collections::BTreeMap;

use logpool_core::doc_id::DocIdentity;
use logpool_core::query::{parse_query, DefaultOperator};
use logpool_core::record::{FieldValue, Record};
use logpool_core::routing::PoolRoute;

use super::*;

const DAY: i64 = DAY_NS;
const T0: i64 = 1_700_000_000_000_000_000;

fn pool(pool_id: i64) -> PoolRoute {
    PoolRoute {
        pool_id,
        tenant: "default".into(),
        project: "p".into(),
        name: format!("pool{pool_id}"),
        partitions: vec![0, 1],
        retention_days: 7,
        field_hints: BTreeMap::new(),
    }
}

fn doc(
    pool_id: i64,
    position: u64,
    index: u32,
    time_ns: i64,
    fields: &[(&str, FieldValue)],
) -> IndexDoc {
    IndexDoc {
        identity: DocIdentity {
            pool_id,
            partition: 0,
            position,
            index_in_batch: index,
        },
        shard: 0,
        record: Record {
            time_ns,
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        },
    }
}

fn text(s: &str) -> FieldValue {
    FieldValue::Str(s.to_string())
}

fn open(dir: &std::path::Path) -> TantivyIndex {
    TantivyIndex::open(TantivyIndexConfig {
        dir: dir.to_path_buf(),
        writer_memory_bytes: 15_000_000,
        max_open_writers: 2,
    })
    .expect("open index")
}

fn request(query: &str) -> SearchRequest {
    SearchRequest {
        query: parse_query(query, DefaultOperator::And).expect("query"),
        from_ns: i64::MIN,
        to_ns: i64::MAX,
        limit: 100,
        after: None,
    }
}

fn sample_docs() -> Vec<IndexDoc> {
    vec![
        doc(
            1,
            0,
            0,
            T0,
            &[
                ("message", text("Connection reset by peer")),
                ("status", FieldValue::Long(500)),
                ("level", text("ERROR")),
            ],
        ),
        doc(
            1,
            0,
            1,
            T0 + 1,
            &[
                ("message", text("GET /index.html 200")),
                ("status", FieldValue::Long(200)),
                ("level", text("info")),
            ],
        ),
        doc(
            1,
            1,
            0,
            T0 + DAY,
            &[
                ("message", text("disk full on /var")),
                ("latency", FieldValue::Double(250.5)),
                ("http.method", text("POST")),
            ],
        ),
        doc(
            1,
            1,
            1,
            T0 + 2 * DAY,
            &[
                ("message", text("user login ok")),
                ("ok", FieldValue::Bool(true)),
                ("status", FieldValue::Long(503)),
            ],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn test_queries_match_expected_documents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    index
        .write(&pool(1), sample_docs(), false)
        .await
        .expect("write");
    index.commit().await.expect("commit");
    let cases: &[(&str, u64)] = &[
        ("", 4),
        ("reset", 1),
        ("\"reset by peer\"", 1),
        ("\"peer by reset\"", 0),
        ("status:500", 1),
        ("status:[500 TO 599]", 2),
        ("status:>=200", 3),
        ("latency:>250", 1),
        ("latency:<250", 0),
        ("level:error", 1),
        ("error OR disk", 2),
        ("NOT status:500", 3),
        ("-level:info", 3),
        ("http.method:post", 1),
        ("_exists_:http", 1),
        ("_exists_:latency", 1),
        ("ok:true", 1),
        ("conn*", 1),
        ("d?sk", 1),
        ("(error OR login) AND status:503", 1),
        ("message:\"disk full\"", 1),
        ("500", 1),
    ];
    for (query, expected) in cases {
        let page = index.search(&pool(1), &request(query)).await.expect(query);
        assert_eq!(page.total, *expected, "query {query}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn test_newest_first_paging_with_cursor_and_time_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    let docs: Vec<IndexDoc> = (0..50u64)
        .map(|i| {
            doc(
                1,
                i / 10,
                (i % 10) as u32,
                T0 + (i as i64 / 2) * 1_000,
                &[("message", text("tick"))],
            )
        })
        .collect();
    index.write(&pool(1), docs, false).await.expect("write");
    index.commit().await.expect("commit");
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let mut req = request("tick");
        req.limit = 7;
        req.after = after;
        let page = index.search(&pool(1), &req).await.expect("search");
        assert_eq!(page.total, 50);
        if page.hits.is_empty() {
            break;
        }
        after = page.hits.last().map(|h| h.sort_key);
        seen.extend(page.hits);
    }
    assert_eq!(seen.len(), 50);
    let keys: Vec<SortKey> = seen.iter().map(|h| h.sort_key).collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(keys, sorted, "strictly newest first, no duplicates");
    let mut ranged = request("tick");
    ranged.from_ns = T0 + 5_000;
    ranged.to_ns = T0 + 10_000;
    assert_eq!(
        index.search(&pool(1), &ranged).await.expect("search").total,
        10
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn test_replacing_writes_never_duplicate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    index
        .write(&pool(1), sample_docs(), false)
        .await
        .expect("write");
    index.commit().await.expect("commit");
    // A redelivery of everything, once committed and once staged twice.
    index
        .write(&pool(1), sample_docs(), true)
        .await
        .expect("rewrite");
    index
        .write(&pool(1), sample_docs(), true)
        .await
        .expect("rewrite again");
    index.commit().await.expect("commit");
    assert_eq!(
        index
            .search(&pool(1), &request(""))
            .await
            .expect("search")
            .total,
        4
    );
    // Reopening sees the same committed state.
    drop(index);
    let index = open(dir.path());
    assert_eq!(
        index
            .search(&pool(1), &request(""))
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
        .write(&pool(1), sample_docs(), false)
        .await
        .expect("write");
    index.commit().await.expect("commit");
    let buckets = index
        .histogram(
            &pool(1),
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

#[tokio::test(flavor = "multi_thread")]
async fn test_retention_and_drop_pool_touch_only_their_pool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    index
        .write(&pool(1), sample_docs(), false)
        .await
        .expect("write");
    let other: Vec<IndexDoc> = sample_docs()
        .into_iter()
        .map(|mut d| {
            d.identity.pool_id = 2;
            d
        })
        .collect();
    index.write(&pool(2), other, false).await.expect("write");
    index.commit().await.expect("commit");
    // Seven-day retention, evaluated 8 days and 1 hour after T0 (22:13 UTC): only the
    // day of T0 has ended more than seven days ago.
    let mut short = pool(1);
    short.retention_days = 7;
    let dropped = index
        .drop_expired(&short, T0 + 8 * DAY + 3_600_000_000_000)
        .await
        .expect("retention");
    assert_eq!(dropped, 1);
    assert_eq!(
        index
            .search(&pool(1), &request(""))
            .await
            .expect("search")
            .total,
        2
    );
    assert_eq!(
        index
            .search(&pool(2), &request(""))
            .await
            .expect("search")
            .total,
        4
    );
    index.drop_pool(1).await.expect("drop");
    assert_eq!(
        index
            .search(&pool(1), &request(""))
            .await
            .expect("search")
            .total,
        0
    );
    assert_eq!(
        index
            .search(&pool(2), &request(""))
            .await
            .expect("search")
            .total,
        4
    );
    assert!(!dir.path().join("1").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn test_many_days_close_writers_without_losing_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    for day in 0..5 {
        index
            .write(
                &pool(1),
                vec![doc(
                    1,
                    day as u64,
                    0,
                    T0 + day * DAY,
                    &[("message", text("x"))],
                )],
                false,
            )
            .await
            .expect("write");
        index.commit().await.expect("commit");
    }
    assert_eq!(
        index
            .search(&pool(1), &request("x"))
            .await
            .expect("search")
            .total,
        5
    );
    index.shutdown().await.expect("shutdown");
}
