//! A retried PutDatas with the same `Idempotency-Key` stores every record exactly
//! once, on both queue engines, against the real binaries:
//!
//! - one shard's produce fails (test fault `idempotency.test_fail_first_produce_to_shard`):
//!   the request answers 503 with the other shards durable; the retry stores only
//!   the missing shard;
//! - the process is killed (SIGKILL) after the first shard is durable and before the
//!   next one is produced (test fault `idempotency.test_pause_after_shard_produce_ms`);
//!   the retry, after a restart (on the distributed engines: to a new put-datas
//!   instance), stores only what is missing.
//!
//! Each request has 1,500 records with unique ids over a 3-shard pool, so it is split
//! into three parts of 500; "exactly once" is read from search, id by id.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use logpool_client::wire::ingest::PutAnswer;
use logpool_client::{ClientError, Encoding, LogpoolClient};
use logpool_e2e::{count_records_by, free_port, start_standalone_process, wait_for};
use serde_json::{json, Value};

const RECORDS: usize = 1_500;
const SHARDS: usize = 3;
const POOL: &str = "app";

/// The body of the request under test: `RECORDS` records with ids `{label}-{i}`.
fn request_body(label: &str) -> Vec<u8> {
    let logs: Vec<Value> = (0..RECORDS)
        .map(|i| json!({ "rid": format!("{label}-{i}"), "message": format!("idempotent record {i}") }))
        .collect();
    serde_json::to_vec(&json!({ "logs": logs })).expect("body")
}

async fn put(
    client: &LogpoolClient,
    project: &str,
    body: &[u8],
    key: &str,
) -> Result<PutAnswer, ClientError> {
    client
        .put_raw_with_key(
            project,
            POOL,
            "application/json",
            Encoding::Identity,
            body.to_vec(),
            None,
            key,
        )
        .await
}

/// Sends the request once the pool has reached put-datas' routing (a new pool is
/// a 404 until then).
async fn put_once_routed(
    client: &LogpoolClient,
    project: &str,
    body: &[u8],
    key: &str,
) -> Result<PutAnswer, ClientError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match put(client, project, body, key).await {
            Err(ClientError::Http { status: 404, .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            other => return other,
        }
    }
}

/// Retries the request (same body, same key) until it is accepted; panics after 60 s.
async fn retry_until_accepted(
    client: &LogpoolClient,
    project: &str,
    body: &[u8],
    key: &str,
) -> PutAnswer {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match put(client, project, body, key).await {
            Ok(answer) => return answer,
            Err(error) if error.is_retryable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("the retry was not accepted: {error}"),
        }
    }
}

/// Waits until the pool holds `expected` records and returns them by id.
async fn stored_ids(
    search: &LogpoolClient,
    project: &str,
    expected: usize,
) -> HashMap<String, usize> {
    let found = wait_for(Duration::from_secs(60), || async {
        let ids = count_records_by(search, project, POOL, "rid").await.ok()?;
        (ids.values().sum::<usize>() >= expected).then_some(ids)
    })
    .await;
    found.unwrap_or_else(|| panic!("the pool never held {expected} records"))
}

/// How many of the request's records are stored more than once, and how many not
/// at all.
fn doubled_and_missing(ids: &HashMap<String, usize>, label: &str) -> (usize, usize) {
    let doubled = ids.values().filter(|n| **n > 1).count();
    let missing = (0..RECORDS)
        .filter(|i| !ids.contains_key(&format!("{label}-{i}")))
        .count();
    (doubled, missing)
}

/// Checks every record of the request is stored exactly once, and nothing else.
fn assert_each_once(ids: &HashMap<String, usize>, label: &str) {
    let examples: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert_eq!(
        doubled_and_missing(ids, label),
        (0, 0),
        "(records stored twice, records missing); e.g. {examples:?}"
    );
    assert_eq!(ids.len(), RECORDS, "only the request's records are stored");
}

