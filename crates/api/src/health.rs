//! `/healthz` (the process is alive) and `/readyz` (the engines its services depend
//! on answer).
//!
//! Readiness is per service: each service names the engines without which it cannot
//! do its job ([`Readiness`]), and a process answers for the services it runs. So
//! put-datas stays in service while the index is down (the queue absorbs the load),
//! and search-api, which cannot answer without the index, leaves it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Json, Router};
use logpool_core::access::Permission;
use logpool_engines::coordination::Coordinator;
use logpool_engines::index::LogIndex;
use logpool_engines::metadata::MetadataStore;
use logpool_engines::queue::Queue;
use logpool_engines::{EngineSet, MissingEngine};
use logpool_wire::health::Health;
use logpool_wire::openapi::OPENAPI_PATH;

use crate::auth::Routes;

/// One engine whose health a service's readiness depends on.
#[derive(Debug, Clone)]
enum Probe {
    Queue(Arc<dyn Queue>),
    Index(Arc<dyn LogIndex>),
    Metadata(Arc<dyn MetadataStore>),
    Coordination(Arc<dyn Coordinator>),
}

impl Probe {
    /// The name `/readyz` reports a failure under.
    fn name(&self) -> &'static str {
        match self {
            Probe::Queue(_) => "queue",
            Probe::Index(_) => "index",
            Probe::Metadata(_) => "metadata",
            Probe::Coordination(_) => "coordination",
        }
    }

    /// Why the engine is not healthy, if it is not.
    async fn failure(&self) -> Option<String> {
        match self {
            Probe::Queue(queue) => queue.check_health().await.err().map(|e| e.to_string()),
            Probe::Index(index) => index.check_health().await.err().map(|e| e.to_string()),
            Probe::Metadata(store) => store.check_health().await.err().map(|e| e.to_string()),
            Probe::Coordination(coordinator) => coordinator
                .check_health()
                .await
                .err()
                .map(|e| e.to_string()),
        }
    }
}

/// The engines a service needs healthy to be ready, each checked once per `/readyz`
/// even when several services of one process need it.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    probes: Vec<Probe>,
}

impl Readiness {
    /// Ready while the coordinator answers (every service routes by its snapshot).
    pub fn coordination(engines: &EngineSet) -> Readiness {
        Readiness::default().with(Probe::Coordination(engines.coordinator.clone()))
    }

    /// Also needs the queue.
    ///
    /// # Errors
    /// [`MissingEngine`] when the process did not build it.
    pub fn and_queue(self, engines: &EngineSet) -> Result<Readiness, MissingEngine> {
        Ok(self.with(Probe::Queue(engines.queue()?)))
    }

    /// Also needs the index.
    ///
    /// # Errors
    /// [`MissingEngine`] when the process did not build it.
    pub fn and_index(self, engines: &EngineSet) -> Result<Readiness, MissingEngine> {
        Ok(self.with(Probe::Index(engines.index()?)))
    }

    /// Also needs the metadata store.
    ///
    /// # Errors
    /// [`MissingEngine`] when the process did not build it.
    pub fn and_metadata(self, engines: &EngineSet) -> Result<Readiness, MissingEngine> {
        Ok(self.with(Probe::Metadata(engines.metadata()?)))
    }

    /// What either readiness needs: a process is ready when all its services are.
    pub fn union(self, other: Readiness) -> Readiness {
        other.probes.into_iter().fold(self, Readiness::with)
    }

    /// The names of the engines checked, in check order.
    pub fn engine_names(&self) -> Vec<&'static str> {
        self.probes.iter().map(Probe::name).collect()
    }

    fn with(mut self, probe: Probe) -> Readiness {
        if !self.probes.iter().any(|p| p.name() == probe.name()) {
            self.probes.push(probe);
        }
        self
    }
}

/// `/healthz`, `/readyz` and the OpenAPI document: public, so that probes and
/// client generators need no key.
pub fn routes() -> Routes<Readiness> {
    Routes::new()
        .get("/healthz", Permission::Public, healthz)
        .get("/readyz", Permission::Public, readyz)
        .get(OPENAPI_PATH, Permission::Public, crate::openapi::serve)
}

/// Routes for `/healthz` and `/readyz` over the given readiness.
pub fn router(readiness: Readiness) -> Router {
    routes().into_public_router().with_state(readiness)
}

async fn healthz() -> Json<Health> {
    Json(Health::status("ok"))
}

async fn readyz(State(readiness): State<Readiness>) -> impl IntoResponse {
    let mut failures = std::collections::BTreeMap::new();
    for probe in &readiness.probes {
        if let Some(failure) = probe.failure().await {
            failures.insert(probe.name().to_string(), failure);
        }
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
