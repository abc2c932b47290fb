//! The one `Config` of logpool: a TOML file plus `LOGPOOL_*` environment overrides,
//! with defaults that run without any file.
//!
//! Environment overrides: `LOGPOOL_DATA_DIR`, `LOGPOOL_LISTEN`, and any nested key as
//! `LOGPOOL_<SECTION>__<KEY>` (double underscore), e.g.
//! `LOGPOOL_LOGHUB__COMMIT_INTERVAL_MS=500`. An environment value wins over the file.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use logpool_core::limits::IngestLimits;
use serde::{Deserialize, Serialize};

use crate::idempotency::IdempotencyConfig;
use crate::index::TantivyIndexConfig;
use crate::metadata::SqliteMetadataConfig;
use crate::object_store::LocalFileObjectStoreConfig;
use crate::queue::EmbeddedQueueConfig;

pub mod syslog;
pub use syslog::{SyslogConfig, SyslogListenerConfig, SyslogTransport};

/// Which queue engine, and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum QueueConfig {
    /// The embedded durable log (default).
    Embedded(EmbeddedQueueConfig),
    /// Apache Pulsar (or a Pulsar-protocol broker).
    #[cfg(feature = "pulsar")]
    Pulsar(crate::queue::pulsar::PulsarQueueConfig),
}

/// Which index engine, and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum IndexConfig {
    /// Embedded tantivy (default).
    Tantivy(TantivyIndexConfig),
    /// Elasticsearch or OpenSearch.
    #[cfg(feature = "elasticsearch")]
    Elasticsearch(crate::index::elasticsearch::ElasticsearchIndexConfig),
}

/// Which metadata store, and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetadataConfig {
    /// Embedded SQLite (default).
    Sqlite(SqliteMetadataConfig),
    /// MySQL or MariaDB.
    #[cfg(feature = "mysql")]
    Mysql(crate::metadata::mysql::MysqlMetadataConfig),
}

/// Which coordination service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CoordinationConfig {
    /// In-process watch channel (default; single process only).
    Local,
    /// etcd.
    #[cfg(feature = "etcd")]
    Etcd(crate::coordination::etcd::EtcdCoordinatorConfig),
}

/// Which object store, and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ObjectStoreConfig {
    /// Local files (default).
    LocalFile(LocalFileObjectStoreConfig),
    /// S3 or an S3-compatible store.
    #[cfg(feature = "s3")]
    S3(crate::object_store::s3::S3ObjectStoreConfig),
}

/// LogHub (indexing) settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoghubConfig {
    /// Longest time between index commits; a record is searchable about this long
    /// after it is accepted.
    pub commit_interval_ms: u64,
    /// Records staged before a commit is forced early. Writes hand documents to the
    /// index without waiting for them to be indexed, so this bounds the documents
    /// held in memory between commits (about 1 KiB each).
    pub max_uncommitted_records: usize,
    /// Messages taken from the queue per receive. One receive is decoded while the
    /// previous one is written, so this bounds the decoded records held in memory
    /// (64 messages of 1,000 records: 64,000).
    pub receive_batch_messages: usize,
    /// How often retention runs, in seconds.
    pub retention_check_interval_secs: u64,
    /// Tomorrow's index of each pool is created ahead of time at a moment within the
    /// last this-many seconds of the UTC day (each pool at its own fixed offset, so
    /// the index server is not asked for every pool's index at once), ending 5 minutes
    /// before midnight. Between 600 and 86400.
    pub index_precreation_window_secs: u64,
    /// How often the index pre-creation job looks for pools that are due, in seconds.
    pub index_precreation_check_interval_secs: u64,
    /// Whether each record gets the id of its pool's log pattern (`_pattern`) before
    /// it is indexed; the patterns API and `_pattern:ID` queries need it.
    pub mine_patterns: bool,
}

/// Fault injection for the crash tests, never for production: each pause widens a
/// window in which a crash must still lose and duplicate nothing. Off (all zero) by
/// default and left out of the sample configuration; the tests set it through
/// `LOGPOOL_FAULT_INJECTION__*`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultInjection {
    /// loghub waits this long between an index commit and the ack of its messages,
    /// so that a crash makes the queue redeliver already-indexed messages.
    pub loghub_ack_delay_ms: u64,
    /// The archive worker pauses this long after each object upload (before the
    /// ack), so that a crash leaves a batch half uploaded.
    pub archive_upload_pause_ms: u64,
}