/// Waits until the pool has stored `at_least` records (searchable), panicking after
/// 30 s; returns the count seen.
async fn wait_for_stored(search: &LogpoolClient, project: &str, at_least: u64) -> u64 {
    wait_for(Duration::from_secs(30), || async {
        search
            .count(project, POOL, "")
            .await
            .ok()
            .filter(|n| *n >= at_least)
    })
    .await
    .unwrap_or_else(|| panic!("fewer than {at_least} records became searchable"))
}

/// The part of a scenario that does not depend on the deployment: the failed shard.
async fn failed_shard_then_retry(
    put_client: &LogpoolClient,
    search: &LogpoolClient,
    project: &str,
) {
    let label = "failed-shard";
    let body = request_body(label);
    let key = logpool_client::new_request_key();
    let first = put_once_routed(put_client, project, &body, &key).await;
    assert_eq!(
        first.as_ref().err().and_then(ClientError::status),
        Some(503),
        "the failed shard fails the request: {first:?}"
    );
    // The two other parts are durable (and get indexed) although the client got a 503.
    let partial = wait_for_stored(search, project, (RECORDS - RECORDS / SHARDS) as u64).await;
    assert_eq!(partial, (RECORDS - RECORDS / SHARDS) as u64);
    let answer = retry_until_accepted(put_client, project, &body, &key).await;
    assert_eq!(answer.accepted, RECORDS, "{answer:?}");
    // A second retry of the finished request answers the same receipts.
    let again = retry_until_accepted(put_client, project, &body, &key).await;
    assert_eq!(again.shards, answer.shards);
    let ids = stored_ids(search, project, RECORDS).await;
    // Anything doubled would have been indexed by now too: give it one more commit.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ids_later = count_records_by(search, project, POOL, "rid")
        .await
        .expect("search");
    assert_eq!(
        ids_later.values().sum::<usize>(),
        ids.values().sum::<usize>()
    );
    assert_each_once(&ids_later, label);

    // The same key with another body is refused, naming the header.
    let other = put(put_client, project, &request_body("other"), &key).await;
    match other {
        Err(ClientError::Http {
            status: 400, body, ..
        }) => {
            assert!(body.contains("Idempotency-Key"), "{body}")
        }
        other => panic!("a reused key with another body must be a 400: {other:?}"),
    }
}

/// Bad keys are refused before anything is stored, naming the header and the limit.
async fn bad_keys_are_refused(put_client: &LogpoolClient, project: &str) {
    let body = serde_json::to_vec(&json!({ "logs": [{ "message": "x" }] })).expect("body");
    for (key, detail) in [
        ("k".repeat(129), "128"),
        ("has space".to_string(), "Idempotency-Key"),
    ] {
        match put(put_client, project, &body, &key).await {
            Err(ClientError::Http {
                status: 400, body, ..
            }) => {
                assert!(
                    body.contains("Idempotency-Key") && body.contains(detail),
                    "{body}"
                )
            }
            other => panic!("key {key:?} must be refused with 400: {other:?}"),
        }
    }
}

