//! `logpool bench queries`: query latencies at scale, through logpool's HTTP API and
//! on the raw engine in the same run.
//!
//! Building ten million records through HTTP ingest takes many minutes on a small
//! machine, so the index is built once into `--data-dir` and reused: the first run
//! ingests (and records what it built in a manifest), every run then starts a
//! `logpool standalone` child on that directory and times the query set. The
//! records are the benchmark corpus spread evenly over one UTC day, so that "a
//! histogram over a day" covers them all.
//!
//! The raw engine is tantivy itself on the very index files the server searches
//! (opened read-only in this process): the same query built by hand, counted, the
//! newest page fetched, or the same aggregation. Each query runs alternately
//! through the API and on the raw engine, so that the load of the shared machine
//! falls on both, and the answers of both are compared: a ratio means something
//! only when both did the same work.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use logpool_client::LogpoolClient;
use logpool_engines::index::tantivy_index::BareIndexReader;
use serde_json::{json, Value};

use super::clickhouse_peer::{ClickHousePeer, PeerTable};
use super::corpus::Corpus;
use super::load::{self, LoadPlan, Target};
use super::server::{admin_key, dir_bytes, ChildServer};
use super::stats::percentile;

const DAY_US: i64 = 86_400_000_000;
/// What a finished build wrote into `--data-dir`; without it the directory is built.
const MANIFEST: &str = "bench-queries.json";
const PROJECT: &str = "benchqueries";
const POOL: &str = "loghub";
/// Hits per search page (the API's default limit).
const PAGE: usize = 100;
/// Groups of the SQL query.
const TOP: usize = 10;
/// Longest wait for one API answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Options of `logpool bench queries`.
#[derive(Debug, Clone, clap::Args)]
pub struct QueryScaleArgs {
    /// Directory of the prepared index: built on the first run (when it has no
    /// finished build of `--records` yet), reused by every later run.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Records in the index.
    #[arg(long, default_value_t = 10_000_000)]
    pub records: u64,
    /// Concurrent PutDatas clients while building.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Records per request while building.
    #[arg(long, default_value_t = 1000)]
    pub batch_records: usize,
    /// Directory of `*.log` files to replay (default: the Loghub samples of the repository).
    #[arg(long)]
    pub logs: Option<PathBuf>,
    /// Timed runs of each query, through the API and on the raw engine each.
    #[arg(long, default_value_t = 30)]
    pub runs: usize,
    /// Untimed runs of each query first (warms the page cache and the server).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// The records: `loghub` (the lines of `--logs`) or `synthetic` (production-like
    /// lines that repeat little, see `--synthetic-lines`).
    #[arg(long, default_value = "loghub", value_parser = ["loghub", "synthetic"])]
    pub corpus: String,
    /// Distinct lines of the synthetic corpus (records repeat them in turn).
    #[arg(long, default_value_t = 200_000)]
    pub synthetic_lines: usize,
    /// Also load the records into embedded ClickHouse (PyPI `chdb`, table kept in
    /// `--data-dir`) and time the same queries on it, alternating run by run.
    #[arg(long)]
    pub clickhouse: bool,
    /// The Python interpreter that has `chdb` (the test setup installs it).
    #[arg(long, env = "LOGPOOL_TEST_PYTHON", default_value = "python3")]
    pub python: String,
}

/// The latencies of one query.
#[derive(Debug, Clone)]
pub struct ScaleResult {
    /// Short name.
    pub name: &'static str,
    /// The query as sent to the API.
    pub query: String,
    /// Through the API (HTTP round trip), ms.
    pub api_p50_ms: f64,
    /// Through the API, 99th percentile, ms.
    pub api_p99_ms: f64,
    /// On the raw engine, ms.
    pub raw_p50_ms: f64,
    /// On the raw engine, 99th percentile, ms.
    pub raw_p99_ms: f64,
    /// Matching records (the search total, the histogram's sum, or the sum of the
    /// top groups).
    pub matches: u64,
    /// The API's answer, reduced to what both sides must agree on (JSON).
    pub api_answer: Value,
    /// The raw engine's answer, in the same form.
    pub raw_answer: Value,
    /// Whether the API and the raw engine gave the same answer.
    pub same_answer: bool,
    /// The API's answer and the raw engine's, in short, when they differ.
    pub difference: Option<String>,
    /// The target for the API's p99 on a 2-core machine, ms, if there is one.
    pub target_p99_ms: Option<f64>,
    /// The same query on ClickHouse, with `--clickhouse`.
    pub peer: Option<PeerResult>,
}

/// One query's latencies on ClickHouse (measured inside the peer: the SQL through
/// chdb, no HTTP).
#[derive(Debug, Clone)]
pub struct PeerResult {
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// ClickHouse's answer, in the API answer's form.
    pub answer: Value,
    /// Whether it agrees with logpool's.
    pub same_answer: bool,
}

