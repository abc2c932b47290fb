//! `GET /v1/projects/{project}/pools/{pool}/stats` on a running logpool: after N
//! records are put and indexed, the stats show N records, no backlog, the queue's end
//! positions, the index's storage, and the archive backlog once the pool archives.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use logpool_e2e::{wait_for, wait_for_count, TestServer};
use serde_json::{json, Value};

const RECORDS: u64 = 250;
/// How long the archivers hold records before an upload (the shortest allowed is 1 s):
/// long enough for the archive backlog to be seen.
const ARCHIVE_DELAY_S: u64 = 3;

async fn stats(server: &TestServer, project: &str, pool: &str) -> (u16, Value) {
    let url = format!("{}/v1/projects/{project}/pools/{pool}/stats", server.url());
    let response = logpool_e2e::admin_http()
        .get(url)
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_pool_stats_count_indexed_records_and_backlogs() {
    let server = TestServer::start().await.expect("server");
    let client = &server.client;
    client.create_project("stats").await.expect("project");
    client
        .create_pool("stats", &json!({ "name": "web", "shards": 2 }))
        .await
        .expect("pool");

    let (status, empty) = stats(&server, "stats", "web").await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(empty["records"], 0);
    assert!(empty["lag"]["newest_record_time"].is_null(), "{empty}");
    assert_eq!(empty["shards"].as_array().map(Vec::len), Some(2));
    assert!(empty["backlog"].get("archive").is_none(), "{empty}");

    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let records: Vec<Value> = (0..RECORDS as i64)
        .map(|i| json!({ "time": now_ms - 1_000 - i * 1_000, "message": format!("line {i}") }))
        .collect();
    client
        .put_records("stats", "web", &records)
        .await
        .expect("put");
    assert_eq!(
        wait_for_count(client, "stats", "web", "", RECORDS).await,
        RECORDS
    );
    // Records are searchable once committed; the queue is acked just after.
    let settled = wait_for(Duration::from_secs(30), || async {
        let (_, body) = stats(&server, "stats", "web").await;
        (body["records"] == RECORDS && body["backlog"]["loghub"]["messages"] == 0).then_some(body)
    })
    .await
    .expect("stats show every record indexed and no backlog within 30 s");
    assert_eq!(settled["lag"]["unindexed_messages"], 0);
    let age_ms = settled["lag"]["newest_record_age_ms"]
        .as_i64()
        .expect("age of the newest record");
    assert!((1_000..600_000).contains(&age_ms), "{settled}");
    let shards = settled["shards"].as_array().expect("shards");
    assert_eq!(shards.len(), 2);
    let produced: u64 = shards
        .iter()
        .map(|s| s["end_position"].as_u64().expect("end position"))
        .sum();
    assert!(produced > 0, "no shard has a message: {settled}");
    for shard in shards {
        assert_eq!(shard["backlog"]["loghub"]["messages"], 0, "{settled}");
    }
    assert!(
        settled["storage_bytes"].as_u64().expect("storage") > 0,
        "{settled}"
    );

    // An archived pool also reports the archivers' subscription. Records put after
    // archiving is on wait in the archivers' buffer for `max_delay_s` before they are
    // uploaded and acked: the archive backlog shows them meanwhile, then falls to 0.
    let url = format!(
        "{}/v1/projects/stats/pools/web/archive/settings",
        server.url()
    );
    let response = logpool_e2e::admin_http()
        .put(url)
        .json(&json!({ "enabled": true, "max_delay_s": ARCHIVE_DELAY_S }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 200);
    let archived_records: Vec<Value> = (0..50)
        .map(|i| json!({ "time": now_ms - i * 1_000, "message": format!("archived line {i}") }))
        .collect();
    client
        .put_records("stats", "web", &archived_records)
        .await
        .expect("put");
    let waiting = wait_for(Duration::from_secs(10), || async {
        let (_, body) = stats(&server, "stats", "web").await;
        (body["backlog"]["archive"]["messages"].as_u64()? > 0).then_some(body)
    })
    .await
    .expect("the archive backlog shows the records the archivers hold");
    let shard_bytes: u64 = waiting["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|shard| {
            shard["backlog"]["archive"]["bytes"]
                .as_u64()
                .expect("bytes")
        })
        .sum();
    assert!(shard_bytes > 0, "{waiting}");
    assert_eq!(
        waiting["backlog"]["archive"]["bytes"].as_u64(),
        Some(shard_bytes),
        "the total is the shards' sum: {waiting}"
    );
    let drained = wait_for(Duration::from_secs(30), || async {
        let (_, body) = stats(&server, "stats", "web").await;
        (body["backlog"]["archive"]["messages"] == 0).then_some(body)
    })
    .await
    .expect("the archive backlog returns to 0 once the records are uploaded");
    assert_eq!(drained["backlog"]["archive"]["bytes"], 0, "{drained}");
    assert_eq!(drained["records"], RECORDS + 50, "{drained}");

    let (status, missing) = stats(&server, "stats", "nope").await;
    assert_eq!(status, 404, "{missing}");
}
