//! Tests of the tantivy index against real indexes in a temporary directory.

use std::collections::BTreeMap;

use logpool_core::query::{parse_query, DefaultOperator};
use logpool_core::record::FieldValue;
use logpool_core::routing::PoolRoute;

use super::*;
use crate::index::conformance::{doc, request, sample_docs, T0};

const DAY: i64 = DAY_NS;

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

fn open(dir: &std::path::Path) -> TantivyIndex {
    TantivyIndex::open(TantivyIndexConfig {
        dir: dir.to_path_buf(),
        writer_memory_bytes: 15_000_000,
        max_open_writers: 2,
    })
    .expect("open index")
}

#[tokio::test(flavor = "multi_thread")]
async fn test_conformance_queries() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::index::conformance::check_query_suite(&open(dir.path()), &pool(1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test_conformance_loghub_agrees_with_the_evaluator() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::index::conformance::check_loghub_agreement(&open(dir.path()), &pool(1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test_conformance_field_hints() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::index::conformance::check_field_hints(&open(dir.path()), &pool(1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test_conformance_context() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::index::conformance::check_context(&open(dir.path()), &pool(1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test_conformance_paging() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::index::conformance::check_paging(&open(dir.path()), &pool(1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn test_conformance_idempotent_rewrites_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path());
    crate::index::conformance::check_idempotent_rewrites(&index, &pool(1)).await;
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
        .write(&pool(1), sample_docs(1), false)
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
        .write(&pool(1), sample_docs(1), false)
        .await
        .expect("write");
    let other: Vec<IndexDoc> = sample_docs(1)
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
            .search(&pool(1), &request("x"))
            .await
            .expect("search")
            .total,
        5
    );
    index.shutdown().await.expect("shutdown");
}
