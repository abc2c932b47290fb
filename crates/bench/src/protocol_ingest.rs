//! The shipper protocols against native PutDatas: the same records sent as PutDatas
//! NDJSON, as an Elasticsearch `_bulk` request and as an OTLP/HTTP protobuf export,
//! with the same batches and concurrency. The protocols take turns within every
//! round (the first of each round rotates), each into its own pool, and every run
//! waits until its records are searchable before the next starts, so that each one
//! begins with the indexer idle. Each protocol's rate is the median over the rounds
//! of records / (first request → last 2xx); its ratio is that median over native
//! PutDatas' median.
//!
//! The bodies are built before anything is timed, so the load generator's own cost
//! is only sending. No request carries an `Idempotency-Key` (shippers send none).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use bytes::Bytes;
use logpool_client::LogpoolClient;
use logpool_put_datas::otlp::proto::{
    AnyValue, ExportLogsServiceRequest, ExportLogsServiceResponse, InstrumentationScope, KeyValue,
    LogRecord, Resource, ResourceLogs, ScopeLogs, Value,
};
use prost::Message as _;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::json;

use super::corpus::Corpus;
use super::server::cpu_seconds;
use super::stats::percentile;

/// Attempts per batch when the server asks to back off (429/503) or a connection fails.
const MAX_ATTEMPTS: u32 = 20;

/// One way of sending the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `POST /v1/projects/{project}/pools/{pool}/logs`, NDJSON.
    PutDatas,
    /// `POST /es/_bulk`, NDJSON action and document pairs.
    EsBulk,
    /// `POST /v1/logs`, an OTLP `ExportLogsServiceRequest` in protobuf.
    Otlp,
}

impl Protocol {
    /// Every protocol, native first.
    pub const ALL: [Protocol; 3] = [Protocol::PutDatas, Protocol::EsBulk, Protocol::Otlp];

    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::PutDatas => "putdatas",
            Protocol::EsBulk => "es_bulk",
            Protocol::Otlp => "otlp",
        }
    }

    /// The pool its records go to.
    fn pool(self) -> &'static str {
        match self {
            Protocol::PutDatas => "native",
            Protocol::EsBulk => "bulk",
            Protocol::Otlp => "otlp",
        }
    }
}

/// What to send.
#[derive(Debug, Clone, Copy)]
pub struct ProtocolPlan {
    /// Records each protocol sends per round.
    pub records: u64,
    /// Rounds; each protocol runs once per round.
    pub rounds: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Records per request.
    pub batch_records: usize,
}

/// One protocol's runs.
#[derive(Debug, Clone)]
pub struct ProtocolResult {
    /// The protocol.
    pub protocol: Protocol,
    /// Accepted records/s of each round, in round order.
    pub rates: Vec<f64>,
    /// Server CPU seconds per million records of each round, from the first request
    /// until the records are searchable (child server only).
    pub server_cpu_secs_per_million: Vec<f64>,
    /// Bytes of the request bodies of one round.
    pub body_bytes: u64,
    /// Records found in the protocol's pool at the end.
    pub stored: u64,
}

impl ProtocolResult {
    /// The median of the rounds' rates.
    pub fn median_rate(&self) -> f64 {
        percentile(&mut self.rates.clone(), 50.0)
    }

    /// The median of the rounds' server CPU, when measured.
    pub fn median_cpu_secs_per_million(&self) -> Option<f64> {
        (!self.server_cpu_secs_per_million.is_empty())
            .then(|| percentile(&mut self.server_cpu_secs_per_million.clone(), 50.0))
    }
}

/// What the comparison measured.
#[derive(Debug, Clone)]
pub struct ProtocolComparison {
    /// Records each protocol sent per round.
    pub records: u64,
    /// Rounds.
    pub rounds: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Records per request.
    pub batch_records: usize,
    /// One entry per protocol, native first.
    pub results: Vec<ProtocolResult>,
}

impl ProtocolComparison {
    /// A protocol's median rate over native PutDatas' median rate.
    pub fn ratio_to_native(&self, protocol: Protocol) -> Option<f64> {
        let rate = |wanted: Protocol| {
            self.results
                .iter()
                .find(|result| result.protocol == wanted)
                .map(ProtocolResult::median_rate)
        };
        let native = rate(Protocol::PutDatas)?;
        (native > 0.0).then(|| rate(protocol).map(|rate| rate / native))?
    }
}

