//! Live-tail series for `/metrics`: open tails, and frames and records sent or
//! dropped for slow clients.
//!
//! The counting happens on the socket: [`CountingSocket`] wraps a tail's WebSocket
//! and reads each outgoing frame's `type` (and its number of records), so the session
//! loop stays about sending and the series always agree with what clients received.

use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::ws::Message;
use futures::{Sink, Stream};
use logpool_api::metrics::{Exposition, MetricSource};
use serde::de::IgnoredAny;
use serde::Deserialize;

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

    /// Counts one frame that went out to a client.
    fn frame_sent(&self, text: &str) {
        /// The fields of a frame that the counters need.
        #[derive(Deserialize)]
        struct FrameSummary {
            #[serde(rename = "type")]
            kind: String,
            records: Option<Vec<IgnoredAny>>,
            count: Option<u64>,
        }
        self.frames_sent.fetch_add(1, Ordering::Relaxed);
        let Ok(frame) = serde_json::from_str::<FrameSummary>(text) else {
            return;
        };
        match frame.kind.as_str() {
            "records" => {
                let sent = frame.records.map_or(0, |records| records.len() as u64);
                self.records_sent.fetch_add(sent, Ordering::Relaxed);
            }
            "dropped" => {
                self.records_dropped
                    .fetch_add(frame.count.unwrap_or(0), Ordering::Relaxed);
            }
            _ => {}
        }
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

/// A WebSocket (any `Sink` + `Stream` of messages) that counts the text frames it
/// sends into [`TailStats`].
#[derive(Debug)]
pub struct CountingSocket<S> {
    inner: S,
    stats: Arc<TailStats>,
}

impl<S> CountingSocket<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, stats: Arc<TailStats>) -> CountingSocket<S> {
        CountingSocket { inner, stats }
    }
}

impl<S: Sink<Message> + Unpin> Sink<Message> for CountingSocket<S> {
    type Error = S::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        if let Message::Text(text) = &item {
            self.stats.frame_sent(text.as_str());
        }
        Pin::new(&mut self.inner).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

impl<S: Stream + Unpin> Stream for CountingSocket<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use futures::SinkExt;

    use super::*;

    #[tokio::test]
    async fn test_frames_are_counted_by_type() {
        let stats = Arc::new(TailStats::default());
        let (sink, _receiver) = futures::channel::mpsc::unbounded::<Message>();
        let mut socket = CountingSocket::new(sink, stats.clone());
        let open = stats.open_tail();
        for frame in [
            r#"{"type":"records","records":[{"id":"a"},{"id":"b"}],"lag_ms":3}"#,
            r#"{"type":"dropped","count":40}"#,
            r#"{"type":"records","records":[{"id":"c"}],"lag_ms":1}"#,
        ] {
            socket
                .send(Message::Text(frame.into()))
                .await
                .expect("send");
        }
        socket
            .send(Message::Ping(Default::default()))
            .await
            .expect("ping");
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
