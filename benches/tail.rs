//! Live tail benchmark: does a tail, or a stalled tail client, slow ingestion?
//! Run with `cargo bench --bench tail`.
//!
//! One standalone server, one pool with 4 shards, PutDatas over HTTP (8 clients,
//! 1,000-record batches). Rounds alternate between three conditions on the same
//! pool, so machine noise spreads over all of them:
//!
//! - no tail (the baseline);
//! - a tail whose client reads every frame;
//! - a tail whose client connected and then stopped reading (its socket is full,
//!   so the server drops records for it and announces them in `dropped` frames).
//!
//! Every measured round follows an unmeasured one in the same condition (which fills
//! the stalled client's socket).
//!
//! Each round starts once LogHub has indexed everything put before, so no round
//! inherits another's indexing backlog. The figure to compare is the ratio of each
//! tail condition to the baseline (median of the rounds); 1.00 means the tail costs
//! ingestion nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use logpool_e2e::{loghub_lines, wait_for_count, TestServer, ADMIN_KEY, LOGHUB_SYSTEMS};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

// A multiple of CLIENTS * BATCH, so that every round puts exactly this many.
const RECORDS_PER_ROUND: usize = 96_000;
const BATCH: usize = 1_000;
const CLIENTS: usize = 8;
const ROUNDS: usize = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    /// No tail open.
    Baseline,
    /// A tail whose client reads every frame.
    ReadingClient,
    /// A tail whose client stopped reading.
    StalledClient,
}

fn records(lines: &[String], count: usize, offset: usize) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let n = offset + i;
            let level = ["info", "warn", "error"][n % 3];
            json!({ "message": lines[n % lines.len()], "n": n, "level": level })
        })
        .collect()
}

/// The batches of one round, per client, numbered from `offset`.
fn round_batches(lines: &[String], offset: usize) -> Vec<Vec<Vec<Value>>> {
    let per_client = RECORDS_PER_ROUND / CLIENTS;
    (0..CLIENTS)
        .map(|c| {
            (0..per_client / BATCH)
                .map(|b| records(lines, BATCH, offset + c * per_client + b * BATCH))
                .collect()
        })
        .collect()
}

/// Puts one round of records and returns records per second.
async fn ingest_round(server: &TestServer, batches: &[Vec<Vec<Value>>]) -> f64 {
    let started = Instant::now();
    let tasks: Vec<_> = batches
        .iter()
        .cloned()
        .map(|client_batches| {
            let client = server.client.clone();
            tokio::spawn(async move {
                for batch in client_batches {
                    client
                        .put_records("bench", "tailed", &batch)
                        .await
                        .expect("put");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("client");
    }
    RECORDS_PER_ROUND as f64 / started.elapsed().as_secs_f64()
}

/// What a reading tail client received during one round.
#[derive(Debug, Default)]
struct TailCounts {
    records: AtomicU64,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let lines: Vec<String> = LOGHUB_SYSTEMS
        .iter()
        .flat_map(|system| loghub_lines(system))
        .collect();
    let server = TestServer::start_with(|config| {
        config.loghub.commit_interval_ms = 1000;
        config.tail.idle_timeout_secs = 0;
    })
    .await
    .expect("server");
    server
        .client
        .create_project("bench")
        .await
        .expect("project");
    server
        .client
        .create_pool("bench", &json!({ "name": "tailed", "shards": 4 }))
        .await
        .expect("pool");
    let url = format!(
        "ws://{}/v1/projects/bench/pools/tailed/tail?token={ADMIN_KEY}",
        server.addr()
    );

    let mut rates: Vec<(Condition, Vec<f64>)> = [
        Condition::Baseline,
        Condition::ReadingClient,
        Condition::StalledClient,
    ]
    .into_iter()
    .map(|condition| (condition, Vec::new()))
    .collect();
    let mut stalled_dropped = 0;
    let mut reading_received = 0;
    let mut offset = 0;
    for _round in 0..ROUNDS {
        for (condition, round_rates) in &mut rates {
            let counts = Arc::new(TailCounts::default());
            let tail = match condition {
                Condition::Baseline => None,
                Condition::ReadingClient | Condition::StalledClient => {
                    let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
                        .await
                        .expect("connect");
                    Some(socket)
                }
            };
            // A reading client takes every frame; a stalled one holds the socket and
            // never polls it.
            let (reader, stalled_socket) = match (tail, *condition) {
                (Some(mut socket), Condition::ReadingClient) => {
                    let counts = counts.clone();
                    let task = tokio::spawn(async move {
                        while let Some(Ok(message)) = socket.next().await {
                            if let Message::Text(text) = message {
                                // Counted without parsing: the client's own CPU is
                                // not what this measures.
                                let n = text.as_str().matches("\"id\":").count();
                                counts.records.fetch_add(n as u64, Ordering::Relaxed);
                            }
                        }
                    });
                    (Some(task), None)
                }
                (socket, _) => (None, socket),
            };
            // An unmeasured round first, in every condition alike: what is measured
            // for the stalled client is one that stopped reading a while ago, not the
            // first moments in which the kernel's socket buffers still take frames.
            let warm_up = round_batches(&lines, offset);
            offset += RECORDS_PER_ROUND;
            ingest_round(&server, &warm_up).await;
            // Every round starts with LogHub idle: indexing is slower than ingestion,
            // and a backlog left by the round before would weigh on this one.
            let indexed =
                wait_for_count(&server.client, "bench", "tailed", "n:>=0", offset as u64).await;
            assert_eq!(indexed, offset as u64, "LogHub did not catch up");
            let batches = round_batches(&lines, offset);
            offset += RECORDS_PER_ROUND;
            round_rates.push(ingest_round(&server, &batches).await);
            if let Some(task) = reader {
                // Let it finish reading what was sent, then stop it.
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                task.abort();
                reading_received += counts.records.load(Ordering::Relaxed);
            }
            if let Some(mut socket) = stalled_socket {
                // Read what piled up, until the server has nothing more to say, to
                // count what it dropped for this client.
                let idle = std::time::Duration::from_secs(1);
                while let Ok(Some(Ok(message))) = tokio::time::timeout(idle, socket.next()).await {
                    if let Message::Text(text) = message {
                        if text.as_str().contains("\"type\":\"dropped\"") {
                            let frame: Value = serde_json::from_str(&text).expect("frame");
                            stalled_dropped += frame["count"].as_u64().unwrap_or(0);
                        }
                    }
                }
            }
        }
    }
    let mut medians = Vec::new();
    for (condition, round_rates) in &mut rates {
        let rounds = round_rates.clone();
        let median_rate = median(round_rates);
        println!(
            "{condition:?}: median {median_rate:>9.0} records/s over {ROUNDS} rounds of {RECORDS_PER_ROUND} ({})",
            rounds
                .iter()
                .map(|rate| format!("{rate:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        medians.push(median_rate);
    }
    println!(
        "ratio reading tail / no tail:  {:.2}x (the client received {reading_received} records)",
        medians[1] / medians[0]
    );
    println!(
        "ratio stalled tail / no tail:  {:.2}x (the server dropped {stalled_dropped} records for it)",
        medians[2] / medians[0]
    );
    server.standalone.shutdown().await.expect("shutdown");
}
