//! `/healthz` (the process is alive) and `/readyz` (its engines answer).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use logpool_engines::Engines;
use serde_json::json;

/// Routes for `/healthz` and `/readyz` over the given engines.
pub fn router(engines: Engines) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(readyz))
        .with_state(engines)
}

async fn readyz(State(engines): State<Engines>) -> impl IntoResponse {
    let mut failures = serde_json::Map::new();
    if let Err(e) = engines.queue.check_health().await {
        failures.insert("queue".into(), json!(e.to_string()));
    }
    if let Err(e) = engines.index.check_health().await {
        failures.insert("index".into(), json!(e.to_string()));
    }
    if let Err(e) = engines.metadata.check_health().await {
        failures.insert("metadata".into(), json!(e.to_string()));
    }
    if let Err(e) = engines.coordinator.check_health().await {
        failures.insert("coordination".into(), json!(e.to_string()));
    }
    if failures.is_empty() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready", "failures": failures })),
        )
    }
}
