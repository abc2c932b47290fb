//! Distributed mode under engine faults: the services run as OS processes (as in
//! `tests/distributed.rs`) and one engine server goes away for a while and comes back.
//!
//! - the index server: loghub backs off, the queue backlog grows, puts keep being
//!   accepted (put-datas stays ready, search-api is not), and every accepted record
//!   is searchable exactly once afterwards;
//! - the broker: put-datas answers 503 with `Retry-After`, never a 2xx, and recovers;
//! - etcd: the data plane keeps serving with the last known routing, and a pool created
//!   after etcd returns is served;
//! - MySQL: control-api answers 503 while ingestion and search keep working.
//!
//! Each test stops a server of its own (pulsar-lite, etcd and MariaDB are started by
//! the test with their own data directories and restarted on the same port and data),
//! or, for the index, switches a TCP proxy in front of the shared OpenSearch server off
//! and on. Without the engine variables the tests are skipped (visibly);
//! `scripts/test-all.sh` sets them and `LOGPOOL_REQUIRE_ENGINES`.
#![cfg(feature = "distributed")]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use logpool_client::{ClientError, LogpoolClient};
use logpool_e2e::fault_proxy::FaultProxy;
use logpool_e2e::private_servers::{start_etcd, start_mariadb, start_pulsar_lite};
use logpool_e2e::services::{count, engines, log_tail, stop, stored_ids, Deployment, Service};
use logpool_e2e::wait_for;
use serde_json::{json, Value};

/// Records per PutDatas request in these tests.
const RECORDS_PER_PUT: usize = 50;

/// The record ids a test sent, and those that were acknowledged (2xx).
#[derive(Debug, Default)]
struct Ledger {
    attempted: HashSet<String>,
    acked: HashSet<String>,
    /// Numbers probe requests, so that no two requests share record ids.
    probes_sent: usize,
}

/// How one PutDatas request was answered.
#[derive(Debug)]
enum PutAnswer {
    Accepted,
    /// 503 with the `Retry-After` seconds, if any.
    Unavailable(Option<u64>),
    /// Anything else: a status (0 when no HTTP answer came back) and the body.
    Other(u16, String),
}

impl Ledger {
    /// Puts one request of fresh records with ids `{label}-{i}`.
    async fn put(
        &mut self,
        put: &LogpoolClient,
        project: &str,
        pool: &str,
        label: &str,
    ) -> PutAnswer {
        let ids: Vec<String> = (0..RECORDS_PER_PUT)
            .map(|i| format!("{label}-{i}"))
            .collect();
        let records: Vec<Value> = ids
            .iter()
            .map(|id| json!({ "rid": id, "message": format!("fault test record {id}") }))
            .collect();
        self.attempted.extend(ids.iter().cloned());
        match put.put_records(project, pool, &records).await {
            Ok(answer) => {
                assert_eq!(answer.accepted, RECORDS_PER_PUT, "{answer:?}");
                self.acked.extend(ids);
                PutAnswer::Accepted
            }
            Err(ClientError::Http {
                status: 503,
                retry_after_secs,
                ..
            }) => PutAnswer::Unavailable(retry_after_secs),
            Err(ClientError::Http { status, body, .. }) => PutAnswer::Other(status, body),
            Err(other) => PutAnswer::Other(0, other.to_string()),
        }
    }

    /// Puts a request that must be accepted.
    async fn put_ok(&mut self, put: &LogpoolClient, project: &str, pool: &str, label: &str) {
        match self.put(put, project, pool, label).await {
            PutAnswer::Accepted => {}
            other => panic!("put {label} was not accepted: {other:?}"),
        }
    }
}

/// Creates a project and a pool through control-api and waits (at most 30 s) until
/// put-datas accepts records for the pool.
async fn create_served_pool(
    control: &LogpoolClient,
    put: &LogpoolClient,
    project: &str,
    pool: &str,
    ledger: &mut Ledger,
) {
    control.create_project(project).await.expect("project");
    control
        .create_pool(project, &json!({ "name": pool, "shards": 2 }))
        .await
        .expect("pool");
    wait_until_pool_served(put, project, pool, ledger, Duration::from_secs(30)).await;
}

