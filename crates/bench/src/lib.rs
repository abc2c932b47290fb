//! `logpool bench`: the benchmark harness. It starts a server (a `logpool
//! standalone` child on a temporary directory, or a running one by URL), creates a
//! pool, and measures:
//!
//! 1. ingest at full speed from concurrent clients: records/s and MB/s accepted and
//!    indexed (searchable), ingest → searchable lag of marker records sent during
//!    the load, and the server's CPU seconds per million records;
//! 2. lag again at half the indexed rate of step 1;
//! 3. latencies of a fixed query set, and of a dashboard of 12 panels loaded at
//!    once ([`dashboard`]);
//! 4. the server's peak RSS and bytes on disk per raw byte (queue, index, total);
//! 5. the baseline: the same records indexed into a bare tantivy index in this
//!    process, and logpool's end-to-end rate as a fraction of it;
//! 6. the shipper protocols (Elasticsearch `_bulk`, OTLP) against native PutDatas:
//!    accepted records/s of the same records on a fresh server, and the ratios
//!    ([`protocol_ingest`]).
//!
//! `logpool bench queries` is the query benchmark at scale instead: see
//! [`query_scale`].

mod baseline;
mod clickhouse_peer;
pub mod corpus;
mod dashboard;
mod load;
mod patterns;
mod protocol_ingest;
mod queries;
mod query_scale;
mod report;
mod server;
mod stats;
mod synthetic;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use logpool_client::LogpoolClient;
use logpool_engines::config::{Config, IndexConfig};
use logpool_engines::index::tantivy_index::space_by_field;
use logpool_engines::index::TantivyIndexConfig;

use self::corpus::Corpus;
use self::load::{LoadPlan, Target};
pub use self::patterns::{PatternBenchArgs, PatternBenchReport};
use self::protocol_ingest::{ProtocolComparison, ProtocolPlan, ProtocolTarget};
pub use self::query_scale::{QueryScaleArgs, QueryScaleReport};
pub use self::report::IngestReport;
use self::report::{Disk, Lag, Process};
use self::server::{
    admin_key, cpu_seconds, dir_bytes, peak_rss_bytes, rss_split_bytes, ChildServer,
};
use self::stats::percentile;

/// Options of `logpool bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Records of the full-speed phase.
    #[arg(long, default_value_t = 200_000)]
    pub records: u64,
    /// Concurrent PutDatas clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Records per request.
    #[arg(long, default_value_t = 1000)]
    pub batch_records: usize,
    /// Directory of `*.log` files to replay (default: the Loghub samples of the repository).
    #[arg(long)]
    pub logs: Option<PathBuf>,
    /// Benchmark a running server instead of starting one (CPU, memory and disk
    /// figures are then absent: they need the server's process and directory).
    #[arg(long)]
    pub url: Option<String>,
    /// API key for `--url` (a started server gets a fresh operator key instead).
    #[arg(long, env = "LOGPOOL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Seconds of the half-rate phase that measures lag below saturation (0 skips it).
    #[arg(long, default_value_t = 20)]
    pub paced_secs: u64,
    /// Timed runs of each query.
    #[arg(long, default_value_t = 30)]
    pub query_runs: usize,
    /// Timed loads of a dashboard of 12 panels over the last 24 hours (0 skips it).
    #[arg(long, default_value_t = 10)]
    pub dashboard_runs: usize,
    /// Records each protocol sends per round of the comparison of ingest protocols
    /// (native PutDatas, Elasticsearch `_bulk`, OTLP protobuf), on a fresh server.
    #[arg(long, default_value_t = 50_000)]
    pub protocol_records: u64,
    /// Rounds of that comparison; each protocol runs once per round (0 skips it).
    #[arg(long, default_value_t = 3)]
    pub protocol_rounds: usize,
    /// Port on 127.0.0.1 of the server started for the ingest run; the protocol
    /// comparison's server listens on the next one (default: free ports).
    #[arg(long)]
    pub port: Option<u16>,
    /// Skip the bare-tantivy baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// Send puts without an `Idempotency-Key` (every client of ours sends one), to
    /// measure what the key's ledger costs.
    #[arg(long)]
    pub without_idempotency_key: bool,
    /// Print the report as JSON on stdout (the table then goes to stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// Another benchmark than the ingest run.
    #[command(subcommand)]
    pub mode: Option<BenchMode>,
}

