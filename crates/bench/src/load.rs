//! The load: concurrent PutDatas clients sending NDJSON batches of corpus records,
//! optionally paced to a rate, while a marker task measures ingest → searchable lag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use logpool_client::wire::search::SearchParams;
use logpool_client::{ClientError, Encoding, LogpoolClient};
use serde_json::json;

use super::corpus::Corpus;

/// Attempts per batch when the server asks to back off (429/503) or a connection fails.
const MAX_ATTEMPTS: u32 = 20;
/// Time between two marker records.
const MARKER_INTERVAL: Duration = Duration::from_millis(250);
/// Time between two searches for the outstanding markers.
const MARKER_POLL: Duration = Duration::from_millis(100);
/// Markers looked for per search (the oldest ones).
const MARKERS_PER_POLL: usize = 64;

/// Where the load goes.
#[derive(Debug, Clone)]
pub struct Target {
    /// A client of the server.
    pub client: LogpoolClient,
    /// Project.
    pub project: String,
    /// Pool.
    pub pool: String,
    /// Whether puts carry an `Idempotency-Key`, as every client of ours does.
    pub keyed: bool,
}

/// One phase of load.
#[derive(Debug, Clone, Copy)]
pub struct LoadPlan {
    /// Sequence number of the first record.
    pub first_seq: u64,
    /// Records to send.
    pub records: u64,
    /// Concurrent clients.
    pub clients: usize,
    /// Records per request.
    pub batch_records: usize,
    /// Records per second over all clients; as fast as accepted when absent.
    pub rate: Option<f64>,
    /// Event time of record 0, in microseconds.
    pub base_time_us: i64,
    /// Microseconds between the event times of two consecutive records.
    pub spacing_us: i64,
    /// Longest wait for the last marker to become searchable after the load.
    pub marker_timeout: Duration,
}

/// What a phase measured.
#[derive(Debug)]
pub struct LoadResult {
    /// Records accepted (corpus records only, markers apart).
    pub records: u64,
    /// Raw line bytes of those records.
    pub raw_bytes: u64,
    /// When the first request was sent.
    pub started: Instant,
    /// When the last request was answered.
    pub last_ack: Instant,
    /// Ingest → searchable lag of every marker found, in milliseconds.
    pub lags_ms: Vec<f64>,
    /// Markers sent (every one of them is a record in the pool).
    pub markers_sent: u64,
    /// Markers never seen within the timeout.
    pub markers_lost: u64,
}

/// Runs one phase: every batch is sent and acknowledged, and every marker is found
/// (or counted as lost).
///
/// # Errors
/// Fails when a batch is refused or retries run out.
pub async fn run(
    target: &Target,
    corpus: Arc<Corpus>,
    plan: LoadPlan,
) -> anyhow::Result<LoadResult> {
    let started = Instant::now();
    let batch = plan.batch_records.max(1) as u64;
    let batches = plan.records.div_ceil(batch);
    let load_done = Arc::new(AtomicBool::new(false));
    let markers = tokio::spawn(markers(target.clone(), plan, load_done.clone()));
    let senders: Vec<_> = (0..plan.clients.max(1) as u64)
        .map(|client_index| {
            let target = target.clone();
            let corpus = corpus.clone();
            tokio::spawn(async move {
                let mut raw_bytes = 0u64;
                let mut body = Vec::new();
                let mut batch_index = client_index;
                while batch_index < batches {
                    let first = batch_index * batch;
                    let last = (first + batch).min(plan.records);
                    if let Some(rate) = plan.rate {
                        let due = started + Duration::from_secs_f64(first as f64 / rate);
                        tokio::time::sleep_until(due.into()).await;
                    }
                    body.clear();
                    for offset in first..last {
                        raw_bytes += corpus.write_record_spaced(
                            plan.first_seq + offset,
                            plan.base_time_us,
                            plan.spacing_us,
                            &mut body,
                        ) as u64;
                    }
                    put(&target, body.clone()).await?;
                    batch_index += plan.clients.max(1) as u64;
                }
                anyhow::Ok((raw_bytes, Instant::now()))
            })
        })
        .collect();
    let mut raw_bytes = 0;
    let mut last_ack = started;
    let mut failure = None;
    for sender in senders {
        match sender.await.context("a load client panicked")? {
            Ok((bytes, done)) => {
                raw_bytes += bytes;
                last_ack = last_ack.max(done);
            }
            Err(error) => failure = Some(error),
        }
    }
    load_done.store(true, Ordering::SeqCst);
    let (lags_ms, markers_sent, markers_lost) =
        markers.await.context("the marker task panicked")??;
    if let Some(error) = failure {
        return Err(error);
    }
    Ok(LoadResult {
        records: plan.records,
        raw_bytes,
        started,
        last_ack,
        lags_ms,
        markers_sent,
        markers_lost,
    })
}