/// Puts probe requests until one is accepted; panics after `timeout`.
async fn wait_until_pool_served(
    put: &LogpoolClient,
    project: &str,
    pool: &str,
    ledger: &mut Ledger,
    timeout: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        ledger.probes_sent += 1;
        let label = format!("{pool}-probe{}", ledger.probes_sent);
        if let PutAnswer::Accepted = ledger.put(put, project, pool, &label).await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "put-datas did not serve pool `{pool}` within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until every acknowledged record is searchable, then checks that each is
/// stored once and that nothing but attempted records is stored. Returns how long
/// it took.
async fn assert_exactly_once(
    search: &LogpoolClient,
    project: &str,
    pool: &str,
    ledger: &Ledger,
    timeout: Duration,
    loghub: &Service,
) -> Duration {
    let started = Instant::now();
    let complete = wait_for(timeout, || async {
        let ids = stored_ids(search, project, pool).await;
        ledger
            .acked
            .iter()
            .all(|id| ids.contains_key(id))
            .then_some(ids)
    })
    .await;
    let ids = match complete {
        Some(ids) => ids,
        None => {
            let ids = stored_ids(search, project, pool).await;
            let missing = ledger
                .acked
                .iter()
                .filter(|id| !ids.contains_key(*id))
                .count();
            panic!(
                "{missing} of {} acknowledged records not searchable after {timeout:?}\nloghub log:\n{}",
                ledger.acked.len(),
                log_tail(&loghub.log)
            );
        }
    };
    let took = started.elapsed();
    let duplicated: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).take(10).collect();
    if let Some((first, _)) = duplicated.first() {
        let copies = search
            .search(
                project,
                pool,
                &logpool_client::wire::search::SearchParams {
                    query: Some(format!("rid:\"{first}\"")),
                    ..Default::default()
                },
            )
            .await;
        panic!(
            "{} records stored more than once: {duplicated:?}\ncopies of `{first}`: {copies:?}",
            ids.values().filter(|n| **n > 1).count()
        );
    }
    let foreign: Vec<_> = ids
        .keys()
        .filter(|id| !ledger.attempted.contains(*id))
        .take(10)
        .collect();
    assert!(foreign.is_empty(), "records nobody sent: {foreign:?}");
    took
}

/// User plus system CPU time of a process, from `/proc/{pid}/stat` (Linux).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start with the state.
    let rest = stat.rsplit_once(") ")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // The kernel reports USER_HZ ticks, 100 per second on every Linux ABI.
    Some(Duration::from_millis(ticks * 10))
}

/// Sums the broker's `pulsar_subscription_back_log` for the `loghub` subscription on
/// a project's topics (pulsar-lite labels `topic="{project}"`, Apache Pulsar the full
/// partition topic name). `None` when the metrics cannot be read.
async fn broker_backlog(metrics_url: &str, project: &str) -> Option<u64> {
    let page = reqwest::get(metrics_url).await.ok()?.text().await.ok()?;
    let short_label = format!("topic=\"{project}\"");
    let long_label = format!("/{project}-partition-");
    let total = page
        .lines()
        .filter(|line| line.starts_with("pulsar_subscription_back_log{"))
        .filter(|line| line.contains("subscription=\"loghub\""))
        .filter(|line| line.contains(&short_label) || line.contains(&long_label))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum::<f64>();
    Some(total as u64)
}

