//! Read-your-writes: PutDatas answers a `write_token`; a search, histogram, SQL
//! query or context with `wait_for=<token>` answers only once those records are
//! searchable, and 408 `wait_timeout` with what is missing when its timeout runs out.
//! `logpool put --wait` returns only once everything it sent is searchable.
//!
//! The indexer commits every 2 s here, so a read right after a put sees nothing
//! without `wait_for`: each check below would fail without the wait (and the
//! first one asserts exactly that).

use std::time::{Duration, Instant};

use logpool_client::wire::ingest::PutAnswer;
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
async fn put(client: &LogpoolClient, project: &str, label: &str, count: usize) -> PutAnswer {
    let logs: Vec<Value> = (0..count)
        .map(|i| json!({ "label": label, "message": format!("{label} {i}") }))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.put_records(project, POOL, &logs).await {
            Err(ClientError::Http { status: 404, .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            answer => return answer.expect("put"),
        }
    }
}

fn token(answer: &PutAnswer) -> String {
    assert!(
        !answer.write_token.is_empty(),
        "no write_token in {answer:?}"
    );
    answer.write_token.clone()
}

fn pool_url(client: &LogpoolClient, project: &str, rest: &str) -> String {
    format!(
        "{}/v1/projects/{project}/pools/{POOL}/{rest}",
        client.base_url()
    )
}

/// Sends a POST with a JSON body and returns the status and the JSON answer.
async fn post(client: &LogpoolClient, project: &str, rest: &str, body: &Value) -> (u16, Value) {
    let response = client
        .request(reqwest::Method::POST, pool_url(client, project, rest))
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
    let answer = put(client, PROJECT, "search", 300).await;
    let search = json!({ "query": "label:search", "limit": 1000 });
    let (status, plain) = post(client, PROJECT, "search", &search).await;
    assert_eq!(status, 200, "{plain}");
    assert_eq!(
        plain["total"], 0,
        "without wait_for a read right after the put sees nothing yet: {plain}"
    );
    let started = Instant::now();
    let (status, waited) = post(
        client,
        PROJECT,
        "search",
        &json!({ "query": "label:search", "limit": 1000, "wait_for": token(&answer) }),
    )
    .await;
    assert_eq!(status, 200, "{waited}");
    assert_eq!(waited["total"], 300, "{}", waited["total"]);
    eprintln!("search waited {:?}", started.elapsed());

    // Histogram.
    let answer = put(client, PROJECT, "histogram", 200).await;
    let (status, histogram) = post(
        client,
        PROJECT,
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
    let answer = put(client, PROJECT, "sql", 150).await;
    let (status, table) = post(
        client,
        PROJECT,
        "query",
        &json!({ "query": "label:sql | SELECT count(*) AS n", "wait_for": token(&answer) }),
    )
    .await;
    assert_eq!(status, 200, "{table}");
    assert_eq!(table["rows"][0][0], 150, "{table}");

    // Context of the first record of the put's first batch, by GET.
    let answer = put(client, PROJECT, "context", 10).await;
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
            pool_url(client, PROJECT, &format!("records/{id}/context")),
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
    let answer = put(client, PROJECT, "late", 120).await;
    let started = Instant::now();
    let (status, error) = post(
        client,
        PROJECT,
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
        let (status, error) = post(client, PROJECT, "search", &body).await;
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
    put(&server.client, PROJECT, "warmup", 1).await;
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

#[cfg(feature = "distributed")]
mod distributed {
    //! The same on Pulsar and Elasticsearch, with the services as separate
    //! processes: the put goes to put-datas, the reads to search-api.

    use super::*;
    use logpool_e2e::services::{engines, start_service_with_env, Deployment};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn test_wait_for_holds_reads_until_loghub_has_indexed_on_elasticsearch() {
        let Some(engines) = engines() else { return };
        let deployment = Deployment::new(&engines).await;
        let control = deployment.start("control-api").await;
        let put_service = deployment.start("put-datas").await;
        let search = deployment.start("search-api").await;
        // Topics are named after the project: a name of its own keeps other
        // deployments' messages on the shared broker out of this one.
        let project = format!("ryw-{}", deployment.suffix);
        control
            .client
            .create_project(&project)
            .await
            .expect("project");
        control
            .client
            .create_pool(&project, &json!({ "name": POOL, "shards": 3 }))
            .await
            .expect("pool");

        // Nothing indexes yet: the wait runs out, naming what is missing.
        let answer = put(&put_service.client, &project, "es", 300).await;
        let wait_for = token(&answer);
        let started = Instant::now();
        let (status, error) = post(
            &search.client,
            &project,
            "search",
            &json!({ "query": "label:es", "wait_for": wait_for, "wait_timeout_ms": 300 }),
        )
        .await;
        assert_eq!(status, 408, "{error}");
        assert_eq!(error["error"]["pending_records"], 300, "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));

        // Once loghub runs, the same read answers with every record (committing
        // seldom, so that the read does wait for it).
        let _loghub = start_service_with_env(
            "loghub",
            &deployment.config_path,
            deployment.dir.path(),
            &[(
                "LOGPOOL_LOGHUB__COMMIT_INTERVAL_MS".to_string(),
                COMMIT_INTERVAL_MS.to_string(),
            )],
        )
        .await;
        let started = Instant::now();
        let (status, found) = post(
            &search.client,
            &project,
            "search",
            &json!({ "query": "label:es", "limit": 1000, "wait_for": wait_for, "wait_timeout_ms": 30_000 }),
        )
        .await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["total"], 300, "{}", found["total"]);
        eprintln!("search waited {:?} for loghub", started.elapsed());

        // SQL with a fresh write.
        let answer = put(&put_service.client, &project, "es-sql", 40).await;
        let (status, table) = post(
            &search.client,
            &project,
            "query",
            &json!({ "query": "label:es-sql | SELECT count(*) AS n", "wait_for": token(&answer) }),
        )
        .await;
        assert_eq!(status, 200, "{table}");
        assert_eq!(table["rows"][0][0], 40, "{table}");
    }
}
