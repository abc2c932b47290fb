//! `/metrics` in the Prometheus text format: what was accepted, indexed, refused and
//! dead-lettered, so that a gap between "accepted" and "indexed" is visible.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use logpool_loghub::LoghubStats;
use logpool_put_datas::PutDatasStats;

/// The counters exported.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Ingest counters.
    pub put_datas: Arc<PutDatasStats>,
    /// Indexing counters.
    pub loghub: Arc<LoghubStats>,
}

/// Routes `/metrics`.
pub fn router(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(metrics)
}

async fn render(State(metrics): State<Metrics>) -> impl IntoResponse {
    let counters: [(&str, &str, &AtomicU64); 10] = [
        (
            "logpool_put_requests_accepted_total",
            "PutDatas requests answered 2xx",
            &metrics.put_datas.requests_accepted,
        ),
        (
            "logpool_put_records_accepted_total",
            "records durable in the queue",
            &metrics.put_datas.records_accepted,
        ),
        (
            "logpool_put_requests_rejected_total",
            "PutDatas requests refused for bad input",
            &metrics.put_datas.requests_rejected,
        ),
        (
            "logpool_put_requests_failed_total",
            "PutDatas requests the queue could not take",
            &metrics.put_datas.requests_failed,
        ),
        (
            "logpool_loghub_records_indexed_total",
            "records committed to the index",
            &metrics.loghub.records_indexed,
        ),
        (
            "logpool_loghub_messages_acked_total",
            "queue messages acked after a commit",
            &metrics.loghub.messages_acked,
        ),
        (
            "logpool_loghub_messages_nacked_total",
            "queue messages given back for redelivery",
            &metrics.loghub.messages_nacked,
        ),
        (
            "logpool_loghub_messages_dead_lettered_total",
            "queue messages moved to the dead letter",
            &metrics.loghub.messages_dead_lettered,
        ),
        (
            "logpool_loghub_records_dead_lettered_total",
            "records the index refused, moved to the dead letter",
            &metrics.loghub.records_dead_lettered,
        ),
        (
            "logpool_loghub_commits_total",
            "index commits",
            &metrics.loghub.commits,
        ),
    ];
    let mut text = String::new();
    for (name, help, value) in counters {
        let _ = writeln!(
            text,
            "# HELP {name} Count of {help}.\n# TYPE {name} counter\n{name} {}",
            value.load(Ordering::Relaxed)
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