async fn put(target: &Target, body: Vec<u8>) -> anyhow::Result<()> {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=MAX_ATTEMPTS {
        let (project, pool, ndjson) = (&target.project, &target.pool, "application/x-ndjson");
        let result = if target.keyed {
            let body = body.clone();
            target
                .client
                .put_raw(project, pool, ndjson, Encoding::Identity, body, None)
                .await
        } else {
            let body = body.clone();
            target
                .client
                .put_raw_without_key(project, pool, ndjson, Encoding::Identity, body)
                .await
        };
        match result {
            Ok(_) => return Ok(()),
            Err(error) if error.is_retryable() && attempt < MAX_ATTEMPTS => {
                let wait = match &error {
                    ClientError::Http {
                        retry_after_secs: Some(secs),
                        ..
                    } => Duration::from_secs(*secs),
                    _ => delay,
                };
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(error) => bail!("put failed: {error}"),
        }
    }
    bail!("put failed after {MAX_ATTEMPTS} attempts")
}

/// While the load runs, sends a marker record every [`MARKER_INTERVAL`] and searches
/// for the outstanding ones every [`MARKER_POLL`]; a marker's lag runs from its 2xx
/// to the first search that finds it. Returns (lags, sent, lost).
async fn markers(
    target: Target,
    plan: LoadPlan,
    load_done: Arc<AtomicBool>,
) -> anyhow::Result<(Vec<f64>, u64, u64)> {
    // Unique per phase, one word for the tokenizer.
    let prefix = format!("lpmark{}x", plan.first_seq);
    let mut outstanding: Vec<(String, Instant)> = Vec::new();
    let mut lags = Vec::new();
    let mut sent = 0u64;
    let mut last_marker: Option<Instant> = None;
    let mut done_at: Option<Instant> = None;
    loop {
        let done = load_done.load(Ordering::SeqCst);
        if done && done_at.is_none() {
            done_at = Some(Instant::now());
        }
        // Every phase sends at least one marker, however short it is.
        if (!done || sent == 0) && last_marker.is_none_or(|at| at.elapsed() >= MARKER_INTERVAL) {
            let token = format!("{prefix}{sent}");
            let body = serde_json::to_vec(
                &json!({ "message": format!("benchmark marker {token}"), "marker": token }),
            )?;
            last_marker = Some(Instant::now());
            put(&target, body).await?;
            outstanding.push((token, Instant::now()));
            sent += 1;
        }
        if !outstanding.is_empty() {
            let oldest: Vec<&str> = outstanding
                .iter()
                .take(MARKERS_PER_POLL)
                .map(|(token, _)| token.as_str())
                .collect();
            let params = SearchParams {
                query: Some(format!("marker:({})", oldest.join(" OR "))),
                limit: Some(MARKERS_PER_POLL),
                ..SearchParams::default()
            };
            // A failed search is retried at the next poll; it only delays the figure.
            if let Ok(answer) = target
                .client
                .search(&target.project, &target.pool, &params)
                .await
            {
                let seen_at = Instant::now();
                let found: Vec<String> = answer
                    .hits
                    .iter()
                    .filter_map(|hit| hit.fields.get("marker")?.as_str().map(str::to_string))
                    .collect();
                outstanding.retain(|(token, acked)| {
                    let hit = found.iter().any(|f| f == token);
                    if hit {
                        lags.push(seen_at.duration_since(*acked).as_secs_f64() * 1000.0);
                    }
                    !hit
                });
            }
        }
        if let Some(at) = done_at {
            if outstanding.is_empty() || at.elapsed() >= plan.marker_timeout {
                return Ok((lags, sent, outstanding.len() as u64));
            }
        }
        tokio::time::sleep(MARKER_POLL).await;
    }
}
