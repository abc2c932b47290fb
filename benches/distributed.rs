//! Distributed-mode stage baselines, driven by `scripts/bench-distributed.sh`.
//!
//! `logpool bench --url` measures the five services end to end; this binary measures
//! what each stage could do on its engine alone, with the same records, batches and
//! concurrency, and prints the ratios:
//!
//! - `engines`:
//!   - the broker alone: the same PutDatas batches, read, split per shard and
//!     encoded as put-datas does before the clock, produced straight through the
//!     Pulsar queue engine by as many concurrent producers as the harness has
//!     clients (storage of ready batches: no per-record work at all);
//!   - the broker fed the same records by its own client: one message per record,
//!     the Pulsar client's batching and zstd compression, as a log shipper writing
//!     to Pulsar would;
//!   - put-datas alone: the same NDJSON requests sent straight to put-datas (no
//!     front), while the script keeps loghub paused so that no indexing competes;
//!   - the index alone: the same records written straight through the
//!     Elasticsearch `LogIndex` in loghub's write sizes, then committed;
//!   - the harness's queries sent straight to the index engine;
//!
//!   compared with the harness's JSON report. The three ingest runs are short, so
//!   they alternate for `--rounds` rounds and the median is kept.
//! - `relay`: the Pulsar framing relay the test broker needs (see
//!   `logpool_engines::queue::pulsar::test_relay`) as a process, so that services
//!   and the broker-alone run both go through it.
//! - `front`: one HTTP address in front of control-api, put-datas and search-api
//!   (path-routed by each service's own route list), because the harness talks to a
//!   single URL. It buffers each request and answer whole.
//!
//! `cargo bench --features distributed --bench distributed -- <mode> [options]`.

use logpool_core::pool_id::PoolId;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use logpool_api::auth::RouteSpec;
use logpool_bench::corpus::Corpus;
use logpool_client::{Encoding, LogpoolClient};
use logpool_core::batch::{decode_batch, BATCH_FORMAT_VERSION};
use logpool_core::doc_id::DocIdentity;
use logpool_core::ingest::encode_ndjson_body;
use logpool_core::limits::IngestLimits;
use logpool_core::query::{parse_query, DefaultOperator};
use logpool_core::routing::PoolRoute;
use logpool_engines::config::{Config, IndexConfig, QueueConfig};
use logpool_engines::index::elasticsearch::ElasticsearchIndex;
use logpool_engines::index::{HistogramRequest, IndexDoc, LogIndex, SearchRequest};
use logpool_engines::queue::pulsar::test_relay::TestRelay;
use logpool_engines::queue::pulsar::PulsarQueue;
use logpool_engines::queue::{BatchProperties, Queue};
use logpool_put_datas::sharding;
use serde_json::{json, Value};

/// The harness's PutDatas content type.
const NDJSON: &str = "application/x-ndjson";

/// Largest request or answer the front buffers (PutDatas' body limit is lower).
const FRONT_MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    mode: Mode,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Runs the Pulsar framing relay in front of `--broker`; prints its URL.
    Relay {
        #[arg(long)]
        broker: String,
        /// Address to listen on (`host:port`; port 0: any free one).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
    /// Serves one address in front of the three HTTP services.
    Front {
        #[arg(long)]
        listen: String,
        #[arg(long)]
        control: String,
        #[arg(long)]
        put: String,
        #[arg(long)]
        search: String,
    },
    /// Measures the broker and the index alone and compares with the harness report.
    Engines(EngineArgs),
}