impl FaultInjection {
    /// Whether no fault is injected (the only setting for production).
    pub fn is_off(&self) -> bool {
        *self == FaultInjection::default()
    }
}

impl Default for LoghubConfig {
    fn default() -> Self {
        LoghubConfig {
            commit_interval_ms: 1000,
            max_uncommitted_records: 100_000,
            receive_batch_messages: 64,
            retention_check_interval_secs: 60,
            index_precreation_window_secs: 4 * 3600,
            index_precreation_check_interval_secs: 60,
            mine_patterns: false,
        }
    }
}

/// Search API settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// Hits per page when the request says nothing.
    pub default_limit: usize,
    /// Largest page a request may ask for.
    pub max_limit: usize,
    /// Largest number of histogram buckets.
    pub max_histogram_buckets: i64,
    /// Longest `from`..`to` span a search, histogram or field summary may ask for.
    pub max_time_range_days: i64,
    /// Time partitions (days) searched per step, newest first; a search stops after
    /// the step that completes its page.
    pub partitions_per_step: usize,
    /// Time a search may take before it answers with what it has and `partial: true`
    /// (checked between steps).
    pub time_budget_ms: u64,
    /// Searches, histograms, field summaries and context requests one tenant may run
    /// at once; more are answered 429.
    pub max_concurrent_queries_per_tenant: usize,
    /// Largest `before` and `after` of a context request.
    pub max_context_records: usize,
    /// Newest matching records a field summary takes its field names from (their
    /// counts are taken over every match).
    pub field_summary_sample_records: usize,
    /// Bytes one query may hold in proportion to the data it reads: the stored
    /// records of a search page (a page that reaches it ends early with
    /// `truncated: true` and a cursor) or a SQL group table (over it: 400).
    pub max_query_memory_bytes: usize,
    /// Bytes all running queries of one tenant may hold together, counted as for
    /// `max_query_memory_bytes` (a SQL query over it: 429).
    pub max_query_memory_bytes_per_tenant: usize,
    /// Most records one export (`/export`, CSV or NDJSON) sends; the newest ones are
    /// sent and the answer's headers say when more matched.
    pub max_export_records: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            default_limit: 100,
            max_limit: 10_000,
            max_histogram_buckets: 120,
            max_time_range_days: 400,
            partitions_per_step: 2,
            time_budget_ms: 10_000,
            max_concurrent_queries_per_tenant: 8,
            max_context_records: 500,
            field_summary_sample_records: 1_000,
            max_query_memory_bytes: 32 * 1024 * 1024,
            max_query_memory_bytes_per_tenant: 128 * 1024 * 1024,
            max_export_records: 100_000,
        }
    }
}

/// Alert evaluation and notification settings (`[alerts]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Shortest schedule (`every_secs`) a rule may have. 10 in production; tests of
    /// the evaluator lower it to keep their runs short.
    pub min_every_secs: u64,
    /// Alert rules one tenant may hold when its quota (`alert_rules`) is unset.
    pub max_rules_per_tenant: u32,
    /// Rules evaluated at once; a due rule waits for a free slot, never for
    /// another rule's round.
    pub evaluation_concurrency: usize,
    /// Time one evaluation may take; a slower one fails (recorded as the rule's
    /// `last_error`) and is tried again at its next schedule.
    pub rule_timeout_secs: u64,
    /// Base URL of the web console in notification links (empty: a link relative
    /// to the server, `/#/explore?...`).
    pub console_url: String,
    /// Time one delivery (an HTTP request or an SMTP session) may take.
    pub delivery_timeout_secs: u64,
    /// Attempts per notification before it is given up (backoff 2 s, 4 s, ... 5 min).
    pub max_delivery_attempts: u32,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            min_every_secs: 10,
            max_rules_per_tenant: 200,
            evaluation_concurrency: 4,
            rule_timeout_secs: 30,
            console_url: String::new(),
            delivery_timeout_secs: 10,
            max_delivery_attempts: 8,
        }
    }
}

