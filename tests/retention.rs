//! Retention end to end on the real `logpool` binary: a running server deletes the
//! records of days older than a pool's `retention_days`, and a change of
//! `retention_days` through the API takes effect without a restart.
//!
//! Records of 10 and 3 days ago are written while the pool keeps 30 days, then the
//! retention is shortened (so the test works whether or not ingest refuses records
//! older than the retention): at 5 days the 10-day-old records go and the 3-day-old
//! ones stay; at 1 day those go too and today's stay. The retention job runs every
//! second here (`LOGPOOL_LOGHUB__RETENTION_CHECK_INTERVAL_SECS`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use logpool_client::wire::search::SearchParams;
use logpool_client::LogpoolClient;
use logpool_e2e::{admin_client, free_port, start_standalone_process, wait_for, ADMIN_KEY};
use serde_json::{json, Value};

const PROJECT: &str = "keep";
const POOL: &str = "app";
/// Records per age group.
const PER_AGE: u64 = 40;
const DAY_MS: i64 = 86_400_000;
/// How long a retention change may take to show: one check interval, plus the
/// search readers' refresh, with room for a loaded machine.
const TAKES_EFFECT_WITHIN: Duration = Duration::from_secs(20);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Records of one age group, `age_days` before now (spread over a few minutes).
fn records(age: &str, age_days: i64, now_ms: i64) -> Vec<Value> {
    (0..PER_AGE as i64)
        .map(|i| {
            json!({
                "time": now_ms - age_days * DAY_MS - i * 1_000,
                "age": age,
                "message": format!("retention record {i} of age {age}"),
            })
        })
        .collect()
}

/// How many records of age group `age` the pool holds (over the last 40 days).
async fn stored(client: &LogpoolClient, age: &str) -> Option<u64> {
    let params = SearchParams {
        query: Some(format!("age:{age}")),
        from: Some("-40d".into()),
        to: Some("now".into()),
        limit: Some(1),
        ..SearchParams::default()
    };
    let page = client.search(PROJECT, POOL, &params).await.ok()?;
    Some(page.total)
}

/// The stored counts of the three age groups.
async fn stored_by_age(client: &LogpoolClient) -> (Option<u64>, Option<u64>, Option<u64>) {
    (
        stored(client, "old").await,
        stored(client, "mid").await,
        stored(client, "new").await,
    )
}

async fn set_retention(client: &LogpoolClient, days: u32) {
    let url = format!("{}/v1/projects/{PROJECT}/pools/{POOL}", client.base_url());
    let response = reqwest::Client::new()
        .patch(url)
        .bearer_auth(ADMIN_KEY)
        .json(&json!({ "retention_days": days }))
        .send()
        .await
        .expect("patch pool");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["retention_days"], days, "{body}");
}

/// Waits until the stored counts are `want` and returns how long that took.
async fn wait_for_counts(client: &LogpoolClient, want: (u64, u64, u64), what: &str) -> Duration {
    let started = Instant::now();
    let want = (Some(want.0), Some(want.1), Some(want.2));
    let reached = wait_for(TAKES_EFFECT_WITHIN, || async {
        (stored_by_age(client).await == want).then_some(())
    })
    .await;
    if reached.is_none() {
        panic!(
            "{what}: stored (old, mid, new) = {:?}, expected {want:?}",
            stored_by_age(client).await
        );
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_a_running_server_drops_days_past_retention_and_follows_a_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let log = dir.path().join("logpool.log");
    let mut child = start_standalone_process(
        &dir.path().join("data"),
        port,
        &log,
        &[
            (
                "LOGPOOL_LOGHUB__RETENTION_CHECK_INTERVAL_SECS",
                "1".to_string(),
            ),
            ("LOGPOOL_LOGHUB__COMMIT_INTERVAL_MS", "200".to_string()),
        ],
    )
    .await;
    let client = admin_client(&format!("http://127.0.0.1:{port}"));
    client.create_project(PROJECT).await.expect("project");
    client
        .create_pool(
            PROJECT,
            &json!({ "name": POOL, "shards": 1, "retention_days": 30 }),
        )
        .await
        .expect("pool");
    let now = now_ms();
    for (age, days) in [("old", 10), ("mid", 3), ("new", 0)] {
        let answer = client
            .put_records(PROJECT, POOL, &records(age, days, now))
            .await
            .expect("put");
        assert_eq!(answer.accepted as u64, PER_AGE, "{age}: {answer:?}");
    }
    // Everything is within 30 days: all of it is searchable, and several retention
    // runs (one a second) leave it alone.
    wait_for_counts(&client, (PER_AGE, PER_AGE, PER_AGE), "before any change").await;
    let runs_checked = Instant::now();
    while runs_checked.elapsed() < Duration::from_secs(3) {
        assert_eq!(
            stored_by_age(&client).await,
            (Some(PER_AGE), Some(PER_AGE), Some(PER_AGE)),
            "retention removed records within 30 days"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // 5 days: the day of 10 days ago is past retention, the one of 3 days ago is not.
    set_retention(&client, 5).await;
    let first_change = wait_for_counts(&client, (0, PER_AGE, PER_AGE), "retention 5 days").await;

    // 1 day: the day of 3 days ago goes as well; today's records stay.
    set_retention(&client, 1).await;
    let second_change = wait_for_counts(&client, (0, 0, PER_AGE), "retention 1 day").await;
    eprintln!(
        "retention 30 -> 5 days took effect in {first_change:?}, 5 -> 1 day in {second_change:?}"
    );

    // The server logged what it dropped, and it is still serving.
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logged.contains("retention dropped expired partitions"),
        "no retention log line:\n{logged}"
    );
    client.get("/healthz").await.expect("still serving");
    child.start_kill().expect("kill");
    child.wait().await.expect("reap");
}