#[derive(Debug, Clone, clap::Args)]
struct EngineArgs {
    /// The services' configuration (its Pulsar and Elasticsearch settings are used).
    #[arg(long)]
    config: PathBuf,
    /// The harness's `--json` report, to compare with.
    #[arg(long)]
    harness: PathBuf,
    /// Index name prefix of this run (apart from the services').
    #[arg(long)]
    index_prefix: String,
    /// Records (as the harness's `--records`).
    #[arg(long, default_value_t = 200_000)]
    records: u64,
    /// Concurrent producers (as the harness's `--clients`).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Records per request (as the harness's `--batch-records`).
    #[arg(long, default_value_t = 1000)]
    batch_records: usize,
    /// Shards of the pool (the harness's pool has the default).
    #[arg(long, default_value_t = 2)]
    shards: u32,
    /// Concurrent index writers for the index-alone run (loghub uses one).
    #[arg(long, default_value_t = 1)]
    index_writers: usize,
    /// Rounds of the ingest runs alone (broker, broker fed records, put-datas),
    /// alternated; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Timed runs of each query.
    #[arg(long, default_value_t = 30)]
    query_runs: usize,
    /// Directory of `*.log` files (default: the repository's Loghub samples).
    #[arg(long, default_value = "tests/data/loghub-2k")]
    logs: PathBuf,
    /// Processes whose CPU time to report per stage, as `name=pid` (the engine
    /// servers, the relay, put-datas); this process is always reported.
    #[arg(long, value_delimiter = ',')]
    watch: Vec<String>,
    /// put-datas' own address: with `--control-url` and `--api-key`, the same
    /// requests are also sent straight to it (no front) for the put-datas-alone run.
    #[arg(long)]
    put_url: Option<String>,
    /// control-api's address, where the put-datas-alone run creates its pool.
    #[arg(long)]
    control_url: Option<String>,
    /// An operator key for both services.
    #[arg(long, env = "LOGPOOL_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

/// CPU seconds (user + system) of a process so far, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name, which may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // The kernel's USER_HZ is 100 on every Linux architecture this runs on.
    Some(ticks / 100.0)
}

/// CPU seconds of the watched processes over one stage.
struct CpuWatch {
    processes: Vec<(String, String, Option<f64>)>,
}

impl CpuWatch {
    fn start(watch: &[String]) -> CpuWatch {
        let mut processes: Vec<(String, String)> = watch
            .iter()
            .filter_map(|entry| entry.split_once('='))
            .map(|(name, pid)| (name.to_string(), pid.to_string()))
            .collect();
        processes.push(("this process".to_string(), "self".to_string()));
        CpuWatch {
            processes: processes
                .into_iter()
                .map(|(name, pid)| {
                    let before = cpu_seconds(&pid);
                    (name, pid, before)
                })
                .collect(),
        }
    }

