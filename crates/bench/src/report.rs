//! The benchmark's figures, printed as a table or as JSON.

use serde_json::{json, Value};

use logpool_engines::index::tantivy_index::FieldSpace;

use super::baseline::BaselineResult;
use super::dashboard::DashboardResult;
use super::protocol_ingest::{Protocol, ProtocolComparison};
use super::queries::QueryResult;

const MB: f64 = 1_000_000.0;
const MIB: f64 = 1_048_576.0;
/// Largest parts of the baseline index shown in the table (the JSON has all).
const TOP_SPACES: usize = 8;

/// Ingest → searchable lag of one phase.
#[derive(Debug, Clone)]
pub struct Lag {
    /// The paced rate, absent for the full-speed phase.
    pub rate_records_per_s: Option<f64>,
    /// Markers found.
    pub markers: u64,
    /// Markers not found in time.
    pub lost: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

/// Figures of the server process (child server only).
#[derive(Debug, Clone, Default)]
pub struct Process {
    /// Server CPU (user + system) per million records of the full-speed phase.
    pub server_cpu_secs_per_million: f64,
    /// The load generator's own CPU per million records, for comparison.
    pub load_generator_cpu_secs_per_million: f64,
    /// Peak resident memory of the server over the whole run.
    pub peak_rss_bytes: u64,
    /// Resident memory at the end of the run: (anonymous, file-backed).
    pub rss_at_end: Option<(u64, u64)>,
}

/// Bytes on disk after the run (child server only).
#[derive(Debug, Clone)]
pub struct Disk {
    /// The queue's directory.
    pub queue_bytes: u64,
    /// The index's directory.
    pub index_bytes: u64,
    /// The whole data directory.
    pub total_bytes: u64,
    /// Where the index's bytes go, largest first.
    pub index_bytes_by_field: Vec<FieldSpace>,
}

/// Everything one ingest run measured.
#[derive(Debug)]
pub struct IngestReport {
    /// Records of the full-speed phase.
    pub records: u64,
    /// Concurrent clients.
    pub clients: usize,
    /// Records per request.
    pub batch_records: usize,
    /// Raw line bytes of the full-speed phase.
    pub raw_bytes: u64,
    /// Raw line bytes of both phases (what is on disk).
    pub raw_bytes_all_phases: u64,
    /// Event time of record 0, µs.
    pub base_time_us: i64,
    /// First request to last 2xx of the full-speed phase, s.
    pub accept_secs: f64,
    /// First request until every record of the phase was searchable, s.
    pub searchable_secs: f64,
    /// Lag during the full-speed phase.
    pub lag_full: Lag,
    /// Lag at half the indexed rate.
    pub lag_half: Option<Lag>,
    /// CPU and memory of the server.
    pub process: Option<Process>,
    /// Footprint on disk.
    pub disk: Option<Disk>,
    /// Query latencies.
    pub queries: Vec<QueryResult>,
    /// Time to load a dashboard of 12 panels.
    pub dashboard: Option<DashboardResult>,
    /// The bare-tantivy baseline.
    pub baseline: Option<BaselineResult>,
    /// The shipper protocols against native PutDatas.
    pub protocols: Option<ProtocolComparison>,
}

impl IngestReport {
    fn accepted_rate(&self) -> f64 {
        self.records as f64 / self.accept_secs.max(1e-9)
    }

    fn indexed_rate(&self) -> f64 {
        self.records as f64 / self.searchable_secs.max(1e-9)
    }

    fn baseline_rate(&self) -> Option<f64> {
        self.baseline.as_ref().map(BaselineResult::records_per_s)
    }

