//! Runs loghub as its own process (distributed mode): `logpool-loghub --config FILE`.
//! It serves `/healthz`, `/readyz` and `/metrics` on `listen`. `logpool standalone`
//! runs it with the other services in one process instead.

use std::sync::Arc;

use anyhow::Context;
use logpool_api::service_main::{init_logging, load_service_config, serve, shutdown_signal};
use logpool_api::RoutingView;
use logpool_engines::Engines;
use logpool_loghub::{run, LoghubState, LoghubStats};
use tokio::sync::watch;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let config = load_service_config("loghub")?;
    let engines = Engines::build(&config).await?;
    let stats = Arc::new(LoghubStats::default());
    let state = LoghubState {
        queue: engines.queue.clone(),
        index: engines.index.clone(),
        object_store: engines.object_store.clone(),
        routing: RoutingView::new(engines.coordinator.watch()),
        config: config.loghub.clone(),
        stats: stats.clone(),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("failed to bind {}", config.listen))?;
    let membership = logpool_api::members::register(
        engines.coordinator.as_ref(),
        "loghub",
        config.advertise_address.as_deref(),
        listener.local_addr().context("listener has no address")?,
    )
    .await?;
    let (stop, stopped) = watch::channel(false);
    let archive_stats = Arc::new(logpool_loghub::archive::ArchiveStats::default());
    let routes =
        logpool_api::metrics::router(vec![stats as Arc<_>, archive_stats.clone() as Arc<_>]);
    let mut http_stopped = stopped.clone();
    let http = tokio::spawn({
        let engines = engines.clone();
        let config = config.clone();
        async move {
            serve(listener, routes, &engines, &config, async move {
                let _ = http_stopped.wait_for(|s| *s).await;
            })
            .await
        }
    });
    let mut loghub_stopped = stopped;
    let consumer = tokio::spawn(run(state, async move {
        let _ = loghub_stopped.wait_for(|s| *s).await;
    }));
    // Retention is a singleton job: every loghub campaigns, one runs it.
    let candidate = format!("{}-{}", config.listen, std::process::id());
    let leadership = engines.coordinator.campaign("retention", &candidate);
    let interval =
        std::time::Duration::from_secs(config.loghub.retention_check_interval_secs.max(1));
    let mut retention_stopped = stop.subscribe();
    let retention = tokio::spawn(logpool_loghub::retention::run(
        engines.index.clone(),
        RoutingView::new(engines.coordinator.watch()),
        leadership,
        interval,
        async move {
            let _ = retention_stopped.wait_for(|s| *s).await;
        },
    ));
    // The archive worker is a singleton too: a shared subscription would split a
    // shard's messages between processes.
    let mut archive_stopped = stop.subscribe();
    let archive = tokio::spawn(logpool_loghub::archive::run(
        logpool_loghub::archive::ArchiveState {
            queue: engines.queue.clone(),
            object_store: engines.object_store.clone(),
            routing: RoutingView::new(engines.coordinator.watch()),
            fault_pause: std::time::Duration::from_millis(config.loghub.archive_fault_pause_ms),
            stats: archive_stats,
        },
        engines.coordinator.campaign("archive", &candidate),
        async move {
            let _ = archive_stopped.wait_for(|s| *s).await;
        },
    ));
    // Tomorrow's daily indices, created ahead of midnight by one loghub.
    let mut precreation_stopped = stop.subscribe();
    let precreation = tokio::spawn(logpool_loghub::precreate::run(
        engines.index.clone(),
        RoutingView::new(engines.coordinator.watch()),
        engines
            .coordinator
            .campaign("index-precreation", &candidate),
        logpool_loghub::precreate::Schedule {
            window_secs: config.loghub.index_precreation_window_secs,
            check_interval: std::time::Duration::from_secs(
                config.loghub.index_precreation_check_interval_secs,
            ),
        },
        async move {
            let _ = precreation_stopped.wait_for(|s| *s).await;
        },
    ));
    shutdown_signal().await;
    let _ = stop.send(true);
    // The consumer commits and acks what it wrote before the engines close.
    consumer.await.context("loghub task panicked")??;
    retention.await.context("retention task panicked")?;
    archive.await.context("archive task panicked")?;
    precreation
        .await
        .context("index pre-creation task panicked")?;
    engines.index.shutdown().await?;
    engines.queue.shutdown().await?;
    http.await.context("HTTP task panicked")??;
    membership.leave().await;
    Ok(())
}
