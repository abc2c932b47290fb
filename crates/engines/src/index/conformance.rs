//! The conformance suite every [`LogIndex`] implementation runs: the same documents,
//! the same queries, the same expected answers. This is how the embedded and the
//! Elasticsearch engines are held to identical results.

use logpool_core::doc_id::DocIdentity;
use logpool_core::query::{parse_query, DefaultOperator};
use logpool_core::record::{FieldValue, Record};
use logpool_core::routing::PoolRoute;

use super::{IndexDoc, LogIndex, SearchRequest, SortKey};

/// One day in nanoseconds.
pub(crate) const DAY_NS: i64 = 86_400_000_000_000;
/// 2023-11-14T22:13:20Z.
pub(crate) const T0: i64 = 1_700_000_000_000_000_000;

/// Builds one document.
pub(crate) fn doc(
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

/// Four documents over three days with text, numbers, a float, a bool and a nested field.
pub(crate) fn sample_docs(pool_id: i64) -> Vec<IndexDoc> {
    vec![
        doc(
            pool_id,
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
            pool_id,
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
            pool_id,
            1,
            0,
            T0 + DAY_NS,
            &[
                ("message", text("disk full on /var")),
                ("latency", FieldValue::Double(250.5)),
                ("http.method", text("POST")),
            ],
        ),
        doc(
            pool_id,
            1,
            1,
            T0 + 2 * DAY_NS,
            &[
                ("message", text("user login ok")),
                ("ok", FieldValue::Bool(true)),
                ("status", FieldValue::Long(503)),
            ],
        ),
    ]
}

/// Queries over [`sample_docs`] and how many documents each must match.
pub(crate) const QUERY_CASES: &[(&str, u64)] = &[
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
    ("time:[2023-11-15T00:00:00Z TO *]", 2),
    ("status:{200 TO 503}", 1),
    ("NOT _exists_:status", 1),
    ("message:disk AND latency:250.5", 1),
    ("-(error OR info)", 2),
];

/// A search over all time.
pub(crate) fn request(query: &str) -> SearchRequest {
    SearchRequest {
        query: parse_query(query, DefaultOperator::And).expect("query"),
        from_ns: i64::MIN,
        to_ns: i64::MAX,
        limit: 100,
        after: None,
    }
}

/// Writes [`sample_docs`], commits, and checks every query of [`QUERY_CASES`].
pub(crate) async fn check_query_suite(index: &dyn LogIndex, pool: &PoolRoute) {
    let report = index
        .write(pool, sample_docs(pool.pool_id), false)
        .await
        .expect("write");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    index.commit().await.expect("commit");
    for (query, expected) in QUERY_CASES {
        let page = index.search(pool, &request(query)).await.expect(query);
        assert_eq!(page.total, *expected, "query {query}");
    }
}

/// Checks newest-first order, cursor paging and time ranges over 50 documents.
pub(crate) async fn check_paging(index: &dyn LogIndex, pool: &PoolRoute) {
    let docs: Vec<IndexDoc> = (0..50u64)
        .map(|i| {
            doc(
                pool.pool_id,
                i / 10,
                (i % 10) as u32,
                T0 + (i as i64 / 2) * 1_000,
                &[("message", text("tick"))],
            )
        })
        .collect();
    index.write(pool, docs, false).await.expect("write");
    index.commit().await.expect("commit");
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let mut req = request("tick");
        req.limit = 7;
        req.after = after;
        let page = index.search(pool, &req).await.expect("search");
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
    sorted.sort_by_key(|key| std::cmp::Reverse(*key));
    sorted.dedup();
    assert_eq!(keys, sorted, "strictly newest first, no duplicates");
    let mut ranged = request("tick");
    ranged.from_ns = T0 + 5_000;
    ranged.to_ns = T0 + 10_000;
    assert_eq!(index.search(pool, &ranged).await.expect("search").total, 10);
}

/// Checks that replacing writes of already indexed documents never duplicate them.
pub(crate) async fn check_idempotent_rewrites(index: &dyn LogIndex, pool: &PoolRoute) {
    index
        .write(pool, sample_docs(pool.pool_id), false)
        .await
        .expect("write");
    index.commit().await.expect("commit");
    index
        .write(pool, sample_docs(pool.pool_id), true)
        .await
        .expect("rewrite");
    index
        .write(pool, sample_docs(pool.pool_id), true)
        .await
        .expect("rewrite again");
    index.commit().await.expect("commit");
    assert_eq!(
        index
            .search(pool, &request(""))
            .await
            .expect("search")
            .total,
        4
    );
}
