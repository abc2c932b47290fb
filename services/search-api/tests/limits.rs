//! The per-tenant query cap, in-process: a streaming search that its client does not
//! read holds its place, so the next query of the tenant is answered 429 with
//! `Retry-After`; once the client goes away the place is free again.

use logpool_core::pool_id::PoolId;
use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use logpool_api::RoutingView;
use logpool_core::doc_id::DocIdentity;
use logpool_core::record::{FieldValue, Record};
use logpool_core::routing::{PoolRoute, RoutingSnapshot, DEFAULT_TENANT};
use logpool_engines::config::Config;
use logpool_engines::index::IndexDoc;
use logpool_engines::Engines;
use logpool_search_api::{router, SearchState};
use tower::ServiceExt;

const DAY_NS: i64 = 86_400_000_000_000;
/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000_000_000;
/// More days than the stream's buffered lines, so an unread stream cannot finish.
const DAYS: i64 = 12;

async fn send(app: &Router, uri: &str) -> axum::response::Response {
    app.clone()
        .oneshot(
            Request::get(uri)
                .header("authorization", format!("Bearer {TEST_KEY}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_queries_beyond_the_tenant_cap_get_429_until_one_finishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.search.max_concurrent_queries_per_tenant = 1;
    config.search.partitions_per_step = 1;
    let engines = Engines::build(&config).await.expect("engines");
    let pool = PoolRoute {
        pool_id: PoolId::new(1),
        tenant: DEFAULT_TENANT.to_string(),
        project: "shop".into(),
        name: "web".into(),
        partitions: vec![0],
        retention_days: 7,
        field_hints: BTreeMap::new(),
        event_window: Default::default(),
        learned_types: Default::default(),
    };
    engines.index.ensure_pool(&pool).await.expect("pool");
    let docs: Vec<IndexDoc> = (0..DAYS)
        .map(|day| IndexDoc {
            identity: DocIdentity {
                pool_id: PoolId::new(1),
                partition: 0,
                position: day as u64,
                index_in_batch: 0,
            },
            shard: 0,
            record: Record {
                time_ns: T0 + day * DAY_NS,
                fields: [("message".to_string(), FieldValue::Str("tick".into()))]
                    .into_iter()
                    .collect(),
            },
        })
        .collect();
    engines
        .index
        .write(&pool, docs, false)
        .await
        .expect("write");
    engines.index.commit().await.expect("commit");
    engines
        .coordinator
        .publish(RoutingSnapshot {
            version: 0,
            pools: vec![pool],
            access: logpool_core::access::AccessTable::default().with_key(
                logpool_core::access::KeyEntry::from_secret(
                    logpool_core::access::BOOTSTRAP_KEY_ID,
                    logpool_core::routing::DEFAULT_TENANT,
                    logpool_core::access::Role::Operator,
                    None,
                    "salt",
                    TEST_KEY,
                ),
            ),
            ..Default::default()
        })
        .await
        .expect("publish");
    let state = SearchState {
        index: engines.index.clone(),
        routing: RoutingView::new(engines.coordinator.watch()),
        config: config.search.clone(),
    };
    let app = router(state);

    // Nobody reads this stream: its search waits with its place taken.
    let stream = send(&app, "/v1/projects/shop/pools/web/search/stream?query=tick").await;
    assert_eq!(stream.status(), StatusCode::OK);
    let refused = send(&app, "/v1/projects/shop/pools/web/search?query=tick").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key(header::RETRY_AFTER));
    let refused = send(&app, "/v1/projects/shop/pools/web/histogram?query=tick").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);

    // The client goes away: the search stops and frees its place.
    drop(stream);
    let mut status = StatusCode::TOO_MANY_REQUESTS;
    for _ in 0..100 {
        status = send(&app, "/v1/projects/shop/pools/web/search?query=tick")
            .await
            .status();
        if status != StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, StatusCode::OK);
}

/// The operator key the snapshot of these tests accepts (as the bootstrap key,
/// which is any string that is not of the form `lpk_<id>_<secret>`).
const TEST_KEY: &str = "test-key";
