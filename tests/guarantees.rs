//! The product's promises beyond the happy path: backpressure instead of loss, the
//! dead letter instead of silent drops, and counters that show both.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use logpool_core::batch::BATCH_FORMAT_VERSION;
use logpool_e2e::{wait_for, wait_for_count, TestServer};
use logpool_engines::config::QueueConfig;
use logpool_engines::queue::BatchProperties;
use serde_json::{json, Value};

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing in:\n{text}"))
}

async fn metrics_text(server: &TestServer) -> String {
    reqwest::get(format!("{}/metrics", server.url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_full_queue_answers_503_with_retry_after_and_loses_nothing() {
    let server = TestServer::start_with(|config| {
        // Irrefutable unless a distributed queue engine is compiled in.
        #[allow(irrefutable_let_patterns)]
        if let QueueConfig::Embedded(queue) = &mut config.queue {
            queue.max_backlog_bytes_per_shard = 4096;
        }
        // Nothing is acked for a minute, so the backlog only grows.
        config.loghub.commit_interval_ms = 60_000;
    })
    .await
    .expect("server");
    let client = &server.client;
    client.create_project("bp").await.expect("project");
    client
        .create_pool("bp", &json!({ "name": "app", "shards": 1 }))
        .await
        .expect("pool");
    let mut accepted = 0u64;
    let mut refused = None;
    for i in 0..50 {
        let records: Vec<Value> = (0..200)
            .map(|j| json!({ "message": format!("payload {i} {j} {}", "z".repeat(40)) }))
            .collect();
        let response = reqwest::Client::new()
            .post(format!("{}/v1/projects/bp/pools/app/logs", server.url()))
            .bearer_auth(logpool_e2e::ADMIN_KEY)
            .json(&json!({ "logs": records }))
            .send()
            .await
            .expect("send");
        if response.status().is_success() {
            accepted += 200;
            continue;
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        refused = Some((status, retry_after, body));
        break;
    }
    let (status, retry_after, body) = refused.expect("the queue filled up");
    assert_eq!(status, 503, "{body}");
    assert!(retry_after.is_some(), "Retry-After is set");
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(accepted > 0);
    assert!(
        metric(
            &metrics_text(&server).await,
            "logpool_put_requests_failed_total"
        ) >= 1
    );
    // Graceful shutdown commits what loghub staged; a restart on the same data finds
    // every accepted record.
    let data_dir = server.data_dir;
    server.standalone.shutdown().await.expect("shutdown");
    let mut config = logpool_e2e::Config {
        data_dir: data_dir.path().to_path_buf(),
        ..logpool_e2e::Config::default()
    };
    config.loghub.commit_interval_ms = 200;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let restarted = logpool_standalone::start(config, listener)
        .await
        .expect("restart");
    // No admin key this time: the stored bootstrap key keeps working.
    let client = logpool_e2e::admin_client(&format!("http://{}", restarted.addr));
    assert_eq!(
        wait_for_count(&client, "bp", "app", "payload", accepted).await,
        accepted
    );
    restarted.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_undecodable_message_goes_to_the_dead_letter_and_does_not_block_its_shard() {
    let server = TestServer::start().await.expect("server");
    let client = &server.client;
    client.create_project("dl").await.expect("project");
    client
        .create_pool("dl", &json!({ "name": "app", "shards": 1 }))
        .await
        .expect("pool");
    let route = server
        .standalone
        .engines
        .coordinator
        .watch()
        .borrow()
        .pool("default", "dl", "app")
        .cloned()
        .expect("route");
    let shard = route.shard_addr(0).expect("shard");
    let properties = BatchProperties {
        pool_id: route.pool_id,
        record_count: 3,
        format_version: BATCH_FORMAT_VERSION,
    };
    server
        .standalone
        .engines
        .queue
        .produce(
            &shard,
            properties,
            Bytes::from_static(b"\x01\x03\x00\x00\x00not zstd"),
        )
        .await
        .expect("produce garbage");
    client
        .put_records("dl", "app", &[json!({ "message": "after the bad one" })])
        .await
        .expect("put");
    assert_eq!(
        wait_for_count(client, "dl", "app", "after", 1).await,
        1,
        "the shard is not blocked"
    );
    let stored = wait_for(Duration::from_secs(10), || async {
        let keys = server
            .standalone
            .engines
            .object_store
            .list("dead-letter/")
            .await
            .ok()?;
        (!keys.is_empty()).then_some(keys)
    })
    .await
    .expect("dead-letter object");
    assert_eq!(stored.len(), 1);
    let kept = server
        .standalone
        .engines
        .object_store
        .get(&stored[0])
        .await
        .expect("get");
    assert_eq!(
        kept.as_ref(),
        b"\x01\x03\x00\x00\x00not zstd",
        "kept byte for byte"
    );
    assert_eq!(
        server
            .standalone
            .loghub_stats
            .messages_dead_lettered
            .load(Ordering::Relaxed),
        1
    );
    let text = metrics_text(&server).await;
    assert_eq!(
        metric(&text, "logpool_loghub_messages_dead_lettered_total"),
        1
    );
    assert_eq!(metric(&text, "logpool_put_records_accepted_total"), 1);
    server.standalone.shutdown().await.expect("shutdown");
}
