//! Connection hygiene of the real binary: thousands of half-open connections (each
//! sent part of its request headers, then nothing) do not stop the server. While
//! they are open `/healthz` and a search answer promptly; past `http.max_connections`
//! a new connection gets the documented `503` and is closed; the half-open ones are
//! closed once `http.header_read_timeout_secs` has passed; and the server's memory,
//! threads and file descriptors stay bounded and come back.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use logpool_e2e::process_stats::{open_file_limit, ProcessStats};
use logpool_e2e::{
    admin_client, free_port, start_standalone_process, wait_for, wait_for_count, ADMIN_KEY,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Long enough that opening thousands of connections and checking the server
/// (about 10 s on a loaded 2-core machine) ends before the first one times out.
const HEADER_TIMEOUT_SECS: u64 = 20;
const MAX_CONNECTIONS: usize = 2300;
/// Connections opened beyond the cap, each of which must be refused.
const OVER_CAP: usize = 50;
const RECORDS: usize = 200;

/// A request cut off in the middle of its headers.
const PARTIAL_REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Partial: ";

/// Reads until the server closes the connection (or `within` passes): what it sent,
/// or `None` when it was still open.
async fn read_until_closed(mut stream: TcpStream, within: Duration) -> Option<String> {
    let mut answer = Vec::new();
    match tokio::time::timeout(within, stream.read_to_end(&mut answer)).await {
        Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) => None,
    }
}

/// One request on a connection of its own (`Connection: close`): status, body and
/// how long the answer took.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let answer = read_until_closed(stream, Duration::from_secs(10))
        .await
        .expect("answered and closed");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body, started.elapsed())
}

async fn healthz(addr: SocketAddr) -> (u16, String, Duration) {
    request(addr, "GET", "/healthz", "").await
}