/// Live tail settings (`[tail]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TailConfig {
    /// Most tails open at once for one tenant; more are refused with 429.
    pub max_tails_per_tenant: usize,
    /// Most tails open at once on one pool; more are refused with 429.
    pub max_tails_per_pool: usize,
    /// Records a connection holds for a client that reads slowly; beyond it records
    /// are dropped and the client is told how many (`{"type":"dropped"}`).
    pub buffer_records: usize,
    /// Bytes of records (as sent) a connection holds for a slow client; beyond it
    /// records are dropped as for `buffer_records`.
    pub buffer_bytes: usize,
    /// Bytes of buffered records all tails of one tenant hold together; beyond it
    /// records are dropped as for `buffer_records`.
    pub buffer_bytes_per_tenant: usize,
    /// Most records in one frame.
    pub max_records_per_frame: usize,
    /// Most bytes of records in one frame (a frame always carries at least one).
    pub max_frame_bytes: usize,
    /// How often the queue is asked for new messages while a tail is caught up.
    pub poll_interval_ms: u64,
    /// How often the server pings.
    pub ping_interval_secs: u64,
    /// A connection that answers no ping and sends nothing for this long is closed.
    pub pong_timeout_secs: u64,
    /// A tail that delivers no record and gets no message from its client for this
    /// long is closed (0: never).
    pub idle_timeout_secs: u64,
    /// Longest life of one tail (0: unlimited).
    pub max_duration_secs: u64,
    /// Furthest back a `start` may reach, in seconds.
    pub max_backfill_secs: u64,
}

impl Default for TailConfig {
    fn default() -> Self {
        TailConfig {
            max_tails_per_tenant: 100,
            max_tails_per_pool: 20,
            buffer_records: 10_000,
            buffer_bytes: 4 * 1024 * 1024,
            buffer_bytes_per_tenant: 64 * 1024 * 1024,
            max_records_per_frame: 500,
            max_frame_bytes: 1024 * 1024,
            poll_interval_ms: 200,
            ping_interval_secs: 20,
            pong_timeout_secs: 60,
            idle_timeout_secs: 1800,
            max_duration_secs: 4 * 3600,
            max_backfill_secs: 24 * 3600,
        }
    }
}

impl TailConfig {
    fn validate(&self) -> anyhow::Result<()> {
        let positive = [
            ("max_tails_per_tenant", self.max_tails_per_tenant as u64),
            ("max_tails_per_pool", self.max_tails_per_pool as u64),
            ("buffer_records", self.buffer_records as u64),
            ("buffer_bytes", self.buffer_bytes as u64),
            (
                "buffer_bytes_per_tenant",
                self.buffer_bytes_per_tenant as u64,
            ),
            ("max_records_per_frame", self.max_records_per_frame as u64),
            ("max_frame_bytes", self.max_frame_bytes as u64),
            ("poll_interval_ms", self.poll_interval_ms),
            ("ping_interval_secs", self.ping_interval_secs),
            ("pong_timeout_secs", self.pong_timeout_secs),
        ];
        for (key, value) in positive {
            if value == 0 {
                bail!(
                    "`tail.{key}` (LOGPOOL_TAIL__{}) must be positive",
                    key.to_uppercase()
                );
            }
        }
        Ok(())
    }
}

/// TLS on every HTTP listener (`[tls]`). Both paths set: HTTPS only; both empty:
/// plain HTTP. Relative paths are relative to the working directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the server certificate, followed by any intermediates.
    pub cert_path: PathBuf,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
}

impl TlsConfig {
    /// Whether the listeners serve HTTPS.
    pub fn enabled(&self) -> bool {
        !self.cert_path.as_os_str().is_empty()
    }

    fn validate(&self) -> anyhow::Result<()> {
        let cert_set = !self.cert_path.as_os_str().is_empty();
        let key_set = !self.key_path.as_os_str().is_empty();
        match (cert_set, key_set) {
            (true, false) => bail!(
                "`tls.key_path` (LOGPOOL_TLS__KEY_PATH) must be set when `tls.cert_path` is set"
            ),
            (false, true) => bail!(
                "`tls.cert_path` (LOGPOOL_TLS__CERT_PATH) must be set when `tls.key_path` is set"
            ),
            _ => Ok(()),
        }
    }
}