/// Index server gone: what loghub and search-api see when the Elasticsearch server
/// stops is every open connection closed and every new one refused; a TCP proxy in
/// front of the shared OpenSearch server does exactly that while it is switched down
/// (the shared server itself keeps nothing on disk, so it cannot be stopped and
/// brought back with its data).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_index_outage_backs_off_grows_the_backlog_and_catches_up_exactly_once() {
    let Some(mut engines) = engines() else { return };
    let es_target = engines
        .elasticsearch
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let proxy = FaultProxy::start(&es_target).await.expect("proxy");
    engines.elasticsearch = proxy.http_url();
    let deployment = Deployment::new(&engines).await;
    let DataPlane {
        control,
        put,
        search,
        mut loghub,
        put_service,
        search_service,
    } = DataPlane::start(&deployment).await;
    let project = format!("idx-{}", deployment.suffix);
    let mut ledger = Ledger::default();
    create_served_pool(&control.client, &put, &project, "app", &mut ledger).await;
    for batch in 0..10 {
        ledger
            .put_ok(&put, &project, "app", &format!("before{batch}"))
            .await;
    }
    assert_exactly_once(
        &search,
        &project,
        "app",
        &ledger,
        Duration::from_secs(60),
        &loghub,
    )
    .await;

    // The index goes away for 20 s while puts go on.
    let loghub_pid = loghub.child.id().expect("loghub pid");
    let acked_before = ledger.acked.len() as u64;
    // Searchable means committed; the counter follows the commit a moment later.
    let indexed_before = wait_for(Duration::from_secs(10), || async {
        let indexed = loghub
            .counter("logpool_loghub_records_indexed_total")
            .await?;
        (indexed >= acked_before).then_some(indexed)
    })
    .await
    .expect("loghub's indexed counter");
    let failures_before = loghub
        .counter("logpool_loghub_index_failures_total")
        .await
        .expect("loghub's failure counter");
    let cpu_before = cpu_time(loghub_pid);
    proxy.down();
    let outage = Duration::from_secs(20);
    let outage_started = Instant::now();
    let metrics_url_opt = std::env::var("LOGPOOL_TEST_PULSAR_METRICS_URL").ok();
    let (mut waiting_peak, mut broker_backlog_peak) = (0u64, 0u64);
    let mut search_statuses = Vec::new();
    // `/readyz` of put-datas and of search-api, asked at the same moments.
    let mut readiness_during = Vec::new();
    let mut batch = 0;
    while outage_started.elapsed() < outage {
        ledger
            .put_ok(&put, &project, "app", &format!("during{batch}"))
            .await;
        batch += 1;
        if let Some(indexed) = loghub.counter("logpool_loghub_records_indexed_total").await {
            let acked_since = ledger.acked.len() as u64 - acked_before;
            let indexed_since = indexed.saturating_sub(indexed_before);
            waiting_peak = waiting_peak.max(acked_since.saturating_sub(indexed_since));
        }
        if let Some(url) = &metrics_url_opt {
            if let Some(backlog) = broker_backlog(url, &project).await {
                broker_backlog_peak = broker_backlog_peak.max(backlog);
            }
        }
        // Every fifth round from the first one: the outage lasts 20 s, so a few.
        if batch % 5 == 1 {
            search_statuses.push(match search.count(&project, "app", "").await {
                Ok(_) => 200,
                Err(error) => error.status().unwrap_or(0),
            });
            readiness_during.push((readyz_status(&put).await, readyz_status(&search).await));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let outage_took = outage_started.elapsed();
    let cpu_during = cpu_before
        .zip(cpu_time(loghub_pid))
        .map(|(before, after)| after.saturating_sub(before));
    let failures = loghub
        .counter("logpool_loghub_index_failures_total")
        .await
        .expect("loghub's failure counter")
        - failures_before;
    let indexed_during = loghub
        .counter("logpool_loghub_records_indexed_total")
        .await
        .expect("loghub's indexed counter")
        - indexed_before;
    assert!(
        loghub.is_running(),
        "loghub died:\n{}",
        log_tail(&loghub.log)
    );
    assert_eq!(
        indexed_during, 0,
        "records indexed while the index was down"
    );
    let acked_during = ledger.acked.len() as u64 - acked_before;
    assert_eq!(
        waiting_peak, acked_during,
        "the backlog did not grow with the puts"
    );
    if metrics_url_opt.is_some() {
        // The broker refreshes its metrics every few seconds; 20 s show the backlog.
        assert!(
            broker_backlog_peak > 0,
            "the broker never reported a backlog for the loghub subscription"
        );
    }
    assert!(
        failures >= 1,
        "loghub never tried the index while it was down"
    );
    // A retry loop without pauses fails thousands of times in 20 s; with backoff it is
    // a handful (each write also retries inside the index client).
    assert!(
        failures <= outage_took.as_secs() / 2 + 2,
        "{failures} index failures in {outage_took:?}: loghub does not back off"
    );
    if let Some(cpu) = cpu_during {
        assert!(
            cpu < outage_took / 4,
            "loghub used {cpu:?} of CPU in a {outage_took:?} outage: a hot loop"
        );
    }
    assert!(
        search_statuses.len() >= 2,
        "search-api was asked too few times during the outage: {search_statuses:?}"
    );
    assert!(
        search_statuses.iter().all(|status| *status == 503),
        "search-api must answer 503 while the index is down: {search_statuses:?}"
    );
    // Readiness is per service: put-datas stays in service (the queue absorbs the
    // load, as the accepted puts above show), search-api, which can answer nothing,
    // leaves it.
    assert!(
        readiness_during
            .iter()
            .all(|statuses| *statuses == (200, 503)),
        "/readyz of (put-datas, search-api) while the index is down: {readiness_during:?}"
    );

    // The index is back: everything acknowledged becomes searchable, once.
    proxy.up();
    let catch_up = assert_exactly_once(
        &search,
        &project,
        "app",
        &ledger,
        Duration::from_secs(90),
        &loghub,
    )
    .await;
    eprintln!(
        "index outage: {outage_took:?}, {acked_during} records accepted during it \
         (peak waiting {waiting_peak}, broker backlog peak {broker_backlog_peak} messages), \
         {failures} index failures, loghub CPU {cpu_during:?}, search statuses \
         {search_statuses:?}, caught up {catch_up:?} after the index returned"
    );
    assert_eq!(
        readyz_status(&search).await,
        200,
        "search-api is ready again once the index is back"
    );
    let mut services = [control, put_service, search_service, loghub];
    for service in services.iter_mut() {
        stop(service).await;
    }
}

/// The HTTP status of a service's `/readyz` (0 when it did not answer).
async fn readyz_status(service: &LogpoolClient) -> u16 {
    match service.get("/readyz").await {
        Ok(_) => 200,
        Err(error) => error.status().unwrap_or(0),
    }
}

/// Broker gone: a private pulsar-lite is killed and started again on the same port and
/// database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_broker_outage_gives_503_and_recovers_without_loss() {
    let Some(mut engines) = engines() else { return };
    let (mut broker, broker_url) = start_pulsar_lite().await;
    engines.pulsar = broker_url;
    let deployment = Deployment::new(&engines)
        .await
        .with_env("LOGPOOL_QUEUE__PRODUCE_TIMEOUT_MS", "2000")
        .with_env("LOGPOOL_QUEUE__OPERATION_TIMEOUT_MS", "3000");
    let DataPlane {
        control,
        put,
        search,
        mut loghub,
        put_service,
        search_service,
    } = DataPlane::start(&deployment).await;
    let project = format!("brk-{}", deployment.suffix);
    let mut ledger = Ledger::default();
    create_served_pool(&control.client, &put, &project, "app", &mut ledger).await;
    for batch in 0..10 {
        ledger
            .put_ok(&put, &project, "app", &format!("before{batch}"))
            .await;
    }

    broker.kill();
    let outage_started = Instant::now();
    let (mut unavailable, mut without_retry_after) = (0, 0);
    let mut batch = 0;
    while outage_started.elapsed() < Duration::from_secs(12) {
        match ledger
            .put(&put, &project, "app", &format!("down{batch}"))
            .await
        {
            PutAnswer::Unavailable(retry_after) => {
                unavailable += 1;
                if retry_after.is_none() {
                    without_retry_after += 1;
                }
            }
            PutAnswer::Accepted => panic!("put {batch} was accepted while the broker was down"),
            PutAnswer::Other(status, body) => {
                panic!("put {batch} answered {status} while the broker was down: {body}")
            }
        }
        batch += 1;
    }
    assert!(
        unavailable >= 2,
        "too few attempts during the outage: {unavailable}"
    );
    assert_eq!(without_retry_after, 0, "503 without Retry-After");
    assert!(
        loghub.is_running(),
        "loghub died:\n{}",
        log_tail(&loghub.log)
    );

    broker.start().await;
    let restarted = Instant::now();
    let recovered_after =
        wait_until_pool_served(&put, &project, "app", &mut ledger, Duration::from_secs(60)).await;
    for batch in 0..10 {
        ledger
            .put_ok(&put, &project, "app", &format!("after{batch}"))
            .await;
    }
    assert_exactly_once(
        &search,
        &project,
        "app",
        &ledger,
        Duration::from_secs(120),
        &loghub,
    )
    .await;
    eprintln!(
        "broker outage: {unavailable} puts answered 503 with Retry-After in {:?}; put-datas \
         accepted again {recovered_after:?} after the restart; every acknowledged record \
         ({} of {} sent) searchable once {:?} after the restart",
        outage_started.elapsed() - restarted.elapsed(),
        ledger.acked.len(),
        ledger.attempted.len(),
        restarted.elapsed()
    );
    let mut services = [control, put_service, search_service, loghub];
    for service in services.iter_mut() {
        stop(service).await;
    }
}

