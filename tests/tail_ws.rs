//! Live tail over WebSocket, seen by a client nobody here wrote: Python's
//! `websockets` library (`tests/tail_ws_client.py`), against the standalone product.
//!
//! The client is installed by `scripts/test-engines.sh`. Without it the tests skip
//! visibly; with `LOGPOOL_REQUIRE_ENGINES` set they fail instead.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use logpool_client::wire::tail::TailFrame;
use logpool_e2e::{Config, TestServer, ADMIN_KEY};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::{timeout, Instant};

/// Longest wait for any one client event.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The Python that has `websockets`, or `None` (after saying why) to skip.
fn python() -> Option<String> {
    logpool_e2e::python_with("websockets", "websockets==15.0.1")
}

/// A running `tail_ws_client.py`.
struct PyTail {
    _child: Child,
    stdin: ChildStdin,
    events: Lines<BufReader<ChildStdout>>,
}

impl PyTail {
    async fn start(python: &str, url: &str, extra: &[&str]) -> PyTail {
        PyTail::start_with_key(python, url, ADMIN_KEY, extra).await
    }

    async fn start_with_key(python: &str, url: &str, key: &str, extra: &[&str]) -> PyTail {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tail_ws_client.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(url)
            .args(["--api-key", key])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the python client");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        PyTail {
            _child: child,
            stdin,
            events: BufReader::new(stdout).lines(),
        }
    }

    async fn next_event(&mut self) -> Value {
        let line = timeout(EVENT_TIMEOUT, self.events.next_line())
            .await
            .expect("a client event in time")
            .expect("read the client")
            .expect("the client exited without a closing event");
        serde_json::from_str(&line).expect("json event")
    }

    /// Waits for the upgrade and fails on anything else.
    async fn connected(&mut self) {
        let event = self.next_event().await;
        assert_eq!(event["event"], "connected", "{event}");
    }

    /// Returns the next frame, decoded as the API describes it; panics on a close.
    async fn next_frame(&mut self) -> TailFrame {
        let event = self.next_event().await;
        assert_eq!(event["event"], "frame", "{event}");
        serde_json::from_value(event["frame"].clone())
            .unwrap_or_else(|error| panic!("not a tail frame ({error}): {event}"))
    }

    /// Skips frames until the connection closes; returns the close event.
    async fn closed(&mut self) -> Value {
        loop {
            let event = self.next_event().await;
            if event["event"] == "closed" {
                return event;
            }
            assert_eq!(event["event"], "frame", "{event}");
        }
    }

    async fn resume(&mut self) {
        self.stdin.write_all(b"resume\n").await.expect("resume");
        self.stdin.flush().await.expect("flush");
    }
}

fn tail_url(server: &TestServer, project: &str, pool: &str, query: &str) -> String {
    let base = format!(
        "ws://{}/v1/projects/{project}/pools/{pool}/tail",
        server.addr()
    );
    if query.is_empty() {
        base
    } else {
        format!("{base}?{query}")
    }
}

fn numbers_of(frame: &TailFrame) -> Vec<u64> {
    let TailFrame::Records { records, .. } = frame else {
        panic!("a records frame: {frame:?}");
    };
    records
        .iter()
        .map(|record| record.fields["n"].as_u64().expect("n"))
        .collect()
}

