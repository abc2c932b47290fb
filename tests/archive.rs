//! Archive to object storage in standalone mode (local files under the data dir):
//! reconciliation of every acknowledged record, exactly once, byte-for-byte; the
//! settings and listing API; DuckDB reading the objects; restore into another pool;
//! and kill -9 of the process in the middle of uploads.

mod archive_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use archive_support::{
    assert_exactly_once, duckdb_count, enable_archive, now_ms, put_all, read_local_objects,
    records, send, wait_archived, Sent,
};
use logpool_client::wire::search::{SearchAnswer, SearchParams};
use logpool_client::LogpoolClient;
use logpool_e2e::{
    count_records_by, free_port, start_standalone_process, wait_for, wait_for_count, TestServer,
};
use serde_json::{json, Value};
use tokio::process::Child;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_every_record_is_archived_once_listed_and_readable_by_duckdb() {
    let server = TestServer::start().await.expect("server");
    let client = &server.client;
    let base = server.url();
    let project = "arch-rec";
    client.create_project(project).await.expect("project");
    let pools = [("web", 3, "zstd", 400), ("db", 2, "gzip", 250)];
    for (pool, shards, _, _) in pools {
        client
            .create_pool(project, &json!({ "name": pool, "shards": shards }))
            .await
            .expect("pool");
    }

    // Settings are validated and the error names the field and the limit.
    let url = format!("{base}/v1/projects/{project}/pools/web/archive/settings");
    let (status, answer) = send("GET", &url, &Value::Null).await;
    assert_eq!((status, answer["enabled"].clone()), (200, json!(false)));
    for (body, field) in [
        (json!({ "max_object_bytes": 10 }), "max_object_bytes"),
        (json!({ "max_delay_s": 0 }), "max_delay_s"),
        (json!({ "prefix": "../x" }), "prefix"),
        (json!({ "compression": "lz4" }), ""),
    ] {
        let (status, answer) = send("PUT", &url, &body).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        if !field.is_empty() {
            assert_eq!(answer["error"]["field"], json!(field), "{answer}");
        }
    }

    for (pool, _, compression, _) in pools {
        enable_archive(&base, project, pool, json!({ "compression": compression })).await;
    }
    let now = now_ms();
    let mut sent_by_pool: HashMap<&str, Sent> = HashMap::new();
    for (pool, _, _, count) in pools {
        let batch = records(pool, count, now);
        sent_by_pool.insert(pool, put_all(client, project, pool, &batch).await);
    }

    let objects_root = server.data_dir.path().join("objects");
    for (pool, _, compression, count) in pools {
        let dir = objects_root.join(format!("tenant=default/archive/{project}/{pool}"));
        let sent = &sent_by_pool[pool];
        let objects =
            wait_archived(sent, Duration::from_secs(60), || read_local_objects(&dir)).await;
        assert_exactly_once(sent, &objects);
        let extension = if compression == "zstd" {
            ".jsonl.zst"
        } else {
            ".jsonl.gz"
        };
        assert!(objects.iter().all(|o| o.key.ends_with(extension)));
        // Several shards and several hours, so several objects.
        assert!(
            objects.len() >= 5,
            "only {} objects for {pool}",
            objects.len()
        );

        // The listing knows every object, its size, record count and time range.
        let listing = client
            .archive_listing(project, pool, None, None)
            .await
            .expect("listing");
        let listed = &listing.objects;
        assert_eq!(listed.len(), objects.len(), "{listing:?}");
        let records_listed: u64 = listed.iter().map(|o| o.records).sum();
        assert_eq!(records_listed, count as u64);
        for object in listed {
            let size = std::fs::metadata(objects_root.join(&object.key))
                .expect("listed object")
                .len();
            assert_eq!(object.size, size, "{object:?}");
            assert!(object.min_time <= object.max_time);
        }
        // A time range keeps only the objects that overlap it.
        let newest_hour = format!("{}", now - 3 * 3_600_000);
        let recent = client
            .archive_listing(project, pool, Some(&newest_hour), None)
            .await
            .expect("listing with from")
            .objects
            .len();
        assert!(
            recent > 0 && recent < listed.len(),
            "{recent} of {}",
            listed.len()
        );

        if let Some(counted) = duckdb_count(&dir) {
            assert_eq!(counted, count as u64, "DuckDB counts {pool}");
        }
    }
    let (status, answer) = send(
        "GET",
        &format!("{base}/v1/projects/{project}/pools/web/archive?from=soon"),
        &Value::Null,
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], json!("from"));

    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let written =
        metric(&metrics, "logpool_archive_records_written_total", &[]).expect("archive counter");
    assert!(written >= 650.0, "{written}");
    assert!(metrics.contains("logpool_archive_lag_seconds"));
    assert!(metrics.contains("logpool_archive_upload_failures_total"));
    server.standalone.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_restore_gives_the_same_search_results_and_is_not_repeated() {
    let server = TestServer::start().await.expect("server");
    let client = &server.client;
    let base = server.url();
    let project = "arch-restore";
    client.create_project(project).await.expect("project");
    for pool in ["orig", "back"] {
        client
            .create_pool(project, &json!({ "name": pool, "shards": 2 }))
            .await
            .expect("pool");
    }
    enable_archive(&base, project, "orig", json!({})).await;
    let now = now_ms();
    let sent = put_all(client, project, "orig", &records("orig", 300, now)).await;
    let dir = server
        .data_dir
        .path()
        .join(format!("objects/tenant=default/archive/{project}/orig"));
    let objects = wait_archived(&sent, Duration::from_secs(60), || read_local_objects(&dir)).await;
    assert_exactly_once(&sent, &objects);
    assert_eq!(wait_for_count(client, project, "orig", "", 300).await, 300);

    // Restore the whole range but the oldest hour, the start given as epoch
    // milliseconds in a JSON number (a time that is not a time is refused first).
    let from = now - 4 * 3_600_000 - 1_800_000;
    let url = format!("{base}/v1/projects/{project}/pools/orig/archive/restore");
    let (status, answer) = send(
        "POST",
        &url,
        &json!({ "from": 1.5, "to": "now", "into_pool": "back" }),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("from") && message.contains("epoch milliseconds"),
        "{answer}"
    );
    let body = json!({ "from": from, "to": "now", "into_pool": "back" });
    let (status, job) = send("POST", &url, &body).await;
    assert!(status == 202 || status == 200, "{status} {job}");
    let id = job["id"].as_str().expect("restore id").to_string();
    let done = wait_for(Duration::from_secs(60), || {
        let client = client.clone();
        let id = id.clone();
        async move {
            let status = client.restore_status(project, "orig", &id).await.ok()?;
            (status.status == "done").then_some(status)
        }
    })
    .await
    .expect("restore finishes");
    let expected_ids: usize = sent
        .values()
        .filter(|r| r["time"].as_i64().unwrap_or(0) >= from)
        .count();
    assert_eq!(done.records_restored, expected_ids as u64, "{done:?}");
    assert!(expected_ids < sent.len(), "the range leaves records out");

    // Same search results over the range in both pools.
    let restored = wait_for_count(client, project, "back", "", expected_ids as u64).await;
    assert_eq!(restored, expected_ids as u64);
    let range = SearchParams {
        query: Some("ok:true".to_string()),
        from: Some(from.to_string().into()),
        to: Some("now".into()),
        limit: Some(1000),
        ..SearchParams::default()
    };
    let orig = client
        .search(project, "orig", &range)
        .await
        .expect("search orig");
    let back = client
        .search(project, "back", &range)
        .await
        .expect("search back");
    let hits = |answer: &SearchAnswer| {
        let mut hits: Vec<Value> = answer
            .hits
            .iter()
            .map(|hit| json!({ "time": hit.time, "fields": hit.fields }))
            .collect();
        hits.sort_by_key(|hit| {
            hit["fields"]["rid"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        });
        hits
    };
    assert!(!hits(&orig).is_empty());
    assert_eq!(hits(&orig), hits(&back));

    // Asking again returns the finished restore; nothing is produced twice. A restore
    // produces into the target pool's queue, so its end positions are what a repeat
    // would move. After the second ask, one marker record per shard goes in behind
    // anything a repeat would have produced at once; once the markers are searchable,
    // the queue must hold the first restore and the markers, nothing else.
    // The same bound as digits in a string is the same restore.
    let produced_before = produced_messages(&base, project, "back").await;
    let body = json!({ "from": from.to_string(), "to": "now", "into_pool": "back" });
    let (status, again) = send("POST", &url, &body).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"].as_str(), Some(id.as_str()));
    assert_eq!(again["status"], json!("done"));
    let markers = put_one_marker_per_shard(client, project, "back", 2).await;
    assert_eq!(
        wait_for_count(client, project, "back", "marker", markers).await,
        markers
    );
    let settled = wait_for(Duration::from_secs(30), || async {
        let stats = pool_stats(&base, project, "back").await;
        (stats["backlog"]["loghub"]["messages"] == 0).then_some(stats)
    })
    .await
    .expect("loghub caught up with the target pool");
    assert_eq!(
        produced_messages(&base, project, "back").await,
        produced_before + markers,
        "the restore was produced again: {settled}"
    );
    let counts = count_records_by(client, project, "back", "rid")
        .await
        .expect("ids");
    assert_eq!(counts.len(), expected_ids + markers as usize);
    assert!(
        counts.values().all(|n| *n == 1),
        "a restored record is doubled"
    );
    let status_after = client
        .restore_status(project, "orig", &id)
        .await
        .expect("status");
    assert_eq!(status_after, done);

    let (status, answer) = send("POST", &url, &json!({ "into_pool": "orig" })).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], json!("into_pool"));
    server.standalone.shutdown().await.expect("shutdown");
}