/// etcd gone: a private etcd is killed and started again on the same port and data.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_etcd_outage_keeps_the_data_plane_on_the_last_config() {
    let Some(mut engines) = engines() else { return };
    let (mut etcd, etcd_url) = start_etcd().await;
    engines.etcd = etcd_url;
    let deployment = Deployment::new(&engines)
        .await
        .with_env("LOGPOOL_COORDINATION__CONNECT_TIMEOUT_MS", "2000");
    let DataPlane {
        control,
        put,
        search,
        mut loghub,
        put_service,
        search_service,
    } = DataPlane::start(&deployment).await;
    let project = format!("etcd-{}", deployment.suffix);
    let mut ledger = Ledger::default();
    create_served_pool(&control.client, &put, &project, "app", &mut ledger).await;
    for batch in 0..5 {
        ledger
            .put_ok(&put, &project, "app", &format!("app-before{batch}"))
            .await;
    }

    etcd.kill();
    let outage_started = Instant::now();
    let mut searches_ok = 0;
    let mut batch = 0;
    while outage_started.elapsed() < Duration::from_secs(15) {
        ledger
            .put_ok(&put, &project, "app", &format!("app-down{batch}"))
            .await;
        batch += 1;
        if count(&search, &project, "app", "").await.is_some() {
            searches_ok += 1;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Everything put while etcd is down is indexed and found while it is still down.
    let indexed_while_down = assert_exactly_once(
        &search,
        &project,
        "app",
        &ledger,
        Duration::from_secs(60),
        &loghub,
    )
    .await;
    assert!(
        loghub.is_running(),
        "loghub died:\n{}",
        log_tail(&loghub.log)
    );
    assert_eq!(searches_ok, batch, "search-api failed during the outage");
    // A pool created while etcd is down is stored but cannot be published: 503.
    match control
        .client
        .create_pool(&project, &json!({ "name": "mid", "shards": 1 }))
        .await
    {
        Err(ClientError::Http {
            status: 503,
            retry_after_secs: Some(_),
            ..
        }) => {}
        other => panic!("creating a pool without etcd must answer 503: {other:?}"),
    }

    etcd.start().await;
    let restarted = Instant::now();
    // The stored but unpublished pool is published once etcd is back, without
    // another change.
    wait_until_pool_served(&put, &project, "mid", &mut ledger, Duration::from_secs(60)).await;
    let mid_served_after = restarted.elapsed();
    // A pool created after etcd returned is served everywhere.
    let created = wait_for(Duration::from_secs(60), || async {
        control
            .client
            .create_pool(&project, &json!({ "name": "late", "shards": 1 }))
            .await
            .ok()
    })
    .await;
    assert!(
        created.is_some(),
        "control-api could not create a pool after etcd returned"
    );
    wait_until_pool_served(&put, &project, "late", &mut ledger, Duration::from_secs(60)).await;
    let served_after = restarted.elapsed();
    ledger.put_ok(&put, &project, "app", "app-after").await;
    let timeout = Duration::from_secs(60);
    for pool in ["app", "mid", "late"] {
        let part = ledger_for(&ledger, pool);
        assert_exactly_once(&search, &project, pool, &part, timeout, &loghub).await;
    }
    eprintln!(
        "etcd outage: {batch} puts accepted and {searches_ok} searches answered in 15 s \
         without etcd, all indexed {indexed_while_down:?} later; the pool created during \
         the outage (503) was served {mid_served_after:?} after the restart, one created \
         after it {served_after:?} after the restart"
    );
    let mut services = [control, put_service, search_service, loghub];
    for service in services.iter_mut() {
        stop(service).await;
    }
}

/// The part of a ledger that belongs to one pool (record ids start with the pool name).
fn ledger_for(ledger: &Ledger, pool: &str) -> Ledger {
    let prefix = format!("{pool}-");
    let belongs = |id: &&String| id.starts_with(&prefix);
    Ledger {
        attempted: ledger.attempted.iter().filter(belongs).cloned().collect(),
        acked: ledger.acked.iter().filter(belongs).cloned().collect(),
        probes_sent: ledger.probes_sent,
    }
}

/// MySQL gone: a private MariaDB is killed and started again on the same port and data.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_mysql_outage_gives_503_on_control_api_while_data_flows() {
    let Some(mut engines) = engines() else { return };
    let (mut mariadb, mariadb_url) = start_mariadb().await;
    engines.mysql = mariadb_url;
    let deployment = Deployment::new(&engines)
        .await
        .with_env("LOGPOOL_METADATA__CONNECT_TIMEOUT_MS", "2000");
    let DataPlane {
        control,
        put,
        search,
        loghub,
        put_service,
        search_service,
    } = DataPlane::start(&deployment).await;
    let project = format!("sql-{}", deployment.suffix);
    let mut ledger = Ledger::default();
    create_served_pool(&control.client, &put, &project, "app", &mut ledger).await;
    // The pool learns the types of its fields (stored in MySQL) when the first
    // records are indexed; records with those fields then need no MySQL at all.
    assert_exactly_once(
        &search,
        &project,
        "app",
        &ledger,
        Duration::from_secs(60),
        &loghub,
    )
    .await;

    mariadb.kill();
    let outage_started = Instant::now();
    let mut control_answers: Vec<(&str, u16, Option<u64>)> = Vec::new();
    let mut batch = 0;
    while outage_started.elapsed() < Duration::from_secs(12) {
        ledger
            .put_ok(&put, &project, "app", &format!("down{batch}"))
            .await;
        batch += 1;
        let attempts: [(&str, Result<Value, ClientError>); 3] = [
            (
                "create project",
                control
                    .client
                    .create_project(&format!("{project}-x{batch}"))
                    .await
                    .map(|_| Value::Null),
            ),
            (
                "list pools",
                control
                    .client
                    .get(&format!("/v1/projects/{project}/pools"))
                    .await,
            ),
            (
                "create pool",
                control
                    .client
                    .create_pool(
                        &project,
                        &json!({ "name": format!("p{batch}"), "shards": 1 }),
                    )
                    .await
                    .map(|_| Value::Null),
            ),
        ];
        for (what, result) in attempts {
            let answer = match result {
                Ok(_) => (what, 200, None),
                Err(ClientError::Http {
                    status,
                    retry_after_secs,
                    ..
                }) => (what, status, retry_after_secs),
                Err(other) => panic!("{what}: no answer from control-api: {other}"),
            };
            control_answers.push(answer);
        }
    }
    assert!(
        control_answers.len() >= 3,
        "control-api was asked too few times during the outage: {control_answers:?}"
    );
    let wrong: Vec<_> = control_answers
        .iter()
        .filter(|(_, status, retry_after)| *status != 503 || retry_after.is_none())
        .collect();
    assert!(
        wrong.is_empty(),
        "control-api must answer 503 with Retry-After while MySQL is down: {wrong:?}\n{}",
        log_tail(&control.log)
    );
    let indexed_while_down = assert_exactly_once(
        &search,
        &project,
        "app",
        &ledger,
        Duration::from_secs(60),
        &loghub,
    )
    .await;
    // A field never seen before needs its type stored first: the record is
    // accepted now and indexed once MySQL is back, never lost nor typed twice.
    put.put_records(
        &project,
        "app",
        &[json!({ "rid": "new-field-0", "message": "a field first seen in the outage", "outage_field": 7 })],
    )
    .await
    .expect("a record with a new field is accepted while MySQL is down");

    mariadb.start().await;
    let restarted = Instant::now();
    let new_field_found = wait_for(Duration::from_secs(60), || async {
        let answer = search
            .get(&format!(
                "/v1/projects/{project}/pools/app/search?query=outage_field%3A%3E%3D7&from=-1h"
            ))
            .await
            .ok()?;
        (answer["total"] == 1).then_some(answer)
    })
    .await;
    assert!(
        new_field_found.is_some(),
        "the record with a new field was not indexed after MySQL returned:\n{}",
        log_tail(&loghub.log)
    );
    let created = wait_for(Duration::from_secs(60), || async {
        control
            .client
            .create_pool(&project, &json!({ "name": "late", "shards": 1 }))
            .await
            .ok()
    })
    .await;
    assert!(
        created.is_some(),
        "control-api did not recover after MySQL returned:\n{}",
        log_tail(&control.log)
    );
    let recovered = restarted.elapsed();
    wait_until_pool_served(&put, &project, "late", &mut ledger, Duration::from_secs(30)).await;
    let listed = control
        .client
        .get(&format!("/v1/projects/{project}/pools"))
        .await
        .expect("list pools");
    let names: Vec<&str> = listed["pools"]
        .as_array()
        .map(|pools| pools.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        names.contains(&"app") && names.contains(&"late"),
        "{listed}"
    );
    eprintln!(
        "mysql outage: {} control-api calls answered 503 with Retry-After, {batch} puts \
         accepted and indexed ({indexed_while_down:?}) while MySQL was down; control-api \
         created a pool {recovered:?} after MySQL was restarted",
        control_answers.len()
    );
    let mut services = [control, put_service, search_service, loghub];
    for service in services.iter_mut() {
        stop(service).await;
    }
}

/// The services every fault test runs: control-api, put-datas, search-api and loghub,
/// with clients for putting and searching.
struct DataPlane {
    control: Service,
    put: LogpoolClient,
    search: LogpoolClient,
    loghub: Service,
    put_service: Service,
    search_service: Service,
}

impl DataPlane {
    async fn start(deployment: &Deployment) -> DataPlane {
        let control = deployment.start("control-api").await;
        let put_service = deployment.start("put-datas").await;
        let search_service = deployment.start("search-api").await;
        let loghub = deployment.start("loghub").await;
        DataPlane {
            control,
            put: put_service.client.clone(),
            search: search_service.client.clone(),
            loghub,
            put_service,
            search_service,
        }
    }
}