    fn per_raw_byte(&self, bytes: u64) -> f64 {
        bytes as f64 / self.raw_bytes_all_phases.max(1) as f64
    }

    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        let mb = self.raw_bytes as f64 / MB;
        let lag = |lag: &Lag| {
            json!({
                "rate_records_per_s": lag.rate_records_per_s,
                "p50_ms": lag.p50_ms,
                "p99_ms": lag.p99_ms,
                "max_ms": lag.max_ms,
                "markers": lag.markers,
                "lost": lag.lost,
            })
        };
        json!({
            "records": self.records,
            "clients": self.clients,
            "batch_records": self.batch_records,
            "raw_bytes": self.raw_bytes,
            "ingest": {
                "accepted_records_per_s": self.accepted_rate(),
                "accepted_mb_per_s": mb / self.accept_secs.max(1e-9),
                "indexed_records_per_s": self.indexed_rate(),
                "indexed_mb_per_s": mb / self.searchable_secs.max(1e-9),
                "accept_secs": self.accept_secs,
                "searchable_secs": self.searchable_secs,
            },
            "lag_at_full_load": lag(&self.lag_full),
            "lag_at_half_rate": self.lag_half.as_ref().map(lag),
            "cpu": self.process.as_ref().map(|p| json!({
                "server_secs_per_million_records": p.server_cpu_secs_per_million,
                "load_generator_secs_per_million_records": p.load_generator_cpu_secs_per_million,
            })),
            "peak_rss_bytes": self.process.as_ref().map(|p| p.peak_rss_bytes),
            "rss_at_end": self.process.as_ref().and_then(|p| p.rss_at_end).map(|(anon, file)| json!({
                "anonymous_bytes": anon,
                "file_bytes": file,
            })),
            "disk": self.disk.as_ref().map(|d| json!({
                "raw_bytes": self.raw_bytes_all_phases,
                "queue_bytes": d.queue_bytes,
                "index_bytes": d.index_bytes,
                "total_bytes": d.total_bytes,
                "queue_per_raw_byte": self.per_raw_byte(d.queue_bytes),
                "index_per_raw_byte": self.per_raw_byte(d.index_bytes),
                "total_per_raw_byte": self.per_raw_byte(d.total_bytes),
                "index_per_raw_byte_by_field": spaces_json(&d.index_bytes_by_field, self.raw_bytes_all_phases),
            })),
            "queries": self.queries.iter().map(|q| json!({
                "name": q.name,
                "query": q.query,
                "p50_ms": q.p50_ms,
                "p99_ms": q.p99_ms,
                "matches": q.matches,
            })).collect::<Vec<_>>(),
            "dashboard": self.dashboard.as_ref().map(|d| json!({
                "panels": d.panels,
                "runs": d.runs,
                "p50_ms": d.p50_ms,
                "p99_ms": d.p99_ms,
                "max_ms": d.max_ms,
            })),
            "baseline": self.baseline.as_ref().map(|b| json!({
                "records_per_s": b.records_per_s(),
                "seconds": b.seconds,
                "cpu_secs_per_million_records": b.cpu_secs_per_million(),
                "index_bytes": b.index_bytes,
                "index_per_raw_byte": b.index_bytes as f64 / self.raw_bytes.max(1) as f64,
                "index_per_raw_byte_by_field": spaces_json(&b.index_bytes_by_field, self.raw_bytes),
            })),
            "ratio_to_baseline": self.baseline_rate().map(|rate| self.indexed_rate() / rate),
            "protocol_ingest": self.protocols.as_ref().map(protocols_json),
        })
    }

    /// The report as a Markdown table.
    pub fn to_table(&self) -> String {
        let mb = self.raw_bytes as f64 / MB;
        let mut rows: Vec<(String, String)> = vec![
            (
                "records (full-speed phase)".into(),
                format!(
                    "{} ({:.1} MB raw), {} clients, {} records/request",
                    self.records, mb, self.clients, self.batch_records
                ),
            ),
            (
                "accepted".into(),
                format!(
                    "{:.0} records/s, {:.1} MB/s",
                    self.accepted_rate(),
                    mb / self.accept_secs.max(1e-9)
                ),
            ),
            (
                "indexed (searchable)".into(),
                format!(
                    "{:.0} records/s, {:.1} MB/s",
                    self.indexed_rate(),
                    mb / self.searchable_secs.max(1e-9)
                ),
            ),
        ];
        if let Some(baseline) = &self.baseline {
            let rate = baseline.records_per_s();
            rows.push((
                "bare tantivy baseline".into(),
                format!(
                    "{rate:.0} records/s; logpool end to end = {:.2}x{}",
                    self.indexed_rate() / rate,
                    baseline
                        .cpu_secs_per_million()
                        .map(|cpu| format!("; {cpu:.1} CPU s per million records"))
                        .unwrap_or_default()
                ),
            ));
        }
        let lag_row = |lag: &Lag| {
            format!(
                "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} markers, {} lost)",
                lag.p50_ms, lag.p99_ms, lag.max_ms, lag.markers, lag.lost
            )
        };
        rows.push(("lag at full load".into(), lag_row(&self.lag_full)));
        if let Some(lag) = &self.lag_half {
            rows.push((
                format!(
                    "lag at half rate ({:.0} records/s)",
                    lag.rate_records_per_s.unwrap_or(0.0)
                ),
                lag_row(lag),
            ));
        }
        if let Some(process) = &self.process {
            rows.push((
                "CPU per million records".into(),
                format!(
                    "server {:.1} s (load generator {:.1} s)",
                    process.server_cpu_secs_per_million,
                    process.load_generator_cpu_secs_per_million
                ),
            ));
            rows.push((
                "server peak RSS".into(),
                match process.rss_at_end {
                    Some((anon, file)) => format!(
                        "{:.0} MiB (at the end: {:.0} MiB heap, {:.0} MiB mapped files)",
                        process.peak_rss_bytes as f64 / MIB,
                        anon as f64 / MIB,
                        file as f64 / MIB
                    ),
                    None => format!("{:.0} MiB", process.peak_rss_bytes as f64 / MIB),
                },
            ));
        }
        if let Some(disk) = &self.disk {
            rows.push((
                "disk per raw byte".into(),
                format!(
                    "queue {:.2}, index {:.2}, total {:.2}",
                    self.per_raw_byte(disk.queue_bytes),
                    self.per_raw_byte(disk.index_bytes),
                    self.per_raw_byte(disk.total_bytes)
                ),
            ));
            rows.push((
                "index per raw byte (largest parts)".into(),
                largest_spaces(&disk.index_bytes_by_field, self.raw_bytes_all_phases),
            ));
        }
        if let Some(baseline) = &self.baseline {
            rows.push((
                "baseline index per raw byte (largest parts)".into(),
                format!(
                    "{:.2} ({})",
                    baseline.index_bytes as f64 / self.raw_bytes.max(1) as f64,
                    largest_spaces(&baseline.index_bytes_by_field, self.raw_bytes),
                ),
            ));
        }
        if let Some(protocols) = &self.protocols {
            rows.extend(protocol_rows(protocols));
        }
        for query in &self.queries {
            rows.push((
                format!("query {}: `{}`", query.name, query.query),
                format!(
                    "p50 {:.1} ms, p99 {:.1} ms ({} matches)",
                    query.p50_ms, query.p99_ms, query.matches
                ),
            ));
        }
        if let Some(dashboard) = &self.dashboard {
            rows.push((
                format!(
                    "dashboard of {} panels over 24 h, every panel answered",
                    dashboard.panels
                ),
                format!(
                    "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} loads)",
                    dashboard.p50_ms, dashboard.p99_ms, dashboard.max_ms, dashboard.runs
                ),
            ));
        }
        let mut out = String::from("| measurement | result |\n|---|---|\n");
        for (name, value) in rows {
            out.push_str(&format!("| {name} | {value} |\n"));
        }
        out
    }
}

