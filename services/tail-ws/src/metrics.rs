//! Live-tail series for `/metrics`: open tails, and frames and records sent or
//! dropped for slow clients.
//!
//! The session counts each frame once it has been sent, from the numbers it built the
//! frame with (never by parsing the frame again), so the series agree with what
//! clients received at no cost per record.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use logpool_api::metrics::{Exposition, MetricSource};

/// Counters of the live tails of one process.
#[derive(Debug, Default)]
pub struct TailStats {
    active_tails: AtomicI64,
    tails_opened: AtomicU64,
    frames_sent: AtomicU64,
    records_sent: AtomicU64,
    records_dropped: AtomicU64,
}

impl TailStats {
    /// Counts a tail as open until the returned guard is dropped.
    pub fn open_tail(self: &Arc<Self>) -> OpenTail {
        self.active_tails.fetch_add(1, Ordering::Relaxed);
        self.tails_opened.fetch_add(1, Ordering::Relaxed);
        OpenTail {
            stats: Arc::clone(self),
        }
    }

    /// Counts a `records` frame of `records` records that went out to a client.
    pub fn records_frame_sent(&self, records: usize) {
        self.frames_sent.fetch_add(1, Ordering::Relaxed);
        self.records_sent
            .fetch_add(records as u64, Ordering::Relaxed);
    }

    /// Counts a `dropped` frame announcing `count` skipped records.
    pub fn dropped_frame_sent(&self, count: u64) {
        self.frames_sent.fetch_add(1, Ordering::Relaxed);
        self.records_dropped.fetch_add(count, Ordering::Relaxed);
    }
}

impl MetricSource for TailStats {
    fn counters(&self) -> Vec<logpool_api::metrics::CounterReading> {
        vec![
            (
                "logpool_tail_opened_total",
                "Live tails opened (WebSocket upgrades).",
                self.tails_opened.load(Ordering::Relaxed),
            ),
            (
                "logpool_tail_frames_sent_total",
                "Text frames sent to live-tail clients.",
                self.frames_sent.load(Ordering::Relaxed),
            ),
            (
                "logpool_tail_records_sent_total",
                "Records sent to live-tail clients.",
                self.records_sent.load(Ordering::Relaxed),
            ),
            (
                "logpool_tail_records_dropped_total",
                "Records skipped for live-tail clients that read too slowly (announced to them in `dropped` frames).",
                self.records_dropped.load(Ordering::Relaxed),
            ),
        ]
    }

    fn collect(&self, out: &mut Exposition) {
        out.gauge(
            "logpool_tail_active",
            "Live tails open now.",
            &[],
            self.active_tails.load(Ordering::Relaxed),
        );
    }
}

/// Keeps a tail counted as open; dropping it closes the count.
#[derive(Debug)]
pub struct OpenTail {
    stats: Arc<TailStats>,
}

impl Drop for OpenTail {
    fn drop(&mut self) {
        self.stats.active_tails.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_frames_are_counted_by_type() {
        let stats = Arc::new(TailStats::default());
        let open = stats.open_tail();
        stats.records_frame_sent(2);
        stats.dropped_frame_sent(40);
        stats.records_frame_sent(1);
        let mut out = Exposition::default();
        stats.collect(&mut out);
        let text = out.render();
        assert!(text.contains("logpool_tail_active 1"), "{text}");
        let counters: std::collections::HashMap<_, _> = stats
            .counters()
            .into_iter()
            .map(|(name, _, value)| (name, value))
            .collect();
        assert_eq!(counters["logpool_tail_frames_sent_total"], 3);
        assert_eq!(counters["logpool_tail_records_sent_total"], 3);
        assert_eq!(counters["logpool_tail_records_dropped_total"], 40);
        assert_eq!(counters["logpool_tail_opened_total"], 1);
        drop(open);
        let mut out = Exposition::default();
        stats.collect(&mut out);
        assert!(out.render().contains("logpool_tail_active 0"));
    }
}
