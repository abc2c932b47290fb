//! search-api as a service of a node: the search routes over the index. It is not
//! ready while the index is not: it could answer nothing.

use logpool_api::health::Readiness;
use logpool_api::node::{Service, ServiceContext, ServiceHandle};
use logpool_engines::EngineNeeds;

use crate::{router, SearchState};

/// The service's name.
pub const NAME: &str = "search-api";

/// search-api, to run in a node.
pub fn service() -> Service {
    let needs = EngineNeeds {
        index: true,
        ..EngineNeeds::default()
    };
    Service::new(NAME, needs, start)
}

/// Starts search-api.
///
/// # Errors
/// Fails when the process did not build the index.
pub async fn start(context: ServiceContext) -> anyhow::Result<ServiceHandle> {
    let engines = &context.engines;
    let state = SearchState {
        index: engines.index()?,
        routing: context.routing(),
        config: context.config.search.clone(),
    };
    let readiness = Readiness::coordination(engines).and_index(engines)?;
    Ok(ServiceHandle::new(readiness).with_routes(router(state)))
}
