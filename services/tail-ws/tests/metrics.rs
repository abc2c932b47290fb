//! `/metrics` of tail-ws, scraped in-process while a live tail is open over a real
//! socket: open tails, frames and records sent, and the upgrade requests.

use logpool_core::pool_id::PoolId;
use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use futures::StreamExt;
use logpool_api::metrics::{sample_value, with_metrics};
use logpool_api::RoutingView;
use logpool_core::batch::{encode_batch, BATCH_FORMAT_VERSION};
use logpool_core::record::{FieldValue, Record};
use logpool_core::routing::{PoolRoute, RoutingSnapshot, DEFAULT_TENANT};
use logpool_engines::config::Config;
use logpool_engines::queue::BatchProperties;
use logpool_engines::Engines;
use logpool_tail_ws::{router, TailState};
use tokio_tungstenite::tungstenite::Message;
use tower::ServiceExt;

const TAIL_ROUTE: &str = "/v1/projects/{project}/pools/{pool}/tail";

async fn scrape(app: &Router) -> String {
    let response = app
        .clone()
        .oneshot(
            Request::get("/metrics")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    String::from_utf8_lossy(&bytes).into_owned()
}

fn counter(text: &str, name: &str) -> f64 {
    sample_value(text, name, &[]).unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_metrics_follow_an_open_tail() {
    tokio::time::timeout(Duration::from_secs(60), async {
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
        engines
            .queue
            .prepare_shards(&pool.shard_addrs())
            .await
            .expect("shards");
        engines
            .coordinator
            .publish(RoutingSnapshot {
                version: 0,
                pools: vec![pool.clone()],
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
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        let state = TailState::new(
            engines.queue.clone(),
            RoutingView::new(engines.coordinator.watch()),
            shutdown,
            config.tail.clone(),
        );
        let app = with_metrics("tail-ws", router(state.clone()), vec![state.stats.clone()]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = app.clone();
        tokio::spawn(async move { axum::serve(listener, server).await });

        // A refused tail is counted as an error of the tail route.
        let refused = tokio_tungstenite::connect_async(format!(
            "ws://{addr}/v1/projects/shop/pools/web/tail?token={TEST_KEY}&query=a:(b"
        ))
        .await;
        assert!(refused.is_err());

        let (mut socket, _) = tokio_tungstenite::connect_async(format!(
            "ws://{addr}/v1/projects/shop/pools/web/tail?token={TEST_KEY}"
        ))
        .await
        .expect("connect");
        let records: Vec<Record> = (0..3)
            .map(|i| Record {
                time_ns: 1_700_000_000_000_000_000 + i,
                fields: BTreeMap::from([(
                    "message".to_string(),
                    FieldValue::Str(format!("line {i}")),
                )]),
            })
            .collect();
        let shard = pool.shard_addr(0).expect("shard");
        engines
            .queue
            .produce(
                &shard,
                BatchProperties {
                    pool_id: pool.pool_id,
                    record_count: 3,
                    format_version: BATCH_FORMAT_VERSION,
                },
                Bytes::from(encode_batch(&records).expect("encode")),
            )
            .await
            .expect("produce");
        let mut received = 0;
        while received < 3 {
            let Some(message) = socket.next().await else {
                panic!("the tail closed after {received} records")
            };
            if let Message::Text(text) = message.expect("frame") {
                let frame: serde_json::Value = serde_json::from_str(&text).expect("json");
                received += frame["records"].as_array().map_or(0, Vec::len);
            }
        }

        let text = scrape(&app).await;
        assert_eq!(counter(&text, "logpool_tail_active"), 1.0, "{text}");
        assert_eq!(counter(&text, "logpool_tail_opened_total"), 1.0, "{text}");
        assert_eq!(
            counter(&text, "logpool_tail_records_sent_total"),
            3.0,
            "{text}"
        );
        assert!(
            counter(&text, "logpool_tail_frames_sent_total") >= 1.0,
            "{text}"
        );
        assert_eq!(
            counter(&text, "logpool_tail_records_dropped_total"),
            0.0,
            "{text}"
        );
        let request_labels = |extra| {
            vec![
                ("service", "tail-ws"),
                ("method", "GET"),
                ("route", TAIL_ROUTE),
                extra,
            ]
        };
        assert_eq!(
            sample_value(
                &text,
                "logpool_http_requests_total",
                &request_labels(("status_class", "1xx"))
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample_value(
                &text,
                "logpool_http_errors_total",
                &request_labels(("status", "400"))
            ),
            Some(1.0),
            "{text}"
        );

        // Closing the tail takes it off the gauge.
        socket.close(None).await.expect("close");
        loop {
            if counter(&scrape(&app).await, "logpool_tail_active") == 0.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the test finishes in time");
}

/// The operator key the snapshot of these tests accepts (as the bootstrap key,
/// which is any string that is not of the form `lpk_<id>_<secret>`).
const TEST_KEY: &str = "test-key";