/// The benchmarks other than the default ingest run.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum BenchMode {
    /// Query latencies at scale (10 M records by default) through the search API and
    /// on the raw engine, over an index built once in a reusable directory.
    Queries(QueryScaleArgs),
    /// Ingest with log pattern mining off and on in alternation, the pattern
    /// table's size and the time of `/patterns` over every record.
    Patterns(PatternBenchArgs),
}

/// What `logpool bench` measured.
#[derive(Debug)]
pub enum Report {
    /// The ingest run.
    Ingest(Box<IngestReport>),
    /// The query benchmark.
    Queries(Box<QueryScaleReport>),
    /// The pattern mining benchmark.
    Patterns(Box<PatternBenchReport>),
}

impl Report {
    /// The report as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Report::Ingest(report) => report.to_json(),
            Report::Queries(report) => report.to_json(),
            Report::Patterns(report) => report.to_json(),
        }
    }

    /// The report as a Markdown table.
    pub fn to_table(&self) -> String {
        match self {
            Report::Ingest(report) => report.to_table(),
            Report::Queries(report) => report.to_table(),
            Report::Patterns(report) => report.to_table(),
        }
    }
}

/// The Loghub samples shipped with the repository: next to the working directory,
/// else in the source tree this binary was built from.
fn default_logs() -> PathBuf {
    let relative = PathBuf::from("tests/data/loghub-2k");
    if relative.is_dir() {
        return relative;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/loghub-2k")
}

/// The server under test.
enum Server {
    Child(Box<ChildServer>),
    Remote(String),
}

impl Server {
    fn url(&self) -> &str {
        match self {
            Server::Child(child) => &child.url,
            Server::Remote(url) => url,
        }
    }

    fn pid(&self) -> Option<String> {
        match self {
            Server::Child(child) => child.pid().map(|pid| pid.to_string()),
            Server::Remote(_) => None,
        }
    }
}

/// Runs the benchmark and returns its report.
///
/// # Errors
/// Fails when the server cannot start, a request is refused, or records do not
/// become searchable in time.
pub async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    match &args.mode {
        Some(BenchMode::Queries(query_args)) => Ok(Report::Queries(Box::new(
            query_scale::run(query_args).await?,
        ))),
        Some(BenchMode::Patterns(pattern_args)) => Ok(Report::Patterns(Box::new(
            patterns::run(pattern_args).await?,
        ))),
        None => Ok(Report::Ingest(Box::new(run_ingest(args).await?))),
    }
}

/// The default benchmark: ingest, lag, queries, footprint and the baseline.
async fn run_ingest(args: &BenchArgs) -> anyhow::Result<IngestReport> {
    if args.records == 0 || args.clients == 0 || args.batch_records == 0 {
        bail!("--records, --clients and --batch-records must be positive");
    }
    let logs = args.logs.clone().unwrap_or_else(default_logs);
    let corpus = Arc::new(Corpus::load(&logs)?);
    let workdir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let data_dir = workdir.path().join("data");
    let key = admin_key();
    let (server, api_key) = match &args.url {
        Some(url) => (Server::Remote(url.clone()), args.api_key.as_deref()),
        None => (
            Server::Child(Box::new(
                ChildServer::start(
                    &data_dir,
                    &workdir.path().join("server.log"),
                    &key,
                    args.port,
                )
                .await?,
            )),
            Some(key.as_str()),
        ),
    };
    let result = measure(args, corpus.clone(), &server, api_key).await;
    let (mut report, peak_rss) = match result {
        Ok(measured) => measured,
        Err(error) => {
            if let Server::Child(child) = &server {
                eprintln!("server log:\n{}", child.log_tail());
            }
            return Err(error);
        }
    };
    if let Server::Child(child) = server {
        child.stop().await?;
        // Sizes after a clean stop: the final commit and merges are on disk.
        let queue = dir_bytes(&data_dir.join("queue"));
        let index_dir = data_dir.join(&tantivy_config()?.dir);
        let index = dir_bytes(&index_dir);
        let index_bytes_by_field =
            space_by_field(&index_dir).context("cannot read the index's space usage")?;
        report.process = Some(Process {
            peak_rss_bytes: peak_rss.unwrap_or(0),
            ..report.process.unwrap_or_default()
        });
        report.disk = Some(Disk {
            queue_bytes: queue,
            index_bytes: index,
            total_bytes: dir_bytes(&data_dir),
            index_bytes_by_field,
        });
    }
    if args.protocol_rounds > 0 {
        report.protocols = Some(compare_protocols(args, &corpus, workdir.path(), &key).await?);
    }
    if !args.no_baseline {
        let index_config = tantivy_config()?;
        let loghub = Config::default().loghub;
        let (corpus, records, batch, base) = (
            corpus.clone(),
            args.records,
            args.batch_records,
            report.base_time_us,
        );
        let dir = workdir.path().join("baseline");
        let measured = tokio::task::spawn_blocking(move || {
            baseline::run(corpus, records, batch, base, &dir, &index_config, &loghub)
        })
        .await
        .context("the baseline panicked")??;
        report.baseline = Some(measured);
    }
    Ok(report)
}

