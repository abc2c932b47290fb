//! What put-datas spends per record reading a request into queue batches, per
//! protocol, without HTTP, the queue or indexing: the same records as a PutDatas
//! NDJSON body, an Elasticsearch `_bulk` body (with its answer) and an OTLP protobuf
//! export. Prints ns per record and the ratios to PutDatas, all from one run;
//! nothing is asserted about time.
//!
//! `cargo test --release -p logpool-put-datas handling_cost -- --ignored --nocapture`

use std::time::Instant;

use logpool_core::ingest::encode_ndjson_body_in_window;
use logpool_core::ingest::window::EventTimeWindow;
use logpool_core::limits::IngestLimits;
use prost::Message as _;

use crate::es_bulk::request::parse_items;
use crate::es_bulk::{answer, document, Pending};
use crate::otlp::proto::{
    AnyValue, ExportLogsServiceRequest, InstrumentationScope, KeyValue, LogRecord, Resource,
    ResourceLogs, ScopeLogs, Value,
};
use crate::otlp::{mapping, view};
use crate::protocol::RecordsWriter;

const RECORDS_PER_BODY: usize = 1000;
const BODIES: usize = 20;
const ROUNDS: usize = 7;
const BASE_TIME_US: i64 = 1_765_000_000_000_000;
const LEVELS: [&str; 4] = ["info", "warn", "error", "debug"];

struct Source {
    seq: usize,
    level: &'static str,
    host: String,
    component: String,
    message: String,
    time_us: i64,
}

fn source(seq: usize) -> Source {
    Source {
        seq,
        level: LEVELS[seq % LEVELS.len()],
        host: format!("node-{}", seq % 16),
        component: format!("component{}", seq % 7),
        message: format!(
            "{seq} 2005-06-03-15.42.50.{seq:06} R02-M1-N0-C:J12-U11 RAS KERNEL INFO \
             instruction cache parity error corrected at 0x{seq:08x}"
        ),
        time_us: BASE_TIME_US + seq as i64,
    }
}

fn rfc3339(time_us: i64) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(time_us) * 1000)
        .expect("time in range");
    time.format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

fn native_body(seqs: std::ops::Range<usize>) -> Vec<u8> {
    let mut body = Vec::new();
    for seq in seqs {
        let s = source(seq);
        let record = serde_json::json!({
            "time": s.time_us, "seq": s.seq, "level": s.level, "host": s.host,
            "component": s.component, "message": s.message,
        });
        serde_json::to_writer(&mut body, &record).expect("writes");
        body.push(b'\n');
    }
    body
}

fn bulk_body(seqs: std::ops::Range<usize>) -> Vec<u8> {
    let mut body = Vec::new();
    for seq in seqs {
        let s = source(seq);
        body.extend_from_slice(b"{\"create\":{\"_index\":\"bench.bulk\"}}\n");
        let document = serde_json::json!({
            "@timestamp": rfc3339(s.time_us), "seq": s.seq, "level": s.level,
            "host": s.host, "component": s.component, "message": s.message,
        });
        serde_json::to_writer(&mut body, &document).expect("writes");
        body.push(b'\n');
    }
    body
}

fn otlp_body(seqs: std::ops::Range<usize>) -> Vec<u8> {
    let text = |key: &str, value: String| KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value)),
        }),
    };
    let log_records = seqs
        .map(|seq| {
            let s = source(seq);
            LogRecord {
                time_unix_nano: (s.time_us * 1000) as u64,
                severity_number: 9,
                severity_text: s.level.to_string(),
                body: Some(AnyValue {
                    value: Some(Value::StringValue(s.message)),
                }),
                attributes: vec![
                    KeyValue {
                        key: "seq".to_string(),
                        value: Some(AnyValue {
                            value: Some(Value::IntValue(seq as i64)),
                        }),
                    },
                    text("host", s.host),
                    text("component", s.component),
                ],
                ..LogRecord::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![text("service.name", "bench".to_string())],
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "bench".to_string(),
                    ..InstrumentationScope::default()
                }),
                log_records,
            }],
        }],
    }
    .encode_to_vec()
}

