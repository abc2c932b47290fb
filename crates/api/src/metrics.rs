//! `/metrics` in the Prometheus text format. Each service exports its counters
//! through [`CounterSource`]; the standalone binary exports all of them at once.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// One counter reading: name (snake_case, ending in `_total`), help text, value.
pub type CounterReading = (&'static str, &'static str, u64);

/// Something that has counters to export.
pub trait CounterSource: Send + Sync + std::fmt::Debug {
    /// Reads the counters now.
    fn counters(&self) -> Vec<CounterReading>;
}

/// Routes `/metrics` over the given sources.
pub fn router(sources: Vec<Arc<dyn CounterSource>>) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(Arc::new(sources))
}

async fn render(State(sources): State<Arc<Vec<Arc<dyn CounterSource>>>>) -> impl IntoResponse {
    let mut text = String::new();
    for source in sources.iter() {
        for (name, help, value) in source.counters() {
            let _ = writeln!(
                text,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