/// The comparison of ingest protocols, on a server of its own so that the figures of
/// the main run (disk, memory) stay those of its records alone.
async fn compare_protocols(
    args: &BenchArgs,
    corpus: &Corpus,
    workdir: &std::path::Path,
    admin_key: &str,
) -> anyhow::Result<ProtocolComparison> {
    let plan = ProtocolPlan {
        records: args.protocol_records,
        rounds: args.protocol_rounds,
        clients: args.clients,
        batch_records: args.batch_records,
    };
    let searchable_timeout = Duration::from_secs(120 + args.protocol_records / 2_000);
    match &args.url {
        Some(url) => {
            let mut client = LogpoolClient::new(url)?;
            if let Some(key) = &args.api_key {
                client = client.with_api_key(key);
            }
            let target = ProtocolTarget {
                client: &client,
                pid: None,
                searchable_timeout,
            };
            protocol_ingest::run(&target, corpus, plan).await
        }
        None => {
            let server = ChildServer::start(
                &workdir.join("protocols"),
                &workdir.join("protocols.log"),
                admin_key,
                args.port.and_then(|port| port.checked_add(1)),
            )
            .await?;
            let client = LogpoolClient::new(&server.url)?.with_api_key(admin_key);
            let pid = server.pid().map(|pid| pid.to_string());
            let target = ProtocolTarget {
                client: &client,
                pid: pid.as_deref(),
                searchable_timeout,
            };
            let result = protocol_ingest::run(&target, corpus, plan).await;
            if result.is_err() {
                eprintln!("server log:\n{}", server.log_tail());
            }
            server.stop().await?;
            result
        }
    }
}

/// The index settings the child server runs with (it starts from the defaults).
fn tantivy_config() -> anyhow::Result<TantivyIndexConfig> {
    // With the distributed engines built in, the index setting has other variants.
    #[allow(unreachable_patterns)]
    match Config::default().index {
        IndexConfig::Tantivy(config) => Ok(config),
        _ => bail!("the default index is not tantivy"),
    }
}

