//! `logpool bench patterns`: what log pattern mining costs and how fast the
//! patterns of many records are answered.
//!
//! In one run, fresh servers alternate with pattern mining off and on
//! (`loghub.mine_patterns`), each taking the same records at full speed; the
//! indexed rate and the server's CPU per record are compared as a ratio, round
//! by round, so both sides see the same machine. The last server with mining on
//! then answers `/patterns` over every record it holds (timed), and the size of
//! its saved pattern table is read from its object store.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use logpool_client::LogpoolClient;

use super::corpus::Corpus;
use super::load::{self, LoadPlan, Target};
use super::server::{admin_key, cpu_seconds, dir_bytes, ChildServer};
use super::stats::percentile;

/// Options of `logpool bench patterns`.
#[derive(Debug, Clone, clap::Args)]
pub struct PatternBenchArgs {
    /// Records each server takes per round.
    #[arg(long, default_value_t = 200_000)]
    pub records: u64,
    /// Rounds; each runs one server with mining off and one with it on.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Concurrent PutDatas clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Records per request.
    #[arg(long, default_value_t = 1000)]
    pub batch_records: usize,
    /// Timed `/patterns` requests over all records.
    #[arg(long, default_value_t = 20)]
    pub query_runs: usize,
    /// Directory of `*.log` files to replay (default: the Loghub samples).
    #[arg(long)]
    pub logs: Option<std::path::PathBuf>,
}

/// One server's ingest.
#[derive(Debug, Clone)]
pub struct PatternIngest {
    /// Whether pattern mining was on.
    pub mining: bool,
    /// Records indexed per second (first put to all searchable).
    pub records_per_s: f64,
    /// Server CPU seconds per million records.
    pub server_cpu_secs_per_million: Option<f64>,
}

/// What `logpool bench patterns` measured.
#[derive(Debug, Clone)]
pub struct PatternBenchReport {
    /// Records per server.
    pub records: u64,
    /// Every server's ingest, in run order.
    pub runs: Vec<PatternIngest>,
    /// Mean indexed rate with mining on divided by the rate with it off.
    pub rate_ratio: f64,
    /// Mean CPU per record with mining on divided by that with it off.
    pub cpu_ratio: Option<f64>,
    /// Bytes of the saved pattern table (JSON) of the last server with mining on.
    pub pattern_table_bytes: u64,
    /// Patterns in it.
    pub num_patterns: usize,
    /// `/patterns` over every record: p50 and p99 in milliseconds.
    pub patterns_query_p50_ms: f64,
    /// See `patterns_query_p50_ms`.
    pub patterns_query_p99_ms: f64,
}

impl PatternBenchReport {
    /// The report as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let runs: Vec<serde_json::Value> = self
            .runs
            .iter()
            .map(|run| {
                serde_json::json!({
                    "mining": run.mining,
                    "records_per_s": run.records_per_s,
                    "server_cpu_secs_per_million": run.server_cpu_secs_per_million,
                })
            })
            .collect();
        serde_json::json!({
            "records": self.records,
            "runs": runs,
            "rate_ratio": self.rate_ratio,
            "cpu_ratio": self.cpu_ratio,
            "pattern_table_bytes": self.pattern_table_bytes,
            "num_patterns": self.num_patterns,
            "patterns_query_p50_ms": self.patterns_query_p50_ms,
            "patterns_query_p99_ms": self.patterns_query_p99_ms,
        })
    }

    /// The report as a Markdown table.
    pub fn to_table(&self) -> String {
        let mut out = String::from(
            "| server | mining | records/s | server CPU s / M records |\n|---|---|---|---|\n",
        );
        for (index, run) in self.runs.iter().enumerate() {
            out.push_str(&format!(
                "| {} | {} | {:.0} | {} |\n",
                index + 1,
                if run.mining { "on" } else { "off" },
                run.records_per_s,
                run.server_cpu_secs_per_million
                    .map_or("-".to_owned(), |cpu| format!("{cpu:.1}"))
            ));
        }
        out.push_str(&format!(
            "\nmining on / off: indexed rate ×{:.3}, CPU per record ×{}\n\
             pattern table: {} patterns, {} bytes saved\n\
             /patterns over {} records: p50 {:.1} ms, p99 {:.1} ms\n",
            self.rate_ratio,
            self.cpu_ratio
                .map_or("-".to_owned(), |ratio| format!("{ratio:.3}")),
            self.num_patterns,
            self.pattern_table_bytes,
            self.records,
            self.patterns_query_p50_ms,
            self.patterns_query_p99_ms
        ));
        out
    }
}