/// What `logpool bench queries` measured.
#[derive(Debug)]
pub struct QueryScaleReport {
    /// Records in the index.
    pub records: u64,
    /// The prepared directory.
    pub data_dir: PathBuf,
    /// Seconds this run spent building the index, absent when it was reused.
    pub build_secs: Option<f64>,
    /// Segments of the day's index.
    pub segments: usize,
    /// Bytes of the day's index.
    pub index_bytes: u64,
    /// Timed runs per query and side.
    pub runs: usize,
    /// The 1-minute load average before and after the timed runs.
    pub load_average: (Option<f64>, Option<f64>),
    /// One result per query.
    pub queries: Vec<ScaleResult>,
    /// Bytes the queue keeps (records already indexed are not needed by search).
    pub queue_bytes: u64,
    /// Seconds the index took to build (ingest until searchable), from the manifest.
    pub build_secs_recorded: Option<f64>,
    /// The ClickHouse table, with `--clickhouse`.
    pub peer: Option<PeerTable>,
}

/// What the prepared directory holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dataset {
    records: u64,
    corpus_lines: usize,
    day_start_us: i64,
    spacing_us: i64,
}

impl Dataset {
    fn read(dir: &Path) -> anyhow::Result<Option<Dataset>> {
        let path = dir.join(MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error).context(format!("cannot read {}", path.display())),
        };
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let number = |name: &str| {
            value[name]
                .as_i64()
                .with_context(|| format!("{} has no `{name}`", path.display()))
        };
        Ok(Some(Dataset {
            records: number("records")? as u64,
            corpus_lines: number("corpus_lines")? as usize,
            day_start_us: number("day_start_us")?,
            spacing_us: number("spacing_us")?,
        }))
    }

    fn write(&self, dir: &Path, build_secs: f64) -> anyhow::Result<()> {
        let manifest = json!({
            "build_secs": build_secs,
            "records": self.records,
            "corpus_lines": self.corpus_lines,
            "day_start_us": self.day_start_us,
            "spacing_us": self.spacing_us,
            "project": PROJECT,
            "pool": POOL,
        });
        std::fs::write(dir.join(MANIFEST), format!("{manifest:#}\n"))
            .context("cannot write the manifest")
    }

    fn range_ms(&self) -> (i64, i64) {
        let from = self.day_start_us / 1000;
        (from, from + DAY_US / 1000)
    }

    fn range_ns(&self) -> (i64, i64) {
        let (from, to) = self.range_ms();
        (from * 1_000_000, to * 1_000_000)
    }
}

/// Spacing that spreads `records` over one day. A multiple of 32 µs keeps every
/// event time in nanoseconds exact as an `f64` (tantivy's histogram keys), so that
/// no record lands in a neighbouring bucket by rounding.
fn spacing_us(records: u64) -> i64 {
    let even = DAY_US / records.max(1) as i64;
    if even >= 32 {
        even / 32 * 32
    } else {
        even.max(1)
    }
}

