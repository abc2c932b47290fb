//! `/healthz` (the process is alive) and `/readyz` (its engines answer).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Json, Router};
use logpool_core::access::Permission;
use logpool_engines::Engines;
use logpool_wire::health::Health;
use logpool_wire::openapi::OPENAPI_PATH;

use crate::auth::Routes;

/// `/healthz`, `/readyz` and the OpenAPI document: public, so that probes and
/// client generators need no key.
pub fn routes() -> Routes<Engines> {
    Routes::new()
        .get("/healthz", Permission::Public, healthz)
        .get("/readyz", Permission::Public, readyz)
        .get(OPENAPI_PATH, Permission::Public, crate::openapi::serve)
}

/// Routes for `/healthz` and `/readyz` over the given engines.
pub fn router(engines: Engines) -> Router {
    routes().into_public_router().with_state(engines)
}

async fn healthz() -> Json<Health> {
    Json(Health::status("ok"))
}

async fn readyz(State(engines): State<Engines>) -> impl IntoResponse {
    let mut failures = std::collections::BTreeMap::new();
    if let Err(e) = engines.queue.check_health().await {
        failures.insert("queue".into(), e.to_string());
    }
    if let Err(e) = engines.index.check_health().await {
        failures.insert("index".into(), e.to_string());
    }
    if let Err(e) = engines.metadata.check_health().await {
        failures.insert("metadata".into(), e.to_string());
    }
    if let Err(e) = engines.coordinator.check_health().await {
        failures.insert("coordination".into(), e.to_string());
    }
    if failures.is_empty() {
        (StatusCode::OK, Json(Health::status("ready")))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                failures: Some(failures),
                status: "not_ready".to_string(),
            }),
        )
    }
}