/// The pool's stats (`GET .../stats`).
async fn pool_stats(base: &str, project: &str, pool: &str) -> Value {
    let url = format!("{base}/v1/projects/{project}/pools/{pool}/stats");
    let (status, stats) = send("GET", &url, &Value::Null).await;
    assert_eq!(status, 200, "{stats}");
    stats
}

/// Messages ever produced to the pool's queue: the sum of its shards' end positions
/// (the embedded queue numbers a shard's messages from 0).
async fn produced_messages(base: &str, project: &str, pool: &str) -> u64 {
    let stats = pool_stats(base, project, pool).await;
    stats["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|shard| shard["end_position"].as_u64().expect("end position"))
        .sum()
}

/// Puts one record (`rid` `marker-<key>`) per request, each pinned to a shard by its
/// hash key, until every one of `shards` shards has one; returns how many were put
/// (one queue message each).
async fn put_one_marker_per_shard(
    client: &LogpoolClient,
    project: &str,
    pool: &str,
    shards: u64,
) -> u64 {
    let mut reached = std::collections::BTreeSet::new();
    let mut put = 0;
    for key in 0..64 {
        let body = json!({ "logs": [{ "rid": format!("marker-{key}"), "message": "marker" }] });
        let answer = client
            .put_raw(
                project,
                pool,
                "application/json",
                logpool_client::Encoding::Identity,
                serde_json::to_vec(&body).expect("body"),
                Some(&format!("marker-{key}")),
            )
            .await
            .expect("put marker");
        put += 1;
        reached.insert(answer.shards[0].shard as u64);
        if reached.len() as u64 == shards {
            return put;
        }
    }
    panic!("64 hash keys reached only shards {reached:?}");
}

/// The value of an unlabelled sample in a Prometheus text exposition.
fn metric(text: &str, name: &str, _labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

const KILL_PROJECT: &str = "arch-kill";
const KILL_POOL: &str = "app";
const KILL_CYCLES: usize = 4;

async fn start_binary(
    data_dir: &std::path::Path,
    port: u16,
    log: &std::path::Path,
    pause_ms: u64,
) -> Child {
    start_standalone_process(
        data_dir,
        port,
        log,
        &[
            ("LOGPOOL_LOGHUB__COMMIT_INTERVAL_MS", "300".to_string()),
            (
                "LOGPOOL_FAULT_INJECTION__ARCHIVE_UPLOAD_PAUSE_MS",
                pause_ms.to_string(),
            ),
        ],
    )
    .await
}

/// Puts batches of records spread over several hours until `stop`.
async fn put_until_stopped(
    client: LogpoolClient,
    tag: String,
    stop: Arc<AtomicBool>,
    sent: Arc<Mutex<Sent>>,
) {
    let mut round = 0;
    while !stop.load(Ordering::SeqCst) {
        let batch = records(&format!("{tag}-{round}"), 40, now_ms());
        round += 1;
        match client.put_records(KILL_PROJECT, KILL_POOL, &batch).await {
            Ok(_) => {
                let mut sent = sent.lock().expect("lock");
                for record in batch {
                    sent.insert(
                        record["rid"].as_str().unwrap_or_default().to_string(),
                        record,
                    );
                }
            }
            // Unknown outcome: may be archived once, never twice; not counted as acked.
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_kill_9_mid_upload_still_archives_exactly_once() {
    let data = tempfile::tempdir().expect("tempdir");
    let log = data.path().join("logpool.log");
    let data_dir = data.path().join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = logpool_e2e::admin_client(&base);
    let sent = Arc::new(Mutex::new(Sent::new()));
    for cycle in 0..KILL_CYCLES {
        // Every upload is followed by a pause, so a kill lands between the hour
        // objects of one batch (or between its last upload and its ack).
        let mut child = start_binary(&data_dir, port, &log, 150).await;
        if cycle == 0 {
            client.create_project(KILL_PROJECT).await.expect("project");
            client
                .create_pool(KILL_PROJECT, &json!({ "name": KILL_POOL, "shards": 2 }))
                .await
                .expect("pool");
            enable_archive(
                &base,
                KILL_PROJECT,
                KILL_POOL,
                json!({ "max_object_bytes": 8192 }),
            )
            .await;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..2)
            .map(|c| {
                tokio::spawn(put_until_stopped(
                    client.clone(),
                    format!("k{cycle}-{c}"),
                    stop.clone(),
                    sent.clone(),
                ))
            })
            .collect();
        let run_for = Duration::from_millis(1500 + 500 * cycle as u64);
        tokio::time::sleep(run_for).await;
        child.start_kill().expect("kill -9");
        child.wait().await.expect("reap");
        stop.store(true, Ordering::SeqCst);
        for task in tasks {
            task.await.expect("client task");
        }
    }
    let sent = sent.lock().expect("lock").clone();
    assert!(sent.len() > 200, "only {} records acknowledged", sent.len());
    let mut child = start_binary(&data_dir, port, &log, 0).await;
    let dir = data_dir.join(format!(
        "objects/tenant=default/archive/{KILL_PROJECT}/{KILL_POOL}"
    ));
    let objects = wait_archived(&sent, Duration::from_secs(90), || read_local_objects(&dir)).await;
    // Records whose put had an unknown outcome may be archived too, once.
    let extra: Vec<_> = archive_support::archived_counts(&objects)
        .into_iter()
        .filter(|(rid, n)| !sent.contains_key(rid) && *n > 1)
        .collect();
    assert!(
        extra.is_empty(),
        "unacknowledged records archived twice: {extra:?}"
    );
    assert_exactly_once(&sent, &objects);
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    eprintln!(
        "acknowledged {}, {} objects; skipped as archived after restarts: {:?}; repairs: {:?}",
        sent.len(),
        objects.len(),
        metric(&metrics, "logpool_archive_records_skipped_total", &[]),
        metric(&metrics, "logpool_archive_repairs_total", &[])
    );
    child.start_kill().expect("kill");
    child.wait().await.expect("reap");
}