/// The comparison of ingest protocols as JSON: one member per protocol.
fn protocols_json(comparison: &ProtocolComparison) -> Value {
    let mut out = json!({
        "records_per_round": comparison.records,
        "rounds": comparison.rounds,
        "clients": comparison.clients,
        "batch_records": comparison.batch_records,
    });
    for result in &comparison.results {
        out[result.protocol.name()] = json!({
            "records_per_s": result.median_rate(),
            "rounds_records_per_s": result.rates,
            "ratio_to_putdatas": comparison.ratio_to_native(result.protocol),
            "server_cpu_secs_per_million_records": result.median_cpu_secs_per_million(),
            "body_bytes_per_record": result.body_bytes as f64 / comparison.records.max(1) as f64,
            "stored_records": result.stored,
        });
    }
    out
}

/// The comparison of ingest protocols as table rows.
fn protocol_rows(comparison: &ProtocolComparison) -> Vec<(String, String)> {
    comparison
        .results
        .iter()
        .map(|result| {
            let ratio = match result.protocol {
                Protocol::PutDatas => String::new(),
                other => comparison
                    .ratio_to_native(other)
                    .map(|ratio| format!(" = {ratio:.2}x PutDatas"))
                    .unwrap_or_default(),
            };
            let rounds: Vec<String> = result
                .rates
                .iter()
                .map(|rate| format!("{:.0}", rate))
                .collect();
            (
                format!(
                    "ingest via {} ({} records x {} rounds, {} clients, {} records/request)",
                    result.protocol.name(),
                    comparison.records,
                    comparison.rounds,
                    comparison.clients,
                    comparison.batch_records
                ),
                format!(
                    "median {:.0} records/s{ratio} (rounds: {}){}; {:.0} body bytes per record",
                    result.median_rate(),
                    rounds.join(", "),
                    result
                        .median_cpu_secs_per_million()
                        .map(|cpu| format!(
                            "; server {cpu:.1} CPU s per million records until searchable"
                        ))
                        .unwrap_or_default(),
                    result.body_bytes as f64 / comparison.records.max(1) as f64,
                ),
            )
        })
        .collect()
}

/// Each part and field of an index, per raw byte, as JSON.
fn spaces_json(spaces: &[FieldSpace], raw_bytes: u64) -> Vec<Value> {
    spaces
        .iter()
        .map(|space| {
            json!({
                "part": space.part,
                "field": space.field,
                "per_raw_byte": space.bytes as f64 / raw_bytes.max(1) as f64,
            })
        })
        .collect()
}

/// The largest parts of an index, per raw byte, for the table.
fn largest_spaces(spaces: &[FieldSpace], raw_bytes: u64) -> String {
    spaces
        .iter()
        .take(TOP_SPACES)
        .map(|space| {
            format!(
                "{} {} {:.2}",
                space.part,
                space.field,
                space.bytes as f64 / raw_bytes.max(1) as f64
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
