//! Runs search-api as its own process (distributed mode):
//! `logpool-search-api --config FILE`. `logpool standalone` runs it with the other
//! services in one process instead.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    logpool_api::node::run_service_binary(logpool_search_api::service::service()).await
}