async fn count_hits(addr: SocketAddr) -> (u64, Duration) {
    let (status, body, took) = request(
        addr,
        "POST",
        "/v1/projects/hostile/pools/web/search",
        r#"{"query": "hostile", "limit": 1}"#,
    )
    .await;
    assert_eq!(status, 200, "search: {body}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("json");
    (body["total"].as_u64().expect("total"), took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_half_open_connections_are_bounded_and_timed_out() {
    let test_started = Instant::now();
    // This process holds every client end: it needs the descriptors too.
    logpool_api::process::raise_file_limit();
    let data = tempfile::tempdir().expect("tempdir");
    let log = data.path().join("logpool.log");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut child = start_standalone_process(
        &data.path().join("data"),
        port,
        &log,
        &[
            (
                "LOGPOOL_HTTP__HEADER_READ_TIMEOUT_SECS",
                HEADER_TIMEOUT_SECS.to_string(),
            ),
            ("LOGPOOL_HTTP__MAX_CONNECTIONS", MAX_CONNECTIONS.to_string()),
            ("LOGPOOL_LOGHUB__COMMIT_INTERVAL_MS", "200".to_string()),
        ],
    )
    .await;
    let pid = child.id().expect("pid");
    // The cap the server derives from its own file limit (raised to its hard limit).
    let config = logpool_engines::config::HttpConfig {
        max_connections: MAX_CONNECTIONS,
        ..Default::default()
    };
    let cap = logpool_api::server::connection_cap(&config, open_file_limit(pid));
    let half_open = cap.saturating_sub(300).min(2000);
    assert!(
        half_open >= 500,
        "open-file limit too small for this test: cap {cap}"
    );

    let admin = admin_client(&format!("http://{addr}"));
    admin.create_project("hostile").await.expect("project");
    admin
        .create_pool("hostile", &json!({ "name": "web", "shards": 1 }))
        .await
        .expect("pool");
    let records: Vec<_> = (0..RECORDS)
        .map(|n| json!({ "message": format!("hostile record {n}") }))
        .collect();
    admin
        .put_records("hostile", "web", &records)
        .await
        .expect("put");
    let seen = wait_for_count(&admin, "hostile", "web", "hostile", RECORDS as u64).await;
    assert_eq!(seen, RECORDS as u64, "records searchable");
    // Its kept-alive connections would hold places under the cap.
    drop(admin);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = ProcessStats::read(pid).expect("stats");

    // Thousands of connections that sent part of their headers and stop.
    let opening = Instant::now();
    let mut partial = Vec::with_capacity(half_open);
    for _ in 0..half_open {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(PARTIAL_REQUEST).await.expect("write");
        partial.push(stream);
    }
    let last_opened = Instant::now();
    println!(
        "opened {half_open} half-open connections in {:?}",
        last_opened - opening
    );
    let accepted = wait_for(Duration::from_secs(5), || async move {
        let stats = ProcessStats::read(pid)?;
        (stats.fds >= before.fds + half_open as u64).then_some(stats)
    })
    .await
    .expect("the server holds every half-open connection");
    println!("server while they are open: {accepted:?} (before: {before:?})");

    // The server still answers, promptly.
    let (status, _, took) = healthz(addr).await;
    assert_eq!(status, 200, "healthz during the flood");
    assert!(took < Duration::from_secs(2), "healthz took {took:?}");
    let (total, took) = count_hits(addr).await;
    assert_eq!(total, RECORDS as u64, "search during the flood");
    assert!(took < Duration::from_secs(3), "search took {took:?}");

    // Fill the cap with silent connections: the ones beyond it are refused.
    let filling = cap - half_open + OVER_CAP;
    let mut silent = Vec::with_capacity(filling);
    for _ in 0..filling {
        silent.push(TcpStream::connect(addr).await.expect("connect"));
    }
    let (status, text, _) = healthz(addr).await;
    assert_eq!(
        status, 503,
        "at the cap a new connection is refused: {text}"
    );
    let body: serde_json::Value = serde_json::from_str(&text).expect("json refusal");
    assert_eq!(body["error"]["code"], "unavailable", "{text}");
    assert_eq!(body["error"]["limit"], "http.max_connections", "{text}");
    let answers = futures::future::join_all(
        silent
            .into_iter()
            .map(|stream| read_until_closed(stream, Duration::from_secs(1))),
    )
    .await;
    let refused: Vec<&String> = answers.iter().flatten().collect();
    for answer in &refused {
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("retry-after: 1"), "{answer}");
    }
    println!(
        "{} of {filling} connections beyond {half_open} half-open ones refused (cap {cap})",
        refused.len()
    );
    // Exactly those beyond the cap (one slot may still be held by the healthz
    // connection that was refused a moment ago).
    assert!(
        (OVER_CAP..=OVER_CAP + 2).contains(&refused.len()),
        "{} refused, expected {OVER_CAP}",
        refused.len()
    );
    let peak = ProcessStats::read(pid).expect("stats");
    println!("server at the cap: {peak:?}");
    assert!(
        opening.elapsed() < Duration::from_secs(HEADER_TIMEOUT_SECS),
        "the checks above ran before the first header timeout (else they prove nothing)"
    );

    // The half-open connections are closed by the header read timeout.
    let deadline = Duration::from_secs(HEADER_TIMEOUT_SECS + 5);
    let closed = futures::future::join_all(
        partial
            .into_iter()
            .map(|stream| read_until_closed(stream, deadline)),
    )
    .await;
    let still_open = closed.iter().filter(|answer| answer.is_none()).count();
    assert_eq!(still_open, 0, "half-open connections left open");
    let closed_after = last_opened.elapsed();
    println!("half-open connections closed within {closed_after:?} of the last one opened");
    assert!(closed_after >= Duration::from_secs(HEADER_TIMEOUT_SECS - 1));

    let after = wait_for(Duration::from_secs(5), || async move {
        let stats = ProcessStats::read(pid)?;
        (stats.fds <= before.fds + 10).then_some(stats)
    })
    .await
    .unwrap_or_else(|| panic!("descriptors not released: {:?}", ProcessStats::read(pid)));
    println!("server after: {after:?}");
    assert!(child.try_wait().expect("wait").is_none(), "server alive");
    let (status, _, _) = healthz(addr).await;
    assert_eq!(status, 200, "healthz after");
    let (total, _) = count_hits(addr).await;
    assert_eq!(total, RECORDS as u64, "earlier data intact");

    // Bounds: memory, threads and descriptors of the whole episode.
    let grown_kib = after.peak_rss_kib.saturating_sub(before.rss_kib);
    assert!(
        grown_kib < 256 * 1024,
        "peak RSS grew by {grown_kib} KiB over {cap} connections"
    );
    assert!(
        peak.threads <= before.threads + 8,
        "threads {} -> {}",
        before.threads,
        peak.threads
    );
    assert!(
        peak.fds <= before.fds + cap as u64 + 8,
        "descriptors {} -> {} with cap {cap}",
        before.fds,
        peak.fds
    );
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !log_text.contains("Too many open files"),
        "the server ran out of descriptors"
    );
    let _ = child.start_kill();
    println!("test ran {:?}", test_started.elapsed());
}