/// Everything measured against the running server; returns the report so far and
/// the server's peak RSS (read before it stops).
async fn measure(
    args: &BenchArgs,
    corpus: Arc<Corpus>,
    server: &Server,
    api_key: Option<&str>,
) -> anyhow::Result<(IngestReport, Option<u64>)> {
    let mut client = LogpoolClient::new(server.url())?;
    if let Some(key) = api_key {
        client = client.with_api_key(key);
    }
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_micros() as i64;
    let project = format!("bench{}", now_us / 1000);
    client
        .create_project(&project)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create project {project}: {e}"))?;
    client
        .create_pool(&project, &serde_json::json!({ "name": "loghub" }))
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the pool: {e}"))?;
    let target = Target {
        client: client.clone(),
        project,
        pool: "loghub".to_string(),
        keyed: !args.without_idempotency_key,
    };
    // Records are stamped one microsecond apart, ending now.
    // The paced phase sends at half the indexed rate, so at most this many records.
    let paced_max = args.records.saturating_mul(args.paced_secs.min(3600));
    let base_time_us = now_us - (args.records + paced_max) as i64;
    // Generous: a slow machine indexes a few thousand records a second.
    let searchable_timeout = Duration::from_secs(120 + args.records / 2_000);
    let plan = LoadPlan {
        first_seq: 0,
        records: args.records,
        clients: args.clients,
        batch_records: args.batch_records,
        rate: None,
        base_time_us,
        spacing_us: 1,
        marker_timeout: searchable_timeout,
    };
    let pid = server.pid();
    let server_cpu_before = pid.as_deref().and_then(cpu_seconds);
    let own_cpu_before = cpu_seconds("self");
    let full = load::run(&target, corpus.clone(), plan).await?;
    let mut expected = full.records + full.markers_sent;
    let searchable_at = wait_searchable(&target, expected, searchable_timeout).await?;
    let server_cpu = pid
        .as_deref()
        .and_then(cpu_seconds)
        .zip(server_cpu_before)
        .map(|(after, before)| after - before);
    let own_cpu = cpu_seconds("self")
        .zip(own_cpu_before)
        .map(|(after, before)| after - before);
    let accept_secs = full.last_ack.duration_since(full.started).as_secs_f64();
    let searchable_secs = searchable_at.duration_since(full.started).as_secs_f64();
    let indexed_rate = full.records as f64 / searchable_secs;

    let mut paced_lag = None;
    let mut paced_raw_bytes = 0;
    if args.paced_secs > 0 {
        let rate = indexed_rate / 2.0;
        let records = ((rate * args.paced_secs as f64) as u64).clamp(1, paced_max.max(1));
        let paced = load::run(
            &target,
            corpus.clone(),
            LoadPlan {
                first_seq: args.records,
                records,
                rate: Some(rate),
                ..plan
            },
        )
        .await?;
        expected += paced.records + paced.markers_sent;
        wait_searchable(&target, expected, searchable_timeout).await?;
        paced_raw_bytes = paced.raw_bytes;
        paced_lag = Some(Lag::from_markers(
            Some(rate),
            paced.lags_ms,
            paced.markers_lost,
        ));
    }

    let end_ms = now_us / 1000 + 60_000;
    let specs = queries::query_set(
        &corpus.rare_term(),
        &corpus.common_phrase(),
        (args.records / 2, args.records / 2 + args.records / 10),
        (base_time_us / 1000 - 1, end_ms),
    );
    let query_results = queries::run(&target, &specs, args.query_runs).await?;
    let dashboard = if args.dashboard_runs > 0 {
        Some(dashboard::run(&target, args.dashboard_runs).await?)
    } else {
        None
    };
    let peak_rss = pid.as_deref().and_then(peak_rss_bytes);
    let rss_at_end = pid.as_deref().and_then(rss_split_bytes);
    let million = full.records as f64 / 1e6;
    let report = IngestReport {
        records: full.records,
        clients: args.clients,
        batch_records: args.batch_records,
        raw_bytes: full.raw_bytes,
        raw_bytes_all_phases: full.raw_bytes + paced_raw_bytes,
        base_time_us,
        accept_secs,
        searchable_secs,
        lag_full: Lag::from_markers(None, full.lags_ms, full.markers_lost),
        lag_half: paced_lag,
        process: server_cpu.map(|cpu| Process {
            server_cpu_secs_per_million: cpu / million,
            load_generator_cpu_secs_per_million: own_cpu.unwrap_or(0.0) / million,
            peak_rss_bytes: 0,
            rss_at_end,
        }),
        disk: None,
        queries: query_results,
        dashboard,
        baseline: None,
        protocols: None,
    };
    Ok((report, peak_rss))
}

/// Polls the pool's total until it reaches `expected`; returns when it did.
async fn wait_searchable(
    target: &Target,
    expected: u64,
    timeout: Duration,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + timeout;
    let mut last = 0;
    while Instant::now() < deadline {
        // A failed count is retried at the next poll.
        if let Ok(total) = target.client.count(&target.project, &target.pool, "").await {
            last = total;
            if total >= expected {
                return Ok(Instant::now());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("only {last} of {expected} records were searchable after {timeout:?}")
}

/// The lag figures of one phase.
impl Lag {
    fn from_markers(rate: Option<f64>, mut lags_ms: Vec<f64>, lost: u64) -> Lag {
        Lag {
            rate_records_per_s: rate,
            markers: lags_ms.len() as u64,
            lost,
            p50_ms: percentile(&mut lags_ms, 50.0),
            p99_ms: percentile(&mut lags_ms, 99.0),
            max_ms: percentile(&mut lags_ms, 100.0),
        }
    }
}
