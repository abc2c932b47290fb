//! The standalone product: all five services in one process on embedded engines.
//!
//! [`start`] builds the engines from a [`Config`], publishes the routing snapshot,
//! serves put-datas, search-api, control-api and tail-ws on one listener (HTTPS only
//! when `[tls]` is set), and runs loghub and index retention in the background.
//! [`Standalone::shutdown`] stops in the order that loses nothing: stop accepting
//! HTTP (in-flight PutDatas finish and are answered), close open tails, let loghub
//! commit and ack what it has written, then commit the index and flush the queue.

pub mod bench;
pub mod cli;
pub mod openapi;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use logpool_api::metrics::HttpMetrics;
use logpool_api::RoutingView;
use logpool_control_api::ControlState;
use logpool_engines::config::Config;
use logpool_engines::Engines;
use logpool_loghub::{LoghubState, LoghubStats};
use logpool_put_datas::PutDatasState;
use logpool_search_api::SearchState;
use logpool_tail_ws::pull::PullState;
use logpool_tail_ws::TailState;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Longest wait for in-flight HTTP requests at shutdown.
const HTTP_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A running standalone logpool.
#[derive(Debug)]
pub struct Standalone {
    /// The address HTTP is served on.
    pub addr: SocketAddr,
    /// The engines, for tests and tools that look inside.
    pub engines: Engines,
    /// LogHub counters.
    pub loghub_stats: Arc<LoghubStats>,
    stop_http: watch::Sender<bool>,
    stop_loghub: watch::Sender<bool>,
    http: JoinHandle<anyhow::Result<()>>,
    loghub: JoinHandle<anyhow::Result<()>>,
    archive: JoinHandle<()>,
    retention: JoinHandle<()>,
    storage_quota: JoinHandle<()>,
    /// This process's cluster member entries, one per service it runs.
    members: Vec<Box<dyn logpool_engines::coordination::Membership>>,
}

/// Builds the single HTTP app of all services.
pub fn app(
    engines: &Engines,
    config: &Config,
    stop: watch::Receiver<bool>,
    loghub_stats: Arc<LoghubStats>,
    archive_stats: Arc<logpool_loghub::archive::ArchiveStats>,
) -> Router {
    let routing = RoutingView::new(engines.coordinator.watch());
    let put_datas = PutDatasState::new(
        engines.queue.clone(),
        routing.clone(),
        config.limits.clone(),
    );
    let search = SearchState {
        index: engines.index.clone(),
        routing: routing.clone(),
        config: config.search.clone(),
    };
    let control = ControlState::new(
        engines.metadata.clone(),
        engines.coordinator.clone(),
        engines.queue.clone(),
        engines.index.clone(),
    )
    .with_object_store(engines.object_store.clone());
    let pull = PullState::new(
        engines.queue.clone(),
        engines.metadata.clone(),
        routing.clone(),
    );
    let tail = TailState::new(engines.queue.clone(), routing, stop, config.tail.clone());
    // Each service's requests carry its own `service` label, as in distributed mode.
    let http = ["put-datas", "search-api", "control-api", "tail-ws"].map(HttpMetrics::new);
    let mut exported: Vec<Arc<dyn logpool_api::metrics::MetricSource>> = vec![
        put_datas.stats.clone(),
        loghub_stats,
        archive_stats,
        tail.stats.clone(),
    ];
    exported.extend(http.iter().map(|metrics| metrics.clone() as Arc<_>));
    let [put_http, search_http, control_http, tail_http] = http;
    Router::new()
        .merge(put_http.instrument(logpool_put_datas::router(put_datas)))
        .merge(search_http.instrument(logpool_search_api::router(search)))
        .merge(control_http.instrument(logpool_control_api::router(control)))
        .merge(
            tail_http.instrument(
                logpool_tail_ws::router(tail).merge(logpool_tail_ws::pull::router(pull)),
            ),
        )
        .merge(logpool_api::health::router(engines.clone()))
        .merge(logpool_api::metrics::router(exported))
}