/// Where the comparison sends.
pub struct ProtocolTarget<'a> {
    /// A client of the server, with an operator key.
    pub client: &'a LogpoolClient,
    /// The server's process, for its CPU time (child server only).
    pub pid: Option<&'a str>,
    /// Longest wait for a run's records to become searchable.
    pub searchable_timeout: Duration,
}

/// Runs the comparison on a project of its own.
///
/// # Errors
/// Fails when a request is refused, a protocol reports a rejected record, or records
/// do not become searchable in time.
pub async fn run(
    target: &ProtocolTarget<'_>,
    corpus: &Corpus,
    plan: ProtocolPlan,
) -> anyhow::Result<ProtocolComparison> {
    if plan.records == 0 || plan.rounds == 0 || plan.clients == 0 || plan.batch_records == 0 {
        bail!("the protocol comparison needs records, rounds, clients and batch records");
    }
    let client = target.client;
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_micros() as i64;
    let project = format!("ingest{}", now_us / 1000);
    client
        .create_project(&project)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create project {project}: {e}"))?;
    for protocol in Protocol::ALL {
        client
            .create_pool(&project, &json!({ "name": protocol.pool() }))
            .await
            .map_err(|e| anyhow::anyhow!("cannot create pool {}: {e}", protocol.pool()))?;
    }
    // Records one microsecond apart, ending now.
    let base_time_us = now_us - plan.records as i64;
    let bodies: Vec<Arc<Vec<Bytes>>> = Protocol::ALL
        .iter()
        .map(|protocol| {
            Arc::new(bodies(
                *protocol,
                corpus,
                &project,
                plan.records,
                plan.batch_records,
                base_time_us,
            ))
        })
        .collect();
    let mut results: Vec<ProtocolResult> = Protocol::ALL
        .iter()
        .zip(&bodies)
        .map(|(protocol, bodies)| ProtocolResult {
            protocol: *protocol,
            rates: Vec::new(),
            server_cpu_secs_per_million: Vec::new(),
            body_bytes: bodies.iter().map(|body| body.len() as u64).sum(),
            stored: 0,
        })
        .collect();
    for round in 0..plan.rounds {
        for turn in 0..Protocol::ALL.len() {
            let index = (round + turn) % Protocol::ALL.len();
            let protocol = Protocol::ALL[index];
            let cpu_before = target.pid.and_then(cpu_seconds);
            let started = Instant::now();
            send_all(client, &project, protocol, &bodies[index], plan.clients).await?;
            let secs = started.elapsed().as_secs_f64();
            let expected = plan.records * (round as u64 + 1);
            wait_count(client, &project, protocol.pool(), expected, target).await?;
            // Until the records are searchable: all the work they cost, accepting and
            // indexing. Read at the last 2xx instead, a protocol slower to accept
            // would also be charged the indexing done meanwhile.
            let cpu = target
                .pid
                .and_then(cpu_seconds)
                .zip(cpu_before)
                .map(|(after, before)| after - before);
            let result = &mut results[index];
            result.rates.push(plan.records as f64 / secs.max(1e-9));
            if let Some(cpu) = cpu {
                result
                    .server_cpu_secs_per_million
                    .push(cpu / (plan.records as f64 / 1e6));
            }
        }
    }
    for result in &mut results {
        result.stored = client
            .count(&project, result.protocol.pool(), "")
            .await
            .map_err(|e| anyhow::anyhow!("cannot count {}: {e}", result.protocol.pool()))?;
    }
    Ok(ProtocolComparison {
        records: plan.records,
        rounds: plan.rounds,
        clients: plan.clients,
        batch_records: plan.batch_records,
        results,
    })
}

/// The request bodies of one protocol: records `0..records` in batches.
fn bodies(
    protocol: Protocol,
    corpus: &Corpus,
    project: &str,
    records: u64,
    batch_records: usize,
    base_time_us: i64,
) -> Vec<Bytes> {
    let batch = batch_records as u64;
    let index_line = serde_json::to_vec(
        &json!({ "create": { "_index": format!("{project}.{}", Protocol::EsBulk.pool()) } }),
    )
    .unwrap_or_default();
    (0..records.div_ceil(batch))
        .map(|batch_index| {
            let seqs = batch_index * batch..((batch_index + 1) * batch).min(records);
            let mut body = Vec::new();
            match protocol {
                Protocol::PutDatas => {
                    for seq in seqs {
                        corpus.write_record(seq, base_time_us, &mut body);
                    }
                }
                Protocol::EsBulk => {
                    for seq in seqs {
                        body.extend_from_slice(&index_line);
                        body.push(b'\n');
                        write_bulk_document(corpus, seq, base_time_us, &mut body);
                    }
                }
                Protocol::Otlp => {
                    body = otlp_request(corpus, seqs, base_time_us).encode_to_vec();
                }
            }
            Bytes::from(body)
        })
        .collect()
}