/// Runs the comparison.
///
/// # Errors
/// Fails when a server cannot start, a request is refused, or records do not
/// become searchable in time.
pub async fn run(args: &PatternBenchArgs) -> anyhow::Result<PatternBenchReport> {
    if args.records == 0 || args.rounds == 0 || args.clients == 0 || args.batch_records == 0 {
        bail!("--records, --rounds, --clients and --batch-records must be positive");
    }
    let logs = args.logs.clone().unwrap_or_else(super::default_logs);
    let corpus = Arc::new(Corpus::load(&logs)?);
    let workdir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let key = admin_key();
    let mut runs = Vec::new();
    let mut last_on = None;
    for round in 0..args.rounds {
        for mining in [false, true] {
            let dir = workdir.path().join(format!("round{round}-{mining}"));
            let server = ChildServer::start_with_env(
                &dir.join("data"),
                &dir.join("server.log"),
                &key,
                None,
                &[("LOGPOOL_LOGHUB__MINE_PATTERNS", mining.to_string())],
            )
            .await?;
            let measured = ingest(args, &corpus, &server, &key, mining).await;
            let measured = match measured {
                Ok(measured) => measured,
                Err(error) => {
                    eprintln!("server log:\n{}", server.log_tail());
                    return Err(error);
                }
            };
            runs.push(measured.0);
            if mining {
                if let Some((old_server, _, _)) = last_on.take() {
                    let old_server: ChildServer = old_server;
                    old_server.stop().await?;
                }
                last_on = Some((server, measured.1, dir));
            } else {
                server.stop().await?;
            }
        }
    }
    let Some((server, target, dir)) = last_on else {
        bail!("no server ran with mining on");
    };
    let mut latencies = Vec::new();
    let path = format!(
        "/v1/projects/{}/pools/{}/patterns?from=-7d&limit=100",
        target.project, target.pool
    );
    for _ in 0..args.query_runs.max(1) {
        let started = Instant::now();
        target
            .client
            .get(&path)
            .await
            .map_err(|e| anyhow::anyhow!("patterns request failed: {e}"))?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    server.stop().await?;
    let (pattern_table_bytes, num_patterns) = saved_tables(&dir.join("data"));
    let mean = |mining: bool, value: &dyn Fn(&PatternIngest) -> Option<f64>| {
        let values: Vec<f64> = runs
            .iter()
            .filter(|run| run.mining == mining)
            .filter_map(value)
            .collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let rate = |run: &PatternIngest| Some(run.records_per_s);
    let cpu = |run: &PatternIngest| run.server_cpu_secs_per_million;
    let rate_ratio = mean(true, &rate).unwrap_or(0.0) / mean(false, &rate).unwrap_or(1.0);
    let cpu_ratio = mean(true, &cpu)
        .zip(mean(false, &cpu))
        .map(|(on, off)| on / off);
    Ok(PatternBenchReport {
        records: args.records,
        runs,
        rate_ratio,
        cpu_ratio,
        pattern_table_bytes,
        num_patterns,
        patterns_query_p50_ms: percentile(&mut latencies.clone(), 50.0),
        patterns_query_p99_ms: percentile(&mut latencies, 99.0),
    })
}

/// Sends the records to `server` and waits until they are searchable.
async fn ingest(
    args: &PatternBenchArgs,
    corpus: &Arc<Corpus>,
    server: &ChildServer,
    key: &str,
    mining: bool,
) -> anyhow::Result<(PatternIngest, Target)> {
    let client = LogpoolClient::new(&server.url)?.with_api_key(key);
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_micros() as i64;
    client
        .create_project("patterns")
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the project: {e}"))?;
    client
        .create_pool("patterns", &serde_json::json!({ "name": "loghub" }))
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the pool: {e}"))?;
    let target = Target {
        client,
        project: "patterns".to_owned(),
        pool: "loghub".to_owned(),
        keyed: true,
    };
    let timeout = Duration::from_secs(120 + args.records / 2_000);
    let plan = LoadPlan {
        first_seq: 0,
        records: args.records,
        clients: args.clients,
        batch_records: args.batch_records,
        rate: None,
        base_time_us: now_us - args.records as i64,
        spacing_us: 1,
        marker_timeout: timeout,
    };
    let pid = server.pid().map(|pid| pid.to_string());
    let cpu_before = pid.as_deref().and_then(cpu_seconds);
    let loaded = load::run(&target, corpus.clone(), plan).await?;
    let expected = loaded.records + loaded.markers_sent;
    let searchable_at = super::wait_searchable(&target, expected, timeout).await?;
    let cpu = pid
        .as_deref()
        .and_then(cpu_seconds)
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let secs = searchable_at.duration_since(loaded.started).as_secs_f64();
    let million = loaded.records as f64 / 1e6;
    Ok((
        PatternIngest {
            mining,
            records_per_s: loaded.records as f64 / secs.max(1e-9),
            server_cpu_secs_per_million: cpu.map(|cpu| cpu / million),
        },
        target,
    ))
}

/// Bytes and patterns of the saved pattern tables under a server's data dir.
fn saved_tables(data_dir: &Path) -> (u64, usize) {
    let mut bytes = 0;
    let mut patterns = 0;
    let mut stack = vec![data_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|name| name == "miner.json") {
                bytes += dir_bytes(&path).max(entry.metadata().map(|m| m.len()).unwrap_or(0));
                if let Ok(text) = std::fs::read(&path) {
                    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&text) {
                        patterns += value["patterns"].as_array().map_or(0, Vec::len);
                    }
                }
            }
        }
    }
    (bytes, patterns)
}