/// Runs the query benchmark, building the index first when `--data-dir` has none.
///
/// # Errors
/// Fails when the build or the server fails, a query is refused, or the index does
/// not hold what the manifest says.
pub async fn run(args: &QueryScaleArgs) -> anyhow::Result<QueryScaleReport> {
    if args.records == 0 || args.clients == 0 || args.batch_records == 0 || args.runs == 0 {
        bail!("--records, --clients, --batch-records and --runs must be positive");
    }
    if args.records > DAY_US as u64 {
        bail!("--records must be at most {DAY_US} (one record per microsecond of a day)");
    }
    let corpus = Arc::new(match args.corpus.as_str() {
        "synthetic" => super::synthetic::corpus(args.synthetic_lines.max(1)),
        _ => Corpus::load(&args.logs.clone().unwrap_or_else(super::default_logs))?,
    });
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let server_dir = args.data_dir.join("data");
    let log_file = args.data_dir.join("server.log");
    let key = admin_key();
    let (dataset, build_secs) = match Dataset::read(&args.data_dir)? {
        Some(dataset) => {
            if dataset.records != args.records || dataset.corpus_lines != corpus.lines.len() {
                bail!(
                    "{} holds {} records of a {}-line corpus, not {} of {}: use another --data-dir",
                    args.data_dir.display(),
                    dataset.records,
                    dataset.corpus_lines,
                    args.records,
                    corpus.lines.len()
                );
            }
            (dataset, None)
        }
        None => {
            if server_dir.exists() {
                bail!(
                    "{} holds an unfinished build (no {MANIFEST}): remove it or use another --data-dir",
                    server_dir.display()
                );
            }
            let started = Instant::now();
            let dataset = build(args, corpus.clone(), &server_dir, &log_file, &key).await?;
            let secs = started.elapsed().as_secs_f64();
            dataset.write(&args.data_dir, secs)?;
            (dataset, Some(secs))
        }
    };

    let day_dir = day_dir(&server_dir, dataset.day_start_us)?;
    let raw = Arc::new(BareIndexReader::open(&day_dir).with_context(|| {
        format!(
            "cannot open the index of {}: build it again in a new --data-dir",
            args.data_dir.display()
        )
    })?);
    if raw.num_docs() != dataset.records {
        bail!(
            "{} holds {} documents, the manifest says {}",
            day_dir.display(),
            raw.num_docs(),
            dataset.records
        );
    }
    let mut peer = if args.clickhouse {
        Some(start_peer(args, &corpus, &dataset).await?)
    } else {
        None
    };
    let server = ChildServer::start(&server_dir, &log_file, &key, None).await?;
    let api = Api::new(&server.url, &key)?;
    let load_before = load_average();
    let measured = measure(&api, &raw, peer.as_mut(), &corpus, &dataset, args).await;
    let load_after = load_average();
    let peer_table = peer.as_ref().map(|peer| peer.table.clone());
    if let Some(peer) = peer {
        peer.stop().await?;
    }
    let queries = match measured {
        Ok(queries) => queries,
        Err(error) => {
            eprintln!("server log:\n{}", server.log_tail());
            return Err(error);
        }
    };
    server.stop().await?;
    Ok(QueryScaleReport {
        records: dataset.records,
        data_dir: args.data_dir.clone(),
        build_secs,
        segments: raw.num_segments(),
        index_bytes: dir_bytes(&day_dir),
        runs: args.runs,
        load_average: (load_before, load_after),
        queries,
        queue_bytes: dir_bytes(&server_dir.join("queue")),
        build_secs_recorded: recorded_build_secs(&args.data_dir),
        peer: peer_table,
    })
}

/// The build time the manifest recorded (absent in manifests of older builds).
fn recorded_build_secs(dir: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
    serde_json::from_str::<Value>(&text).ok()?["build_secs"].as_f64()
}

