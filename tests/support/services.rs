//! The five services as OS processes on the distributed engines: where the engine
//! servers are, one isolated deployment (relay, bucket, database, etcd prefix, index
//! prefix) and starting and stopping service binaries.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use logpool_client::LogpoolClient;
use logpool_engines::queue::pulsar::test_relay::TestRelay;
use tokio::process::{Child, Command};

use crate::{count_records_by, logpool_binary, ADMIN_KEY};

/// Addresses of the engine servers the services run on.
#[derive(Debug, Clone)]
pub struct Engines {
    /// Pulsar broker (`pulsar://host:port`); the deployment puts a relay in front.
    pub pulsar: String,
    /// Elasticsearch or OpenSearch (`http://host:port`).
    pub elasticsearch: String,
    /// etcd client endpoint (`http://host:port`).
    pub etcd: String,
    /// MySQL server without a database (`mysql://user@host:port`).
    pub mysql: String,
    /// S3 endpoint (`http://host:port`).
    pub s3: String,
}

/// Reads the engine addresses from the `LOGPOOL_TEST_*` variables. Without them it
/// prints a visible skip and returns `None`, unless `LOGPOOL_REQUIRE_ENGINES` is set,
/// in which case it panics (so CI cannot pass by skipping).
pub fn engines() -> Option<Engines> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let found = (|| {
        Some(Engines {
            pulsar: get("LOGPOOL_TEST_PULSAR_URL")?,
            elasticsearch: get("LOGPOOL_TEST_ES_URL")?,
            etcd: get("LOGPOOL_TEST_ETCD_ENDPOINTS")?,
            mysql: get("LOGPOOL_TEST_MYSQL_URL")?,
            s3: get("LOGPOOL_TEST_S3_ENDPOINT")?,
        })
    })();
    if found.is_none() {
        assert!(
            std::env::var_os("LOGPOOL_REQUIRE_ENGINES").is_none(),
            "LOGPOOL_TEST_* engine variables are missing but LOGPOOL_REQUIRE_ENGINES is set"
        );
        eprintln!("SKIPPED: engine servers not configured; run ./scripts/test-all.sh");
    }
    found
}

/// Path of a service binary (`logpool-{name}`) next to the `logpool` binary.
pub fn service_binary(name: &str) -> PathBuf {
    logpool_binary().with_file_name(format!("logpool-{name}"))
}

pub use crate::free_port;

/// A running service process (killed when dropped).
pub struct Service {
    /// The service name (`put-datas`, `loghub`, ...).
    pub name: &'static str,
    /// The process.
    pub child: Child,
    /// A client pointed at its HTTP port.
    pub client: LogpoolClient,
    /// Its stderr log.
    pub log: PathBuf,
}