    /// "name 12.3 s (61 %), ..." over `elapsed` seconds.
    fn finish(&self, elapsed: f64) -> String {
        self.processes
            .iter()
            .filter_map(|(name, pid, before)| {
                let used = cpu_seconds(pid)? - (*before)?;
                Some(format!(
                    "{name} {used:.1} s ({:.0} %)",
                    100.0 * used / elapsed.max(1e-9)
                ))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.mode {
        Mode::Relay { broker, listen } => relay(&broker, &listen).await,
        Mode::Front {
            listen,
            control,
            put,
            search,
        } => front(&listen, control, put, search).await,
        Mode::Engines(args) => engines(args).await,
    }
}

/// Resolves on SIGTERM or Ctrl-C: the end of the long-running modes.
async fn terminated() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn relay(broker: &str, listen: &str) -> anyhow::Result<()> {
    let relay = TestRelay::start_on(broker, listen).await?;
    println!("{}", relay.url());
    terminated().await;
    drop(relay);
    Ok(())
}

/// The front: each path template of put-datas and search-api goes to that service,
/// everything else to control-api.
struct Front {
    http: reqwest::Client,
    routes: Vec<(Method, Vec<String>, String)>,
    control: String,
}

impl Front {
    fn upstream(&self, method: &Method, path: &str) -> &str {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.routes
            .iter()
            .find(|(m, template, _)| {
                m == method
                    && template.len() == segments.len()
                    && template
                        .iter()
                        .zip(&segments)
                        .all(|(t, s)| t.starts_with('{') || t == s)
            })
            .map_or(self.control.as_str(), |(_, _, upstream)| upstream.as_str())
    }
}

async fn front(listen: &str, control: String, put: String, search: String) -> anyhow::Result<()> {
    let template = |spec: &RouteSpec| -> Vec<String> {
        spec.path
            .trim_matches('/')
            .split('/')
            .map(str::to_string)
            .collect()
    };
    let mut routes = Vec::new();
    for (specs, upstream) in [
        (logpool_put_datas::routes().specs().to_vec(), &put),
        (logpool_search_api::routes().specs().to_vec(), &search),
    ] {
        for spec in specs {
            routes.push((spec.method.clone(), template(&spec), upstream.clone()));
        }
    }
    let state = Arc::new(Front {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()?,
        routes,
        control,
    });
    let app = axum::Router::new().fallback(forward).with_state(state);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(terminated())
        .await?;
    Ok(())
}

async fn forward(State(front): State<Arc<Front>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let upstream = front.upstream(&parts.method, parts.uri.path());
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let body = match axum::body::to_bytes(body, FRONT_MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    };
    let mut outgoing = front
        .http
        .request(parts.method.clone(), format!("{upstream}{path}"))
        .body(body);
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(error) => return (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let body = match answer.bytes().await {
        Ok(body) => body,
        Err(error) => return (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

/// One PutDatas request as put-datas would produce it: (shard index, record count,
/// encoded batch) per shard.
type EncodedRequest = Vec<(usize, u32, Bytes)>;

/// The harness's requests: each NDJSON body as sent, and as put-datas encodes it.
struct Requests {
    bodies: Vec<Vec<u8>>,
    encoded: Vec<EncodedRequest>,
}

fn now_us() -> anyhow::Result<i64> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_micros() as i64)
}

/// The harness's records (same generator, sequence numbers and stamps scheme), cut
/// into requests and encoded per shard.
fn build_requests(
    args: &EngineArgs,
    corpus: &Corpus,
    base_time_us: i64,
) -> anyhow::Result<(Requests, RequestWork)> {
    let mut work = RequestWork::default();
    let limits = IngestLimits::default();
    let mut requests = Vec::new();
    let mut bodies = Vec::new();
    let mut seq = 0u64;
    while seq < args.records {
        let mut body = Vec::new();
        let end = (seq + args.batch_records as u64).min(args.records);
        for s in seq..end {
            corpus.write_record(s, base_time_us, &mut body);
        }
        let started = Instant::now();
        let records = encode_ndjson_body(&body, base_time_us * 1000, &limits)
            .map_err(|e| anyhow::anyhow!("generated records do not parse: {e}"))?;
        work.parse += started.elapsed();
        let started = Instant::now();
        let plan = sharding::plan(records.len(), args.shards as usize, None, requests.len());
        let mut batches = Vec::with_capacity(plan.len());
        for (shard, run) in plan {
            let count = run.len() as u32;
            let payload = records.encode_run(run).context("cannot encode a batch")?;
            batches.push((shard, count, Bytes::from(payload)));
        }
        work.encode += started.elapsed();
        requests.push(batches);
        bodies.push(body);
        seq = end;
    }
    let requests = Requests {
        bodies,
        encoded: requests,
    };
    Ok((requests, work))
}

/// Time put-datas' own per-request work took here, on one thread.
#[derive(Debug, Default)]
struct RequestWork {
    /// Reading (and validating) the NDJSON lines into batch JSON.
    parse: Duration,
    /// Cutting the runs per shard and compressing them.
    encode: Duration,
}

fn pool_route(pool_id: PoolId, project: &str, shards: u32) -> PoolRoute {
    PoolRoute {
        pool_id,
        tenant: "benchengines".to_string(),
        project: project.to_string(),
        name: "loghub".to_string(),
        partitions: (0..shards).collect(),
        retention_days: 30,
        field_hints: Default::default(),
        event_window: Default::default(),
        learned_types: Default::default(),
    }
}

/// Produces every request's batches with `clients` concurrent producers (a request's
/// shard batches concurrently, as put-datas does); returns records/s.
async fn broker_alone(
    queue: Arc<PulsarQueue>,
    route: &PoolRoute,
    requests: Arc<Vec<EncodedRequest>>,
    clients: usize,
) -> anyhow::Result<f64> {
    queue.prepare_shards(&route.shard_addrs()).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (queue, requests, next, route) =
            (queue.clone(), requests.clone(), next.clone(), route.clone());
        tasks.push(tokio::spawn(async move {
            let mut records = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(request) = requests.get(i) else {
                    return Ok::<u64, anyhow::Error>(records);
                };
                let produces = request.iter().map(|(shard, count, payload)| {
                    let queue = queue.clone();
                    let shard = route.shard_addr(*shard);
                    let properties = BatchProperties {
                        pool_id: route.pool_id,
                        record_count: *count,
                        format_version: BATCH_FORMAT_VERSION,
                    };
                    let payload = payload.clone();
                    async move {
                        let shard = shard.context("shard outside the pool")?;
                        let count = u64::from(properties.record_count);
                        queue.produce(&shard, properties, payload).await?;
                        Ok::<u64, anyhow::Error>(count)
                    }
                });
                for produced in futures::future::try_join_all(produces).await? {
                    records += produced;
                }
            }
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.context("a producer panicked")??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Feeds every request's records to the broker through its own client, one message
/// per record, with the client's batching (a batch per shard run, flushed at the end
/// of each request, as put-datas answers only once the broker has acknowledged) and
/// zstd compression: what a log shipper writing to Pulsar does. `clients` concurrent
/// producers, records cut across the shards as put-datas cuts them. Returns records/s.
async fn broker_fed_records(
    queue: &PulsarQueue,
    route: &PoolRoute,
    bodies: Arc<Vec<Vec<u8>>>,
    records: u64,
    batch_records: usize,
    clients: usize,
) -> anyhow::Result<f64> {
    queue.prepare_shards(&route.shard_addrs()).await?;
    let client = pulsar::Pulsar::builder(queue.config().url.clone(), pulsar::TokioExecutor)
        .build()
        .await
        .context("cannot connect to the broker")?;
    let topics: Vec<String> = route
        .shard_addrs()
        .iter()
        .map(|shard| queue.topic(shard))
        .collect();
    let options = pulsar::ProducerOptions {
        // No shard run is longer than a request.
        batch_size: Some(batch_records as u32),
        batch_byte_size: Some(usize::MAX),
        compression: Some(pulsar::compression::Compression::Zstd(
            pulsar::compression::CompressionZstd { level: 1 },
        )),
        ..pulsar::ProducerOptions::default()
    };
    // Producers are made before the clock, as a shipper keeps them open.
    let mut producers = Vec::new();
    for _ in 0..clients {
        let mut per_shard = Vec::new();
        for topic in &topics {
            per_shard.push(
                client
                    .producer()
                    .with_topic(topic)
                    .with_options(options.clone())
                    .build()
                    .await
                    .context("cannot create a producer")?,
            );
        }
        producers.push(per_shard);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (client_index, mut per_shard) in producers.into_iter().enumerate() {
        let (bodies, next) = (bodies.clone(), next.clone());
        let shards = per_shard.len();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return Ok::<_, anyhow::Error>(per_shard);
                };
                let lines: Vec<&[u8]> = body
                    .split(|&b| b == b'\n')
                    .filter(|line| !line.is_empty())
                    .collect();
                let mut receipts = Vec::with_capacity(lines.len());
                for (shard, run) in sharding::plan(lines.len(), shards, None, i + client_index) {
                    for line in &lines[run] {
                        let message = pulsar::producer::Message {
                            payload: line.to_vec(),
                            ..Default::default()
                        };
                        receipts.push(
                            per_shard[shard]
                                .send_non_blocking(message)
                                .await
                                .context("cannot send")?,
                        );
                    }
                }
                for producer in &mut per_shard {
                    producer
                        .send_batch()
                        .await
                        .context("cannot flush a batch")?;
                }
                for receipt in receipts {
                    receipt.await.context("the broker did not acknowledge")?;
                }
            }
        }));
    }
    let mut idle = Vec::new();
    for task in tasks {
        idle.push(task.await.context("a producer panicked")??);
    }
    let rate = records as f64 / started.elapsed().as_secs_f64();
    // Every batch was acknowledged: closing is not part of the measured work.
    for producer in idle.iter_mut().flatten() {
        producer.close().await.context("cannot close a producer")?;
    }
    Ok(rate)
}

/// Sends every request's NDJSON body straight to put-datas (no front) with `clients`
/// concurrent clients, into a pool of its own; returns records/s.
async fn put_datas_alone(
    put: &LogpoolClient,
    control: &LogpoolClient,
    project: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    records: u64,
    clients: usize,
) -> anyhow::Result<f64> {
    control
        .create_project(project)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create project {project}: {e}"))?;
    control
        .create_pool(project, &json!({ "name": "loghub" }))
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the pool: {e}"))?;
    // One request before the clock, so that put-datas has looked up the new pool.
    let first = bodies.first().context("no requests")?;
    let warm_up: Vec<u8> = first
        .split_inclusive(|&b| b == b'\n')
        .next()
        .unwrap_or_default()
        .to_vec();
    put.put_raw(project, "loghub", NDJSON, Encoding::Identity, warm_up, None)
        .await
        .map_err(|e| anyhow::anyhow!("put-datas refused the first request: {e}"))?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (put, bodies, next, project) = (
            put.clone(),
            bodies.clone(),
            next.clone(),
            project.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return Ok::<(), anyhow::Error>(());
                };
                put.put_raw(
                    &project,
                    "loghub",
                    NDJSON,
                    Encoding::Identity,
                    body.clone(),
                    None,
                )
                .await
                .map_err(|e| anyhow::anyhow!("put-datas refused a request: {e}"))?;
            }
        }));
    }
    for task in tasks {
        task.await.context("a client panicked")??;
    }
    Ok(records as f64 / started.elapsed().as_secs_f64())
}

