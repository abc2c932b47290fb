//! Quotas end to end on a standalone server: ingest rate quotas (records/s and
//! bytes/s, tenant and project) answer 429 with `Retry-After` and keep the accepted
//! total near the quota; a project over its storage quota is refused with 403
//! `quota_exceeded` until the quota is raised; query and tail quotas answer 429 (or
//! 400 for the time range); quota changes apply without a restart; bad quota bodies
//! are refused and change nothing.
//!
//! Rates are checked by counting, never by timing: over a measured window of `t`
//! seconds a token bucket of rate `r` (burst one second) lets through at most
//! `r * t + r` plus one request per client already in flight when it emptied.

use std::time::{Duration, Instant};

use logpool_client::wire::quotas::Usage;
use logpool_e2e::{wait_for, TestServer, ADMIN_KEY};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// An answer: status, `Retry-After` (seconds) and the JSON body.
struct Answer {
    status: StatusCode,
    retry_after: Option<u64>,
    body: Value,
}

impl Answer {
    fn limit(&self) -> &str {
        self.body["error"]["limit"].as_str().unwrap_or_default()
    }

    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }
}

async fn call(
    server: &TestServer,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let mut request = server
        .client
        .clone()
        .with_api_key(key)
        .request(method, format!("{}{path}", server.url()));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        retry_after,
        body,
    }
}

