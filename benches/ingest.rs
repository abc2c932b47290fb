//! Ingest benchmark. Run with `cargo bench --bench ingest`.
//!
//! Every figure is paired with a baseline measured in the same run, and the ratio is
//! what to compare across machines (absolute numbers move with the machine's load):
//!
//! 1. Group commit: 64 concurrent producers vs one producer on the embedded queue,
//!    same number of fsynced messages.
//! 2. PutDatas over HTTP (parse, validate, encode, fsync) vs producing the same
//!    encoded batches straight to the queue.
//! 3. Batches of 1,000 records vs batches of 100 over HTTP.
//! 4. Indexing lag: from the last 2xx until every record is searchable.
//! 5. Reading bodies into queue batches: straight into batch JSON (what put-datas
//!    does) vs building `Record`s and encoding them, for JSON and NDJSON bodies of
//!    1,000 records, on one thread.

use logpool_core::pool_id::PoolId;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use logpool_core::batch::{encode_batch, EncodedRecords, BATCH_FORMAT_VERSION};
use logpool_core::ingest::{
    encode_json_body, encode_ndjson_body, parse_json_body, parse_ndjson_body, IngestError,
};
use logpool_core::limits::IngestLimits;
use logpool_core::record::Record;
use logpool_core::routing::ShardAddr;
use logpool_e2e::{loghub_lines, wait_for_count, TestServer, LOGHUB_SYSTEMS};
use logpool_engines::queue::{BatchProperties, EmbeddedQueue, EmbeddedQueueConfig, Queue};
use serde_json::{json, Value};

const MESSAGES: usize = 2_000;
const HTTP_RECORDS: usize = 200_000;
const CLIENTS: usize = 8;