/// The documents of every batch, grouped as loghub writes them (one write per
/// `receive_batch_messages` messages). Decoding is loghub's work, not the engine's.
fn loghub_writes(
    route: &PoolRoute,
    requests: &[EncodedRequest],
    messages_per_write: usize,
) -> anyhow::Result<Vec<Vec<IndexDoc>>> {
    let mut writes: Vec<Vec<IndexDoc>> = Vec::new();
    let mut current = Vec::new();
    let mut messages = 0;
    let mut position = 0u64;
    for request in requests {
        for (shard, _, payload) in request {
            let records = decode_batch(payload).context("cannot decode a batch")?;
            current.extend(records.into_iter().enumerate().map(|(i, record)| IndexDoc {
                identity: DocIdentity {
                    pool_id: route.pool_id,
                    partition: *shard as u32,
                    position,
                    index_in_batch: i as u32,
                },
                shard: *shard as u32,
                record,
            }));
            position += 1;
            messages += 1;
            if messages == messages_per_write {
                writes.push(std::mem::take(&mut current));
                messages = 0;
            }
        }
    }
    if !current.is_empty() {
        writes.push(current);
    }
    Ok(writes)
}

/// Writes the documents through the index engine with `writers` concurrent writers,
/// then commits; returns records/s until the commit returned.
async fn index_alone(
    index: Arc<ElasticsearchIndex>,
    route: &PoolRoute,
    writes: Vec<Vec<IndexDoc>>,
    writers: usize,
) -> anyhow::Result<f64> {
    index.ensure_pool(route).await?;
    let total: usize = writes.iter().map(Vec::len).sum();
    let writes = Arc::new(std::sync::Mutex::new(writes.into_iter()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers.max(1) {
        let (index, writes, route) = (index.clone(), writes.clone(), route.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let next = writes.lock().map(|mut w| w.next()).ok().flatten();
                let Some(docs) = next else {
                    return Ok::<(), anyhow::Error>(());
                };
                let report = index.write(&route, docs, false).await?;
                if !report.rejected.is_empty() {
                    bail!(
                        "the index refused {} documents: {}",
                        report.rejected.len(),
                        report.rejected[0].reason
                    );
                }
            }
        }));
    }
    for task in tasks {
        task.await.context("an index writer panicked")??;
    }
    index.commit().await?;
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// The harness's queries sent straight to the index engine: (name, p50 ms, p99 ms,
/// matches).
async fn queries_alone(
    index: &ElasticsearchIndex,
    route: &PoolRoute,
    harness: &Value,
    range_ns: (i64, i64),
    max_buckets: i64,
    runs: usize,
) -> anyhow::Result<Vec<(String, f64, f64, u64)>> {
    let mut results = Vec::new();
    for spec in harness["queries"].as_array().into_iter().flatten() {
        let name = spec["name"].as_str().unwrap_or_default().to_string();
        let text = spec["query"].as_str().unwrap_or_default();
        let query = parse_query(text, DefaultOperator::And)
            .map_err(|e| anyhow::anyhow!("query `{text}`: {e}"))?;
        let mut latencies = Vec::new();
        let mut matches = 0;
        for run in 0..=runs.max(1) {
            let started = Instant::now();
            matches = if name == "histogram" {
                let request = HistogramRequest {
                    query: query.clone(),
                    from_ns: range_ns.0,
                    to_ns: range_ns.1,
                    // The interval search-api picks for the same span.
                    interval_ns: logpool_search_api::interval::auto_interval(
                        range_ns.1 - range_ns.0,
                        max_buckets,
                    ),
                };
                index
                    .histogram(route, &request)
                    .await?
                    .iter()
                    .map(|b| b.count)
                    .sum()
            } else {
                let request = SearchRequest {
                    query: query.clone(),
                    from_ns: range_ns.0,
                    to_ns: range_ns.1,
                    limit: 100,
                    after: None,
                    order: logpool_engines::index::SortOrder::Desc,
                    memory: logpool_core::memory::RequestMemory::unlimited(),
                };
                index.search(route, &request).await?.total
            };
            if run > 0 {
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            }
        }
        latencies.sort_by(f64::total_cmp);
        let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
        results.push((name, at(0.5), at(0.99), matches));
    }
    Ok(results)
}

