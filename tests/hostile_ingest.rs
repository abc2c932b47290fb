//! Ingest that spreads event times wide, against the real binary: records outside a
//! pool's event-time window are refused one by one with their reason, the records
//! inside are indexed with a bounded number of index writers (threads and peak
//! memory read from `/proc/<pid>/status`), the process stays up, and data stored
//! before is intact and searchable.

use std::time::{Duration, Instant};

use logpool_client::wire::search::SearchParams;
use logpool_client::LogpoolClient;
use logpool_e2e::{admin_client, admin_http, free_port, start_standalone_process, wait_for_count};
use serde_json::{json, Value};

const PROJECT: &str = "hostile";
const DAY_MS: i64 = 86_400_000;
/// How long indexing the spread records may take.
const INDEXING_DEADLINE: Duration = Duration::from_secs(240);

/// Threads the process may have at its peak while indexing. Its own threads (tokio
/// workers, blocking pool, engines) are a few dozen; the index writers add at most
/// `max_open_writers` (8) × 4 threads. Before writers were bounded, one request over
/// 1,000 days started about 4,800 threads.
const MAX_THREADS: u64 = 160;
/// Peak resident memory of the process (`VmHWM`). Before writers were bounded the
/// same request took 12.5 GB.
const MAX_PEAK_RSS_KIB: u64 = 1536 * 1024;

