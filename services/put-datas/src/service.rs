//! put-datas as a service of a node: the ingest routes over the queue and the
//! routing snapshot. It needs no metadata store and no index, and stays ready while
//! the index is down: the queue absorbs the load until loghub catches up.

use logpool_api::health::Readiness;
use logpool_api::node::{Service, ServiceContext, ServiceHandle};
use logpool_engines::EngineNeeds;

use std::sync::Arc;

use crate::syslog::{self, SyslogStats};
use crate::{router, PutDatasState};

/// The service's name.
pub const NAME: &str = "put-datas";

/// put-datas, to run in a node.
pub fn service() -> Service {
    let needs = EngineNeeds {
        queue: true,
        idempotency: true,
        ..EngineNeeds::default()
    };
    Service::new(NAME, needs, start)
}

/// Starts put-datas.
///
/// # Errors
/// Fails when the process did not build the queue or the idempotency ledger.
pub async fn start(context: ServiceContext) -> anyhow::Result<ServiceHandle> {
    let engines = &context.engines;
    let state = PutDatasState::new(
        engines.queue()?,
        context.routing(),
        context.config.limits.clone(),
    )
    .with_idempotency(engines.idempotency()?, &context.config.idempotency);
    let readiness = Readiness::coordination(engines).and_queue(engines)?;
    let mut handle = ServiceHandle::new(readiness).with_metrics(state.stats.clone());
    // The syslog listeners stop with HTTP; the queue flushes after they stored
    // what they received.
    if !context.config.syslog.listeners.is_empty() {
        let stats = Arc::new(SyslogStats::default());
        let listeners = syslog::start(
            &context.config,
            state.clone(),
            stats.clone(),
            context.closing.clone(),
        )
        .await?;
        handle = handle
            .with_metrics(stats)
            .with_task("syslog listeners", listeners);
    }
    Ok(handle.with_routes(router(state)).flushes_queue_at_stop())
}
