//! Memory budgets against the real binary: requests that read large records or build
//! large tables hold a bounded number of bytes, answer what `docs/api.md` documents,
//! and give the memory back when they end. RSS is read from `/proc/<pid>/status` of
//! the `logpool` process (run `cargo build --bins` first).
//!
//! Each test writes its own data (tens of MB, well under the budgets' multiples that
//! an unbounded server would hold) and takes seconds.

use std::time::Duration;

use futures::StreamExt;
use logpool_client::wire::search::SearchParams;
use logpool_client::LogpoolClient;
use logpool_e2e::{admin_client, admin_http, free_port, start_standalone_process, ADMIN_KEY};
use serde_json::{json, Value};
use tokio::process::Child;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const MIB: u64 = 1024 * 1024;
/// Bytes of the `message` of a large record (under the 64 KiB value limit).
const LARGE_MESSAGE_BYTES: usize = 60 * 1024;
/// Large records per PutDatas request (about 6 MB, under the 10 MiB body limit).
const RECORDS_PER_PUT: usize = 100;

/// The real binary on a fresh data directory, with its log kept for failures.
struct Process {
    child: Child,
    client: LogpoolClient,
    base: String,
    port: u16,
    _data_dir: tempfile::TempDir,
}

impl Process {
    async fn start(env: &[(&str, String)]) -> Process {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let log = data_dir.path().join("logpool.log");
        let child = start_standalone_process(&data_dir.path().join("data"), port, &log, env).await;
        let base = format!("http://127.0.0.1:{port}");
        Process {
            child,
            client: admin_client(&base),
            base,
            port,
            _data_dir: data_dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("logpool is running")
    }

    /// Resident memory now, in bytes.
    fn rss(&self) -> u64 {
        status_bytes(self.pid(), "VmRSS")
    }

    /// Highest resident memory since the last [`Process::reset_peak`], in bytes.
    fn peak_rss(&self) -> u64 {
        status_bytes(self.pid(), "VmHWM")
    }

    /// Starts a new peak measurement (Linux: `5` to `clear_refs` resets `VmHWM`).
    fn reset_peak(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").expect("reset VmHWM");
    }

    async fn metric(&self, name: &str) -> Option<f64> {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }
}

/// A `kB` line of `/proc/<pid>/status`, in bytes.
fn status_bytes(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| {
            let value = line.strip_prefix(key)?.strip_prefix(':')?;
            value.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()
        })
        .map(|kib| kib * 1024)
        .unwrap_or_else(|| panic!("{key} missing from /proc/{pid}/status"))
}

/// A record whose message is about 60 KiB of distinct words.
fn large_record(n: usize) -> Value {
    let mut message = format!("record {n} ");
    let mut word = n;
    while message.len() < LARGE_MESSAGE_BYTES {
        word = word.wrapping_mul(2_654_435_761).wrapping_add(1) % 1_000_003;
        message.push_str(&format!("w{word} "));
    }
    message.truncate(LARGE_MESSAGE_BYTES);
    json!({ "message": message, "n": n })
}

/// Creates `project/pool` (one shard, so a tail sees records in order) and writes
/// `count` large records.
async fn write_large_records(process: &Process, project: &str, pool: &str, count: usize) {
    let client = &process.client;
    client.create_project(project).await.expect("project");
    client
        .create_pool(project, &json!({ "name": pool, "shards": 1 }))
        .await
        .expect("pool");
    for start in (0..count).step_by(RECORDS_PER_PUT) {
        let records: Vec<Value> = (start..(start + RECORDS_PER_PUT).min(count))
            .map(large_record)
            .collect();
        client
            .put_records(project, pool, &records)
            .await
            .expect("put large records");
    }
}