/// One field of `/proc/{pid}/status`, in its own unit (kB for memory).
fn proc_status(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Samples the thread count of `pid` every 20 ms until dropped; keeps the highest.
struct ThreadWatch {
    peak: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl ThreadWatch {
    fn start(pid: u32) -> ThreadWatch {
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let seen = peak.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Some(threads) = proc_status(pid, "Threads") {
                    seen.fetch_max(threads, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        ThreadWatch { peak, task }
    }

    fn peak(&self) -> u64 {
        self.peak.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for ThreadWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// One record per day, `days` days back from `first_day_back` (noon-ish of each day
/// relative to now, so no two share a UTC day), each tagged with `tag`.
fn records_over_days(first_day_back: i64, days: i64, tag: &str) -> Vec<Value> {
    let now = now_ms();
    (first_day_back..first_day_back + days)
        .map(|back| json!({ "time": now - back * DAY_MS - 60_000, "message": tag, "day": back }))
        .collect()
}

/// Waits up to `INDEXING_DEADLINE` for `query` to count `expected` in `pool`; returns
/// the last count. Every new day costs the index a writer opened, committed and
/// closed, so many days take longer than the suite's usual wait.
async fn wait_for_total(client: &LogpoolClient, pool: &str, query: &str, expected: u64) -> u64 {
    let deadline = Instant::now() + INDEXING_DEADLINE;
    let mut last = 0;
    while Instant::now() < deadline {
        last = client.count(PROJECT, pool, query).await.unwrap_or(last);
        if last >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    last
}

async fn create_pool(client: &LogpoolClient, body: Value) {
    client.create_pool(PROJECT, &body).await.expect("pool");
}

/// PATCHes pool `pool` of the test project; returns the status and the JSON answer.
async fn patch_pool(base_url: &str, pool: &str, body: Value) -> (u16, Value) {
    let response = admin_http()
        .patch(format!("{base_url}/v1/projects/{PROJECT}/pools/{pool}"))
        .json(&body)
        .send()
        .await
        .expect("patch");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json answer"))
}

/// Starts the binary on a fresh data directory; returns it, its client, its pid and
/// its base URL.
async fn start(dir: &std::path::Path) -> (tokio::process::Child, LogpoolClient, u32, String) {
    let port = free_port();
    let child = start_standalone_process(
        dir,
        port,
        &dir.join("logpool.log"),
        &[("LOGPOOL_LOGHUB__COMMIT_INTERVAL_MS", "200".to_string())],
    )
    .await;
    let pid = child.id().expect("pid");
    let base_url = format!("http://127.0.0.1:{port}");
    let client = admin_client(&base_url);
    client.create_project(PROJECT).await.expect("project");
    (child, client, pid, base_url)
}

/// One request with records over 1,000 days plus times far in the past and future:
/// a pool whose retention covers the 1,000 days takes them, with every index writer
/// bounded; a pool with the default 7 days refuses the rest one by one; a pool's own
/// window changes what it accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_one_request_over_a_thousand_days_is_answered_per_record_within_bounds() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, client, pid, base_url) = start(dir.path()).await;
    create_pool(&client, json!({ "name": "long", "retention_days": 3650 })).await;
    create_pool(&client, json!({ "name": "week" })).await;

    // Data stored before the hostile request.
    let earlier: Vec<Value> = (0..50)
        .map(|i| json!({ "message": "earlier", "n": i }))
        .collect();
    for pool in ["long", "week"] {
        client
            .put_records(PROJECT, pool, &earlier)
            .await
            .expect("earlier data");
        assert_eq!(
            wait_for_count(&client, PROJECT, pool, "earlier", 50).await,
            50
        );
    }

    let mut hostile = records_over_days(0, 1000, "spread");
    let far: [Value; 5] = [
        json!("1900-01-01T00:00:00Z"),
        json!(0),
        json!("2200-01-01T00:00:00Z"),
        json!(i64::MAX),
        json!(now_ms() + 2 * DAY_MS),
    ];
    for time in &far {
        hostile.push(json!({ "time": time, "message": "spread" }));
    }
    let watch = ThreadWatch::start(pid);

    let answer = client
        .put_records(PROJECT, "long", &hostile)
        .await
        .expect("long pool answers 200");
    assert_eq!(answer.accepted, 1000, "{answer:?}");
    assert_eq!(answer.refused, 5, "{answer:?}");
    let refused = &answer.refused_records;
    let paths: Vec<&str> = refused.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "logs[1000]",
            "logs[1001]",
            "logs[1002]",
            "logs[1003]",
            "logs[1004]"
        ]
    );
    let limits: Vec<&str> = refused.iter().map(|r| r.limit.as_str()).collect();
    assert_eq!(
        limits,
        [
            "max_event_age_days",
            "max_event_age_days",
            "max_event_future_secs",
            "max_event_future_secs",
            "max_event_future_secs"
        ]
    );
    assert!(refused[0].reason.contains("1900-01-01"), "{answer:?}");

    // The default window of the week pool is its 7 days of retention: days 0 to 6
    // back (day 7 is a minute past it), the rest refused.
    let answer = client
        .put_records(PROJECT, "week", &hostile)
        .await
        .expect("week pool answers 200");
    let week_accepted: u64 = 7;
    assert_eq!(answer.accepted as u64, week_accepted, "{answer:?}");
    assert_eq!(answer.refused as u64, 1005 - week_accepted, "{answer:?}");
    assert_eq!(answer.refused_records.len(), 100, "the list is bounded");

    // A request with nothing inside the window is a 400 naming the limit.
    let outside = client
        .put_records(
            PROJECT,
            "week",
            &[json!({ "time": "2001-01-01T00:00:00Z", "message": "old" })],
        )
        .await
        .expect_err("nothing in the window");
    let logpool_client::ClientError::Http { status, body, .. } = outside else {
        panic!("expected an HTTP error, got {outside}");
    };
    assert_eq!(status, 400, "{body}");
    let body: Value = serde_json::from_str(&body).expect("json error");
    assert_eq!(body["error"]["limit"], "max_event_age_days", "{body}");
    assert_eq!(body["error"]["path"], "logs[0]", "{body}");

    assert_eq!(
        wait_for_total(&client, "long", "spread", 1000).await,
        1000,
        "every accepted day is searchable"
    );
    assert_eq!(
        wait_for_count(&client, PROJECT, "week", "spread", week_accepted).await,
        week_accepted
    );
    let peak_threads = watch.peak();
    let peak_rss_kib = proc_status(pid, "VmHWM").expect("VmHWM");
    eprintln!(
        "1,000 days: peak {peak_threads} threads, VmHWM {} MiB",
        peak_rss_kib / 1024
    );
    assert!(
        peak_threads > 0 && peak_threads <= MAX_THREADS,
        "{peak_threads} threads"
    );
    assert!(
        peak_rss_kib <= MAX_PEAK_RSS_KIB,
        "VmHWM {peak_rss_kib} KiB over {MAX_PEAK_RSS_KIB}"
    );
    assert!(
        child.try_wait().expect("status").is_none(),
        "the process is alive"
    );
    for pool in ["long", "week"] {
        assert_eq!(
            client.count(PROJECT, pool, "earlier").await.expect("count"),
            50,
            "earlier data of {pool} intact"
        );
    }

    // A pool's own window wins over the global one: 30 days back, nothing ahead.
    let (status, patched) = patch_pool(
        &base_url,
        "long",
        json!({ "max_event_age_days": 30, "max_event_future_secs": 0 }),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["max_event_age_days"], 30);
    let mut probe = records_over_days(25, 10, "narrowed");
    probe.push(json!({ "time": now_ms() + 3_600_000, "message": "narrowed" }));
    let answer = client
        .put_records(PROJECT, "long", &probe)
        .await
        .expect("narrowed");
    // Days 25..=29 are inside 30 days; 30..=34 and the hour ahead are not.
    assert_eq!(answer.accepted, 5, "{answer:?}");
    assert_eq!(answer.refused, 6, "{answer:?}");
    // Back to the global window: the same records are all accepted.
    let (status, patched) = patch_pool(
        &base_url,
        "long",
        json!({ "max_event_age_days": null, "max_event_future_secs": null }),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["max_event_age_days"], Value::Null);
    let answer = client
        .put_records(PROJECT, "long", &probe)
        .await
        .expect("widened");
    assert_eq!(answer.accepted, 11, "{answer:?}");
    assert_eq!(answer.refused, 0, "{answer:?}");
    // A window setting out of range is refused, naming the field.
    let (status, wrong) = patch_pool(
        &base_url,
        "long",
        json!({ "max_event_future_secs": 100_000_000 }),
    )
    .await;
    assert_eq!(status, 400, "{wrong}");
    assert_eq!(wrong["error"]["field"], "max_event_future_secs", "{wrong}");
    assert!(
        child.try_wait().expect("status").is_none(),
        "the process is alive"
    );
    eprintln!("took {:?}", started.elapsed());
}

/// A pool kept 400 days takes records over 400 distinct days in a few requests: all
/// of them are searchable, and the index writers stay bounded throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_a_long_retention_pool_takes_four_hundred_days_with_bounded_writers() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, client, pid, _) = start(dir.path()).await;
    create_pool(&client, json!({ "name": "year", "retention_days": 400 })).await;
    let watch = ThreadWatch::start(pid);
    for part in 0..4 {
        // Two records per day, in an order that revisits days across requests.
        let mut records = records_over_days(part * 100, 100, "yearly");
        records.extend(records_over_days(part * 100, 100, "yearly"));
        records.reverse();
        let answer = client
            .put_records(PROJECT, "year", &records)
            .await
            .expect("put");
        assert_eq!(answer.accepted, 200, "{answer:?}");
        assert_eq!(answer.refused, 0, "{answer:?}");
    }
    assert_eq!(wait_for_total(&client, "year", "yearly", 800).await, 800);
    let histogram = client
        .search(
            PROJECT,
            "year",
            &SearchParams {
                query: Some("yearly AND day:399".to_string()),
                limit: Some(10),
                ..SearchParams::default()
            },
        )
        .await
        .expect("oldest day");
    assert_eq!(histogram.total, 2, "{histogram:?}");
    let peak_threads = watch.peak();
    let peak_rss_kib = proc_status(pid, "VmHWM").expect("VmHWM");
    eprintln!(
        "400 days: peak {peak_threads} threads, VmHWM {} MiB, took {:?}",
        peak_rss_kib / 1024,
        started.elapsed()
    );
    assert!(
        peak_threads > 0 && peak_threads <= MAX_THREADS,
        "{peak_threads} threads"
    );
    assert!(peak_rss_kib <= MAX_PEAK_RSS_KIB, "VmHWM {peak_rss_kib} KiB");
    assert!(
        child.try_wait().expect("status").is_none(),
        "the process is alive"
    );
}