impl Service {
    /// Returns true while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Reads one counter (a line `name value`) from the service's `/metrics`.
    pub async fn counter(&self, name: &str) -> Option<u64> {
        let url = format!("{}/metrics", self.client.base_url());
        let text = reqwest::get(url).await.ok()?.text().await.ok()?;
        let prefix = format!("{name} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .map(|value| value as u64)
    }
}

/// Starts service `name` with `--config config`, logging to a file in `dir`, and
/// waits (at most a minute) until its `/readyz` answers.
pub async fn start_service(name: &'static str, config: &Path, dir: &Path) -> Service {
    start_service_with_env(name, config, dir, &[]).await
}

/// As [`start_service`], with extra environment variables (`LOGPOOL_*` overrides).
pub async fn start_service_with_env(
    name: &'static str,
    config: &Path,
    dir: &Path,
    env: &[(String, String)],
) -> Service {
    let binary = service_binary(name);
    assert!(
        binary.exists(),
        "{} is missing: build the workspace binaries with the distributed features",
        binary.display()
    );
    let port = free_port();
    let log = dir.join(format!("{name}-{port}.log"));
    let log_file = std::fs::File::create(&log).expect("log file");
    let child = Command::new(&binary)
        .arg("--config")
        .arg(config)
        .env("LOGPOOL_LISTEN", format!("127.0.0.1:{port}"))
        .env("LOGPOOL_DATA_DIR", dir.join(format!("{name}-{port}-data")))
        // control-api stores it as the bootstrap operator key; the other services
        // learn every key from the routing snapshot and ignore it.
        .env("LOGPOOL_ADMIN_KEY", ADMIN_KEY)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log_file))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn service");
    let client = LogpoolClient::new(&format!("http://127.0.0.1:{port}"))
        .expect("client")
        .with_api_key(ADMIN_KEY);
    let mut service = Service {
        name,
        child,
        client,
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if service.client.get("/readyz").await.is_ok() {
            return service;
        }
        // A process that exited (a start-up error) will never become ready.
        if !service.is_running() || Instant::now() >= deadline {
            panic!("{name} did not become ready:\n{}", log_tail(&service.log));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stops a service with SIGTERM and asserts that it exits cleanly within 30 s.
pub async fn stop(service: &mut Service) {
    let status = crate::stop_gracefully(&mut service.child).await;
    assert!(
        status.success(),
        "{} exited with {status}:\n{}",
        service.name,
        log_tail(&service.log)
    );
}

/// The log's first lines (where a start-up error is) and its last ones.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let head: String = text.lines().take(15).collect::<Vec<_>>().join("\n");
    let mut start = text.len().saturating_sub(2000);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("{head}\n...\n{}", &text[start..])
}

/// Creates an S3 bucket (path-style PUT).
pub async fn create_bucket(endpoint: &str, bucket: &str) {
    let response = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("create bucket");
    assert!(
        response.status().is_success(),
        "bucket: {}",
        response.status()
    );
}

/// The number of records of a pool matching `query`, or `None` while search-api
/// cannot answer.
pub async fn count(search: &LogpoolClient, project: &str, pool: &str, query: &str) -> Option<u64> {
    search.count(project, pool, query).await.ok()
}

/// Reads every record id (field `rid`) of a pool through search-api: id -> copies
/// stored (empty while search-api cannot answer).
pub async fn stored_ids(
    search: &LogpoolClient,
    project: &str,
    pool: &str,
) -> std::collections::HashMap<String, usize> {
    count_records_by(search, project, pool, "rid")
        .await
        .unwrap_or_default()
}

/// One isolated deployment on the engine servers: its own relay, bucket, database,
/// etcd prefix and index prefix.
pub struct Deployment {
    /// The framing relay in front of the broker.
    pub relay: TestRelay,
    /// Holds the config and the services' logs and data.
    pub dir: tempfile::TempDir,
    /// The config file every service is started with.
    pub config_path: PathBuf,
    /// Unique suffix of every name this deployment uses.
    pub suffix: String,
    /// `LOGPOOL_*` overrides given to every service started by [`Deployment::start`].
    pub env: Vec<(String, String)>,
}

impl Deployment {
    /// Writes the config of a new deployment on `engines`.
    pub async fn new(engines: &Engines) -> Deployment {
        let relay = TestRelay::start(&engines.pulsar).await.expect("relay");
        let suffix = format!(
            "{:x}",
            std::process::id() as u64 * 1_000_003 + rand::random::<u16>() as u64
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let bucket = format!("lp-e2e-{suffix}");
        create_bucket(&engines.s3, &bucket).await;
        let config = format!(
            r#"
    data_dir = "{data}"
    [queue]
    type = "pulsar"
    url = "{pulsar}"
    [index]
    type = "elasticsearch"
    url = "{es}"
    index_prefix = "lpe2e{suffix}"
    number_of_replicas = 0
    [metadata]
    type = "mysql"
    url = "{mysql}/logpool_e2e_{suffix}"
    [coordination]
    type = "etcd"
    endpoints = ["{etcd}"]
    prefix = "/logpool-e2e-{suffix}"
    [object_store]
    type = "s3"
    endpoint = "{s3}"
    bucket = "{bucket}"
    allow_http = true
    access_key_id = "test"
    secret_access_key = "test"
    [loghub]
    commit_interval_ms = 300
    "#,
            data = dir.path().display(),
            pulsar = relay.url(),
            es = engines.elasticsearch,
            mysql = engines.mysql,
            etcd = engines.etcd,
            s3 = engines.s3,
        );
        let config_path = dir.path().join("distributed.toml");
        std::fs::write(&config_path, config).expect("config");
        Deployment {
            relay,
            dir,
            config_path,
            suffix,
            env: Vec::new(),
        }
    }

    /// Adds a `LOGPOOL_*` override for every service started afterwards.
    pub fn with_env(mut self, key: &str, value: &str) -> Deployment {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Starts service `name` of this deployment.
    pub async fn start(&self, name: &'static str) -> Service {
        start_service_with_env(name, &self.config_path, self.dir.path(), &self.env).await
    }
}

/// A standalone server's index on the test Elasticsearch, under a prefix of its own
/// (`tag` and a random suffix) so that runs and tests never share indices.
pub fn elasticsearch_index(engines: &Engines, tag: &str) -> logpool_engines::config::IndexConfig {
    use logpool_engines::index::elasticsearch::ElasticsearchIndexConfig;
    logpool_engines::config::IndexConfig::Elasticsearch(ElasticsearchIndexConfig {
        url: engines.elasticsearch.clone(),
        index_prefix: format!("{tag}{:x}", rand::random::<u32>()),
        number_of_replicas: 0,
        ..ElasticsearchIndexConfig::default()
    })
}