/// The median of the measured rates (0 when there are none).
fn median(rates: &[f64]) -> f64 {
    let mut sorted = rates.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// "a, b, c" of a list of rates.
fn rounds_list(rates: &[f64]) -> String {
    rates
        .iter()
        .map(|rate| format!("{rate:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn engines(args: EngineArgs) -> anyhow::Result<()> {
    let harness: Value = serde_json::from_slice(
        &std::fs::read(&args.harness)
            .with_context(|| format!("cannot read {}", args.harness.display()))?,
    )
    .context("the harness report is not JSON")?;
    let config = Config::load(Some(&args.config), &HashMap::new())?;
    let (QueueConfig::Pulsar(queue_config), IndexConfig::Elasticsearch(index_config)) =
        (config.queue.clone(), config.index.clone())
    else {
        bail!("the configuration must use the Pulsar queue and the Elasticsearch index");
    };
    let corpus = Corpus::load(&args.logs)?;
    let now = now_us()?;
    let base_time_us = now - args.records as i64;
    let (requests, work) = build_requests(&args, &corpus, base_time_us)?;
    let bodies = Arc::new(requests.bodies);
    let requests = Arc::new(requests.encoded);
    let run_id = now / 1000;

    // The ingest runs are short (under a second each at the default sizes), so each
    // is repeated, alternating, and the median kept.
    let queue = Arc::new(PulsarQueue::connect(queue_config).await?);
    let put_clients = match (&args.put_url, &args.control_url, &args.api_key) {
        (Some(put_url), Some(control_url), Some(key)) => Some((
            LogpoolClient::new(put_url)?.with_api_key(key.clone()),
            LogpoolClient::new(control_url)?.with_api_key(key.clone()),
        )),
        _ => None,
    };
    let (mut broker_rates, mut fed_rates, mut put_rates) = (Vec::new(), Vec::new(), Vec::new());
    let mut ingest_cpu = Vec::new();
    for round in 1..=args.rounds.max(1) {
        eprintln!("round {round}: broker alone, {} requests", requests.len());
        let route = pool_route(
            PoolId::new(run_id),
            &format!("brokeralone{run_id}r{round}"),
            args.shards,
        );
        let (watch, started) = (CpuWatch::start(&args.watch), Instant::now());
        broker_rates
            .push(broker_alone(queue.clone(), &route, requests.clone(), args.clients).await?);
        let cpu = watch.finish(started.elapsed().as_secs_f64());
        ingest_cpu.push(format!("round {round}, broker alone: {cpu}"));
        queue.drop_project(&route.tenant, &route.project).await?;

        eprintln!("round {round}: broker fed the records by its own client");
        let route = pool_route(
            PoolId::new(run_id),
            &format!("brokerfed{run_id}r{round}"),
            args.shards,
        );
        let (watch, started) = (CpuWatch::start(&args.watch), Instant::now());
        fed_rates.push(
            broker_fed_records(
                &queue,
                &route,
                bodies.clone(),
                args.records,
                args.batch_records,
                args.clients,
            )
            .await?,
        );
        let cpu = watch.finish(started.elapsed().as_secs_f64());
        ingest_cpu.push(format!("round {round}, broker fed records: {cpu}"));
        queue.drop_project(&route.tenant, &route.project).await?;

        if let Some((put, control)) = &put_clients {
            eprintln!("round {round}: put-datas alone");
            let (watch, started) = (CpuWatch::start(&args.watch), Instant::now());
            put_rates.push(
                put_datas_alone(
                    put,
                    control,
                    &format!("putalone{run_id}r{round}"),
                    bodies.clone(),
                    args.records,
                    args.clients,
                )
                .await?,
            );
            let cpu = watch.finish(started.elapsed().as_secs_f64());
            ingest_cpu.push(format!("round {round}, put-datas alone: {cpu}"));
        }
    }
    queue.shutdown().await?;
    let (broker_rate, fed_rate) = (median(&broker_rates), median(&fed_rates));
    let put_rate = (!put_rates.is_empty()).then(|| median(&put_rates));

    eprintln!("index alone: {} writer(s)", args.index_writers);
    let index = Arc::new(ElasticsearchIndex::connect(
        logpool_engines::index::elasticsearch::ElasticsearchIndexConfig {
            index_prefix: args.index_prefix.clone(),
            ..index_config
        },
    )?);
    let index_route = pool_route(
        PoolId::new(run_id),
        &format!("indexalone{run_id}"),
        args.shards,
    );
    let writes = loghub_writes(
        &index_route,
        &requests,
        config.loghub.receive_batch_messages,
    )?;
    let (watch, started) = (CpuWatch::start(&args.watch), Instant::now());
    let index_rate = index_alone(index.clone(), &index_route, writes, args.index_writers).await?;
    let index_cpu = watch.finish(started.elapsed().as_secs_f64());

    eprintln!("queries alone");
    let range_ns = (
        (base_time_us / 1000 - 1) * 1_000_000,
        (now / 1000 + 60_000) * 1_000_000,
    );
    let queries = queries_alone(
        &index,
        &index_route,
        &harness,
        range_ns,
        config.search.max_histogram_buckets,
        args.query_runs,
    )
    .await?;
    index.drop_pool(index_route.pool_id).await?;

    let accepted = harness["ingest"]["accepted_records_per_s"]
        .as_f64()
        .unwrap_or(0.0);
    let indexed = harness["ingest"]["indexed_records_per_s"]
        .as_f64()
        .unwrap_or(0.0);
    println!("| stage | logpool (services) | engine alone | engine / logpool |");
    println!("|---|---|---|---|");
    println!(
        "| ingest: put-datas accepted vs broker produce (records/s) | {accepted:.0} | {broker_rate:.0} | {:.2}x |",
        broker_rate / accepted.max(1e-9)
    );
    println!(
        "| index: loghub indexed vs `LogIndex` write + commit, {} writer(s) (records/s) | {indexed:.0} | {index_rate:.0} | {:.2}x |",
        args.index_writers,
        index_rate / indexed.max(1e-9)
    );
    println!(
        "| ingest: put-datas accepted vs the broker fed the records by its own client (records/s) | {accepted:.0} | {fed_rate:.0} | {:.2}x |",
        fed_rate / accepted.max(1e-9)
    );
    if let Some(put_rate) = put_rate {
        println!(
            "| ingest, each alone: put-datas accepted (same requests, no front, no indexing) vs broker produce (records/s) | {put_rate:.0} | {broker_rate:.0} | {:.2}x |",
            broker_rate / put_rate.max(1e-9)
        );
        println!(
            "| ingest, each alone: put-datas accepted vs the broker fed the records by its own client (records/s) | {put_rate:.0} | {fed_rate:.0} | {:.2}x |",
            fed_rate / put_rate.max(1e-9)
        );
    }
    let per_record_us = |d: Duration| d.as_secs_f64() * 1e6 / args.records.max(1) as f64;
    let (parse_us, encode_us) = (per_record_us(work.parse), per_record_us(work.encode));
    println!(
        "| put-datas' parse + encode alone, one thread (records/s) | {accepted:.0} | {:.0} ({parse_us:.2} µs reading lines into batch JSON + {encode_us:.2} µs compressing per record) | {:.2}x |",
        1e6 / (parse_us + encode_us).max(1e-9),
        1e6 / (parse_us + encode_us).max(1e-9) / accepted.max(1e-9)
    );
    let mut query_json = Vec::new();
    for (spec, (name, p50, p99, matches)) in harness["queries"]
        .as_array()
        .into_iter()
        .flatten()
        .zip(&queries)
    {
        let ours = spec["p50_ms"].as_f64().unwrap_or(0.0);
        println!(
            "| query `{name}`: search-api vs index engine, p50 ms (p99) | {ours:.1} ({:.1}) | {p50:.1} ({p99:.1}) | {:.2}x |",
            spec["p99_ms"].as_f64().unwrap_or(0.0),
            ours / p50.max(1e-9)
        );
        query_json.push(json!({
            "name": name, "p50_ms": p50, "p99_ms": p99, "matches": matches,
            "search_api_p50_ms": ours, "search_api_matches": spec["matches"],
        }));
    }
    println!();
    println!(
        "Ingest runs alone, records/s of each round (the table has the median): broker {}; broker fed records {}; put-datas {}",
        rounds_list(&broker_rates),
        rounds_list(&fed_rates),
        rounds_list(&put_rates)
    );
    for line in &ingest_cpu {
        println!("CPU during {line}");
    }
    println!("CPU during the index-alone run: {index_cpu}");
    let summary = json!({
        "broker_records_per_s": broker_rate,
        "put_datas_accepted_records_per_s": accepted,
        "broker_fed_records_per_s": fed_rate,
        "put_datas_alone_records_per_s": put_rate,
        "rounds": { "broker": broker_rates, "broker_fed": fed_rates, "put_datas_alone": put_rates },
        "index_records_per_s": index_rate,
        "index_writers": args.index_writers,
        "parse_us_per_record": parse_us,
        "encode_us_per_record": encode_us,
        "loghub_indexed_records_per_s": indexed,
        "queries": query_json,
    });
    eprintln!("{summary}");
    Ok(())
}