/// Record `seq` as an Elasticsearch document, as Filebeat or Fluent Bit sends one:
/// the PutDatas record's fields with its time as RFC 3339 `@timestamp`.
fn write_bulk_document(corpus: &Corpus, seq: u64, base_time_us: i64, out: &mut Vec<u8>) {
    let (source, host) = corpus.record_source(seq);
    let time_ns = i128::from(base_time_us + seq as i64) * 1000;
    let timestamp = time::OffsetDateTime::from_unix_timestamp_nanos(time_ns)
        .ok()
        .and_then(|time| {
            time.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let document = json!({
        "@timestamp": timestamp,
        "seq": seq,
        "level": source.level,
        "host": host,
        "component": source.component,
        "message": source.line,
    });
    // Writing a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &document);
    out.push(b'\n');
}

/// Records `seqs` as one OTLP export, as an OpenTelemetry Collector sends them: one
/// resource and scope, the line as body, the level as severity, host, component and
/// sequence number as attributes.
fn otlp_request(
    corpus: &Corpus,
    seqs: std::ops::Range<u64>,
    base_time_us: i64,
) -> ExportLogsServiceRequest {
    let text = |key: &str, value: String| KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value)),
        }),
    };
    let log_records = seqs
        .map(|seq| {
            let (source, host) = corpus.record_source(seq);
            LogRecord {
                time_unix_nano: ((base_time_us + seq as i64) * 1000) as u64,
                severity_number: severity_number(&source.level),
                severity_text: source.level.clone(),
                body: Some(AnyValue {
                    value: Some(Value::StringValue(source.line.clone())),
                }),
                attributes: vec![
                    KeyValue {
                        key: "seq".to_string(),
                        value: Some(AnyValue {
                            value: Some(Value::IntValue(seq as i64)),
                        }),
                    },
                    text("host", host),
                    text("component", source.component.clone()),
                ],
                ..LogRecord::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![text("service.name", "logpool-bench".to_string())],
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
}

/// The OpenTelemetry severity number of a level.
fn severity_number(level: &str) -> i32 {
    match level {
        "trace" => 1,
        "debug" => 5,
        "info" | "notice" => 9,
        "warn" => 13,
        "error" => 17,
        _ => 21,
    }
}

/// Sends every body of one protocol from `clients` concurrent clients.
async fn send_all(
    client: &LogpoolClient,
    project: &str,
    protocol: Protocol,
    bodies: &Arc<Vec<Bytes>>,
    clients: usize,
) -> anyhow::Result<()> {
    let senders: Vec<_> = (0..clients)
        .map(|first| {
            let (client, bodies, project) = (client.clone(), bodies.clone(), project.to_string());
            tokio::spawn(async move {
                for body in bodies.iter().skip(first).step_by(clients) {
                    send(&client, &project, protocol, body).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for sender in senders {
        sender.await.context("a protocol client panicked")??;
    }
    Ok(())
}

/// Sends one body, retrying when the server asks to back off; fails on any other
/// refusal and on any record the answer says was rejected.
async fn send(
    client: &LogpoolClient,
    project: &str,
    protocol: Protocol,
    body: &Bytes,
) -> anyhow::Result<()> {
    let base = client.base_url();
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=MAX_ATTEMPTS {
        let request = match protocol {
            Protocol::PutDatas => client
                .request(
                    reqwest::Method::POST,
                    format!(
                        "{base}/v1/projects/{project}/pools/{}/logs",
                        protocol.pool()
                    ),
                )
                .header(CONTENT_TYPE, "application/x-ndjson"),
            Protocol::EsBulk => client
                .request(reqwest::Method::POST, format!("{base}/es/_bulk"))
                .header(CONTENT_TYPE, "application/x-ndjson"),
            Protocol::Otlp => client
                .request(reqwest::Method::POST, format!("{base}/v1/logs"))
                .header(CONTENT_TYPE, "application/x-protobuf")
                .header("x-logpool-project", project)
                .header("x-logpool-pool", protocol.pool()),
        };
        let response = match request.body(body.clone()).send().await {
            Ok(response) => response,
            Err(_) if attempt < MAX_ATTEMPTS => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                continue;
            }
            Err(error) => bail!("{} request failed: {error}", protocol.name()),
        };
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            let wait = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .map(Duration::from_secs)
                .unwrap_or(delay);
            tokio::time::sleep(wait).await;
            delay = (delay * 2).min(Duration::from_secs(5));
            continue;
        }
        let answer = response.bytes().await?;
        if !status.is_success() {
            bail!(
                "{} answered {status}: {}",
                protocol.name(),
                String::from_utf8_lossy(&answer)
            );
        }
        return check_answer(protocol, &answer);
    }
    bail!(
        "{} request failed after {MAX_ATTEMPTS} attempts",
        protocol.name()
    )
}

/// Fails when a 200 answer says some records were not stored.
fn check_answer(protocol: Protocol, answer: &[u8]) -> anyhow::Result<()> {
    match protocol {
        Protocol::PutDatas => Ok(()),
        Protocol::EsBulk => {
            // `errors` comes before the items; reading the whole answer would cost
            // the load generator more than the server spends writing it.
            let head = &answer[..answer.len().min(64)];
            let no_errors = b"\"errors\":false";
            if head.windows(no_errors.len()).any(|w| w == no_errors) {
                Ok(())
            } else {
                bail!(
                    "_bulk rejected items: {}",
                    String::from_utf8_lossy(&answer[..answer.len().min(600)])
                )
            }
        }
        Protocol::Otlp => {
            let response = ExportLogsServiceResponse::decode(answer)
                .context("the OTLP answer is not an ExportLogsServiceResponse")?;
            match response.partial_success {
                Some(partial) if partial.rejected_log_records > 0 => {
                    bail!("OTLP rejected records: {}", partial.error_message)
                }
                _ => Ok(()),
            }
        }
    }
}

/// Waits until `pool` holds `expected` records.
async fn wait_count(
    client: &LogpoolClient,
    project: &str,
    pool: &str,
    expected: u64,
    target: &ProtocolTarget<'_>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + target.searchable_timeout;
    let mut last = 0;
    while Instant::now() < deadline {
        // A failed count is retried at the next poll.
        if let Ok(total) = client.count(project, pool, "").await {
            last = total;
            if total >= expected {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("pool {pool}: only {last} of {expected} records were searchable in time")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::parse_line;

    fn corpus() -> Corpus {
        Corpus {
            lines: vec![
                parse_line("INFO a: one", "x"),
                parse_line("ERROR b: two \"quoted\"", "x"),
            ],
        }
    }

    #[test]
    fn every_protocol_sends_the_same_records_in_the_same_batches() {
        let corpus = corpus();
        for protocol in Protocol::ALL {
            let bodies = bodies(protocol, &corpus, "p", 5, 2, 1_700_000_000_000_000);
            assert_eq!(bodies.len(), 3, "{protocol:?}");
        }
        let bulk = bodies(Protocol::EsBulk, &corpus, "p", 3, 2, 1_700_000_000_000_000);
        let lines: Vec<serde_json::Value> = bulk[0]
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice(line).expect("JSON line"))
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["create"]["_index"], "p.bulk");
        assert_eq!(lines[3]["@timestamp"], "2023-11-14T22:13:20.000001Z");
        assert_eq!(lines[3]["message"], "ERROR b: two \"quoted\"");
        let otlp = bodies(Protocol::Otlp, &corpus, "p", 3, 2, 1_700_000_000_000_000);
        let request = ExportLogsServiceRequest::decode(otlp[1].as_ref()).expect("protobuf");
        let record = &request.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(record.time_unix_nano, 1_700_000_000_000_002_000);
        assert_eq!(record.severity_text, "info");
    }

    #[test]
    fn ratios_are_medians_over_native() {
        let result = |protocol, rates: Vec<f64>| ProtocolResult {
            protocol,
            rates,
            server_cpu_secs_per_million: Vec::new(),
            body_bytes: 1,
            stored: 1,
        };
        let comparison = ProtocolComparison {
            records: 1,
            rounds: 3,
            clients: 1,
            batch_records: 1,
            results: vec![
                result(Protocol::PutDatas, vec![100.0, 300.0, 200.0]),
                result(Protocol::EsBulk, vec![150.0, 50.0, 100.0]),
            ],
        };
        assert_eq!(comparison.ratio_to_native(Protocol::EsBulk), Some(0.5));
        assert_eq!(comparison.ratio_to_native(Protocol::Otlp), None);
    }

    #[test]
    fn a_bulk_answer_with_errors_fails() {
        assert!(check_answer(Protocol::EsBulk, br#"{"took":1,"errors":false,"items":[]}"#).is_ok());
        assert!(check_answer(Protocol::EsBulk, br#"{"took":1,"errors":true,"items":[]}"#).is_err());
    }
}
