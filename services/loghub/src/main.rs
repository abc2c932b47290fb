//! Runs loghub as its own process (distributed mode): `logpool-loghub --config FILE`.
//! It serves `/healthz`, `/readyz` and `/metrics` on `listen`. `logpool standalone`
//! runs it with the other services in one process instead.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    logpool_api::node::run_service_binary(logpool_loghub::service::service()).await
}
