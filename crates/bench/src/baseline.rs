//! The baseline: the same records indexed straight into one tantivy index in this
//! process, with the engine's schema and document mapping, its writer threads and
//! memory budget, and LogHub's commit policy.
//!
//! Timed: the wall clock from the first document added until the last commit
//! returns. tantivy indexes on its own thread while documents are handed to it, so
//! the time spent inside `add` calls is not the indexing time: it leaves out whatever
//! the indexing thread did meanwhile (an earlier version timed only those calls and
//! overstated the baseline by up to a third). Records are made and parsed on a
//! thread of their own, ahead of the writer, as LogHub decodes queue batches on other
//! threads than tantivy's.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use logpool_core::doc_id::DocIdentity;
use logpool_core::ingest::parse_ndjson_body;
use logpool_core::limits::IngestLimits;
use logpool_core::pool_id::PoolId;
use logpool_engines::config::LoghubConfig;
use logpool_engines::index::tantivy_index::{BareIndexWriter, FieldSpace};
use logpool_engines::index::{IndexDoc, TantivyIndexConfig};

use super::corpus::Corpus;
use super::server::{cpu_seconds, dir_bytes};

/// Shards the records are spread over in their document ids, as a default pool's.
const SHARDS: u64 = 2;

/// Parsed batches the record thread may be ahead of the writer.
const PARSED_AHEAD: usize = 4;

/// What the baseline measured.
#[derive(Debug)]
pub struct BaselineResult {
    /// Records indexed.
    pub records: u64,
    /// Wall-clock time from the first document added to the last commit, seconds.
    pub seconds: f64,
    /// CPU time of this process over the same span, seconds: parsing, building
    /// documents and indexing, i.e. what the same records cost the server's LogHub
    /// and indexing threads. Steadier than the wall clock on a shared machine.
    pub cpu_seconds: Option<f64>,
    /// Index size after the final merges.
    pub index_bytes: u64,
    /// Where those bytes went, by part of the index and field, largest first.
    pub index_bytes_by_field: Vec<FieldSpace>,
}

impl BaselineResult {
    /// Records indexed per second of wall-clock time.
    pub fn records_per_s(&self) -> f64 {
        self.records as f64 / self.seconds.max(1e-9)
    }

    /// CPU seconds per million records, when the process's CPU time could be read.
    pub fn cpu_secs_per_million(&self) -> Option<f64> {
        self.cpu_seconds
            .map(|cpu| cpu * 1e6 / self.records.max(1) as f64)
    }
}

/// Indexes records `0..records` (as the load sent them) into a new index in `dir`.
/// Blocking.
///
/// # Errors
/// Fails when the index cannot be written or a record does not parse.
pub fn run(
    corpus: Arc<Corpus>,
    records: u64,
    batch_records: usize,
    base_time_us: i64,
    dir: &Path,
    index_config: &TantivyIndexConfig,
    loghub: &LoghubConfig,
) -> anyhow::Result<BaselineResult> {
    let mut writer = BareIndexWriter::create(dir, index_config)?;
    let commit_interval = Duration::from_millis(loghub.commit_interval_ms);
    let batch = batch_records.max(1) as u64;
    let (batches, parsed) = std::sync::mpsc::sync_channel::<Vec<IndexDoc>>(PARSED_AHEAD);
    let own_pid = std::process::id().to_string();
    let (timed, cpu_seconds) = std::thread::scope(|scope| -> anyhow::Result<_> {
        let producer = scope.spawn(move || -> anyhow::Result<()> {
            let limits = IngestLimits::default();
            let mut body = Vec::new();
            for (batch_index, first) in (0..records).step_by(batch as usize).enumerate() {
                body.clear();
                for seq in first..(first + batch).min(records) {
                    corpus.write_record(seq, base_time_us, &mut body);
                }
                let parsed = parse_ndjson_body(&body, 0, &limits)
                    .map_err(|e| anyhow::anyhow!("a benchmark record does not parse: {e}"))?;
                let shard = (batch_index as u64 % SHARDS) as u32;
                let docs: Vec<IndexDoc> = parsed
                    .into_iter()
                    .enumerate()
                    .map(|(index_in_batch, record)| IndexDoc {
                        identity: DocIdentity {
                            pool_id: PoolId::new(1),
                            partition: shard,
                            position: batch_index as u64,
                            index_in_batch: index_in_batch as u32,
                        },
                        shard,
                        record,
                    })
                    .collect();
                if batches.send(docs).is_err() {
                    break; // the writer stopped on an error of its own
                }
            }
            Ok(())
        });
        // When the first document was added, and the process's CPU time then.
        let mut started: Option<(Instant, Option<f64>)> = None;
        let mut last_commit = Instant::now();
        let mut uncommitted = 0usize;
        for docs in parsed {
            let now = Instant::now();
            started.get_or_insert_with(|| (now, cpu_seconds(&own_pid)));
            if uncommitted == 0 {
                last_commit = now;
            }
            writer.add_batch(&docs)?;
            uncommitted += docs.len();
            // LogHub's policy: commit every interval, or early when enough is staged.
            if last_commit.elapsed() >= commit_interval
                || uncommitted >= loghub.max_uncommitted_records
            {
                writer.commit()?;
                uncommitted = 0;
            }
        }
        writer.commit()?;
        let elapsed = started.map(|(at, _)| at.elapsed()).unwrap_or_default();
        let cpu = cpu_seconds(&own_pid)
            .zip(started.and_then(|(_, cpu)| cpu))
            .map(|(end, start)| end - start);
        producer
            .join()
            .map_err(|_| anyhow::anyhow!("the record parser panicked"))??;
        Ok((elapsed, cpu))
    })?;
    let index_bytes_by_field = writer
        .finish()
        .context("the baseline index did not finish")?;
    Ok(BaselineResult {
        records,
        seconds: timed.as_secs_f64(),
        cpu_seconds,
        index_bytes: dir_bytes(dir),
        index_bytes_by_field,
    })
}
