//! The standalone product: all five services in one process on embedded engines.
//!
//! [`start`] is a node (see [`logpool_api::node`]) of every service, on one
//! listener (HTTPS only when `[tls]` is set): control-api first (it publishes the
//! routing snapshot), then put-datas, loghub, search-api and tail-ws, each with the
//! same routes, jobs and readiness as its own binary in distributed mode.
//! [`Standalone::shutdown`] stops in the order that loses nothing: stop accepting
//! HTTP (in-flight PutDatas finish and are answered), close open tails, let loghub
//! commit and ack what it has written, then commit the index and flush the queue.

pub mod cli;
pub mod openapi;

use std::net::SocketAddr;
use std::sync::Arc;

use logpool_api::node::{Node, Service};
use logpool_engines::config::Config;
use logpool_engines::Engines;
use logpool_loghub::LoghubStats;
use tokio::net::TcpListener;

/// A running standalone logpool.
#[derive(Debug)]
pub struct Standalone {
    /// The address HTTP is served on.
    pub addr: SocketAddr,
    /// The engines, for tests and tools that look inside.
    pub engines: Engines,
    /// LogHub counters.
    pub loghub_stats: Arc<LoghubStats>,
    node: Node,
}

/// Every service, in start order.
pub fn services(loghub_stats: Arc<LoghubStats>) -> Vec<Service> {
    vec![
        logpool_control_api::service::service(),
        logpool_put_datas::service::service(),
        logpool_loghub::service::service_with_stats(loghub_stats),
        logpool_search_api::service::service(),
        logpool_tail_ws::service::service(),
    ]
}

/// Starts every service on `listener`.
///
/// # Errors
/// Fails when an engine cannot open or the first routing snapshot cannot be published.
pub async fn start(config: Config, listener: TcpListener) -> anyhow::Result<Standalone> {
    let loghub_stats = Arc::new(LoghubStats::default());
    let node = Node::start(config, services(loghub_stats.clone()), listener).await?;
    Ok(Standalone {
        addr: node.addr,
        engines: node.engines.complete()?,
        loghub_stats,
        node,
    })
}

impl Standalone {
    /// Stops everything in an order that loses nothing (see the module docs).
    ///
    /// # Errors
    /// Reports the first component that failed to stop cleanly.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.node.shutdown().await
    }
}