fn standalone_env(extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let mut env = vec![("LOGPOOL_LOGHUB__COMMIT_INTERVAL_MS", "200".to_string())];
    for (name, value) in extra {
        let name: &'static str = Box::leak(name.to_string().into_boxed_str());
        env.push((name, value.to_string()));
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_retry_after_a_failed_shard_stores_each_record_once_on_the_embedded_queue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let env = standalone_env(&[("LOGPOOL_IDEMPOTENCY__TEST_FAIL_FIRST_PRODUCE_TO_SHARD", "1")]);
    let _child = start_standalone_process(
        &dir.path().join("data"),
        port,
        &dir.path().join("log"),
        &env,
    )
    .await;
    let client = logpool_e2e::admin_client(&format!("http://127.0.0.1:{port}"));
    client.create_project("idem").await.expect("project");
    client
        .create_pool("idem", &json!({ "name": POOL, "shards": SHARDS }))
        .await
        .expect("pool");
    let started = Instant::now();
    failed_shard_then_retry(&client, &client, "idem").await;
    eprintln!("failed-shard scenario took {:?}", started.elapsed());
    bad_keys_are_refused(&client, "idem").await;
}

/// The control: the same failure retried *without* a key stores the two durable
/// parts again, and the check above sees it. This is what the key prevents.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_without_a_key_the_same_retry_doubles_the_durable_parts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let env = standalone_env(&[("LOGPOOL_IDEMPOTENCY__TEST_FAIL_FIRST_PRODUCE_TO_SHARD", "1")]);
    let _child = start_standalone_process(
        &dir.path().join("data"),
        port,
        &dir.path().join("log"),
        &env,
    )
    .await;
    let client = logpool_e2e::admin_client(&format!("http://127.0.0.1:{port}"));
    client.create_project("plain").await.expect("project");
    client
        .create_pool("plain", &json!({ "name": POOL, "shards": SHARDS }))
        .await
        .expect("pool");
    let label = "unkeyed";
    let body = request_body(label);
    let send = || {
        client.put_raw(
            "plain",
            POOL,
            "application/json",
            Encoding::Identity,
            body.clone(),
            None,
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        match send().await {
            Err(ClientError::Http { status: 404, .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            other => break other,
        }
    };
    assert_eq!(
        first.as_ref().err().and_then(ClientError::status),
        Some(503),
        "the failed shard fails the request: {first:?}"
    );
    send().await.expect("the plain retry is accepted");
    let durable_twice = RECORDS - RECORDS / SHARDS;
    let ids = stored_ids(&client, "plain", RECORDS + durable_twice).await;
    assert_eq!(doubled_and_missing(&ids, label), (durable_twice, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_kill_9_between_shards_then_retry_stores_each_record_once_on_the_embedded_queue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, log) = (dir.path().join("data"), dir.path().join("log"));
    let port = free_port();
    let client = logpool_e2e::admin_client(&format!("http://127.0.0.1:{port}"));
    let paused = standalone_env(&[
        (
            "LOGPOOL_IDEMPOTENCY__TEST_PAUSE_AFTER_SHARD_PRODUCE_MS",
            "5000",
        ),
        ("LOGPOOL_IDEMPOTENCY__CLAIM_MS", "2000"),
    ]);
    let mut child = start_standalone_process(&data, port, &log, &paused).await;
    client.create_project("idem").await.expect("project");
    client
        .create_pool("idem", &json!({ "name": POOL, "shards": SHARDS }))
        .await
        .expect("pool");
    let label = "killed";
    let body = request_body(label);
    let key = logpool_client::new_request_key();
    let request = {
        let (client, body, key) = (client.clone(), body.clone(), key.clone());
        tokio::spawn(async move { put(&client, "idem", &body, &key).await })
    };
    // The first part is durable (it is searchable) while the request pauses before
    // the second: kill -9 now.
    let seen = wait_for_stored(&client, "idem", (RECORDS / SHARDS) as u64).await;
    child.start_kill().expect("kill -9");
    child.wait().await.expect("reap");
    assert!(
        request.await.expect("request task").is_err(),
        "the killed request got no answer"
    );
    assert_eq!(seen, (RECORDS / SHARDS) as u64, "killed between shards");

    let _child = start_standalone_process(
        &data,
        port,
        &log,
        &standalone_env(&[("LOGPOOL_IDEMPOTENCY__CLAIM_MS", "2000")]),
    )
    .await;
    let answer = retry_until_accepted(&client, "idem", &body, &key).await;
    assert_eq!(answer.accepted, RECORDS, "{answer:?}");
    stored_ids(&client, "idem", RECORDS).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ids = count_records_by(&client, "idem", POOL, "rid")
        .await
        .expect("search");
    assert_each_once(&ids, label);
}

#[cfg(feature = "distributed")]
mod distributed {
    //! The same on Pulsar, etcd and the other distributed engines, with the services
    //! as separate processes; the retry after the kill goes to a new put-datas
    //! instance.

    use super::*;
    use logpool_e2e::services::{engines, start_service_with_env, Deployment};

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn test_retry_after_a_failed_shard_stores_each_record_once_on_pulsar() {
        let Some(engines) = engines() else { return };
        let deployment = Deployment::new(&engines).await;
        let (config, dir) = (&deployment.config_path, deployment.dir.path());
        let control = deployment.start("control-api").await;
        let put_service = start_service_with_env(
            "put-datas",
            config,
            dir,
            &env(&[("LOGPOOL_IDEMPOTENCY__TEST_FAIL_FIRST_PRODUCE_TO_SHARD", "1")]),
        )
        .await;
        let _loghub = deployment.start("loghub").await;
        let search = deployment.start("search-api").await;
        let project = format!("idem-{}", deployment.suffix);
        control
            .client
            .create_project(&project)
            .await
            .expect("project");
        control
            .client
            .create_pool(&project, &json!({ "name": POOL, "shards": SHARDS }))
            .await
            .expect("pool");
        let started = Instant::now();
        failed_shard_then_retry(&put_service.client, &search.client, &project).await;
        eprintln!(
            "failed-shard scenario on pulsar took {:?}",
            started.elapsed()
        );
        bad_keys_are_refused(&put_service.client, &project).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn test_kill_9_between_shards_then_retry_on_another_instance_stores_each_record_once_on_pulsar(
    ) {
        let Some(engines) = engines() else { return };
        let deployment = Deployment::new(&engines).await;
        let (config, dir) = (&deployment.config_path, deployment.dir.path());
        let control = deployment.start("control-api").await;
        let mut doomed = start_service_with_env(
            "put-datas",
            config,
            dir,
            &env(&[
                (
                    "LOGPOOL_IDEMPOTENCY__TEST_PAUSE_AFTER_SHARD_PRODUCE_MS",
                    "5000",
                ),
                ("LOGPOOL_IDEMPOTENCY__CLAIM_MS", "2000"),
            ]),
        )
        .await;
        let _loghub = deployment.start("loghub").await;
        let search = deployment.start("search-api").await;
        let project = format!("idem-{}", deployment.suffix);
        control
            .client
            .create_project(&project)
            .await
            .expect("project");
        control
            .client
            .create_pool(&project, &json!({ "name": POOL, "shards": SHARDS }))
            .await
            .expect("pool");
        let label = "killed";
        let body = request_body(label);
        let key = logpool_client::new_request_key();
        let request = {
            let (client, body, key, project) = (
                doomed.client.clone(),
                body.clone(),
                key.clone(),
                project.clone(),
            );
            tokio::spawn(async move { put_once_routed(&client, &project, &body, &key).await })
        };
        let seen = wait_for_stored(&search.client, &project, (RECORDS / SHARDS) as u64).await;
        doomed.child.start_kill().expect("kill -9");
        doomed.child.wait().await.expect("reap");
        assert!(
            request.await.expect("request task").is_err(),
            "the killed request got no answer"
        );
        assert_eq!(seen, (RECORDS / SHARDS) as u64, "killed between shards");

        let started = Instant::now();
        let successor = start_service_with_env(
            "put-datas",
            config,
            dir,
            &env(&[("LOGPOOL_IDEMPOTENCY__CLAIM_MS", "2000")]),
        )
        .await;
        let answer = retry_until_accepted(&successor.client, &project, &body, &key).await;
        assert_eq!(answer.accepted, RECORDS, "{answer:?}");
        stored_ids(&search.client, &project, RECORDS).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let ids = count_records_by(&search.client, &project, POOL, "rid")
            .await
            .expect("search");
        assert_each_once(&ids, label);
        eprintln!(
            "retry on a new instance and indexing took {:?}",
            started.elapsed()
        );
    }
}
