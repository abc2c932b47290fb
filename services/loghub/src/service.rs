//! loghub as a service of a node: the indexer (the `loghub` subscription) and its
//! jobs: index retention, next-day index pre-creation and the archive worker, each
//! in the one loghub that leads it. It serves no routes of its own (only the node's
//! `/healthz`, `/readyz` and `/metrics`).

use std::sync::Arc;
use std::time::Duration;

use logpool_api::health::Readiness;
use logpool_api::node::{Service, ServiceContext, ServiceHandle};
use logpool_engines::EngineNeeds;

use crate::archive::{ArchiveState, ArchiveStats, ArchiveWorker};
use crate::precreate::Precreation;
use crate::retention::Retention;
use crate::schema::PoolSchemas;
use crate::{LoghubState, LoghubStats};

/// The service's name.
pub const NAME: &str = "loghub";

/// loghub, to run in a node.
pub fn service() -> Service {
    service_with_stats(Arc::default())
}

/// loghub counting into `stats` (which the caller can read).
pub fn service_with_stats(stats: Arc<LoghubStats>) -> Service {
    let needs = EngineNeeds {
        queue: true,
        index: true,
        metadata: true,
        object_store: true,
        ..EngineNeeds::default()
    };
    Service::new(NAME, needs, move |context| start(context, stats))
}

/// Starts loghub.
///
/// # Errors
/// Fails when an engine it needs was not built.
pub async fn start(
    context: ServiceContext,
    stats: Arc<LoghubStats>,
) -> anyhow::Result<ServiceHandle> {
    let engines = &context.engines;
    let config = &context.config.loghub;
    let faults = &context.config.fault_injection;
    let (queue, index) = (engines.queue()?, engines.index()?);
    let indexer = LoghubState {
        queue: queue.clone(),
        index: index.clone(),
        schemas: Arc::new(PoolSchemas::new(engines.metadata()?, context.routing())),
        object_store: engines.object_store()?,
        routing: context.routing(),
        config: config.clone(),
        ack_delay: Duration::from_millis(faults.loghub_ack_delay_ms),
        stats: stats.clone(),
        patterns: Arc::new(crate::patterns::PoolPatterns::new(config.mine_patterns)),
    };
    let archive_stats = Arc::new(ArchiveStats::default());
    let archive = ArchiveState {
        queue,
        object_store: engines.object_store()?,
        routing: context.routing(),
        fault_pause: Duration::from_millis(faults.archive_upload_pause_ms),
        stats: archive_stats.clone(),
    };
    let mut jobs = context.jobs();
    let retention = Retention {
        index: index.clone(),
        routing: context.routing(),
    };
    let retention_interval = Duration::from_secs(config.retention_check_interval_secs.max(1));
    jobs.leader_every("retention", retention_interval, retention);
    let precreation = Precreation::new(
        index,
        context.routing(),
        config.index_precreation_window_secs,
    );
    let precreation_interval = Duration::from_secs(config.index_precreation_check_interval_secs);
    jobs.leader_every("index-precreation", precreation_interval, precreation);
    // One process at a time: a shared subscription would split a shard's messages.
    jobs.while_leader("archive", ArchiveWorker::new(archive));
    // The indexer commits and acks what it wrote when the background work stops.
    // Types an earlier version's index engine kept itself are in the store before
    // the first batch, so no field is learned afresh from a newer value.
    let import = crate::legacy_types::import_until_done(
        indexer.index.clone(),
        engines.metadata()?,
        context.stopping.clone(),
    );
    let stopping = context.stopping.clone();
    let consumer = tokio::spawn(async move {
        import.await;
        crate::run(indexer, stopping.into_stopped()).await
    });
    let readiness = Readiness::coordination(engines)
        .and_queue(engines)?
        .and_index(engines)?;
    Ok(ServiceHandle::new(readiness)
        .with_metrics(stats)
        .with_metrics(archive_stats)
        .with_task("indexer", consumer)
        .with_jobs(jobs)
        .commits_index_at_stop()
        .flushes_queue_at_stop())
}