/// PutDatas: the body read straight into batch JSON, as `put_logs` does.
fn native(body: &[u8], limits: &IngestLimits) -> usize {
    let (records, _) =
        encode_ndjson_body_in_window(body, 1, limits, &EventTimeWindow::UNBOUNDED).expect("reads");
    records.len()
}

/// `_bulk`: items parsed, documents staged and read where they are, the answer
/// written (as the handler does, without routing and storing).
fn bulk(body: &[u8], limits: &IngestLimits) -> usize {
    let items = parse_items(body, limits.max_records_per_request).expect("parses");
    let mut documents = Vec::with_capacity(items.len());
    let mut bytes = 0;
    let mut pending = Vec::with_capacity(items.len());
    for item in &items {
        let document = item.document.expect("a document");
        documents.push((item.document_line, document));
        bytes += document.len() + 1;
        pending.push(Pending::Queued);
    }
    let records = document::encode_all(
        documents.into_iter(),
        bytes,
        1,
        limits,
        &EventTimeWindow::UNBOUNDED,
    )
    .expect("all stored");
    let answers: Vec<answer::ItemAnswer<'_>> = items
        .iter()
        .zip(&pending)
        .map(|(item, outcome)| answer::ItemAnswer {
            action: item.action,
            id: item.id.as_deref(),
            index: item.index.as_deref().unwrap_or_default(),
            outcome,
        })
        .collect();
    let answer = answer::to_json(1, "1-", &answers);
    assert!(!answer.is_empty());
    records.len()
}

/// OTLP: the protobuf decoded and converted into batch JSON.
fn otlp(body: &[u8], limits: &IngestLimits) -> usize {
    let request = view::decode(body).expect("decodes");
    let mut records = RecordsWriter::new(limits);
    mapping::convert(&request, true, &mut records).expect("converts");
    let (records, _) = records
        .into_structured()
        .into_encoded(&EventTimeWindow::UNBOUNDED)
        .expect("encodes");
    records.len()
}

/// Writes the body of records `seqs` in a protocol's format.
type BodyMaker = fn(std::ops::Range<usize>) -> Vec<u8>;
/// Reads a body as the protocol's handler does; returns the records read.
type Handler = fn(&[u8], &IngestLimits) -> usize;

#[test]
#[ignore = "a measurement: run with --release -- --ignored --nocapture"]
fn handling_cost_per_record_by_protocol() {
    let limits = IngestLimits::default();
    let protocols: [(&str, BodyMaker, Handler); 3] = [
        ("putdatas", native_body, native),
        ("es_bulk", bulk_body, bulk),
        ("otlp", otlp_body, otlp),
    ];
    let bodies: Vec<Vec<Vec<u8>>> = protocols
        .iter()
        .map(|(_, make, _)| {
            (0..BODIES)
                .map(|b| make(b * RECORDS_PER_BODY..(b + 1) * RECORDS_PER_BODY))
                .collect()
        })
        .collect();
    let mut best = [f64::MAX; 3];
    for round in 0..ROUNDS {
        for turn in 0..protocols.len() {
            let index = (round + turn) % protocols.len();
            let handle = protocols[index].2;
            let started = Instant::now();
            let mut records = 0;
            for body in &bodies[index] {
                records += handle(body, &limits);
            }
            assert_eq!(records, BODIES * RECORDS_PER_BODY, "{}", protocols[index].0);
            let ns = started.elapsed().as_nanos() as f64 / records as f64;
            best[index] = best[index].min(ns);
        }
    }
    for (index, (name, _, _)) in protocols.iter().enumerate() {
        println!(
            "{name}: {:.0} ns/record (best of {ROUNDS} rounds), {:.2}x PutDatas",
            best[index],
            best[index] / best[0]
        );
    }
}