/// Connection hygiene on every HTTP listener, and the throttling of failed
/// authentications (`[http]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// A client must send a request's complete headers within this long after it
    /// connects, and after each answer on a kept-alive connection; otherwise the
    /// connection is closed. This also closes connections that send nothing.
    pub header_read_timeout_secs: u64,
    /// Longest TLS handshake (only with `[tls]`).
    pub tls_handshake_timeout_secs: u64,
    /// Whether HTTP/1.1 connections stay open between requests (they are still
    /// closed after `header_read_timeout_secs` without a new request).
    pub keep_alive: bool,
    /// HTTP/2 (over TLS): interval of the pings that detect a dead peer; one not
    /// answered within the same time closes the connection.
    pub http2_keep_alive_interval_secs: u64,
    /// HTTP/2: most requests in flight on one connection.
    pub http2_max_concurrent_streams: u32,
    /// Most connections open at once on one listener. A connection beyond it is
    /// answered `503` (plain HTTP; with TLS it is closed) and closed at once. The
    /// value actually used is also kept below the process's file-descriptor limit
    /// minus `reserved_file_descriptors`.
    pub max_connections: usize,
    /// File descriptors kept for the engines (index segments, queue segments,
    /// databases) that connections may never take.
    pub reserved_file_descriptors: u64,
    /// Failed authentications from one client address within
    /// `auth_failure_window_secs` after which that address gets `429` (without its
    /// key being checked) until the window ends (0: no throttling).
    pub max_auth_failures_per_address: u32,
    /// Length of the window in which failed authentications are counted.
    pub auth_failure_window_secs: u64,
    /// Reverse proxies whose `X-Forwarded-For` names the client: addresses, or
    /// ranges in CIDR notation (`10.0.0.0/8`; in Kubernetes, the pod network, since
    /// gateway pods change addresses). From any other peer the header is ignored and
    /// the peer's own address is used. In the environment: comma-separated
    /// (`LOGPOOL_HTTP__TRUSTED_PROXIES=10.0.0.1,10.244.0.0/16`).
    #[serde(deserialize_with = "networks_from_list_or_text")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// A list of addresses and CIDR ranges, or one string of them comma-separated (as an
/// environment variable gives it). A bare address is the range of that one address.
fn networks_from_list_or_text<'de, D>(deserializer: D) -> Result<Vec<ipnet::IpNet>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrText {
        List(Vec<String>),
        Text(String),
    }
    let entries: Vec<String> = match ListOrText::deserialize(deserializer)? {
        ListOrText::List(list) => list,
        ListOrText::Text(text) => text.split(',').map(str::to_string).collect(),
    };
    entries
        .iter()
        .map(|entry| entry.trim())
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "`http.trusted_proxies`: `{entry}` is neither an IP address nor a CIDR range"
                    ))
                })
        })
        .collect()
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_read_timeout_secs: 10,
            tls_handshake_timeout_secs: 10,
            keep_alive: true,
            http2_keep_alive_interval_secs: 20,
            http2_max_concurrent_streams: 100,
            max_connections: 10_000,
            reserved_file_descriptors: 4096,
            max_auth_failures_per_address: 20,
            auth_failure_window_secs: 60,
            trusted_proxies: Vec::new(),
        }
    }
}

impl HttpConfig {
    fn validate(&self) -> anyhow::Result<()> {
        let positive = [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            (
                "tls_handshake_timeout_secs",
                self.tls_handshake_timeout_secs,
            ),
            (
                "http2_keep_alive_interval_secs",
                self.http2_keep_alive_interval_secs,
            ),
            (
                "http2_max_concurrent_streams",
                u64::from(self.http2_max_concurrent_streams),
            ),
            ("max_connections", self.max_connections as u64),
            ("auth_failure_window_secs", self.auth_failure_window_secs),
        ];
        for (key, value) in positive {
            if value == 0 {
                bail!(
                    "`http.{key}` (LOGPOOL_HTTP__{}) must be positive",
                    key.to_uppercase()
                );
            }
        }
        Ok(())
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Format version of this file.
    pub version: u32,
    /// Directory of all embedded engine data; relative engine paths are under it.
    pub data_dir: PathBuf,
    /// HTTP listen address (loopback by default: put a proxy with TLS in front).
    pub listen: SocketAddr,
    /// `host:port` at which other processes and operators reach this process, shown
    /// in its cluster member entry (`GET /v1/cluster/members`). Unset: the `listen`
    /// address, or, when that is a wildcard address, a generated member id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise_address: Option<String>,
    /// PutDatas limits.
    pub limits: IngestLimits,
    /// Queue engine.
    pub queue: QueueConfig,
    /// Index engine.
    pub index: IndexConfig,
    /// Metadata store.
    pub metadata: MetadataConfig,
    /// Coordination service.
    pub coordination: CoordinationConfig,
    /// Object store.
    pub object_store: ObjectStoreConfig,
    /// LogHub settings.
    pub loghub: LoghubConfig,
    /// Idempotent PutDatas (request keys).
    pub idempotency: IdempotencyConfig,
    /// Search settings.
    pub search: SearchConfig,
    /// Live tail settings.
    pub tail: TailConfig,
    /// Alert evaluation and notification settings.
    pub alerts: AlertsConfig,
    /// TLS on every listener.
    pub tls: TlsConfig,
    /// Connection limits and timeouts of every listener, failed-auth throttling.
    pub http: HttpConfig,
    /// Syslog listeners of put-datas (none by default).
    pub syslog: SyslogConfig,
    /// Test-only pauses (see [`FaultInjection`]); not serialised while off.
    #[serde(skip_serializing_if = "FaultInjection::is_off")]
    pub fault_injection: FaultInjection,
    /// The operator key (`LOGPOOL_ADMIN_KEY`): stored (hashed) as the bootstrap
    /// operator key by control-api at start. Unset on first start: one is generated
    /// and printed once. Keep it out of the file; set it in the environment.
    #[serde(default, skip_serializing)]
    pub admin_key: Option<AdminKey>,
}

/// A secret that never appears in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct AdminKey(String);

impl AdminKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> AdminKey {
        AdminKey(key.into())
    }

