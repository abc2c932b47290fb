//! `/metrics` of search-api, scraped in-process after a few requests: requests by
//! route and status class, errors by status, and the query latency histogram.

use logpool_core::pool_id::PoolId;
use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use logpool_api::metrics::{sample_value, with_metrics};
use logpool_api::RoutingView;
use logpool_core::routing::{PoolRoute, RoutingSnapshot, DEFAULT_TENANT};
use logpool_engines::config::Config;
use logpool_engines::Engines;
use logpool_search_api::{router, SearchState};
use tower::ServiceExt;

const SEARCH_ROUTE: &str = "/v1/projects/{project}/pools/{pool}/search";
const HISTOGRAM_ROUTE: &str = "/v1/projects/{project}/pools/{pool}/histogram";

async fn get(app: &Router, uri: &str) -> (StatusCode, String) {
    let response = app
        .clone()
        .oneshot(
            Request::get(uri)
                .header("authorization", format!("Bearer {TEST_KEY}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("answer");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn labels<'a>(route: &'a str, extra: (&'a str, &'a str)) -> Vec<(&'a str, &'a str)> {
    vec![
        ("service", "search-api"),
        ("method", "GET"),
        ("route", route),
        extra,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_metrics_count_search_requests_and_time_queries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
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
    engines
        .coordinator
        .publish(RoutingSnapshot {
            version: 0,
            pools: vec![pool],
            archives: Default::default(),
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
        })
        .await
        .expect("publish");
    let state = SearchState {
        index: engines.index.clone(),
        routing: RoutingView::new(engines.coordinator.watch()),
        config: config.search.clone(),
    };
    let app = with_metrics("search-api", router(state), Vec::new());

    for _ in 0..3 {
        let (status, body) = get(&app, "/v1/projects/shop/pools/web/search?query=error").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, _) = get(&app, "/v1/projects/shop/pools/web/search?query=status:(500").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(&app, "/v1/projects/shop/pools/nope/search").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = get(&app, "/v1/projects/shop/pools/web/histogram?from=-1h").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, text) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let requests = |route, class| {
        sample_value(
            &text,
            "logpool_http_requests_total",
            &labels(route, ("status_class", class)),
        )
    };
    assert_eq!(requests(SEARCH_ROUTE, "2xx"), Some(3.0), "{text}");
    assert_eq!(requests(SEARCH_ROUTE, "4xx"), Some(2.0), "{text}");
    assert_eq!(requests(HISTOGRAM_ROUTE, "2xx"), Some(1.0), "{text}");
    let errors = |status| {
        sample_value(
            &text,
            "logpool_http_errors_total",
            &labels(SEARCH_ROUTE, ("status", status)),
        )
    };
    assert_eq!(errors("400"), Some(1.0), "{text}");
    assert_eq!(errors("404"), Some(1.0), "{text}");
    // Every search was timed, and each one falls in some bucket below +Inf.
    let latency_labels = [
        ("service", "search-api"),
        ("method", "GET"),
        ("route", SEARCH_ROUTE),
    ];
    assert_eq!(
        sample_value(
            &text,
            "logpool_http_request_duration_seconds_count",
            &latency_labels
        ),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        sample_value(
            &text,
            "logpool_http_request_duration_seconds_bucket",
            &labels(SEARCH_ROUTE, ("le", "30.0"))
        ),
        Some(5.0),
        "{text}"
    );
    // The scrape itself is not a counted request.
    assert!(!text.contains("route=\"/metrics\""), "{text}");
}

/// The operator key the snapshot of these tests accepts (as the bootstrap key,
/// which is any string that is not of the form `lpk_<id>_<secret>`).
const TEST_KEY: &str = "test-key";