fn corpus() -> Vec<String> {
    LOGHUB_SYSTEMS
        .iter()
        .flat_map(|s| loghub_lines(s))
        .collect()
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

async fn produce_messages(
    queue: Arc<EmbeddedQueue>,
    producers: usize,
    payload: Bytes,
) -> (f64, u64) {
    let fsyncs_before = queue.num_fsyncs();
    let started = Instant::now();
    let per_producer = MESSAGES / producers;
    let tasks: Vec<_> = (0..producers)
        .map(|p| {
            let queue = queue.clone();
            let payload = payload.clone();
            tokio::spawn(async move {
                let shard = ShardAddr {
                    tenant: "bench".into(),
                    project: "p".into(),
                    partition: (p % 4) as u32,
                };
                for _ in 0..per_producer {
                    let properties = BatchProperties {
                        pool_id: PoolId::new(1),
                        record_count: 100,
                        format_version: BATCH_FORMAT_VERSION,
                    };
                    queue
                        .produce(&shard, properties, payload.clone())
                        .await
                        .expect("produce");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("producer");
    }
    let elapsed = started.elapsed().as_secs_f64();
    (
        (per_producer * producers) as f64 / elapsed,
        queue.num_fsyncs() - fsyncs_before,
    )
}

async fn http_ingest(
    server: &TestServer,
    pool: &str,
    lines: &[String],
    batch: usize,
    total: usize,
) -> f64 {
    let started = Instant::now();
    let per_client = total / CLIENTS;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let client = server.client.clone();
            let pool = pool.to_string();
            let batches: Vec<Vec<Value>> = (0..per_client / batch)
                .map(|b| records(lines, batch, c * per_client + b * batch))
                .collect();
            tokio::spawn(async move {
                for batch in batches {
                    client
                        .put_records("bench", &pool, &batch)
                        .await
                        .expect("put");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("client");
    }
    (per_client / batch * batch * CLIENTS) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let lines = corpus();
    let dir = tempfile::tempdir().expect("tempdir");

    // 1. Group commit.
    let queue = Arc::new(
        EmbeddedQueue::open(EmbeddedQueueConfig {
            dir: dir.path().join("queue"),
            ..EmbeddedQueueConfig::default()
        })
        .await
        .expect("queue"),
    );
    let batch: Vec<_> = parse_json_body(
        serde_json::to_vec(&records(&lines, 100, 0))
            .expect("json")
            .as_slice(),
        0,
        &IngestLimits::default(),
    )
    .expect("parse");
    let payload = Bytes::from(encode_batch(&batch).expect("encode"));
    let (single_rate, single_fsyncs) = produce_messages(queue.clone(), 1, payload.clone()).await;
    let (group_rate, group_fsyncs) = produce_messages(queue.clone(), 64, payload.clone()).await;
    println!("queue produce, 1 producer:    {single_rate:>10.0} msgs/s  ({single_fsyncs} fsyncs for {MESSAGES} messages)");
    println!("queue produce, 64 producers:  {group_rate:>10.0} msgs/s  ({group_fsyncs} fsyncs for {MESSAGES} messages)");
    println!(
        "ratio group commit / single:  {:>10.2}x",
        group_rate / single_rate
    );
    queue.shutdown().await.expect("shutdown");

    // 2-4. Through HTTP on the standalone product.
    let server = TestServer::start_with(|config| config.loghub.commit_interval_ms = 1000)
        .await
        .expect("server");
    server
        .client
        .create_project("bench")
        .await
        .expect("project");
    for pool in ["big", "small"] {
        server
            .client
            .create_pool("bench", &json!({ "name": pool, "shards": 4 }))
            .await
            .expect("pool");
    }
    let direct_started = Instant::now();
    let direct_queue = server.standalone.engines.queue.clone();
    let direct_batches = HTTP_RECORDS / 1000;
    let encoded: Vec<Bytes> = (0..direct_batches)
        .map(|b| {
            let body = serde_json::to_vec(&records(&lines, 1000, b * 1000)).expect("json");
            let read = encode_json_body(&body, 0, &IngestLimits::default()).expect("read");
            Bytes::from(read.encode_run(0..read.len()).expect("encode"))
        })
        .collect();
    let encode_secs = direct_started.elapsed().as_secs_f64();
    let produce_started = Instant::now();
    let tasks: Vec<_> = encoded
        .chunks(direct_batches / CLIENTS)
        .enumerate()
        .map(|(c, chunk)| {
            let queue = direct_queue.clone();
            let chunk = chunk.to_vec();
            tokio::spawn(async move {
                let shard = ShardAddr {
                    tenant: "bench".into(),
                    project: "direct".into(),
                    partition: (c % 4) as u32,
                };
                for payload in chunk {
                    let properties = BatchProperties {
                        pool_id: PoolId::new(0),
                        record_count: 1000,
                        format_version: BATCH_FORMAT_VERSION,
                    };
                    queue
                        .produce(&shard, properties, payload)
                        .await
                        .expect("produce");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("producer");
    }
    let direct_rate = HTTP_RECORDS as f64 / (encode_secs + produce_started.elapsed().as_secs_f64());
    let http_rate = http_ingest(&server, "big", &lines, 1000, HTTP_RECORDS).await;
    let acked_at = Instant::now();
    let indexed = wait_for_count(&server.client, "bench", "big", "", HTTP_RECORDS as u64).await;
    let lag = acked_at.elapsed();
    let small_rate = http_ingest(&server, "small", &lines, 100, HTTP_RECORDS / 4).await;
    println!("parse+encode+produce, no HTTP:{direct_rate:>10.0} records/s (1,000-record batches, {CLIENTS} producers)");
    println!("PutDatas over HTTP:           {http_rate:>10.0} records/s (1,000-record batches, {CLIENTS} clients)");
    println!(
        "ratio HTTP / direct:          {:>10.2}x",
        http_rate / direct_rate
    );
    println!("PutDatas, 100-record batches: {small_rate:>10.0} records/s");
    println!(
        "ratio 1,000 / 100 per batch:  {:>10.2}x",
        http_rate / small_rate
    );
    println!("indexing lag after last 2xx:  {:>10.2}s until {indexed} of {HTTP_RECORDS} records were searchable", lag.as_secs_f64());
    server.standalone.shutdown().await.expect("shutdown");

    // 5. Reading bodies into batches, alternated rounds so that both paths see the
    // same machine load.
    let json_bodies: Vec<Vec<u8>> = (0..READ_BODIES)
        .map(|b| {
            let logs = records(&lines, 1000, b * 1000);
            serde_json::to_vec(&json!({ "source": "bench", "logs": logs })).expect("json")
        })
        .collect();
    let ndjson_bodies: Vec<Vec<u8>> = (0..READ_BODIES)
        .map(|b| {
            let mut body = Vec::new();
            for record in records(&lines, 1000, b * 1000) {
                serde_json::to_writer(&mut body, &record).expect("json");
                body.push(b'\n');
            }
            body
        })
        .collect();
    type Parse = fn(&[u8], i64, &IngestLimits) -> Result<Vec<Record>, IngestError>;
    type Encode = fn(&[u8], i64, &IngestLimits) -> Result<EncodedRecords, IngestError>;
    let formats: [(&str, &[Vec<u8>], Parse, Encode); 2] = [
        ("JSON", &json_bodies, parse_json_body, encode_json_body),
        (
            "NDJSON",
            &ndjson_bodies,
            parse_ndjson_body,
            encode_ndjson_body,
        ),
    ];
    for (format, bodies, parse, encode) in formats {
        let via_records_once = || {
            read_bodies(bodies, |body| {
                let records = parse(body, 0, &IngestLimits::default()).expect("parse");
                (records.len(), encode_batch(&records).expect("encode"))
            })
        };
        let direct_once = || {
            read_bodies(bodies, |body| {
                let read = encode(body, 0, &IngestLimits::default()).expect("read");
                (read.len(), read.encode_run(0..read.len()).expect("encode"))
            })
        };
        let (mut via_records, mut direct) = (f64::MAX, f64::MAX);
        for _ in 0..READ_ROUNDS {
            via_records = via_records.min(via_records_once());
            direct = direct.min(direct_once());
        }
        println!("{format:<6} body → batches via Records: {via_records:>6.2} µs per record (best of {READ_ROUNDS})");
        println!(
            "{format:<6} body → batch JSON directly: {direct:>6.2} µs per record; {:.2}x faster",
            via_records / direct
        );
    }
}

const READ_BODIES: usize = 100;
const READ_ROUNDS: usize = 5;

/// Reads every body into one encoded batch with `read` (which returns the record
/// count and the payload); returns µs per record.
fn read_bodies(bodies: &[Vec<u8>], read: impl Fn(&[u8]) -> (usize, Vec<u8>)) -> f64 {
    let started = Instant::now();
    let mut count = 0;
    for body in bodies {
        let (records, payload) = read(body);
        count += records;
        std::hint::black_box(payload);
    }
    started.elapsed().as_secs_f64() * 1e6 / count as f64
}
