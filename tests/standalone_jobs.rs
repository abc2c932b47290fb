//! `logpool standalone` runs the same background jobs as the service binaries, because
//! both are assembled from the same services. Index pre-creation shows it: it is a
//! loghub job, and a standalone server on Elasticsearch creates tomorrow's daily index
//! of a pool whose pre-creation time has come, before any record of that day exists
//! (tantivy creates a day's directory on the first write, so only Elasticsearch makes
//! the job visible). Skipped (visibly) without the engine variables.
#![cfg(feature = "distributed")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use logpool_core::routing::PoolRoute;
use logpool_e2e::{wait_for, TestServer};
use logpool_engines::config::IndexConfig;
use logpool_engines::index::elasticsearch::ElasticsearchIndexConfig;
use logpool_loghub::precreate::lead_secs;
use serde_json::json;

const SECS_PER_DAY: i64 = 86_400;
const NANOS_PER_SEC: i64 = 1_000_000_000;
/// The widest pre-creation window the configuration allows: a pool is due at a
/// fixed moment anywhere in the last day before midnight, so at most times of day
/// about one pool in two is already due.
const WINDOW_SECS: u64 = 86_400;
/// Pools created at most while looking for one that is due now. Only in the first
/// half hour of a UTC day can all of them miss (each is due with a chance of about
/// 1 in 50 then): the test then says so and skips.
const MAX_POOLS: usize = 200;

fn now_secs() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since_epoch.as_secs()).expect("seconds fit")
}

/// The route of `project`/`name` in the server's current routing snapshot.
fn route(server: &TestServer, project: &str, name: &str) -> Option<PoolRoute> {
    server
        .standalone
        .engines
        .coordinator
        .watch()
        .borrow()
        .pools
        .iter()
        .find(|pool| pool.project == project && pool.name == name)
        .cloned()
}

/// Whether the index holds a partition of the pool for the UTC day starting at
/// `day_start_secs` (an empty one counts: that is what pre-creation makes).
async fn has_day(server: &TestServer, pool: &PoolRoute, day_start_secs: i64) -> bool {
    let from_ns = day_start_secs * NANOS_PER_SEC;
    let to_ns = (day_start_secs + SECS_PER_DAY) * NANOS_PER_SEC;
    !server
        .standalone
        .engines
        .index
        .time_partitions(pool, from_ns, to_ns)
        .await
        .expect("partitions")
        .is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_standalone_precreates_tomorrows_index_of_a_due_pool() {
    let Some(engines) = logpool_e2e::services::engines() else {
        return;
    };
    let prefix = format!("lpjobs{:x}", rand::random::<u32>());
    let server = TestServer::start_with(|config| {
        config.index = IndexConfig::Elasticsearch(ElasticsearchIndexConfig {
            url: engines.elasticsearch.clone(),
            index_prefix: prefix,
            number_of_replicas: 0,
            ..ElasticsearchIndexConfig::default()
        });
        config.loghub.index_precreation_window_secs = WINDOW_SECS;
        config.loghub.index_precreation_check_interval_secs = 1;
    })
    .await
    .expect("server");
    let client = &server.client;
    let project = "jobs";
    client.create_project(project).await.expect("project");

    // Pools are created until one is due now; those created before it are not due
    // for a while yet (their moment is more than a minute away).
    let tomorrow_secs = (now_secs().div_euclid(SECS_PER_DAY) + 1) * SECS_PER_DAY;
    let mut not_due = Vec::new();
    let mut due = None;
    for i in 0..MAX_POOLS {
        let name = format!("p{i}");
        client
            .create_pool(project, &json!({ "name": name }))
            .await
            .expect("pool");
        let pool = wait_for(Duration::from_secs(10), || async {
            route(&server, project, &name)
        })
        .await
        .expect("the new pool is in the routing snapshot");
        let until_midnight = u64::try_from(tomorrow_secs - now_secs()).unwrap_or(0);
        let lead = lead_secs(pool.pool_id, WINDOW_SECS);
        if lead >= until_midnight {
            due = Some(pool);
            break;
        }
        if lead + 60 < until_midnight {
            not_due.push(pool);
        }
    }
    let Some(due) = due else {
        eprintln!("SKIPPED: none of {MAX_POOLS} pools is due this early in the UTC day");
        return;
    };

    // No record was written: only the pre-creation job makes tomorrow's index.
    let created = wait_for(Duration::from_secs(15), || async {
        has_day(&server, &due, tomorrow_secs).await.then_some(())
    })
    .await;
    assert!(
        created.is_some(),
        "tomorrow's index of the due pool {} was not created by the pre-creation job",
        due.pool_id
    );
    for pool in &not_due {
        assert!(
            !has_day(&server, pool, tomorrow_secs).await,
            "pool {} is not due yet but its index for tomorrow exists",
            pool.pool_id
        );
    }
    assert!(
        !has_day(&server, &due, tomorrow_secs + SECS_PER_DAY).await,
        "only tomorrow is created ahead of time"
    );
    eprintln!(
        "pre-created tomorrow's index of pool {} ({} pools not yet due left alone)",
        due.pool_id,
        not_due.len()
    );
    server.standalone.shutdown().await.expect("shutdown");
}
