//! Hostile queries against the real `logpool` binary: conditions that used to overflow
//! a worker's stack (and abort every tenant) and queries that used to take gigabytes
//! get their 400 naming the limit, or a bounded answer; the process stays alive, its
//! peak RSS and thread count stay under stated bounds (read from `/proc`), and the
//! data stored before is intact. Takes about ten seconds.

use std::time::Duration;

use logpool_core::limits::QueryLimits;
use logpool_e2e::{admin_headers, free_port, start_standalone_process, wait_for_count};
use serde_json::{json, Value};
use tokio::process::Child;

const PROJECT: &str = "hostile";
const POOL: &str = "web";
const RECORDS: u64 = 200;
/// Concurrent copies of each accepted heavy query, as one tenant may run.
const CONCURRENT: usize = 8;
/// Peak RSS allowed over the whole run. Before the limits, one request of 5,000
/// wildcards took 4.3 GiB.
const MAX_PEAK_RSS_KIB: u64 = 768 * 1024;
/// Threads allowed at the end of the run.
const MAX_THREADS: u64 = 200;

/// A field of `/proc/<pid>/status` (the number before any unit).
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

struct Server {
    child: Child,
    base: String,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().expect("wait").is_none(),
            "the process has exited"
        );
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!(
                "{}/v1/projects/{PROJECT}/pools/{POOL}/{path}",
                self.base
            ))
            .json(body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn sql(&self, query: &str) -> (u16, Value) {
        self.post("query", &json!({ "query": query })).await
    }

    async fn search(&self, query: &str) -> (u16, Value) {
        self.post("search", &json!({ "query": query, "limit": 5 }))
            .await
    }

    /// Opens a tail with `query`; only the checks before the upgrade matter here.
    async fn tail(&self, query: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!(
                "{}/v1/projects/{PROJECT}/pools/{POOL}/tail",
                self.base
            ))
            .query(&[("query", query)])
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .send()
            .await
            .expect("tail request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

async fn start() -> Server {
    let data = tempfile::tempdir().expect("tempdir");
    let log = data.path().join("logpool.log");
    let port = free_port();
    let child = start_standalone_process(&data.path().join("data"), port, &log, &[]).await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .default_headers(admin_headers())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let client = logpool_e2e::admin_client(&base);
    client.create_project(PROJECT).await.expect("project");
    client
        .create_pool(PROJECT, &json!({ "name": POOL }))
        .await
        .expect("pool");
    let records: Vec<Value> = (0..RECORDS)
        .map(|i| json!({ "message": format!("hostile seed {i} hello"), "a": i % 10, "host": format!("web-{}", i % 4) }))
        .collect();
    client
        .put_records(PROJECT, POOL, &records)
        .await
        .expect("seed");
    assert_eq!(
        wait_for_count(&client, PROJECT, POOL, "seed", RECORDS).await,
        RECORDS
    );
    Server {
        child,
        base,
        http,
        _data: data,
    }
}

fn conditions(count: usize, joiner: &str) -> String {
    (0..count)
        .map(|i| format!("a={i}"))
        .collect::<Vec<_>>()
        .join(joiner)
}

fn assert_refused(status: u16, body: &Value, limit: &str, case: &str) {
    assert_eq!(status, 400, "{case}: {body}");
    let error = &body["error"];
    assert_eq!(error["code"], "bad_request", "{case}: {body}");
    assert_eq!(error["field"], "query", "{case}: {body}");
    assert_eq!(error["limit"], limit, "{case}: {body}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(limit),
        "{case}: the message names the limit: {message}"
    );
}

/// The total of `SELECT count(*)` in an answer.
fn sql_count(body: &Value) -> u64 {
    body["rows"][0][0]
        .as_u64()
        .or_else(|| body["rows"][0]["count(*)"].as_u64())
        .unwrap_or_else(|| panic!("no count in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_hostile_queries_are_refused_or_bounded_and_harm_nothing() {
    let mut server = start().await;
    let limits = QueryLimits::default();

    // Long conditions. The ones that once aborted the process now plan flat
    // and answer; past the limits they are refused by name.
    // Seeded `a` is 0 to 9: every record holds `a != 100 AND a != 101 …` and
    // `a = 0 OR a = 1 …`; `host != 'web-1' AND …` leaves three hosts of four.
    let not_equal = (0..450)
        .map(|i| format!("a != {}", i + 100))
        .collect::<Vec<_>>()
        .join(" AND ");
    let cases = [
        (not_equal, RECORDS),
        (conditions(600, " OR "), RECORDS),
        (
            format!("host != 'web-1' AND ({})", conditions(600, " OR ")),
            RECORDS / 4 * 3,
        ),
    ];
    for (condition, expected) in cases {
        let query = format!("* | SELECT count(*) WHERE {condition}");
        let (status, body) = server.sql(&query).await;
        assert_eq!(status, 200, "{}: {body}", &query[..80]);
        assert_eq!(sql_count(&body), expected, "{}: {body}", &query[..80]);
    }
    server.assert_alive();
    let stack_cases = [
        (
            format!(
                "* | SELECT count(*) WHERE {}",
                conditions(limits.max_terms + 1, " AND ")
            ),
            "max_terms",
        ),
        (
            format!("* | SELECT count(*) WHERE {}", conditions(5_000, " OR ")),
            "max_terms",
        ),
        (
            format!("* | SELECT count(*) WHERE a = 1{}", " + 1".repeat(3_000)),
            "max_sql_expression_depth",
        ),
        (
            format!(
                "* | SELECT {}a{} AS x",
                "f(".repeat(3_000),
                ")".repeat(3_000)
            ),
            "max_sql_expression_depth",
        ),
    ];
    for (query, limit) in &stack_cases {
        let (status, body) = server.sql(query).await;
        assert_refused(status, &body, limit, &query[..60]);
    }
    let deep_search = {
        let mut text = "x".to_string();
        for level in 0..=limits.max_depth {
            let operator = if level % 2 == 0 { "AND" } else { "OR" };
            text = format!("t{level} {operator} ({text})");
        }
        text
    };
    let (status, body) = server.search(&deep_search).await;
    assert_refused(status, &body, "max_depth", "deep search");
    server.assert_alive();

    // Many terms and wildcards, on search, SQL and the tail filter.
    // 150,000 terms (900 KB) go in a body; the tail's query string gets the smaller
    // cases, which fit in a URL.
    let many_terms = vec!["hello"; 150_000].join(" ");
    let (status, body) = server.search(&many_terms).await;
    assert_refused(status, &body, "max_terms", "many terms");
    let many_wildcards = vec!["a*"; 5_000].join(" OR ");
    let just_over_terms = vec!["hello"; limits.max_terms + 1].join(" OR ");
    let long_pattern = format!("{}*", "a".repeat(limits.max_wildcard_chars));
    for (query, limit) in [
        (&many_wildcards, "max_wildcards"),
        (&just_over_terms, "max_terms"),
        (&long_pattern, "max_wildcard_chars"),
    ] {
        let (status, body) = server.search(query).await;
        assert_refused(status, &body, limit, limit);
        let (status, body) = server.sql(&format!("{query} | SELECT count(*)")).await;
        assert_refused(status, &body, limit, limit);
        let (status, body) = server.tail(query).await;
        assert_refused(status, &body, limit, limit);
    }
    let like_many = format!(
        "* | SELECT count(*) WHERE {}",
        vec!["host LIKE '%a%'"; 100].join(" OR ")
    );
    let (status, body) = server.sql(&like_many).await;
    assert_refused(status, &body, "max_wildcards", "LIKE");
    server.assert_alive();

    // The heaviest accepted wildcard query, several at once: a bounded answer.
    let heaviest = (0..limits.max_wildcards)
        .map(|i| format!("*{}?{}*", i % 10, "?".repeat(6)))
        .collect::<Vec<_>>()
        .join(" OR ");
    let answers =
        futures::future::join_all((0..CONCURRENT).map(|_| server.search(&heaviest))).await;
    for (status, body) in answers {
        assert!(
            status == 200 || status == 400,
            "a bounded answer, not {status}: {body}"
        );
    }
    server.assert_alive();

    // Alive and intact: a normal search and a normal SQL query see every record.
    let (status, body) = server.search("seed").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], RECORDS, "{body}");
    let (status, body) = server.sql("* | SELECT count(*)").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sql_count(&body), RECORDS);

    let pid = server.pid();
    let peak_kib = proc_status(pid, "VmHWM");
    let threads = proc_status(pid, "Threads");
    eprintln!("peak RSS {peak_kib} KiB, {threads} threads");
    assert!(
        peak_kib < MAX_PEAK_RSS_KIB,
        "peak RSS {peak_kib} KiB is over {MAX_PEAK_RSS_KIB} KiB"
    );
    assert!(threads < MAX_THREADS, "{threads} threads");
    server.assert_alive();
}