/// Waits until every record is searchable, then lets the indexer settle, so RSS
/// measured afterwards belongs to the requests under test.
async fn wait_indexed(process: &Process, project: &str, pool: &str, count: u64) {
    let indexed = logpool_e2e::wait_for_count(&process.client, project, pool, "*", count).await;
    assert_eq!(indexed, count, "records indexed in time");
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// Waits until RSS is at most `bound` (memory is purged a moment after it is freed),
/// returning the last RSS seen.
async fn wait_rss_at_most(process: &Process, bound: u64, timeout: Duration) -> u64 {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let rss = process.rss();
        if rss <= bound || tokio::time::Instant::now() >= deadline {
            return rss;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open_tail(port: u16, project: &str, pool: &str, start: &str) -> Socket {
    let url =
        format!("ws://127.0.0.1:{port}/v1/projects/{project}/pools/{pool}/tail?start={start}");
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_KEY}").parse().expect("header"),
    );
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("tail upgrade");
    socket
}

/// 20 tails ask for an hour of backfill over 60 KiB records and never read. Each
/// holds at most `tail.buffer_bytes` (4 MiB) and one frame, all of them together at
/// most the tenant's 64 MiB, where an unbounded buffer would hold every record for
/// every tail (20 × 60 MB here). A reader that comes back gets what was buffered and
/// a `dropped` frame counting exactly the rest; after the tails close, the memory is
/// given back to the system.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_stalled_tails_with_backfill_hold_bounded_memory_and_give_it_back() {
    const RECORDS: usize = 1_000;
    const TAILS: usize = 20;
    let started = std::time::Instant::now();
    let process = Process::start(&[]).await;
    write_large_records(&process, "mem", "big", RECORDS).await;
    wait_indexed(&process, "mem", "big", RECORDS as u64).await;
    let baseline = process.rss();
    process.reset_peak();

    let mut tails = Vec::new();
    for _ in 0..TAILS {
        tails.push(open_tail(process.port, "mem", "big", "-1h").await);
    }
    // The pumps read the whole backfill (skipping what does not fit) within a few
    // seconds; sample RSS meanwhile.
    let mut highest = 0;
    for _ in 0..40 {
        highest = highest.max(process.rss());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let peak = process.peak_rss().max(highest);
    // Buffers (64 MiB for the tenant), one 1 MiB frame per tail, reads of 4 MiB per
    // tail and their decoding, and allocator slack.
    let bound = 320 * MIB;
    assert!(
        peak.saturating_sub(baseline) < bound,
        "20 stalled tails took RSS from {} MiB to {} MiB (bound: +{} MiB)",
        baseline / MIB,
        peak / MIB,
        bound / MIB
    );
    assert_eq!(
        process.metric("logpool_tail_active").await,
        Some(TAILS as f64)
    );

    // One client starts reading: the records that were buffered for it, and gap
    // markers where records were dropped; together they account for every record.
    let mut reader = tails.pop().expect("a tail");
    let mut received = Vec::new();
    let mut dropped = 0;
    while received.len() as u64 + dropped < RECORDS as u64 {
        let frame = tokio::time::timeout(Duration::from_secs(20), reader.next())
            .await
            .expect("a frame in time");
        let Some(Ok(Message::Text(text))) = frame else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).expect("json frame");
        match frame["type"].as_str() {
            Some("records") => {
                for record in frame["records"].as_array().expect("records") {
                    received.push(record["fields"]["n"].as_u64().expect("n"));
                }
            }
            Some("dropped") => dropped += frame["count"].as_u64().expect("count"),
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert_eq!(received.len() as u64 + dropped, RECORDS as u64);
    assert!(dropped > 0, "a stalled reader over 60 MB dropped records");
    assert_eq!(
        received.first(),
        Some(&0),
        "the backfill starts at the oldest"
    );
    assert!(
        received.windows(2).all(|pair| pair[0] < pair[1]),
        "records arrive in order, none twice: {received:?}"
    );

    drop(reader);
    drop(tails);
    let closed = logpool_e2e::wait_for(Duration::from_secs(20), || async {
        (process.metric("logpool_tail_active").await == Some(0.0)).then_some(())
    })
    .await;
    assert!(closed.is_some(), "the server saw every tail close");
    let back_to = baseline + 48 * MIB;
    let rss = wait_rss_at_most(&process, back_to, Duration::from_secs(10)).await;
    assert!(
        rss <= back_to,
        "after the tails closed RSS stayed at {} MiB (baseline {} MiB)",
        rss / MIB,
        baseline / MIB
    );
    eprintln!(
        "tails: baseline {} MiB, peak {} MiB, after close {} MiB, {} received, {} dropped, {:.1} s",
        baseline / MIB,
        peak / MIB,
        rss / MIB,
        received.len(),
        dropped,
        started.elapsed().as_secs_f64()
    );
}

/// `search?limit=10000` over 60 KiB records: each page stops at the query's memory
/// budget with `truncated: true` and a cursor; paging on returns every record once;
/// four such searches at once stay within the tenant's budget, and RSS with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_large_search_pages_are_truncated_at_the_memory_budget() {
    const RECORDS: usize = 1_000;
    let started = std::time::Instant::now();
    let process = Process::start(&[]).await;
    write_large_records(&process, "mem", "big", RECORDS).await;
    wait_indexed(&process, "mem", "big", RECORDS as u64).await;
    let baseline = process.rss();
    process.reset_peak();

    let search = |cursor: Option<String>| {
        let client = process.client.clone();
        async move {
            let params = SearchParams {
                query: Some("*".to_string()),
                limit: Some(10_000),
                cursor,
                ..SearchParams::default()
            };
            client.search("mem", "big", &params).await.expect("search")
        }
    };
    let pages = futures::future::join_all((0..4).map(|_| search(None))).await;
    let peak = process.peak_rss();
    for page in &pages {
        let hits = page.hits.len();
        // 32 MiB of 60 KiB records: about 540 hits, never the whole 1,000.
        assert!(
            (1..RECORDS).contains(&hits),
            "{hits} hits on a page of 60 KiB records"
        );
        assert!(page.truncated, "the page ends at the memory budget");
        assert!(page.cursor.is_some(), "a truncated page has a cursor");
        assert_eq!(page.total, RECORDS as u64);
    }
    // All four at once cannot hold more than the tenant's 128 MiB of records, each
    // held a few times over while it is turned into the answer.
    let bound = 640 * MIB;
    assert!(
        peak.saturating_sub(baseline) < bound,
        "four searches took RSS from {} MiB to {} MiB (bound: +{} MiB)",
        baseline / MIB,
        peak / MIB,
        bound / MIB
    );

    // Following the cursor returns every record exactly once, newest first.
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut num_pages = 0;
    loop {
        let page = search(cursor).await;
        num_pages += 1;
        seen.extend(
            page.hits
                .iter()
                .map(|hit| hit.fields["n"].as_u64().expect("n")),
        );
        match page.cursor {
            Some(next) if !page.hits.is_empty() => cursor = Some(next),
            _ => break,
        }
        assert!(num_pages < 20, "paging ends");
    }
    seen.sort_unstable();
    let expected: Vec<u64> = (0..RECORDS as u64).collect();
    assert_eq!(seen, expected, "every record once over {num_pages} pages");
    assert!(num_pages >= 2, "the budget made more than one page");
    eprintln!(
        "search: baseline {} MiB, peak {} MiB, {} hits on the first page, {} pages, {:.1} s",
        baseline / MIB,
        peak / MIB,
        pages[0].hits.len(),
        num_pages,
        started.elapsed().as_secs_f64()
    );
}

/// A GROUP BY over two unique 250-byte keys: under the 100,000-group cap, but the
/// group table needs more than the query's 32 MiB. The answer is the documented 400
/// naming `max_query_memory_bytes`, RSS stays bounded, and a GROUP BY that fits
/// still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_high_cardinality_group_by_stops_at_the_memory_budget() {
    const RECORDS: usize = 60_000;
    const KEY_BYTES: usize = 250;
    let started = std::time::Instant::now();
    let process = Process::start(&[]).await;
    let client = &process.client;
    client.create_project("mem").await.expect("project");
    client
        .create_pool("mem", &json!({ "name": "keys", "shards": 1 }))
        .await
        .expect("pool");
    let key = |prefix: &str, n: usize| {
        let mut text = format!("{prefix}{n:08}-");
        text.push_str(&"k".repeat(KEY_BYTES - text.len()));
        text
    };
    for start in (0..RECORDS).step_by(5_000) {
        let records: Vec<Value> = (start..start + 5_000)
            .map(|n| {
                let level = ["info", "warn"][n % 2];
                json!({ "a": key("a", n), "b": key("b", n), "level": level })
            })
            .collect();
        client
            .put_records("mem", "keys", &records)
            .await
            .expect("put keyed records");
    }
    wait_indexed(&process, "mem", "keys", RECORDS as u64).await;
    let baseline = process.rss();
    process.reset_peak();

    let http = admin_http();
    let sql = |query: &str| {
        let request = http
            .post(format!("{}/v1/projects/mem/pools/keys/query", process.base))
            .json(&json!({ "query": query }));
        async move {
            let response = request.send().await.expect("query request");
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("JSON answer");
            (status, body)
        }
    };
    let (status, body) =
        sql("* | SELECT a, b, count(*) AS c GROUP BY a, b ORDER BY c DESC LIMIT 10").await;
    let peak = process.peak_rss();
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"]["limit"],
        json!("max_query_memory_bytes"),
        "{body}"
    );
    assert_eq!(body["error"]["max"], json!(32 * MIB), "{body}");
    let bound = 256 * MIB;
    assert!(
        peak.saturating_sub(baseline) < bound,
        "the GROUP BY took RSS from {} MiB to {} MiB (bound: +{} MiB)",
        baseline / MIB,
        peak / MIB,
        bound / MIB
    );

    let (status, body) = sql("* | SELECT level, count(*) AS c GROUP BY level ORDER BY level").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["rows"],
        json!([["info", RECORDS / 2], ["warn", RECORDS / 2]])
    );
    eprintln!(
        "group by: baseline {} MiB, peak {} MiB, {:.1} s",
        baseline / MIB,
        peak / MIB,
        started.elapsed().as_secs_f64()
    );
}