    /// The key itself, to hash it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AdminKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("AdminKey(<redacted>)")
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: 1,
            data_dir: PathBuf::from("logpool-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            advertise_address: None,
            limits: IngestLimits::default(),
            queue: QueueConfig::Embedded(EmbeddedQueueConfig {
                dir: PathBuf::from("queue"),
                ..EmbeddedQueueConfig::default()
            }),
            index: IndexConfig::Tantivy(TantivyIndexConfig::default()),
            metadata: MetadataConfig::Sqlite(SqliteMetadataConfig::default()),
            coordination: CoordinationConfig::Local,
            object_store: ObjectStoreConfig::LocalFile(LocalFileObjectStoreConfig::default()),
            loghub: LoghubConfig::default(),
            idempotency: IdempotencyConfig::default(),
            search: SearchConfig::default(),
            tail: TailConfig::default(),
            alerts: AlertsConfig::default(),
            tls: TlsConfig::default(),
            http: HttpConfig::default(),
            syslog: SyslogConfig::default(),
            fault_injection: FaultInjection::default(),
            admin_key: None,
        }
    }
}

/// The distributed engines, each behind a cargo feature of `logpool-engines`:
/// (config section, `type` value, feature, whether this build has it).
const FEATURE_GATED_ENGINES: [(&str, &str, &str, bool); 5] = [
    ("queue", "pulsar", "pulsar", cfg!(feature = "pulsar")),
    (
        "index",
        "elasticsearch",
        "elasticsearch",
        cfg!(feature = "elasticsearch"),
    ),
    ("metadata", "mysql", "mysql", cfg!(feature = "mysql")),
    ("coordination", "etcd", "etcd", cfg!(feature = "etcd")),
    ("object_store", "s3", "s3", cfg!(feature = "s3")),
];

/// Names the cargo feature to build with when the config picks an engine this build
/// left out (serde alone would only say "unknown variant").
fn refuse_compiled_out_engines(
    tree: &toml::Table,
    engines: &[(&str, &str, &str, bool)],
) -> anyhow::Result<()> {
    for &(section, engine, feature, compiled) in engines {
        let chosen = tree
            .get(section)
            .and_then(|value| value.get("type"))
            .and_then(toml::Value::as_str);
        if chosen == Some(engine) && !compiled {
            bail!(
                "`{section}.type = \"{engine}\"` needs the {engine} engine, which this build \
                 leaves out: build with `--features logpool-engines/{feature}` (or \
                 `--features logpool-e2e/distributed` for every distributed engine)"
            );
        }
    }
    Ok(())
}

