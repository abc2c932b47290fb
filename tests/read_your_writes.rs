//! Read-your-writes: PutDatas answers a `write_token`; a search, histogram, SQL
//! query or context with `wait_for=<token>` answers only once those records are
//! searchable, and 408 `wait_timeout` with what is missing when its timeout runs out.
//! `logpool put --wait` returns only once everything it sent is searchable.
//!
//! The indexer commits every 2 s here, so a read right after a put sees nothing
//! without `wait_for`: each check below would fail without the wait (and the
//! first one asserts exactly that).

use std::time::{Duration, Instant};

use logpool_client::{ClientError, LogpoolClient};
use logpool_e2e::{logpool_binary, TestServer, ADMIN_KEY};
use serde_json::{json, Value};

const PROJECT: &str = "ryw";
const POOL: &str = "app";
/// How often the indexer commits: far longer than a put and a read take.
const COMMIT_INTERVAL_MS: u64 = 2_000;

async fn server() -> TestServer {
    let server = TestServer::start_with(|config| {
        config.loghub.commit_interval_ms = COMMIT_INTERVAL_MS;
    })
    .await
    .expect("server");
    server
        .client
        .create_project(PROJECT)
        .await
        .expect("project");
    server
        .client
        .create_pool(PROJECT, &json!({ "name": POOL, "shards": 3 }))
        .await
        .expect("pool");
    server
}

/// Puts `count` records labelled `label` and returns the answer (retrying the 404
/// of a pool that has not reached the routing yet).
async fn put(client: &LogpoolClient, label: &str, count: usize) -> Value {
    let logs: Vec<Value> = (0..count)
        .map(|i| json!({ "label": label, "message": format!("{label} {i}") }))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.put_records(PROJECT, POOL, &logs).await {
            Err(ClientError::Http { status: 404, .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            answer => return answer.expect("put"),
        }
    }
}

fn token(answer: &Value) -> String {
    answer["write_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no write_token in {answer}"))
        .to_string()
}

fn pool_url(client: &LogpoolClient, rest: &str) -> String {
    format!(
        "{}/v1/projects/{PROJECT}/pools/{POOL}/{rest}",
        client.base_url()
    )
}

/// Sends a POST with a JSON body and returns the status and the JSON answer.
async fn post(client: &LogpoolClient, rest: &str, body: &Value) -> (u16, Value) {
    let response = client
        .request(reqwest::Method::POST, pool_url(client, rest))
        .json(body)
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json answer"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_reads_with_wait_for_see_the_records_of_the_put() {
    let server = server().await;
    let client = &server.client;

    // Search: without the wait the records are not there yet, with it they are.
    let answer = put(client, "search", 300).await;
    let search = json!({ "query": "label:search", "limit": 1000 });
    let (status, plain) = post(client, "search", &search).await;
    assert_eq!(status, 200, "{plain}");
    assert_eq!(
        plain["total"], 0,
        "without wait_for a read right after the put sees nothing yet: {plain}"
    );
    let started = Instant::now();
    let (status, waited) = post(
        client,
        "search",
        &json!({ "query": "label:search", "limit": 1000, "wait_for": token(&answer) }),
    )
    .await;
    assert_eq!(status, 200, "{waited}");
    assert_eq!(waited["total"], 300, "{}", waited["total"]);
    eprintln!("search waited {:?}", started.elapsed());

    // Histogram.
    let answer = put(client, "histogram", 200).await;
    let (status, histogram) = post(
        client,
        "histogram",
        &json!({ "query": "label:histogram", "from": "-1h", "to": "+1h", "wait_for": token(&answer) }),
    )
    .await;
    assert_eq!(status, 200, "{histogram}");
    let counted: u64 = histogram["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|bucket| bucket["count"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(counted, 200, "{histogram}");

    // SQL.
    let answer = put(client, "sql", 150).await;
    let (status, table) = post(
        client,
        "query",
        &json!({ "query": "label:sql | SELECT count(*) AS n", "wait_for": token(&answer) }),
    )
    .await;
    assert_eq!(status, 200, "{table}");
    assert_eq!(table["rows"][0][0], 150, "{table}");

    // Context of the first record of the put's first batch, by GET.
    let answer = put(client, "context", 10).await;
    // The record id of a batch's first record: `{pool}-{partition}-{position}-0`,
    // read from the token (`w1.{pool}.{partition}-{position}-{records}...`).
    let written = token(&answer);
    let pieces: Vec<&str> = written.split('.').collect();
    let (pool_id, batch) = (pieces[1], pieces[2]);
    let (partition, position) = batch
        .rsplit_once('-')
        .and_then(|(head, _records)| head.split_once('-'))
        .expect("a batch in the token");
    let id = format!("{pool_id}-{partition}-{position}-0");
    let response = client
        .request(
            reqwest::Method::GET,
            pool_url(client, &format!("records/{id}/context")),
        )
        .query(&[("wait_for", token(&answer)), ("after", "3".to_string())])
        .send()
        .await
        .expect("context");
    let status = response.status().as_u16();
    let context: Value = response.json().await.expect("json");
    assert_eq!(status, 200, "{context}");
    assert_eq!(context["anchor"]["fields"]["label"], "context", "{context}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_wait_that_runs_out_is_a_408_naming_what_is_missing() {
    let server = server().await;
    let client = &server.client;
    let answer = put(client, "late", 120).await;
    let started = Instant::now();
    let (status, error) = post(
        client,
        "search",
        &json!({ "query": "label:late", "wait_for": token(&answer), "wait_timeout_ms": 100 }),
    )
    .await;
    let waited = started.elapsed();
    assert_eq!(status, 408, "{error}");
    assert_eq!(error["error"]["code"], "wait_timeout", "{error}");
    assert_eq!(error["error"]["pending_records"], 120, "{error}");
    assert!(
        waited < Duration::from_millis(COMMIT_INTERVAL_MS),
        "the wait is bounded by its timeout: {waited:?}"
    );

    // Bad input is refused before any wait, naming the field and the limit.
    for (body, field) in [
        (json!({ "wait_for": "nonsense" }), "wait_for"),
        (
            json!({ "wait_for": token(&answer), "wait_timeout_ms": 60_001 }),
            "wait_timeout_ms",
        ),
        (json!({ "wait_timeout_ms": 10 }), "wait_timeout_ms"),
        (json!({ "wait_for": "w1.999999.0-0-1" }), "wait_for"),
    ] {
        let (status, error) = post(client, "search", &body).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["error"]["field"], field, "{body}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_cli_put_wait_returns_once_every_record_is_searchable() {
    let server = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("lines.log");
    let text: String = (0..2_500)
        .map(|i| format!("cli waited line {i}\n"))
        .collect();
    std::fs::write(&file, text).expect("write");
    // Make sure the pool has reached the routing, so the CLI's first put lands.
    put(&server.client, "warmup", 1).await;
    let started = Instant::now();
    let output = tokio::process::Command::new(logpool_binary())
        .args([
            "put",
            "--project",
            PROJECT,
            "--pool",
            POOL,
            "--quiet",
            "--batch-records",
            "1000",
            "--wait",
            "--wait-timeout-secs",
            "30",
            "--api-key",
            ADMIN_KEY,
            "--url",
        ])
        .arg(server.url())
        .arg(&file)
        .output()
        .await
        .expect("run put");
    assert!(
        output.status.success(),
        "put --wait failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("put --wait took {:?}", started.elapsed());
    // No polling: the moment the CLI returns, every line is searchable.
    assert_eq!(
        server
            .client
            .count(PROJECT, POOL, "\"cli waited line\"")
            .await
            .expect("count"),
        2_500
    );
}