/// Starts the ClickHouse peer on `--data-dir`'s table, loading the records first when
/// it has none: they are written to a file for it (the same records, times and
/// sequence numbers the index holds) and removed once loaded.
async fn start_peer(
    args: &QueryScaleArgs,
    corpus: &Corpus,
    dataset: &Dataset,
) -> anyhow::Result<ClickHousePeer> {
    let db = args.data_dir.join("clickhouse");
    let records = args.data_dir.join("records.ndjson");
    let built = db.join("peer-manifest.json").exists();
    if !built {
        eprintln!("writing {} records for ClickHouse", dataset.records);
        let file = std::fs::File::create(&records)
            .with_context(|| format!("cannot create {}", records.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let mut line = Vec::with_capacity(1024);
        for seq in 0..dataset.records {
            line.clear();
            corpus.write_record_spaced(seq, dataset.day_start_us, dataset.spacing_us, &mut line);
            std::io::Write::write_all(&mut out, &line)?;
        }
        std::io::Write::flush(&mut out)?;
        eprintln!("loading them into ClickHouse");
    }
    let peer = ClickHousePeer::start(&args.python, &db, &records).await?;
    if !built {
        // The table holds them now; the file is as big as the raw records.
        let _ = std::fs::remove_file(&records);
    }
    if peer.table.rows != dataset.records {
        bail!(
            "the ClickHouse table in {} holds {} rows, not {}: remove it to reload",
            db.display(),
            peer.table.rows,
            dataset.records
        );
    }
    Ok(peer)
}

/// Ingests the records into a new server directory, waits until all are searchable
/// and stops the server cleanly (final commit, merges finished).
async fn build(
    args: &QueryScaleArgs,
    corpus: Arc<Corpus>,
    server_dir: &Path,
    log_file: &Path,
    key: &str,
) -> anyhow::Result<Dataset> {
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_micros() as i64;
    // Yesterday (UTC): a whole day that is over, inside the search's longest range.
    let dataset = Dataset {
        records: args.records,
        corpus_lines: corpus.lines.len(),
        day_start_us: (now_us.div_euclid(DAY_US) - 1) * DAY_US,
        spacing_us: spacing_us(args.records),
    };
    eprintln!(
        "building {} records into {} (ingest over HTTP, then indexing; minutes per million records on a small machine)",
        args.records,
        server_dir.display()
    );
    let server = ChildServer::start(server_dir, log_file, key, None).await?;
    let built = async {
        let client = LogpoolClient::new(&server.url)?.with_api_key(key);
        client
            .create_project(PROJECT)
            .await
            .map_err(|e| anyhow::anyhow!("cannot create project {PROJECT}: {e}"))?;
        // The records are a day old and are kept for reruns.
        client
            .create_pool(PROJECT, &json!({ "name": POOL, "retention_days": 3650 }))
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the pool: {e}"))?;
        let target = Target {
            client,
            project: PROJECT.to_string(),
            pool: POOL.to_string(),
            keyed: true,
        };
        let searchable_timeout = Duration::from_secs(120 + args.records / 2_000);
        let plan = LoadPlan {
            first_seq: 0,
            records: args.records,
            clients: args.clients,
            batch_records: args.batch_records,
            rate: None,
            base_time_us: dataset.day_start_us,
            spacing_us: dataset.spacing_us,
            marker_timeout: searchable_timeout,
        };
        let loaded = load::run(&target, corpus, plan).await?;
        // Markers are stamped now, so they fall outside the day the queries cover.
        super::wait_searchable(
            &target,
            loaded.records + loaded.markers_sent,
            searchable_timeout,
        )
        .await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(error) = built {
        eprintln!("server log:\n{}", server.log_tail());
        return Err(error);
    }
    server.stop().await?;
    Ok(dataset)
}

/// The directory of the day's index: `{index}/{tenant}/{pool id}/{yyyy-mm-dd}` of
/// the only pool in the server's directory.
fn day_dir(server_dir: &Path, day_start_us: i64) -> anyhow::Result<PathBuf> {
    let index_dir = server_dir.join(&super::tantivy_config()?.dir);
    let subdirs = |dir: &Path| -> anyhow::Result<Vec<PathBuf>> {
        Ok(std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.is_dir())
            .collect())
    };
    let mut pools = Vec::new();
    for tenant in subdirs(&index_dir)? {
        pools.extend(subdirs(&tenant)?);
    }
    let [pool] = pools.as_slice() else {
        bail!(
            "{} should hold the index of exactly one pool, it holds {}",
            index_dir.display(),
            pools.len()
        );
    };
    let day = pool.join(day_name(day_start_us.div_euclid(DAY_US)));
    if !day.join("meta.json").exists() {
        bail!("no index for the benchmark's day in {}", day.display());
    }
    Ok(day)
}

/// `yyyy-mm-dd` of a day number since the epoch (the civil-from-days algorithm).
fn day_name(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The search API of the pool, with the administrator key.
struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    fn new(url: &str, key: &str) -> anyhow::Result<Api> {
        Ok(Api {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()?,
            base: format!("{url}/v1/projects/{PROJECT}/pools/{POOL}"),
            key: key.to_string(),
        })
    }

    async fn post(&self, route: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}/{route}", self.base))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {route} failed"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("POST {route} answered {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("POST {route}: not JSON: {text}"))
    }
}

/// The raw engine's side of a query.
#[derive(Debug, Clone)]
enum RawWork {
    /// Words in any field: one is a term, more a phrase.
    Text(Vec<String>),
    /// An integer range on a field (one value for equality), and a word in another
    /// field when there is one.
    Range {
        word: Option<(&'static str, &'static str)>,
        range_field: &'static str,
        range: (i64, i64),
    },
    /// A histogram of `_time` at the interval the API chose.
    Histogram,
    /// The most frequent values of a field.
    TopValues(&'static str),
}

/// One query of the set.
#[derive(Debug, Clone)]
struct Spec {
    name: &'static str,
    route: &'static str,
    body: Value,
    raw: RawWork,
    target_p99_ms: Option<f64>,
}

/// An answer reduced to what both sides must agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// Matches and hits returned.
    Page { total: u64, hits: usize },
    /// Counts of the non-empty buckets, oldest first, and the interval.
    Buckets { interval_ns: i64, counts: Vec<u64> },
    /// The top groups by count.
    Groups(Vec<(String, u64)>),
}

impl Answer {
    fn matches(&self) -> u64 {
        match self {
            Answer::Page { total, .. } => *total,
            Answer::Buckets { counts, .. } => counts.iter().sum(),
            Answer::Groups(groups) => groups.iter().map(|(_, count)| count).sum(),
        }
    }

    /// The answer as JSON, for the report: `{"total", "hits"}`, `{"interval_ms",
    /// "counts"}` or `{"groups": [[value, count], ...]}`.
    fn to_json(&self) -> Value {
        match self {
            Answer::Page { total, hits } => json!({ "total": total, "hits": hits }),
            Answer::Buckets {
                interval_ns,
                counts,
            } => json!({ "interval_ms": interval_ns / 1_000_000, "counts": counts }),
            Answer::Groups(groups) => json!({ "groups": groups }),
        }
    }

    /// Reads the JSON form of [`Answer::to_json`] (the ClickHouse peer's answers).
    fn from_json(value: &Value) -> anyhow::Result<Answer> {
        let numbers = |value: &Value| -> Vec<u64> {
            value
                .as_array()
                .map(|items| items.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default()
        };
        if let Some(total) = value["total"].as_u64() {
            return Ok(Answer::Page {
                total,
                hits: value["hits"].as_u64().unwrap_or(0) as usize,
            });
        }
        if let Some(interval_ms) = value["interval_ms"].as_i64() {
            return Ok(Answer::Buckets {
                interval_ns: interval_ms * 1_000_000,
                counts: numbers(&value["counts"]),
            });
        }
        if let Some(groups) = value["groups"].as_array() {
            return Ok(Answer::Groups(
                groups
                    .iter()
                    .map(|group| {
                        (
                            group[0].as_str().unwrap_or_default().to_string(),
                            group[1].as_u64().unwrap_or(0),
                        )
                    })
                    .collect(),
            ));
        }
        bail!("an answer of unknown form: {value}")
    }

    /// Equal, except that groups tied at the count of the last one may differ (the
    /// cut of a top list between equal counts is arbitrary).
    fn agrees_with(&self, other: &Answer) -> bool {
        match (self, other) {
            (Answer::Groups(a), Answer::Groups(b)) => {
                let counts = |groups: &[(String, u64)]| -> Vec<u64> {
                    groups.iter().map(|(_, count)| *count).collect()
                };
                let above_cut = |groups: &[(String, u64)]| {
                    let cut = groups.last().map(|(_, count)| *count).unwrap_or(0);
                    let mut kept: Vec<(String, u64)> = groups
                        .iter()
                        .filter(|(_, count)| *count > cut)
                        .cloned()
                        .collect();
                    kept.sort();
                    kept
                };
                counts(a) == counts(b) && above_cut(a) == above_cut(b)
            }
            _ => self == other,
        }
    }
}

fn query_set(corpus: &Corpus, dataset: &Dataset) -> Vec<Spec> {
    let (from, to) = dataset.range_ms();
    let search = |query: String| json!({ "query": query, "from": from, "to": to, "limit": PAGE });
    let rare = corpus.rare_term();
    let frequent = corpus.frequent_term(0.1);
    let phrase = corpus.common_phrase();
    let low = (dataset.records / 2) as i64;
    let high = low + (dataset.records / 10) as i64;
    vec![
        Spec {
            name: "selective term",
            route: "search",
            body: search(rare.clone()),
            raw: RawWork::Text(vec![rare]),
            target_p99_ms: Some(50.0),
        },
        Spec {
            name: "frequent term",
            route: "search",
            body: search(frequent.clone()),
            raw: RawWork::Text(vec![frequent]),
            target_p99_ms: None,
        },
        Spec {
            name: "phrase",
            route: "search",
            body: search(format!("\"{phrase}\"")),
            raw: RawWork::Text(phrase.split_whitespace().map(str::to_string).collect()),
            target_p99_ms: None,
        },
        Spec {
            name: "field + range",
            route: "search",
            body: search(format!("level:error AND seq:[{low} TO {high}]")),
            raw: RawWork::Range {
                word: Some(("level", "error")),
                range_field: "seq",
                range: (low, high),
            },
            target_p99_ms: None,
        },
        // One record, found by value: numbers have no terms, so this scans the
        // column of `seq` in every segment of the day.
        Spec {
            name: "number equals",
            route: "search",
            body: search(format!("seq:{}", low + 7)),
            raw: RawWork::Range {
                word: None,
                range_field: "seq",
                range: (low + 7, low + 7),
            },
            target_p99_ms: None,
        },
        Spec {
            name: "histogram over the day",
            route: "histogram",
            body: json!({ "query": "", "from": from, "to": to }),
            raw: RawWork::Histogram,
            target_p99_ms: Some(300.0),
        },
        Spec {
            name: "SQL group-by top 10",
            route: "query",
            body: json!({
                "query": format!(
                    "* | SELECT component, count(*) AS c GROUP BY component ORDER BY c DESC LIMIT {TOP}"
                ),
                "from": from,
                "to": to,
            }),
            raw: RawWork::TopValues("component"),
            target_p99_ms: Some(500.0),
        },
    ]
}

/// Times every query of the set on both sides.
async fn measure(
    api: &Api,
    raw: &Arc<BareIndexReader>,
    mut peer: Option<&mut ClickHousePeer>,
    corpus: &Corpus,
    dataset: &Dataset,
    args: &QueryScaleArgs,
) -> anyhow::Result<Vec<ScaleResult>> {
    let mut results = Vec::new();
    for spec in query_set(corpus, dataset) {
        // The warm-up also learns the histogram's interval, which the API chooses.
        let mut api_answer = None;
        let mut raw_answer = None;
        let mut peer_answer = None;
        for _ in 0..args.warmup.max(1) {
            let (_, answer) = api_run(api, &spec).await?;
            let (_, raw_result) = raw_run(raw, &spec, dataset, &answer).await?;
            if let Some(peer) = peer.as_deref_mut() {
                let request = peer_request(&spec, dataset, &answer);
                peer_answer = Some(Answer::from_json(&peer.ask(&request).await?.1)?);
            }
            api_answer = Some(answer);
            raw_answer = Some(raw_result);
        }
        let (Some(api_answer), Some(raw_answer)) = (api_answer, raw_answer) else {
            bail!("query `{}` was not run", spec.name);
        };
        let request = peer_request(&spec, dataset, &api_answer);
        let mut api_ms = Vec::with_capacity(args.runs);
        let mut raw_ms = Vec::with_capacity(args.runs);
        let mut peer_ms = Vec::with_capacity(args.runs);
        for _ in 0..args.runs {
            api_ms.push(api_run(api, &spec).await?.0);
            raw_ms.push(raw_run(raw, &spec, dataset, &api_answer).await?.0);
            if let Some(peer) = peer.as_deref_mut() {
                peer_ms.push(peer.ask(&request).await?.0);
            }
        }
        let peer_result = peer_answer.map(|answer| PeerResult {
            p50_ms: percentile(&mut peer_ms, 50.0),
            p99_ms: percentile(&mut peer_ms, 99.0),
            answer: answer.to_json(),
            same_answer: api_answer.agrees_with(&answer),
        });
        let same_answer = api_answer.agrees_with(&raw_answer);
        results.push(ScaleResult {
            name: spec.name,
            query: spec.body["query"].as_str().unwrap_or_default().to_string(),
            api_p50_ms: percentile(&mut api_ms, 50.0),
            api_p99_ms: percentile(&mut api_ms, 99.0),
            raw_p50_ms: percentile(&mut raw_ms, 50.0),
            raw_p99_ms: percentile(&mut raw_ms, 99.0),
            matches: api_answer.matches(),
            api_answer: api_answer.to_json(),
            raw_answer: raw_answer.to_json(),
            same_answer,
            difference: (!same_answer)
                .then(|| format!("API {api_answer:?}, raw engine {raw_answer:?}")),
            target_p99_ms: spec.target_p99_ms,
            peer: peer_result,
        });
    }
    Ok(results)
}

/// The ClickHouse peer's request for `spec` (see its script); the histogram asks for
/// the interval of the API's answer.
fn peer_request(spec: &Spec, dataset: &Dataset, api_answer: &Answer) -> Value {
    let (from_ms, to_ms) = dataset.range_ms();
    let mut request = match &spec.raw {
        RawWork::Text(words) => json!({ "kind": "text", "words": words, "page": PAGE }),
        RawWork::Range {
            word,
            range_field,
            range,
        } => json!({
            "kind": "range",
            "word": word.map(|(field, value)| [field, value]),
            "field": range_field,
            "range": [range.0, range.1],
            "page": PAGE,
        }),
        RawWork::Histogram => {
            let interval_ns = match api_answer {
                Answer::Buckets { interval_ns, .. } => *interval_ns,
                _ => 0,
            };
            json!({ "kind": "histogram", "interval_ns": interval_ns })
        }
        RawWork::TopValues(field) => json!({ "kind": "top", "field": field, "top": TOP }),
    };
    request["from_ms"] = json!(from_ms);
    request["to_ms"] = json!(to_ms);
    request
}

/// One API call: its latency in ms and its answer.
async fn api_run(api: &Api, spec: &Spec) -> anyhow::Result<(f64, Answer)> {
    let started = Instant::now();
    let answer = api
        .post(spec.route, &spec.body)
        .await
        .with_context(|| format!("query `{}` failed", spec.name))?;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    let reduced = match spec.raw {
        RawWork::Text(_) | RawWork::Range { .. } => Answer::Page {
            total: answer["total"]
                .as_u64()
                .context("no `total` in the search answer")?,
            hits: answer["hits"].as_array().map(Vec::len).unwrap_or(0),
        },
        RawWork::Histogram => Answer::Buckets {
            interval_ns: answer["interval_ms"]
                .as_i64()
                .context("no `interval_ms` in the histogram answer")?
                * 1_000_000,
            counts: answer["buckets"]
                .as_array()
                .context("no `buckets` in the histogram answer")?
                .iter()
                .filter_map(|bucket| bucket["count"].as_u64())
                .filter(|count| *count > 0)
                .collect(),
        },
        RawWork::TopValues(_) => Answer::Groups(
            answer["rows"]
                .as_array()
                .context("no `rows` in the query answer")?
                .iter()
                .map(|row| {
                    let key = match &row[0] {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    (key, row[1].as_u64().unwrap_or(0))
                })
                .collect(),
        ),
    };
    Ok((elapsed, reduced))
}

/// The same work on the raw engine, on a blocking thread: its latency in ms (of
/// the engine work alone) and its answer. The histogram uses the interval of the
/// API's answer.
async fn raw_run(
    raw: &Arc<BareIndexReader>,
    spec: &Spec,
    dataset: &Dataset,
    api_answer: &Answer,
) -> anyhow::Result<(f64, Answer)> {
    let raw = raw.clone();
    let work = spec.raw.clone();
    let (from_ns, to_ns) = dataset.range_ns();
    let interval_ns = match api_answer {
        Answer::Buckets { interval_ns, .. } => *interval_ns,
        _ => 0,
    };
    let name = spec.name;
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let answer = match &work {
            RawWork::Text(words) => {
                let words: Vec<&str> = words.iter().map(String::as_str).collect();
                let page = raw.search_text(&words, from_ns, to_ns, PAGE)?;
                Answer::Page {
                    total: page.total,
                    hits: page.fetched,
                }
            }
            RawWork::Range {
                word,
                range_field,
                range,
            } => {
                let page = raw.search_range(*word, range_field, *range, (from_ns, to_ns), PAGE)?;
                Answer::Page {
                    total: page.total,
                    hits: page.fetched,
                }
            }
            RawWork::Histogram => Answer::Buckets {
                interval_ns,
                counts: raw
                    .time_histogram(from_ns, to_ns, interval_ns)?
                    .into_iter()
                    .map(|(_, count)| count)
                    .collect(),
            },
            RawWork::TopValues(field) => {
                Answer::Groups(raw.top_values(field, from_ns, to_ns, TOP)?)
            }
        };
        anyhow::Ok((started.elapsed().as_secs_f64() * 1000.0, answer))
    })
    .await
    .with_context(|| format!("the raw engine panicked on `{name}`"))?
}

impl QueryScaleReport {
    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "records": self.records,
            "data_dir": self.data_dir.display().to_string(),
            "build_secs": self.build_secs,
            "segments": self.segments,
            "index_bytes": self.index_bytes,
            "runs": self.runs,
            "load_average_1m": { "before": self.load_average.0, "after": self.load_average.1 },
            "queries": self.queries.iter().map(|q| json!({
                "name": q.name,
                "query": q.query,
                "api_p50_ms": q.api_p50_ms,
                "api_p99_ms": q.api_p99_ms,
                "raw_p50_ms": q.raw_p50_ms,
                "raw_p99_ms": q.raw_p99_ms,
                "ratio_p50": ratio(q.api_p50_ms, q.raw_p50_ms),
                "ratio_p99": ratio(q.api_p99_ms, q.raw_p99_ms),
                "matches": q.matches,
                "api_answer": q.api_answer,
                "raw_answer": q.raw_answer,
                "same_answer": q.same_answer,
                "difference": q.difference,
                "target_p99_ms": q.target_p99_ms,
                "target_met": q.target_p99_ms.map(|target| q.api_p99_ms <= target),
                "clickhouse": q.peer.as_ref().map(|peer| json!({
                    "p50_ms": peer.p50_ms,
                    "p99_ms": peer.p99_ms,
                    "answer": peer.answer,
                    "same_answer": peer.same_answer,
                    "clickhouse_over_logpool_p50": ratio(peer.p50_ms, q.api_p50_ms),
                })),
            })).collect::<Vec<_>>(),
            "queue_bytes": self.queue_bytes,
            "build_secs_recorded": self.build_secs_recorded,
            "clickhouse": self.peer.as_ref().map(|peer| json!({
                "version": peer.version,
                "rows": peer.rows,
                "load_secs": peer.load_secs,
                "table_bytes": peer.table_bytes,
                "dir_bytes": peer.dir_bytes,
                "parts": peer.parts,
                "logpool_index_and_queue_over_table": (self.index_bytes + self.queue_bytes) as f64
                    / peer.table_bytes.max(1) as f64,
            })),
        })
    }

    /// The report as a Markdown table.
    pub fn to_table(&self) -> String {
        let load = |value: Option<f64>| value.map_or("?".to_string(), |v| format!("{v:.1}"));
        let mut out = format!(
            "{} records, {} segments, index {:.0} MB; {} timed runs per query and side; load average {} before, {} after{}\n\n",
            self.records,
            self.segments,
            self.index_bytes as f64 / 1e6,
            self.runs,
            load(self.load_average.0),
            load(self.load_average.1),
            self.build_secs
                .map(|secs| format!("; index built in this run in {secs:.0} s"))
                .unwrap_or_default(),
        );
        out.push_str(
            "| query | logpool p50 / p99 | raw tantivy p50 / p99 | ratio p50 / p99 | matches | same answer | target p99 |\n|---|---|---|---|---|---|---|\n",
        );
        for q in &self.queries {
            let target = match q.target_p99_ms {
                Some(target) if q.api_p99_ms <= target => format!("≤ {target:.0} ms: met"),
                Some(target) => format!("≤ {target:.0} ms: **missed**"),
                None => "—".to_string(),
            };
            out.push_str(&format!(
                "| {} `{}` | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {:.2}x / {:.2}x | {} | {} | {} |\n",
                q.name,
                // A pipe inside a Markdown table cell must be escaped.
                q.query.replace('|', "\\|"),
                q.api_p50_ms,
                q.api_p99_ms,
                q.raw_p50_ms,
                q.raw_p99_ms,
                ratio(q.api_p50_ms, q.raw_p50_ms),
                ratio(q.api_p99_ms, q.raw_p99_ms),
                q.matches,
                if q.same_answer { "yes" } else { "**no**" },
                target,
            ));
        }
        if let Some(peer) = &self.peer {
            out.push_str(&self.peer_table(peer));
        }
        for q in self.queries.iter().filter(|q| !q.same_answer) {
            out.push_str(&format!(
                "\n{}: {}\n",
                q.name,
                q.difference.as_deref().unwrap_or_default()
            ));
        }
        out
    }
}