/// Creates tenant `tenant` with a tenant_admin key and returns the key.
async fn tenant_with_admin(server: &TestServer, tenant: &str) -> String {
    let created = call(
        server,
        ADMIN_KEY,
        Method::POST,
        "/v1/tenants",
        Some(json!({ "name": tenant })),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let key = call(
        server,
        ADMIN_KEY,
        Method::POST,
        &format!("/v1/tenants/{tenant}/keys"),
        Some(json!({ "role": "tenant_admin" })),
    )
    .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
    key.body["key"].as_str().expect("key").to_string()
}

async fn project_with_pool(server: &TestServer, key: &str, project: &str, pool: &str) {
    let created = call(
        server,
        key,
        Method::POST,
        "/v1/projects",
        Some(json!({ "name": project })),
    )
    .await;
    assert!(created.status.is_success(), "{}", created.body);
    let created = call(
        server,
        key,
        Method::POST,
        &format!("/v1/projects/{project}/pools"),
        Some(json!({ "name": pool, "shards": 1 })),
    )
    .await;
    assert!(created.status.is_success(), "{}", created.body);
}

async fn set_quotas(server: &TestServer, key: &str, path: &str, limits: Value) {
    let set = call(server, key, Method::PUT, path, Some(limits)).await;
    assert_eq!(set.status, StatusCode::OK, "PUT {path}: {}", set.body);
}

fn batch(size: usize, pad: usize, seed: usize) -> Value {
    let filler = "x".repeat(pad);
    Value::Array(
        (0..size)
            .map(|i| json!({ "message": format!("record {seed}-{i} {filler}"), "n": i }))
            .collect(),
    )
}

fn logs_path(project: &str, pool: &str) -> String {
    format!("/v1/projects/{project}/pools/{pool}/logs")
}

/// What `clients` clients pushing `body` as fast as they can for `window` got.
#[derive(Debug, Default)]
struct Flood {
    accepted_requests: u64,
    refused: Vec<(u16, Option<u64>, String, String)>,
    elapsed: Duration,
}

async fn flood(
    server: &TestServer,
    key: &str,
    path: &str,
    body: Value,
    clients: usize,
    window: Duration,
) -> Flood {
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let client = server.client.clone().with_api_key(key);
            let url = format!("{}{path}", server.url());
            let body = body.clone();
            tokio::spawn(async move {
                let mut accepted = 0u64;
                let mut refused = Vec::new();
                while started.elapsed() < window {
                    let response = client
                        .request(Method::POST, url.clone())
                        .json(&body)
                        .send()
                        .await
                        .expect("put");
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok());
                    let answer: Value = response.json().await.unwrap_or(Value::Null);
                    if status.is_success() {
                        accepted += 1;
                    } else {
                        refused.push((
                            status.as_u16(),
                            retry_after,
                            answer["error"]["limit"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                            answer["error"]["message"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                        ));
                        // A refused client backs off a little, as a polite one would,
                        // so the test does not only measure refusals.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                (accepted, refused)
            })
        })
        .collect();
    let mut result = Flood::default();
    for task in tasks {
        let (accepted, refused) = task.await.expect("client");
        result.accepted_requests += accepted;
        result.refused.extend(refused);
    }
    result.elapsed = started.elapsed();
    result
}

/// Asserts that every refusal is a 429 naming `limit` with a `Retry-After`, and
/// that there was at least one.
fn assert_rate_refusals(flood: &Flood, limit: &str, owner: &str) {
    assert!(
        !flood.refused.is_empty(),
        "no request was refused under `{limit}`: {flood:?}"
    );
    for (status, retry_after, named, message) in &flood.refused {
        assert_eq!(*status, 429, "{message}");
        assert_eq!(named, limit, "{message}");
        assert!(
            message.contains(limit) && message.contains(owner),
            "{message}"
        );
        assert!(
            retry_after.is_some_and(|s| s >= 1),
            "no Retry-After: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_ingest_rate_quotas_refuse_with_429_and_cap_the_accepted_total() {
    let server = TestServer::start().await.expect("server");
    let key = tenant_with_admin(&server, "qrate").await;
    project_with_pool(&server, &key, "rec", "app").await;
    project_with_pool(&server, &key, "byt", "app").await;

    // Records per second, tenant-wide.
    const RECORDS_PER_S: u64 = 1_000;
    const BATCH: usize = 100;
    const CLIENTS: usize = 3;
    set_quotas(
        &server,
        ADMIN_KEY,
        "/v1/tenants/qrate/quotas",
        json!({ "ingest_records_per_s": RECORDS_PER_S }),
    )
    .await;
    let result = flood(
        &server,
        &key,
        &logs_path("rec", "app"),
        batch(BATCH, 0, 1),
        CLIENTS,
        Duration::from_secs(3),
    )
    .await;
    assert_rate_refusals(&result, "ingest_records_per_s", "tenant `qrate`");
    let accepted = result.accepted_requests * BATCH as u64;
    let ceiling = (RECORDS_PER_S as f64 * result.elapsed.as_secs_f64()) as u64
        + RECORDS_PER_S
        + (CLIENTS * BATCH) as u64;
    println!(
        "records/s quota {RECORDS_PER_S}: {accepted} records accepted in {:.2} s (ceiling {ceiling}), {} refused",
        result.elapsed.as_secs_f64(),
        result.refused.len()
    );
    assert!(
        accepted <= ceiling,
        "{accepted} records accepted, at most {ceiling} allowed"
    );
    assert!(
        accepted >= RECORDS_PER_S,
        "not even the first second's burst was accepted: {accepted}"
    );

    // Bytes per second, tenant-wide (the records quota lifted).
    const BYTES_PER_S: u64 = 40_000;
    let body = batch(20, 400, 2);
    let body_bytes = serde_json::to_vec(&body).expect("json").len() as u64;
    set_quotas(
        &server,
        ADMIN_KEY,
        "/v1/tenants/qrate/quotas",
        json!({ "ingest_bytes_per_s": BYTES_PER_S }),
    )
    .await;
    let result = flood(
        &server,
        &key,
        &logs_path("byt", "app"),
        body,
        CLIENTS,
        Duration::from_secs(3),
    )
    .await;
    assert_rate_refusals(&result, "ingest_bytes_per_s", "tenant `qrate`");
    let accepted = result.accepted_requests * body_bytes;
    let ceiling = (BYTES_PER_S as f64 * result.elapsed.as_secs_f64()) as u64
        + BYTES_PER_S
        + CLIENTS as u64 * body_bytes;
    println!(
        "bytes/s quota {BYTES_PER_S}: {accepted} bytes accepted in {:.2} s (ceiling {ceiling}), {} refused",
        result.elapsed.as_secs_f64(),
        result.refused.len()
    );
    assert!(
        accepted <= ceiling,
        "{accepted} bytes accepted, at most {ceiling} allowed"
    );
    assert!(
        accepted >= BYTES_PER_S,
        "not even the first second's burst was accepted: {accepted}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_project_quota_tighter_than_the_tenants_binds_only_that_project() {
    let server = TestServer::start().await.expect("server");
    let key = tenant_with_admin(&server, "qproj").await;
    project_with_pool(&server, &key, "slow", "app").await;
    project_with_pool(&server, &key, "fast", "app").await;
    set_quotas(
        &server,
        ADMIN_KEY,
        "/v1/tenants/qproj/quotas",
        json!({ "ingest_records_per_s": 100_000 }),
    )
    .await;
    // A tenant admin sets its own project's quota.
    const PROJECT_RATE: u64 = 500;
    set_quotas(
        &server,
        &key,
        "/v1/projects/slow/quotas",
        json!({ "ingest_records_per_s": PROJECT_RATE }),
    )
    .await;
    let got = call(&server, &key, Method::GET, "/v1/projects/slow/quotas", None).await;
    assert_eq!(got.body, json!({ "ingest_records_per_s": PROJECT_RATE }));

    let result = flood(
        &server,
        &key,
        &logs_path("slow", "app"),
        batch(100, 0, 3),
        2,
        Duration::from_secs(2),
    )
    .await;
    assert_rate_refusals(&result, "ingest_records_per_s", "project `slow`");
    let accepted = result.accepted_requests * 100;
    let ceiling = (PROJECT_RATE as f64 * result.elapsed.as_secs_f64()) as u64 + PROJECT_RATE + 200;
    assert!(
        accepted <= ceiling,
        "{accepted} records accepted, at most {ceiling} allowed"
    );

    // A project deep in debt is refused before its body is even parsed: a malformed
    // body gets the 429, not a 400.
    set_quotas(
        &server,
        &key,
        "/v1/projects/slow/quotas",
        json!({ "ingest_records_per_s": 1 }),
    )
    .await;
    let refused = wait_for(Duration::from_secs(10), || async {
        let put = call(
            &server,
            &key,
            Method::POST,
            &logs_path("slow", "app"),
            Some(batch(100, 0, 5)),
        )
        .await;
        (put.status == StatusCode::TOO_MANY_REQUESTS).then_some(put)
    })
    .await
    .expect("the 1 record/s project never refused a 100-record batch");
    assert_eq!(refused.limit(), "ingest_records_per_s", "{}", refused.body);
    let malformed = server
        .client
        .clone()
        .with_api_key(&key)
        .request(
            Method::POST,
            format!("{}{}", server.url(), logs_path("slow", "app")),
        )
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("put");
    assert_eq!(malformed.status(), StatusCode::TOO_MANY_REQUESTS);

    // The other project of the same tenant only answers to the tenant's quota.
    let result = flood(
        &server,
        &key,
        &logs_path("fast", "app"),
        batch(100, 0, 4),
        2,
        Duration::from_secs(1),
    )
    .await;
    assert!(
        result.refused.is_empty(),
        "the unlimited project was refused: {:?}",
        result.refused.first()
    );
    assert!(
        result.accepted_requests * 100 > PROJECT_RATE * 2,
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_project_over_its_storage_quota_refuses_writes_until_the_quota_is_raised() {
    let server = TestServer::start().await.expect("server");
    let key = tenant_with_admin(&server, "qstore").await;
    project_with_pool(&server, &key, "full", "app").await;
    project_with_pool(&server, &key, "free", "app").await;
    const QUOTA: u64 = 200_000;
    set_quotas(
        &server,
        &key,
        "/v1/projects/full/quotas",
        json!({ "storage_bytes": QUOTA }),
    )
    .await;

    // Put until the index has grown past the quota and the writes are refused.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut accepted_batches = 0;
    let refusal = loop {
        let answer = call(
            &server,
            &key,
            Method::POST,
            &logs_path("full", "app"),
            Some(batch(500, 200, accepted_batches)),
        )
        .await;
        match answer.status {
            StatusCode::OK => accepted_batches += 1,
            StatusCode::FORBIDDEN => break answer,
            other => panic!("unexpected answer {other}: {}", answer.body),
        }
        assert!(
            Instant::now() < deadline,
            "writes were still accepted after {accepted_batches} batches"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        accepted_batches > 0,
        "the first write must fit an empty project"
    );
    assert_eq!(
        refusal.body["error"]["code"], "quota_exceeded",
        "{}",
        refusal.body
    );
    assert_eq!(refusal.limit(), "storage_bytes", "{}", refusal.body);
    assert!(
        refusal.message().contains("storage quota"),
        "{}",
        refusal.body
    );
    let usage = call(&server, &key, Method::GET, "/v1/tenants/qstore/usage", None).await;
    let usage: Usage = serde_json::from_value(usage.body).expect("the usage answer");
    let full = usage
        .projects
        .iter()
        .find(|project| project.name == "full")
        .expect("usage of `full`");
    assert!(full.over_storage_quota, "{usage:?}");
    assert!(full.storage_bytes >= QUOTA, "{usage:?}");
    assert_eq!(full.quotas.storage_bytes, Some(QUOTA), "{usage:?}");

    // Other projects still accept, and the full one can still be searched.
    let other = call(
        &server,
        &key,
        Method::POST,
        &logs_path("free", "app"),
        Some(batch(10, 0, 0)),
    )
    .await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.body);
    let found = call(
        &server,
        &key,
        Method::GET,
        "/v1/projects/full/pools/app/search?query=record&limit=1&from=-1h",
        None,
    )
    .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert!(
        found.body["total"].as_u64().unwrap_or(0) > 0,
        "{}",
        found.body
    );

    // Raising the quota lets writes in again within seconds.
    set_quotas(
        &server,
        &key,
        "/v1/projects/full/quotas",
        json!({ "storage_bytes": 1u64 << 40 }),
    )
    .await;
    let accepted = wait_for(Duration::from_secs(20), || async {
        let answer = call(
            &server,
            &key,
            Method::POST,
            &logs_path("full", "app"),
            Some(batch(1, 0, 0)),
        )
        .await;
        (answer.status == StatusCode::OK).then_some(())
    })
    .await;
    assert!(
        accepted.is_some(),
        "writes stayed refused after the quota was raised"
    );
}

/// A search over `from`..now (`to` is explicit: under `max_query_range_s` an open
/// range is unbounded and refused).
fn search_path(project: &str, query: &str, from: &str) -> String {
    format!("/v1/projects/{project}/pools/app/search?query={query}&from={from}&to=now&limit=10")
}

/// Sends `n` searches at once and returns the answers.
async fn concurrent_searches(server: &TestServer, key: &str, path: &str, n: usize) -> Vec<Answer> {
    let searches = (0..n).map(|_| call(server, key, Method::GET, path, None));
    futures::future::join_all(searches).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_query_and_tail_quotas_refuse_and_changes_apply_without_a_restart() {
    let server = TestServer::start().await.expect("server");
    let key = tenant_with_admin(&server, "qquery").await;
    project_with_pool(&server, &key, "logs", "app").await;
    for seed in 0..4 {
        let put = call(
            &server,
            &key,
            Method::POST,
            &logs_path("logs", "app"),
            Some(batch(1000, 50, seed)),
        )
        .await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    }
    let quotas = "/v1/tenants/qquery/quotas";
    let heavy = search_path("logs", "record*%20OR%20x*", "-1h");

    // concurrent_queries: with one allowed, a burst of simultaneous searches has
    // some refused (a few rounds, in case every search of one round ran alone).
    set_quotas(
        &server,
        ADMIN_KEY,
        quotas,
        json!({ "concurrent_queries": 1 }),
    )
    .await;
    let mut refused = None;
    for _ in 0..5 {
        let answers = concurrent_searches(&server, &key, &heavy, 24).await;
        for answer in &answers {
            assert!(
                answer.status == StatusCode::OK || answer.status == StatusCode::TOO_MANY_REQUESTS,
                "{}: {}",
                answer.status,
                answer.body
            );
        }
        refused = answers
            .into_iter()
            .find(|a| a.status == StatusCode::TOO_MANY_REQUESTS);
        if refused.is_some() {
            break;
        }
    }
    let refused = refused.expect("no search was refused with one concurrent query allowed");
    assert_eq!(refused.limit(), "concurrent_queries", "{}", refused.body);
    assert!(refused.retry_after.is_some(), "no Retry-After");

    // queries_per_s: the change applies at once, without a restart.
    set_quotas(&server, ADMIN_KEY, quotas, json!({ "queries_per_s": 2 })).await;
    let answers =
        concurrent_searches(&server, &key, &search_path("logs", "record", "-1h"), 12).await;
    let ok = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .count();
    let refused: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(
        ok >= 1 && ok + refused.len() == answers.len(),
        "{ok} ok of {}",
        answers.len()
    );
    assert!(
        !refused.is_empty(),
        "12 searches at once under 2 queries/s were all answered"
    );
    for answer in &refused {
        assert_eq!(answer.limit(), "queries_per_s", "{}", answer.body);
        assert!(
            answer.message().contains("queries_per_s"),
            "{}",
            answer.body
        );
        assert!(answer.retry_after.is_some(), "no Retry-After");
    }

    // max_query_range_s: a longer range is a 400 naming the limit.
    set_quotas(
        &server,
        ADMIN_KEY,
        quotas,
        json!({ "max_query_range_s": 3600 }),
    )
    .await;
    let wide = call(
        &server,
        &key,
        Method::GET,
        &search_path("logs", "record", "-2d"),
        None,
    )
    .await;
    assert_eq!(wide.status, StatusCode::BAD_REQUEST, "{}", wide.body);
    assert_eq!(wide.limit(), "max_query_range_s", "{}", wide.body);
    assert!(wide.message().contains("3600"), "{}", wide.body);
    let narrow = call(
        &server,
        &key,
        Method::GET,
        &search_path("logs", "record", "-30m"),
        None,
    )
    .await;
    assert_eq!(narrow.status, StatusCode::OK, "{}", narrow.body);
    let sql = call(
        &server,
        &key,
        Method::POST,
        "/v1/projects/logs/pools/app/query",
        Some(json!({ "query": "* | SELECT count(*) AS c", "from": "-2d", "to": "now" })),
    )
    .await;
    assert_eq!(sql.status, StatusCode::BAD_REQUEST, "{}", sql.body);
    assert_eq!(sql.limit(), "max_query_range_s", "{}", sql.body);

    // Lifting the quota lets the wide search through again, within seconds.
    set_quotas(&server, ADMIN_KEY, quotas, json!({})).await;
    let lifted = wait_for(Duration::from_secs(10), || async {
        let wide = call(
            &server,
            &key,
            Method::GET,
            &search_path("logs", "record", "-2d"),
            None,
        )
        .await;
        (wide.status == StatusCode::OK).then_some(())
    })
    .await;
    assert!(
        lifted.is_some(),
        "the wide search stayed refused after the quota was lifted"
    );

    // concurrent_tails: the second tail's upgrade is refused with 429.
    set_quotas(&server, ADMIN_KEY, quotas, json!({ "concurrent_tails": 1 })).await;
    let tail_url = format!(
        "ws://{}/v1/projects/logs/pools/app/tail?query=record&token={key}",
        server.addr()
    );
    let (first, _) = tokio_tungstenite::connect_async(tail_url.as_str())
        .await
        .expect("first tail");
    match tokio_tungstenite::connect_async(tail_url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 429);
            let body =
                String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).to_string();
            assert!(body.contains("too_many_requests"), "{body}");
            assert!(
                response.headers().contains_key("retry-after"),
                "no Retry-After"
            );
        }
        Err(other) => panic!("the second tail failed with {other}, not a 429"),
        Ok(_) => panic!("a second tail opened under `concurrent_tails` = 1"),
    }
    // Closing the tail frees its slot: under the same quota of 1, a new tail opens
    // once the first has said goodbye, and holds the slot in its turn.
    let mut first = first;
    first.close(None).await.expect("close the first tail");
    drop(first);
    let reopened = wait_for(Duration::from_secs(10), || async {
        tokio_tungstenite::connect_async(tail_url.as_str())
            .await
            .ok()
            .map(|(tail, _)| tail)
    })
    .await
    .expect("no tail could open after the first was closed");
    assert_tail_refused(&tail_url).await;
    // A tail whose connection just drops (no close frame) frees its slot as well.
    drop(reopened);
    let after_drop = wait_for(Duration::from_secs(10), || async {
        tokio_tungstenite::connect_async(tail_url.as_str())
            .await
            .ok()
            .map(|(tail, _)| tail)
    })
    .await
    .expect("no tail could open after the previous one's connection dropped");
    assert_tail_refused(&tail_url).await;
    // Raising the quota lets a second one open next to it at once.
    set_quotas(&server, ADMIN_KEY, quotas, json!({ "concurrent_tails": 2 })).await;
    let second = wait_for(Duration::from_secs(10), || async {
        tokio_tungstenite::connect_async(tail_url.as_str())
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    assert!(
        second.is_some(),
        "no second tail could open after the quota was raised"
    );
    drop(after_drop);
}

/// Asserts that opening a tail at `url` is refused with 429 (`concurrent_tails`).
async fn assert_tail_refused(url: &str) {
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 429);
        }
        Err(other) => panic!("the tail failed with {other}, not a 429"),
        Ok(_) => panic!("a tail opened beyond `concurrent_tails`"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_bad_quota_bodies_are_refused_naming_the_field_and_change_nothing() {
    let server = TestServer::start().await.expect("server");
    let key = tenant_with_admin(&server, "qbad").await;
    project_with_pool(&server, &key, "pq", "app").await;
    let stored = json!({ "ingest_records_per_s": 500, "concurrent_tails": 3 });
    let tenant_path = "/v1/tenants/qbad/quotas";
    let project_path = "/v1/projects/pq/quotas";
    set_quotas(&server, ADMIN_KEY, tenant_path, stored.clone()).await;
    set_quotas(&server, &key, project_path, stored.clone()).await;

    let bad = [
        (json!({ "ingest_records_per_s": 0 }), "ingest_records_per_s"),
        (json!({ "storage_bytes": 0 }), "storage_bytes"),
        (json!({ "ingest_bytes_per_s": -5 }), "ingest_bytes_per_s"),
        (json!({ "queries_per_s": "fast" }), "queries_per_s"),
        (json!({ "concurrent_queries": 1.5 }), "concurrent_queries"),
        (json!({ "max_records_per_s": 10 }), "max_records_per_s"),
        (
            json!({ "concurrent_tails": 1u64 << 40 }),
            "concurrent_tails",
        ),
    ];
    for (path, key) in [(tenant_path, ADMIN_KEY), (project_path, key.as_str())] {
        for (body, field) in &bad {
            let answer = call(&server, key, Method::PUT, path, Some(body.clone())).await;
            assert_eq!(
                answer.status,
                StatusCode::BAD_REQUEST,
                "{path} {body}: {}",
                answer.body
            );
            assert!(
                answer.message().contains(field),
                "{path} {body}: the error does not name `{field}`: {}",
                answer.body
            );
        }
        let after = call(&server, key, Method::GET, path, None).await;
        assert_eq!(after.status, StatusCode::OK, "{}", after.body);
        assert_eq!(
            after.body, stored,
            "{path}: a refused body changed the stored quota"
        );
    }
    // Only operators set tenant quotas; a tenant admin may not raise its own.
    let own = call(
        &server,
        &key,
        Method::PUT,
        tenant_path,
        Some(json!({ "ingest_records_per_s": 1_000_000 })),
    )
    .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.body);
}
