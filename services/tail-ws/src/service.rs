//! tail-ws as a service of a node: live tails and consumer-group reads over the
//! queue. Open tails close when HTTP stops (the node's `closing` phase).

use logpool_api::health::Readiness;
use logpool_api::node::{Service, ServiceContext, ServiceHandle};
use logpool_engines::EngineNeeds;

use crate::pull::PullState;
use crate::{router, TailState};

/// The service's name.
pub const NAME: &str = "tail-ws";

/// tail-ws, to run in a node. Consumer groups are kept in the metadata store.
pub fn service() -> Service {
    let needs = EngineNeeds {
        queue: true,
        metadata: true,
        ..EngineNeeds::default()
    };
    Service::new(NAME, needs, start)
}

/// Starts tail-ws.
///
/// # Errors
/// Fails when the process did not build the queue or the metadata store.
pub async fn start(context: ServiceContext) -> anyhow::Result<ServiceHandle> {
    let engines = &context.engines;
    let routing = context.routing();
    let pull = PullState::new(engines.queue()?, engines.metadata()?, routing.clone());
    let tail = TailState::new(
        engines.queue()?,
        routing,
        context.closing.receiver(),
        context.config.tail.clone(),
    );
    let readiness = Readiness::coordination(engines)
        .and_queue(engines)?
        .and_metadata(engines)?;
    Ok(ServiceHandle::new(readiness)
        .with_metrics(tail.stats.clone())
        .with_routes(router(tail).merge(crate::pull::router(pull))))
}
