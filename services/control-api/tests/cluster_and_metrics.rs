//! control-api in-process: `GET /v1/cluster/members` lists the registered service
//! processes, and `/metrics` counts control operations by route and status.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use logpool_api::metrics::{sample_value, with_metrics};
use logpool_control_api::{router, ControlState};
use logpool_engines::config::Config;
use logpool_engines::Engines;
use serde_json::Value;
use tower::ServiceExt;

/// The operator key stored as the bootstrap key of these tests.
const TEST_KEY: &str = "test-operator-key";

async fn call(app: &Router, method: &str, uri: &str, body: Option<&str>) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {TEST_KEY}"))
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("answer");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_cluster_members_and_control_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let engines = Engines::build(&config).await.expect("engines");
    let state = ControlState::new(
        engines.metadata.clone(),
        engines.coordinator.clone(),
        engines.queue.clone(),
        engines.index.clone(),
    );
    logpool_control_api::tenants::bootstrap_operator_key(engines.metadata.as_ref(), Some(TEST_KEY))
        .await
        .expect("operator key");
    state.publish_routing().await.expect("routing snapshot");
    let app = with_metrics("control-api", router(state), Vec::new());
    let coordinator = engines.coordinator.as_ref();
    let address = "127.0.0.1:18080".parse().expect("addr");
    let control = logpool_api::members::register(coordinator, "control-api", None, address)
        .await
        .expect("register");
    let loghub =
        logpool_api::members::register(coordinator, "loghub", Some("10.0.0.7:8083"), address)
            .await
            .expect("register");

    let (status, body) = call(&app, "GET", "/v1/cluster/members", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed: Value = serde_json::from_str(&body).expect("json");
    let members = listed["members"].as_array().expect("members");
    assert_eq!(members.len(), 2, "{body}");
    assert_eq!(members[0]["service"], "control-api");
    assert_eq!(members[0]["id"], "127.0.0.1:18080");
    assert_eq!(members[1]["service"], "loghub");
    assert_eq!(members[1]["address"], "10.0.0.7:8083");
    assert_eq!(members[1]["version"], logpool_api::members::VERSION);
    assert!(
        members[1]["started_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );

    // A member that leaves is gone from the list at once.
    loghub.leave().await;
    let (_, body) = call(&app, "GET", "/v1/cluster/members", None).await;
    let listed: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        listed["members"].as_array().map(Vec::len),
        Some(1),
        "{body}"
    );
    drop(control);

    let (status, _) = call(&app, "POST", "/v1/projects", Some(r#"{"name":"shop"}"#)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = call(&app, "POST", "/v1/projects", Some(r#"{"name":"shop"}"#)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = call(&app, "POST", "/v1/projects", Some(r#"{"name":"Bad_Name"}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, text) = call(&app, "GET", "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let with = |method, route, extra| {
        vec![
            ("service", "control-api"),
            ("method", method),
            ("route", route),
            extra,
        ]
    };
    let value = |name, labels: Vec<(&str, &str)>| sample_value(&text, name, &labels);
    assert_eq!(
        value(
            "logpool_http_requests_total",
            with("POST", "/v1/projects", ("status_class", "2xx"))
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            "logpool_http_requests_total",
            with("POST", "/v1/projects", ("status_class", "4xx"))
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            "logpool_http_errors_total",
            with("POST", "/v1/projects", ("status", "409"))
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            "logpool_http_requests_total",
            with("GET", "/v1/cluster/members", ("status_class", "2xx"))
        ),
        Some(2.0),
        "{text}"
    );
}