impl Config {
    /// Loads the configuration: defaults, then the file (if any), then the
    /// environment (`env` is passed in so tests never touch the process environment).
    ///
    /// # Errors
    /// Names the file, variable or field that is wrong.
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> anyhow::Result<Config> {
        let mut tree =
            toml::Table::try_from(Config::default()).context("failed to serialise defaults")?;
        if let Some(file) = file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("failed to read config file {}", file.display()))?;
            let from_file: toml::Table = text
                .parse()
                .with_context(|| format!("config file {} is not valid TOML", file.display()))?;
            merge(&mut tree, from_file);
        }
        let mut names: Vec<&String> = env
            .keys()
            .filter(|k| k.starts_with("LOGPOOL_") && !is_non_config_variable(k))
            .collect();
        names.sort();
        for name in names {
            let path: Vec<String> = name["LOGPOOL_".len()..]
                .split("__")
                .map(str::to_lowercase)
                .collect();
            if path.iter().any(String::is_empty) {
                bail!("environment variable {name} has an empty key part");
            }
            set_path(&mut tree, &path, parse_env_value(&env[name]))
                .with_context(|| format!("environment variable {name} does not fit the config"))?;
        }
        refuse_compiled_out_engines(&tree, &FEATURE_GATED_ENGINES)?;
        let config: Config = toml::Value::Table(tree)
            .try_into()
            .context("invalid configuration (check the file and LOGPOOL_* variables)")?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.version != 1 {
            bail!("config `version` must be 1, got {}", self.version);
        }
        if self.loghub.commit_interval_ms == 0 {
            bail!(
                "`loghub.commit_interval_ms` (LOGPOOL_LOGHUB__COMMIT_INTERVAL_MS) must be positive"
            );
        }
        if !(600..=86_400).contains(&self.loghub.index_precreation_window_secs) {
            bail!(
                "`loghub.index_precreation_window_secs` (LOGPOOL_LOGHUB__INDEX_PRECREATION_WINDOW_SECS) \
                 must be between 600 and 86400, got {}",
                self.loghub.index_precreation_window_secs
            );
        }
        if self.loghub.index_precreation_check_interval_secs == 0 {
            bail!(
                "`loghub.index_precreation_check_interval_secs` \
                 (LOGPOOL_LOGHUB__INDEX_PRECREATION_CHECK_INTERVAL_SECS) must be positive"
            );
        }
        if self
            .advertise_address
            .as_deref()
            .is_some_and(|address| address.is_empty() || address.contains('/'))
        {
            bail!("`advertise_address` (LOGPOOL_ADVERTISE_ADDRESS) must be `host:port`");
        }
        if self.search.max_limit == 0 || self.search.default_limit > self.search.max_limit {
            bail!("`search.default_limit` must be between 1 and `search.max_limit`");
        }
        if self.search.max_time_range_days <= 0
            || self.search.partitions_per_step == 0
            || self.search.max_concurrent_queries_per_tenant == 0
            || self.search.field_summary_sample_records == 0
            || self.search.max_query_memory_bytes == 0
            || self.search.max_query_memory_bytes_per_tenant == 0
        {
            bail!(
                "`search.max_time_range_days`, `search.partitions_per_step`, \
                 `search.max_concurrent_queries_per_tenant`, \
                 `search.field_summary_sample_records`, `search.max_query_memory_bytes` and \
                 `search.max_query_memory_bytes_per_tenant` must be positive"
            );
        }
        self.tail.validate()?;
        self.idempotency.validate()?;
        self.tls.validate()?;
        self.http.validate()?;
        self.syslog.validate(&self.limits)?;
        if self.limits.max_records_per_request == 0 || self.limits.max_body_bytes == 0 {
            bail!("`limits.max_records_per_request` and `limits.max_body_bytes` must be positive");
        }
        if self.limits.max_event_age_days == Some(0) {
            bail!("`limits.max_event_age_days` must be positive (leave it unset to follow each pool's retention)");
        }
        if self.limits.max_event_future_secs > logpool_core::limits::MAX_EVENT_FUTURE_SECS {
            bail!(
                "`limits.max_event_future_secs` must be at most {}",
                logpool_core::limits::MAX_EVENT_FUTURE_SECS
            );
        }
        // Irrefutable when built without the distributed engines.
        #[allow(irrefutable_let_patterns)]
        if let IndexConfig::Tantivy(tantivy) = &self.index {
            if tantivy.max_open_writers == 0 {
                bail!("`index.max_open_writers` must be positive");
            }
        }
        #[cfg(feature = "s3")]
        if let ObjectStoreConfig::S3(s3) = &self.object_store {
            s3.validate()?;
        }
        Ok(())
    }

    /// Resolves a possibly relative engine path against `data_dir`.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.data_dir.join(path)
        }
    }
}

/// `LOGPOOL_*` variables that are not configuration: the log filter, the CLI's
/// server URL and CA file, and the test suite's own settings.
fn is_non_config_variable(name: &str) -> bool {
    matches!(
        name,
        "LOGPOOL_LOG"
            | "LOGPOOL_URL"
            | "LOGPOOL_CA_CERT"
            | "LOGPOOL_API_KEY"
            | "LOGPOOL_BIN"
            | "LOGPOOL_REQUIRE_ENGINES"
    ) || name.starts_with("LOGPOOL_TEST_")
}

fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(overlay_table))
                // A different engine `type` replaces the whole section.
                if base_table.get("type") == overlay_table.get("type") || !overlay_table.contains_key("type") =>
            {
                merge(base_table, overlay_table);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn set_path(tree: &mut toml::Table, path: &[String], value: toml::Value) -> anyhow::Result<()> {
    match path {
        [] => bail!("empty path"),
        [last] => {
            tree.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = tree
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(table) => set_path(table, rest, value),
                _ => bail!("`{first}` is not a section"),
            }
        }
    }
}

fn parse_env_value(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(f) = raw.parse::<f64>() {
        toml::Value::Float(f)
    } else if let Ok(b) = raw.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(raw.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_defaults_load_without_file() {
        let config = Config::load(None, &HashMap::new()).expect("load");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn test_file_and_env_overrides() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("logpool.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9999\"\n[loghub]\ncommit_interval_ms = 250\n",
        )
        .expect("write");
        let env = HashMap::from([
            (
                "LOGPOOL_LOGHUB__COMMIT_INTERVAL_MS".to_string(),
                "500".to_string(),
            ),
            ("LOGPOOL_DATA_DIR".to_string(), "/tmp/x".to_string()),
        ]);
        let config = Config::load(Some(&file), &env).expect("load");
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.loghub.commit_interval_ms, 500);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn test_bad_values_name_the_problem() {
        let env = HashMap::from([(
            "LOGPOOL_LOGHUB__COMMIT_INTERVAL_MS".to_string(),
            "0".to_string(),
        )]);
        let error = Config::load(None, &env).expect_err("must fail").to_string();
        assert!(error.contains("commit_interval_ms"), "{error}");
        let env = HashMap::from([("LOGPOOL_LOGHUB__NO_SUCH_KEY".to_string(), "1".to_string())]);
        let error = format!("{:#}", Config::load(None, &env).expect_err("must fail"));
        assert!(error.contains("no_such_key"), "{error}");
    }

    #[cfg(all(
        feature = "pulsar",
        feature = "elasticsearch",
        feature = "mysql",
        feature = "etcd",
        feature = "s3"
    ))]
    #[test]
    fn test_distributed_sample_config_parses() {
        let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/distributed.toml");
        let config =
            Config::load(Some(Path::new(sample)), &HashMap::new()).expect("distributed sample");
        assert!(matches!(config.queue, QueueConfig::Pulsar(_)));
        assert!(matches!(config.index, IndexConfig::Elasticsearch(_)));
        assert!(matches!(config.metadata, MetadataConfig::Mysql(_)));
        assert!(matches!(config.coordination, CoordinationConfig::Etcd(_)));
        assert!(matches!(config.object_store, ObjectStoreConfig::S3(_)));
        let env = HashMap::from([("LOGPOOL_QUEUE__URLL".to_string(), "x".to_string())]);
        let error = format!(
            "{:#}",
            Config::load(Some(Path::new(sample)), &env).expect_err("unknown key")
        );
        assert!(error.contains("urll"), "{error}");
    }

    #[cfg(all(
        feature = "pulsar",
        feature = "elasticsearch",
        feature = "mysql",
        feature = "etcd",
        feature = "s3"
    ))]
    #[test]
    fn test_a_bad_s3_setting_stops_the_load_naming_the_field() {
        let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/distributed.toml");
        for (variable, value, field) in [
            (
                "LOGPOOL_OBJECT_STORE__MULTIPART_PART_SIZE_BYTES",
                "1048576",
                "object_store.multipart_part_size_bytes",
            ),
            (
                "LOGPOOL_OBJECT_STORE__SERVER_SIDE_ENCRYPTION",
                "aes",
                "object_store.server_side_encryption",
            ),
            (
                "LOGPOOL_OBJECT_STORE__SSE_KMS_KEY_ID",
                "alias/logs",
                "object_store.sse_kms_key_id",
            ),
        ] {
            let env = HashMap::from([(variable.to_string(), value.to_string())]);
            let error = format!(
                "{:#}",
                Config::load(Some(Path::new(sample)), &env).expect_err(variable)
            );
            assert!(error.contains(field), "{variable}: {error}");
        }
    }

    #[test]
    fn test_an_engine_left_out_of_the_build_names_its_feature() {
        let tree: toml::Table = "[queue]\ntype = \"pulsar\"\nurl = \"pulsar://x:6650\"\n"
            .parse()
            .expect("toml");
        let without = [("queue", "pulsar", "pulsar", false)];
        let error = refuse_compiled_out_engines(&tree, &without)
            .expect_err("left out")
            .to_string();
        assert!(
            error.contains("--features logpool-engines/pulsar") && error.contains("queue.type"),
            "{error}"
        );
        let with = [("queue", "pulsar", "pulsar", true)];
        refuse_compiled_out_engines(&tree, &with).expect("built in");
        // What this build really has: every gated engine either loads or says why not.
        for (section, engine, feature, compiled) in FEATURE_GATED_ENGINES {
            let env = HashMap::from([(
                format!("LOGPOOL_{}__TYPE", section.to_uppercase()),
                engine.to_string(),
            )]);
            let error = Config::load(None, &env)
                .err()
                .map(|error| format!("{error:#}"))
                .unwrap_or_default();
            assert_eq!(
                error.contains(&format!("logpool-engines/{feature}")),
                !compiled,
                "{error}"
            );
        }
    }

    #[test]
    fn test_tls_needs_both_paths() {
        let env = HashMap::from([(
            "LOGPOOL_TLS__CERT_PATH".to_string(),
            "server.pem".to_string(),
        )]);
        let error = Config::load(None, &env)
            .expect_err("key missing")
            .to_string();
        assert!(error.contains("tls.key_path"), "{error}");
        let env = HashMap::from([("LOGPOOL_TLS__KEY_PATH".to_string(), "key.pem".to_string())]);
        let error = Config::load(None, &env)
            .expect_err("cert missing")
            .to_string();
        assert!(error.contains("tls.cert_path"), "{error}");
        let env = HashMap::from([
            (
                "LOGPOOL_TLS__CERT_PATH".to_string(),
                "server.pem".to_string(),
            ),
            ("LOGPOOL_TLS__KEY_PATH".to_string(), "key.pem".to_string()),
        ]);
        let config = Config::load(None, &env).expect("both set");
        assert!(config.tls.enabled());
        assert!(!Config::default().tls.enabled());
    }

    #[test]
    fn test_trusted_proxies_from_the_environment() {
        let env = HashMap::from([(
            "LOGPOOL_HTTP__TRUSTED_PROXIES".to_string(),
            "127.0.0.1, ::1".to_string(),
        )]);
        let config = Config::load(None, &env).expect("addresses");
        assert_eq!(config.http.trusted_proxies.len(), 2);
        let env = HashMap::from([(
            "LOGPOOL_HTTP__TRUSTED_PROXIES".to_string(),
            "10.244.0.0/16, 192.168.1.7".to_string(),
        )]);
        let config = Config::load(None, &env).expect("ranges");
        let [pods, single] = config.http.trusted_proxies.as_slice() else {
            panic!("two entries: {:?}", config.http.trusted_proxies);
        };
        assert!(pods.contains(&"10.244.3.9".parse::<std::net::IpAddr>().expect("ip")));
        assert!(!pods.contains(&"10.245.0.1".parse::<std::net::IpAddr>().expect("ip")));
        assert_eq!(single.prefix_len(), 32);
        let file: Config = toml::from_str("[http]\ntrusted_proxies = [\"fd00::/8\", \"::1\"]")
            .expect("a list in the file");
        assert_eq!(file.http.trusted_proxies.len(), 2);
        let env = HashMap::from([(
            "LOGPOOL_HTTP__TRUSTED_PROXIES".to_string(),
            "proxy.local".to_string(),
        )]);
        let error = format!(
            "{:#}",
            Config::load(None, &env).expect_err("not an address")
        );
        assert!(error.contains("trusted_proxies"), "{error}");
    }

    #[test]
    fn test_fault_injection_is_off_by_default_and_set_only_in_its_own_section() {
        let defaults = Config::load(None, &HashMap::new()).expect("defaults");
        assert!(defaults.fault_injection.is_off());
        let serialised = toml::to_string(&defaults).expect("serialise");
        assert!(!serialised.contains("fault_injection"), "{serialised}");
        let env = HashMap::from([(
            "LOGPOOL_FAULT_INJECTION__LOGHUB_ACK_DELAY_MS".to_string(),
            "400".to_string(),
        )]);
        let config = Config::load(None, &env).expect("fault injection");
        assert_eq!(config.fault_injection.loghub_ack_delay_ms, 400);
        // The knobs are no longer loghub settings.
        let env = HashMap::from([(
            "LOGPOOL_LOGHUB__ACK_DELAY_MS".to_string(),
            "400".to_string(),
        )]);
        assert!(Config::load(None, &env).is_err());
    }

    #[test]
    fn test_sample_config_file_parses() {
        let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/logpool.toml");
        let config = Config::load(Some(Path::new(sample)), &HashMap::new()).expect("sample config");
        assert_eq!(config, Config::default());
    }
}