impl QueryScaleReport {
    /// logpool (through its HTTP API) and ClickHouse (SQL through chdb, in process)
    /// side by side, and both engines' bytes.
    fn peer_table(&self, peer: &PeerTable) -> String {
        let mut out = format!(
            "\nClickHouse {} (chdb), same {} rows: `crates/bench/peer/clickhouse_peer.py`\n\n\
             | query | logpool p50 / p99 | ClickHouse p50 / p99 | ClickHouse / logpool p50 | same answer |\n|---|---|---|---|---|\n",
            peer.version, peer.rows
        );
        for q in &self.queries {
            let Some(theirs) = &q.peer else { continue };
            out.push_str(&format!(
                "| {} | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {:.2}x | {} |\n",
                q.name,
                q.api_p50_ms,
                q.api_p99_ms,
                theirs.p50_ms,
                theirs.p99_ms,
                ratio(theirs.p50_ms, q.api_p50_ms),
                if theirs.same_answer {
                    "yes".to_string()
                } else {
                    format!("**no**: {}", theirs.answer)
                },
            ));
        }
        let mb = |bytes: u64| bytes as f64 / 1e6;
        let secs = |value: Option<f64>| value.map_or("?".to_string(), |v| format!("{v:.0} s"));
        out.push_str(&format!(
            "\nbytes: logpool index {:.1} MB + queue {:.1} MB = {:.1} MB; ClickHouse table {:.1} MB ({} parts, directory {:.1} MB); logpool / ClickHouse {:.2}x\n\
             load: logpool {} (HTTP ingest until searchable), ClickHouse {:.0} s (INSERT from the NDJSON file, OPTIMIZE FINAL)\n",
            mb(self.index_bytes),
            mb(self.queue_bytes),
            mb(self.index_bytes + self.queue_bytes),
            mb(peer.table_bytes),
            peer.parts,
            mb(peer.dir_bytes),
            (self.index_bytes + self.queue_bytes) as f64 / peer.table_bytes.max(1) as f64,
            secs(self.build_secs_recorded),
            peer.load_secs,
        ));
        out
    }
}