async fn server_with_pool(
    project: &str,
    shards: u32,
    adjust: impl FnOnce(&mut Config),
) -> TestServer {
    let app = json!({ "name": "app", "shards": shards });
    logpool_e2e::pools::server_with_pools(project, &[app], adjust).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_tail_sends_new_matching_records_within_two_seconds() {
    let Some(python) = python() else { return };
    let server = server_with_pool("tailnew", 3, |_| {}).await;
    // Put before the tail opens: not part of a live tail without `start`.
    server
        .client
        .put_records(
            "tailnew",
            "app",
            &[json!({ "message": "error before", "n": 999 })],
        )
        .await
        .expect("put");
    let url = tail_url(
        &server,
        "tailnew",
        "app",
        "query=error%20AND%20NOT%20ignored",
    );
    let mut tail = PyTail::start(&python, &url, &[]).await;
    tail.connected().await;

    let records: Vec<Value> = (0..30)
        .map(|n| {
            let kind = ["error", "info", "error ignored"][n % 3];
            json!({ "message": format!("{kind} {n}"), "n": n })
        })
        .collect();
    server
        .client
        .put_records("tailnew", "app", &records)
        .await
        .expect("put");
    let accepted_at = Instant::now();
    let first = tail.next_frame().await;
    assert!(
        accepted_at.elapsed() < Duration::from_secs(2),
        "the first record took {:?}",
        accepted_at.elapsed()
    );
    let mut seen = numbers_of(&first);
    assert!(
        matches!(first, TailFrame::Records { lag_ms, .. } if lag_ms >= 0),
        "{first:?}"
    );
    while seen.len() < 10 {
        seen.extend(numbers_of(&tail.next_frame().await));
    }
    seen.sort_unstable();
    let expected: Vec<u64> = (0..30).filter(|n| n % 3 == 0).collect();
    assert_eq!(seen, expected, "only the matching records, each once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_tail_backfill_runs_into_live_records_without_gap_or_duplicate() {
    let Some(python) = python() else { return };
    let server = server_with_pool("tailseam", 2, |_| {}).await;
    let client = server.client.clone();
    let put = move |from: u64, to: u64| {
        let client = client.clone();
        async move {
            let records: Vec<Value> = (from..to).map(|n| json!({ "n": n })).collect();
            client
                .put_records("tailseam", "app", &records)
                .await
                .expect("put");
        }
    };
    for batch in 0..5 {
        put(batch * 20, batch * 20 + 20).await;
    }
    // Keep putting while the tail connects, so records land on both sides of the
    // moment the readers open.
    let writer = tokio::spawn({
        let put = put.clone();
        async move {
            for batch in 0..40 {
                put(1000 + batch * 5, 1005 + batch * 5).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    let url = tail_url(&server, "tailseam", "app", "start=-5m");
    let mut tail = PyTail::start(&python, &url, &[]).await;
    tail.connected().await;
    writer.await.expect("writer");
    put(2000, 2050).await;

    let expected: Vec<u64> = (0..100).chain(1000..1200).chain(2000..2050).collect();
    let mut counts: HashMap<u64, usize> = HashMap::new();
    while counts.len() < expected.len() {
        for n in numbers_of(&tail.next_frame().await) {
            *counts.entry(n).or_default() += 1;
        }
    }
    // Anything still in flight would be a duplicate: give it a moment to show.
    put(3000, 3001).await;
    loop {
        let numbers = numbers_of(&tail.next_frame().await);
        let done = numbers.contains(&3000);
        for n in numbers {
            *counts.entry(n).or_default() += 1;
        }
        if done {
            break;
        }
    }
    for n in &expected {
        assert_eq!(
            counts.get(n),
            Some(&1),
            "record {n} must arrive exactly once"
        );
    }
    assert_eq!(
        counts.len(),
        expected.len() + 1,
        "no record that was not put"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_stalled_client_gets_a_dropped_notice_and_loses_nothing_silently() {
    let Some(python) = python() else { return };
    const TOTAL: u64 = 100_000;
    let server = server_with_pool("tailslow", 2, |config| {
        config.tail.buffer_records = 2_000;
    })
    .await;
    let url = tail_url(&server, "tailslow", "app", "");
    let mut tail = PyTail::start(&python, &url, &["--stall", "--rcvbuf", "4096"]).await;
    tail.connected().await;
    let padding = "x".repeat(200);
    for batch in 0..(TOTAL / 10_000) {
        let records: Vec<Value> = (batch * 10_000..(batch + 1) * 10_000)
            .map(|n| json!({ "n": n, "message": padding }))
            .collect();
        server
            .client
            .put_records("tailslow", "app", &records)
            .await
            .expect("put");
    }
    tail.resume().await;
    assert_eq!(tail.next_event().await["event"], "resumed");
    // Every record is either delivered or counted in a `dropped` frame.
    let (mut delivered, mut dropped, mut dropped_frames) = (0u64, 0u64, 0u64);
    while delivered + dropped < TOTAL {
        match tail.next_frame().await {
            frame @ TailFrame::Records { .. } => delivered += numbers_of(&frame).len() as u64,
            TailFrame::Dropped { count } => {
                dropped += count;
                dropped_frames += 1;
            }
            frame @ TailFrame::Error { .. } => panic!("a tail that started: {frame:?}"),
        }
    }
    assert_eq!(delivered + dropped, TOTAL);
    assert!(
        dropped_frames > 0 && dropped > 0,
        "a stalled client must be told about drops"
    );
    assert!(delivered > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_tail_refusals_and_close_reasons() {
    let Some(python) = python() else { return };
    let server = server_with_pool("tailclose", 1, |config| {
        config.tail.max_tails_per_pool = 1;
    })
    .await;

    // Refused before the upgrade, with the usual JSON error.
    let url = tail_url(&server, "tailclose", "nope", "");
    let mut unknown = PyTail::start(&python, &url, &[]).await;
    let event = unknown.next_event().await;
    assert_eq!(
        (event["event"].as_str(), event["status"].as_u64()),
        (Some("rejected"), Some(404)),
        "{event}"
    );
    assert!(
        event["body"].as_str().unwrap_or("").contains("nope"),
        "{event}"
    );

    let url = tail_url(&server, "tailclose", "app", "query=status:(500%20OR");
    let mut bad_query = PyTail::start(&python, &url, &[]).await;
    let event = bad_query.next_event().await;
    assert_eq!(event["status"], 400, "{event}");
    assert!(
        event["body"].as_str().unwrap_or("").contains("query"),
        "{event}"
    );

    let url = tail_url(&server, "tailclose", "app", "start=last%20tuesday");
    let mut bad_start = PyTail::start(&python, &url, &[]).await;
    let event = bad_start.next_event().await;
    assert_eq!(event["status"], 400, "{event}");
    assert!(
        event["body"].as_str().unwrap_or("").contains("start"),
        "{event}"
    );

    // One tail per pool: the second is refused and names the limit.
    let url = tail_url(&server, "tailclose", "app", "");
    let mut first = PyTail::start(&python, &url, &[]).await;
    first.connected().await;
    let mut second = PyTail::start(&python, &url, &[]).await;
    let event = second.next_event().await;
    assert_eq!(event["status"], 429, "{event}");
    assert!(
        event["body"]
            .as_str()
            .unwrap_or("")
            .contains("max_tails_per_pool"),
        "{event}"
    );

    // Deleting the pool closes its tail with a reason, and frees its place.
    server
        .client
        .delete_pool("tailclose", "app")
        .await
        .expect("delete");
    let event = first.closed().await;
    assert_eq!(event["code"], 4404, "{event}");
    assert!(
        event["reason"].as_str().unwrap_or("").contains("deleted"),
        "{event}"
    );
}

/// The key travels as a subprotocol entry, never in the URL: the tail opens with
/// `logpool.tail.v1` chosen and delivers records; a wrong key there is refused like a
/// wrong header; a bad filter comes in-band, as an `error` frame with its position
/// and a close (4400) whose reason says where, and an unknown pool likewise (4404).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_tail_key_as_subprotocol_and_bad_filter_in_band() {
    let Some(python) = python() else { return };
    let server = server_with_pool("tailproto", 1, |_| {}).await;
    let as_protocol = ["--key-as-subprotocol"];

    let url = tail_url(&server, "tailproto", "app", "query=level:ERROR");
    assert!(!url.contains("lpk_"), "{url}");
    let mut tail = PyTail::start(&python, &url, &as_protocol).await;
    let event = tail.next_event().await;
    assert_eq!(event["event"], "connected", "{event}");
    assert_eq!(event["subprotocol"], "logpool.tail.v1", "{event}");
    server
        .client
        .put_records(
            "tailproto",
            "app",
            &[
                json!({ "n": 1, "level": "INFO" }),
                json!({ "n": 2, "level": "ERROR" }),
            ],
        )
        .await
        .expect("put");
    let frame = tail.next_frame().await;
    assert_eq!(numbers_of(&frame), [2]);

    let wrong = format!("lpk_0123456789abcdef_{}", "ab".repeat(32));
    let mut refused = PyTail::start_with_key(&python, &url, &wrong, &as_protocol).await;
    let event = refused.next_event().await;
    assert_eq!(
        (event["event"].as_str(), event["status"].as_u64()),
        (Some("rejected"), Some(401)),
        "{event}"
    );

    // `status:(500 OR` ends where a value should follow: position 14.
    let url = tail_url(&server, "tailproto", "app", "query=status:(500%20OR");
    let mut bad = PyTail::start(&python, &url, &as_protocol).await;
    let event = bad.next_event().await;
    assert_eq!(event["event"], "connected", "{event}");
    let event = bad.next_event().await;
    assert_eq!(event["event"], "frame", "{event}");
    let error = &event["frame"]["error"];
    assert_eq!(event["frame"]["type"], "error", "{event}");
    assert_eq!(error["field"], "query", "{event}");
    assert_eq!(error["position"], 14, "{event}");
    let event = bad.closed().await;
    assert_eq!(event["code"], 4400, "{event}");
    assert!(
        event["reason"]
            .as_str()
            .unwrap_or("")
            .contains("position 14"),
        "{event}"
    );

    // An unknown pool, in-band too: 4000 plus the status it would have had.
    let url = tail_url(&server, "tailproto", "nope", "");
    let mut unknown = PyTail::start(&python, &url, &as_protocol).await;
    assert_eq!(unknown.next_event().await["event"], "connected");
    let event = unknown.next_event().await;
    assert_eq!(event["frame"]["error"]["code"], "not_found", "{event}");
    let event = unknown.closed().await;
    assert_eq!(event["code"], 4404, "{event}");
    assert!(
        event["reason"].as_str().unwrap_or("").contains("nope"),
        "{event}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_tail_closes_idle_connections_and_on_shutdown() {
    let Some(python) = python() else { return };
    let server = server_with_pool("tailidle", 1, |config| {
        config.tail.idle_timeout_secs = 1;
    })
    .await;
    let url = tail_url(&server, "tailidle", "app", "");
    let mut idle = PyTail::start(&python, &url, &[]).await;
    idle.connected().await;
    let event = idle.closed().await;
    assert_eq!(event["code"], 4408, "{event}");
    assert!(
        event["reason"]
            .as_str()
            .unwrap_or("")
            .contains("idle_timeout_secs"),
        "{event}"
    );

    let server = server_with_pool("tailstop", 1, |_| {}).await;
    let url = tail_url(&server, "tailstop", "app", "");
    let mut open = PyTail::start(&python, &url, &[]).await;
    open.connected().await;
    let TestServer { standalone, .. } = server;
    let shutdown = tokio::spawn(standalone.shutdown());
    let event = open.closed().await;
    assert_eq!(event["code"], 1001, "{event}");
    assert!(
        event["reason"]
            .as_str()
            .unwrap_or("")
            .contains("shutting down"),
        "{event}"
    );
    timeout(EVENT_TIMEOUT, shutdown)
        .await
        .expect("shutdown in time")
        .expect("task")
        .expect("clean shutdown");
}

/// On Pulsar a tail reads through its own non-durable readers; once it closes, the
/// broker holds no subscription of it (pulsar-lite behind the framing relay).
#[cfg(feature = "distributed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_tail_on_pulsar_leaves_no_subscription_behind() {
    use logpool_e2e::wait_for_count;
    use logpool_engines::config::QueueConfig;
    use logpool_engines::queue::pulsar::test_relay::TestRelay;
    use logpool_engines::queue::pulsar::PulsarQueueConfig;

    let Some(python) = python() else { return };
    let (Some(pulsar_url), Some(metrics_url)) = (
        std::env::var("LOGPOOL_TEST_PULSAR_URL").ok(),
        std::env::var("LOGPOOL_TEST_PULSAR_METRICS_URL").ok(),
    ) else {
        if std::env::var_os("LOGPOOL_REQUIRE_ENGINES").is_some() {
            panic!("LOGPOOL_TEST_PULSAR_URL and LOGPOOL_TEST_PULSAR_METRICS_URL must be set");
        }
        eprintln!("SKIPPED: LOGPOOL_TEST_PULSAR_URL / LOGPOOL_TEST_PULSAR_METRICS_URL not set");
        return;
    };
    let relay = TestRelay::start(&pulsar_url).await.expect("relay");
    // Topics are per project under the default tenant: a unique project keeps this
    // test's topics apart from every other run on the same broker.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let project = format!("tailpulsar{:x}", nanos % (1 << 40));
    let server = server_with_pool(&project, 2, |config| {
        config.queue = QueueConfig::Pulsar(PulsarQueueConfig {
            url: relay.url(),
            ..PulsarQueueConfig::default()
        });
    })
    .await;
    // The broker's count of subscriptions on the project's topics.
    let subscriptions = || {
        let metrics_url = metrics_url.clone();
        let topic = format!("topic=\"{project}\"");
        async move {
            let page = reqwest::get(&metrics_url)
                .await
                .expect("metrics")
                .text()
                .await
                .expect("metrics text");
            page.lines()
                .filter(|line| {
                    line.starts_with("pulsar_subscriptions_count{") && line.contains(&topic)
                })
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64
        }
    };
    // The broker refreshes its metrics every few seconds.
    let wait_for_subscriptions = |want: u64| async move {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let count = subscriptions().await;
            if count == want || Instant::now() > deadline {
                return count;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let before: Vec<Value> = (0..20).map(|n| json!({ "n": n })).collect();
    server
        .client
        .put_records(&project, "app", &before)
        .await
        .expect("put");
    // Once LogHub has indexed them, the durable subscriptions of LogHub and of the
    // archiver (one each per shard) are in place: 4 before any tail.
    assert_eq!(
        wait_for_count(&server.client, &project, "app", "n:>=0", 20).await,
        20,
        "indexed"
    );
    assert_eq!(
        wait_for_subscriptions(4).await,
        4,
        "loghub and archive on two shards"
    );

    let url = tail_url(&server, &project, "app", "start=-5m");
    let mut tail = PyTail::start(&python, &url, &[]).await;
    tail.connected().await;
    let mut seen = Vec::new();
    while seen.len() < 20 {
        seen.extend(numbers_of(&tail.next_frame().await));
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..20).collect::<Vec<u64>>());
    assert_eq!(
        wait_for_subscriptions(6).await,
        6,
        "the tail's two readers are on the broker while it is open"
    );
    drop(tail);
    assert_eq!(
        wait_for_subscriptions(4).await,
        4,
        "a closed tail must leave no subscription on the broker"
    );
}

/// The live tail types a field as search does once the pool learned its type: the
/// first value of `status` is a number, so `status` is `long`, and `status:>=500`
/// compares numbers in both places, also for the text "1000" of a later record
/// (before, the tail knew only declared types and compared such values as text).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_tail_agrees_with_search_on_learned_types() {
    let Some(python) = python() else { return };
    let project = "tailtypes";
    let server = server_with_pool(project, 1, |_| {}).await;
    let client = &server.client;
    client
        .put_records(
            project,
            "app",
            &[json!({ "message": "first", "status": 200, "n": 0 })],
        )
        .await
        .expect("put");
    // The type is learned when the record is indexed; it reaches every service with
    // the next routing snapshot, which the field list shows.
    let fields_path = format!("/v1/projects/{project}/pools/app/fields?query=*&from=-1h");
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let answer = client.get(&fields_path).await.expect("fields");
        let status_type = answer["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|field| field["name"] == "status")
            .map(|field| field["type"].clone());
        if status_type == Some(json!("long")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "`status` never showed as long: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let query = "status:>=500";
    let url = tail_url(&server, project, "app", "query=status%3A%3E%3D500");
    let mut tail = PyTail::start(&python, &url, &[]).await;
    tail.connected().await;
    // Numbers, numeric text that sorts differently as text, and text that is no
    // number (kept as text by search, never in a numeric range).
    let statuses = [
        json!("1000"),
        json!("60"),
        json!("503"),
        json!(" 600 "),
        json!("abc"),
        json!(404),
        json!(7000),
        json!("4999.5"),
    ];
    let records: Vec<Value> = statuses
        .iter()
        .enumerate()
        .map(|(i, status)| json!({ "message": "later", "status": status, "n": i + 1 }))
        .collect();
    client
        .put_records(project, "app", &records)
        .await
        .expect("put");
    // A last matching record: on one shard the tail delivers in queue order, so
    // everything it would send of the batch above comes before this one.
    let sentinel = 99;
    client
        .put_records(
            project,
            "app",
            &[json!({ "message": "sentinel", "status": 999, "n": sentinel })],
        )
        .await
        .expect("put");
    let mut tailed = Vec::new();
    while !tailed.contains(&sentinel) {
        tailed.extend(numbers_of(&tail.next_frame().await));
    }
    tailed.sort_unstable();
    let search = |query: &'static str| {
        let path = format!(
            "/v1/projects/{project}/pools/app/search?query={}&from=-1h&limit=100",
            query.replace('>', "%3E").replace('=', "%3D")
        );
        async move { client.get(&path).await.expect("search") }
    };
    // Wait until search sees the sentinel, then compare.
    let deadline = Instant::now() + EVENT_TIMEOUT;
    let found = loop {
        let answer = search(query).await;
        let mut found: Vec<u64> = answer["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .map(|hit| hit["fields"]["n"].as_u64().expect("n"))
            .collect();
        if found.contains(&sentinel) {
            found.sort_unstable();
            break found;
        }
        assert!(Instant::now() < deadline, "search never saw the sentinel");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(tailed, found, "the tail and search match the same records");
    // Numerically 1000, 503, " 600 " and 7000, and the sentinel; "4999.5" is no
    // long, so it is kept as text, outside every numeric range.
    assert_eq!(found, vec![1, 3, 4, 7, sentinel]);
}