/// Starts every service on `listener`.
///
/// # Errors
/// Fails when an engine cannot open or the first routing snapshot cannot be published.
pub async fn start(config: Config, listener: TcpListener) -> anyhow::Result<Standalone> {
    // Before the engines open: a bad certificate or key fails the start at once.
    let tls = logpool_api::tls::acceptor(&config.tls)?;
    let engines = Engines::build(&config).await?;
    let addr = listener.local_addr().context("listener has no address")?;
    let control = ControlState::new(
        engines.metadata.clone(),
        engines.coordinator.clone(),
        engines.queue.clone(),
        engines.index.clone(),
    );
    logpool_control_api::tenants::announce_operator_key(
        engines.metadata.as_ref(),
        config.admin_key.as_ref().map(|key| key.expose()),
    )
    .await?;
    control
        .publish_routing()
        .await
        .map_err(|e| anyhow::anyhow!("failed to publish the routing snapshot: {}", e.message))?;
    let mut members = Vec::new();
    for service in [
        "control-api",
        "put-datas",
        "loghub",
        "search-api",
        "tail-ws",
    ] {
        let advertised = config.advertise_address.as_deref();
        members.push(
            logpool_api::members::register(engines.coordinator.as_ref(), service, advertised, addr)
                .await?,
        );
    }
    let (stop, stop_receiver) = watch::channel(false);
    let loghub_stats = Arc::new(LoghubStats::default());
    let archive_stats = Arc::new(logpool_loghub::archive::ArchiveStats::default());
    let app = app(
        &engines,
        &config,
        stop_receiver.clone(),
        loghub_stats.clone(),
        archive_stats.clone(),
    );
    let http = tokio::spawn({
        let mut stop = stop_receiver.clone();
        let stopped = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        let http = config.http.clone();
        async move { logpool_api::server::serve(listener, app, tls, &http, stopped).await }
    });
    let loghub_state = LoghubState {
        queue: engines.queue.clone(),
        index: engines.index.clone(),
        object_store: engines.object_store.clone(),
        routing: RoutingView::new(engines.coordinator.watch()),
        config: config.loghub.clone(),
        stats: loghub_stats.clone(),
    };
    // LogHub stops only after HTTP has drained (see `shutdown`), on its own signal.
    let (stop_loghub, loghub_stop_receiver) = watch::channel(false);
    let loghub = tokio::spawn(async move {
        let mut stop = loghub_stop_receiver;
        logpool_loghub::run(loghub_state, async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .await
    });
    let archive = tokio::spawn({
        let state = logpool_loghub::archive::ArchiveState {
            queue: engines.queue.clone(),
            object_store: engines.object_store.clone(),
            routing: RoutingView::new(engines.coordinator.watch()),
            fault_pause: Duration::from_millis(config.loghub.archive_fault_pause_ms),
            stats: archive_stats,
        };
        let leadership = engines.coordinator.campaign("archive", "standalone");
        let mut stop = stop_loghub.subscribe();
        logpool_loghub::archive::run(state, leadership, async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
    });
    let storage_quota = tokio::spawn({
        let leadership = engines.coordinator.campaign("storage-quota", "standalone");
        let mut stop = stop_receiver.clone();
        logpool_control_api::quotas::run_storage_watch(
            control,
            leadership,
            logpool_control_api::quotas::STORAGE_CHECK_INTERVAL,
            async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            },
        )
    });
    let retention = tokio::spawn({
        let index = engines.index.clone();
        let routing = RoutingView::new(engines.coordinator.watch());
        let interval = Duration::from_secs(config.loghub.retention_check_interval_secs.max(1));
        let leadership = engines.coordinator.campaign("retention", "standalone");
        let mut stop = stop_receiver;
        async move {
            logpool_loghub::retention::run(index, routing, leadership, interval, async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            })
            .await;
        }
    });
    Ok(Standalone {
        addr,
        engines,
        loghub_stats,
        stop_http: stop,
        stop_loghub,
        http,
        loghub,
        archive,
        retention,
        storage_quota,
        members,
    })
}

impl Standalone {
    /// Stops everything in an order that loses nothing (see the module docs).
    ///
    /// # Errors
    /// Reports the first component that failed to stop cleanly.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop_http.send(true);
        // Draining is bounded: a client that never finishes its request cannot hold
        // the shutdown (and with it the index commit) forever.
        let http_result = match tokio::time::timeout(HTTP_DRAIN_TIMEOUT, self.http).await {
            Ok(joined) => joined.context("HTTP task panicked")?,
            Err(_) => Err(anyhow::anyhow!(
                "HTTP connections did not drain within {HTTP_DRAIN_TIMEOUT:?}"
            )),
        };
        let _ = self.retention.await;
        let _ = self.storage_quota.await;
        let _ = self.stop_loghub.send(true);
        let loghub_result = self.loghub.await.context("loghub task panicked")?;
        self.archive.await.context("archive task panicked")?;
        self.engines
            .index
            .shutdown()
            .await
            .context("failed to commit the index")?;
        self.engines
            .queue
            .shutdown()
            .await
            .context("failed to flush the queue")?;
        for member in self.members {
            member.leave().await;
        }
        http_result?;
        loghub_result?;
        Ok(())
    }
}