fn ratio(api_ms: f64, raw_ms: f64) -> f64 {
    api_ms / raw_ms.max(1e-6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_names() {
        assert_eq!(day_name(0), "1970-01-01");
        assert_eq!(day_name(20_779), "2026-11-22");
        assert_eq!(day_name(11_016), "2000-02-29");
    }

    #[test]
    fn spacing_spreads_over_one_day_in_exact_steps() {
        assert_eq!(spacing_us(10_000_000), 8_640);
        assert_eq!(spacing_us(20_000), 4_320_000);
        for records in [1, 7, 20_000, 10_000_000, 1_000_000_000] {
            let spacing = spacing_us(records);
            assert!(spacing >= 1 && spacing * records as i64 <= DAY_US);
        }
    }

    #[test]
    fn group_answers_may_differ_only_in_ties_at_the_cut() {
        let groups = |pairs: &[(&str, u64)]| {
            Answer::Groups(pairs.iter().map(|(k, c)| (k.to_string(), *c)).collect())
        };
        let api = groups(&[("a", 9), ("b", 5), ("c", 2)]);
        assert!(api.agrees_with(&groups(&[("a", 9), ("b", 5), ("d", 2)])));
        assert!(!api.agrees_with(&groups(&[("a", 9), ("e", 5), ("c", 2)])));
        assert!(!api.agrees_with(&groups(&[("a", 9), ("b", 4), ("c", 2)])));
    }
}
