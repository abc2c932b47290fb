//! Archive counters and the archive lag, for loghub's `/metrics`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use logpool_api::metrics::{Exposition, MetricSource};

/// Counters of the archive worker.
#[derive(Debug, Default)]
pub struct ArchiveStats {
    objects_written: AtomicU64,
    bytes_written: AtomicU64,
    records_archived: AtomicU64,
    messages_acked: AtomicU64,
    upload_failures: AtomicU64,
    records_skipped_as_archived: AtomicU64,
    repairs: AtomicU64,
    /// Publish time (ms) of the oldest message held unarchived; 0 when none.
    oldest_pending_publish_ms: AtomicI64,
}

impl ArchiveStats {
    pub(crate) fn add_object(&self, bytes: u64, records: u64) {
        self.objects_written.fetch_add(1, Ordering::Relaxed);
        self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
        self.records_archived.fetch_add(records, Ordering::Relaxed);
    }

    pub(crate) fn add_acked(&self, messages: u64) {
        self.messages_acked.fetch_add(messages, Ordering::Relaxed);
    }

    pub(crate) fn add_upload_failure(&self) {
        self.upload_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_skipped(&self, records: u64) {
        self.records_skipped_as_archived
            .fetch_add(records, Ordering::Relaxed);
    }

    pub(crate) fn add_repair(&self) {
        self.repairs.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_oldest_pending_publish_ms(&self, ms: Option<i64>) {
        self.oldest_pending_publish_ms
            .store(ms.unwrap_or(0), Ordering::Relaxed);
    }

    /// Records written to archived objects (repairs after a crash count again).
    pub fn records_archived(&self) -> u64 {
        self.records_archived.load(Ordering::Relaxed)
    }

    /// Failed object uploads.
    pub fn upload_failures(&self) -> u64 {
        self.upload_failures.load(Ordering::Relaxed)
    }

    /// Seconds since the oldest message held unarchived was published (0 when none).
    pub fn lag_seconds(&self) -> f64 {
        let oldest = self.oldest_pending_publish_ms.load(Ordering::Relaxed);
        if oldest == 0 {
            return 0.0;
        }
        let now_ms = logpool_api::time::now_ns() / 1_000_000;
        (now_ms - oldest).max(0) as f64 / 1000.0
    }
}

impl MetricSource for ArchiveStats {
    fn counters(&self) -> Vec<logpool_api::metrics::CounterReading> {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        vec![
            (
                "logpool_archive_objects_written_total",
                "Archived objects written to the object store.",
                read(&self.objects_written),
            ),
            (
                "logpool_archive_bytes_written_total",
                "Compressed bytes of archived objects written.",
                read(&self.bytes_written),
            ),
            (
                "logpool_archive_records_written_total",
                "Records written to archived objects.",
                read(&self.records_archived),
            ),
            (
                "logpool_archive_messages_acked_total",
                "Queue messages acked by the archive worker.",
                read(&self.messages_acked),
            ),
            (
                "logpool_archive_upload_failures_total",
                "Archive object uploads that failed and are retried.",
                read(&self.upload_failures),
            ),
            (
                "logpool_archive_repairs_total",
                "Half-uploaded batches found after a restart whose missing objects were rewritten.",
                read(&self.repairs),
            ),
            (
                "logpool_archive_records_skipped_total",
                "Redelivered records found already archived and skipped.",
                read(&self.records_skipped_as_archived),
            ),
        ]
    }

    fn collect(&self, out: &mut Exposition) {
        out.gauge(
            "logpool_archive_lag_seconds",
            "Age of the oldest queued message the archive worker holds unarchived.",
            &[],
            self.lag_seconds() as i64,
        );
    }
}
