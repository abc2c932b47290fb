//! Support code for the end-to-end suite in `tests/`: an in-process server on a
//! temporary data directory, the path of the `logpool` binary, polling helpers and
//! the Loghub sample data. With the `distributed` feature: the service processes on
//! the engine servers (`services`), private engine servers a test can stop and
//! restart (`private_servers`) and a TCP proxy that can be switched down
//! (`fault_proxy`).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use logpool_client::LogpoolClient;
use logpool_standalone::Standalone;
use tokio::process::{Child, Command};

pub use logpool_engines::config::Config;

pub mod chart;
pub mod console_walkthrough;
#[cfg(feature = "distributed")]
pub mod fault_proxy;
pub mod pools;
#[cfg(feature = "distributed")]
pub mod private_servers;
pub mod process_stats;
#[cfg(feature = "distributed")]
pub mod services;
pub mod tenants;

/// The operator key every test server is started with (`LOGPOOL_ADMIN_KEY`).
pub const ADMIN_KEY: &str = "test-operator-key-3f1c9a";

/// A client for `base_url` that sends [`ADMIN_KEY`].
pub fn admin_client(base_url: &str) -> LogpoolClient {
    LogpoolClient::new(base_url)
        .expect("client")
        .with_api_key(ADMIN_KEY)
}

/// Headers that authenticate a hand-built HTTP client as the operator.
pub fn admin_headers() -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {ADMIN_KEY}"))
        .expect("header value");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    headers
}

/// A plain HTTP client (for raw requests) that sends [`ADMIN_KEY`] every time.
pub fn admin_http() -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(admin_headers())
        .build()
        .expect("http client")
}

/// A standalone logpool running inside the test process.
pub struct TestServer {
    /// The running product.
    pub standalone: Standalone,
    /// A client pointed at it.
    pub client: LogpoolClient,
    /// Its data directory (removed on drop).
    pub data_dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server with test-friendly defaults (fast commits).
    pub async fn start() -> anyhow::Result<TestServer> {
        TestServer::start_with(|_| {}).await
    }

    /// Starts a server after `adjust` has changed the configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> anyhow::Result<TestServer> {
        let data_dir = tempfile::tempdir()?;
        let mut config = Config {
            data_dir: data_dir.path().to_path_buf(),
            ..Config::default()
        };
        config.loghub.commit_interval_ms = 200;
        config.admin_key = Some(logpool_engines::config::AdminKey::new(ADMIN_KEY));
        adjust(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let standalone = logpool_standalone::start(config, listener).await?;
        let client =
            LogpoolClient::new(&format!("http://{}", standalone.addr))?.with_api_key(ADMIN_KEY);
        Ok(TestServer {
            standalone,
            client,
            data_dir,
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.standalone.addr
    }

    /// The server's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.standalone.addr)
    }
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn wait_for<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the pool's total reaches `expected` (and returns the last total seen).
pub async fn wait_for_count(
    client: &LogpoolClient,
    project: &str,
    pool: &str,
    query: &str,
    expected: u64,
) -> u64 {
    let mut last = 0;
    let reached = wait_for(Duration::from_secs(30), || {
        let client = client.clone();
        let (project, pool, query) = (project.to_string(), pool.to_string(), query.to_string());
        async move { client.count(&project, &pool, &query).await.ok() }
    })
    .await;
    if reached.is_none() {
        return last;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        last = client.count(project, pool, query).await.unwrap_or(last);
        if last >= expected {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

/// Pages through every record of a pool (newest first, by cursor) and counts how
/// many times each value of `field` is stored.
pub async fn count_records_by(
    client: &LogpoolClient,
    project: &str,
    pool: &str,
    field: &str,
) -> Result<std::collections::HashMap<String, usize>, logpool_client::ClientError> {
    let mut counts = std::collections::HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let params = logpool_client::wire::search::SearchParams {
            limit: Some(10000),
            cursor: cursor.take(),
            ..Default::default()
        };
        let page = client.search(project, pool, &params).await?;
        for hit in &page.hits {
            let value = hit
                .fields
                .get(field)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string();
            *counts.entry(value).or_insert(0) += 1;
        }
        match page.cursor {
            Some(next) if !page.hits.is_empty() => cursor = Some(next),
            _ => return Ok(counts),
        }
    }
}

/// The Python the test engines were installed for (`LOGPOOL_TEST_PYTHON`, else
/// `python3`) when it can import `module`; otherwise `None` after saying why, or a
/// panic when `LOGPOOL_REQUIRE_ENGINES` is set. `pip` names what installs it.
pub fn python_with(module: &str, pip: &str) -> Option<String> {
    let python = std::env::var("LOGPOOL_TEST_PYTHON")
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| "python3".to_string());
    let found = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        return Some(python);
    }
    let message = format!(
        "{python} cannot import `{module}`; scripts/test-engines.sh installs it (pip install {pip})"
    );
    if std::env::var_os("LOGPOOL_REQUIRE_ENGINES").is_some() {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    None
}

/// Path of the `logpool` binary built next to this test executable
/// (`cargo build -p logpool-standalone` must have run; the test command does it).
pub fn logpool_binary() -> PathBuf {
    if let Ok(path) = std::env::var("LOGPOOL_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> -> target/<profile>/logpool
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    profile_dir.join("logpool")
}

/// The Loghub sample systems shipped in `tests/data/loghub-2k`.
pub const LOGHUB_SYSTEMS: [&str; 8] = [
    "Apache",
    "BGL",
    "HDFS",
    "Hadoop",
    "Linux",
    "OpenSSH",
    "Spark",
    "Zookeeper",
];

/// Reads the lines of one Loghub sample.
pub fn loghub_lines(system: &str) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/data/loghub-2k/{system}_2k.log"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts the real `logpool standalone` binary as a child process (for tests that
/// kill it) on `data_dir` and `port`, with `env` set and its log appended to `log`;
/// returns once it answers `/readyz`, or panics with the end of its log.
pub async fn start_standalone_process(
    data_dir: &std::path::Path,
    port: u16,
    log: &std::path::Path,
    env: &[(&str, String)],
) -> Child {
    let client = admin_client(&format!("http://127.0.0.1:{port}"));
    start_standalone_process_probed_by(data_dir, port, log, env, client).await
}

/// [`start_standalone_process`], asking `client` for `/readyz` (e.g. one that
/// speaks HTTPS and trusts the server's CA).
pub async fn start_standalone_process_probed_by(
    data_dir: &std::path::Path,
    port: u16,
    log: &std::path::Path,
    env: &[(&str, String)],
    client: LogpoolClient,
) -> Child {
    let binary = logpool_binary();
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p logpool-standalone` first",
        binary.display()
    );
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let child = Command::new(&binary)
        .args(["standalone", "--data-dir"])
        .arg(data_dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("LOGPOOL_ADMIN_KEY", ADMIN_KEY)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(log_file))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn logpool");
    let ready = wait_for(Duration::from_secs(30), || {
        let client = client.clone();
        async move { client.get("/readyz").await.ok() }
    })
    .await;
    if ready.is_none() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail = &text[text.len().saturating_sub(3000)..];
        panic!("logpool did not become ready; its log ends with:\n{tail}");
    }
    child
}

/// Asks `child` to stop with SIGTERM and returns its exit status; panics when it has
/// not exited within 30 s (a graceful stop must not hang).
pub async fn stop_gracefully(child: &mut Child) -> std::process::ExitStatus {
    if let Some(pid) = child.id() {
        // A child that already exited is not an error here: its status tells.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stops within 30 s of SIGTERM")
        .expect("exit status")
}
