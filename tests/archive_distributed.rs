//! Archive in distributed mode: loghub writes to S3 (moto) and the objects are read
//! back through the S3 API; while the object store is unreachable (a proxy in front
//! of it is switched down) the backlog grows, nothing is lost, and the archive
//! catches up once it is back.
//!
//! Without the engine variables the test is skipped (visibly); under
//! `LOGPOOL_REQUIRE_ENGINES` it fails instead.
#![cfg(feature = "distributed")]

mod archive_support;

use std::time::Duration;

use archive_support::{
    archived_counts, assert_exactly_once, enable_archive, now_ms, parse_object, put_all, records,
    ArchivedObject, Sent,
};
use logpool_e2e::fault_proxy::FaultProxy;
use logpool_e2e::services::{engines, log_tail, start_service, Deployment};
use logpool_e2e::wait_for;
use logpool_engines::object_store::s3::{S3ObjectStore, S3ObjectStoreConfig};
use logpool_engines::object_store::ObjectStore;
use serde_json::json;

/// Reads every archived data object of a pool through the S3 API.
async fn read_s3_objects(store: &S3ObjectStore, prefix: &str) -> Vec<ArchivedObject> {
    let Ok(keys) = store.list(prefix).await else {
        return Vec::new();
    };
    let mut objects = Vec::new();
    for key in keys
        .iter()
        .filter(|k| k.ends_with(".jsonl.zst") || k.ends_with(".jsonl.gz"))
    {
        if let Ok(data) = store.get(key).await {
            objects.push(parse_object(key, &data));
        }
    }
    objects
}

async fn wait_archived_s3(
    store: &S3ObjectStore,
    prefix: &str,
    sent: &Sent,
    timeout: Duration,
) -> Vec<ArchivedObject> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let objects = read_s3_objects(store, prefix).await;
        let counts = archived_counts(&objects);
        if sent.keys().all(|rid| counts.contains_key(rid)) || std::time::Instant::now() > deadline {
            return objects;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_archive_to_s3_survives_an_object_store_outage() {
    let Some(engines) = engines() else { return };
    let deployment = Deployment::new(&engines).await;
    let dir = deployment.dir.path();
    let config = std::fs::read_to_string(&deployment.config_path).expect("config");
    // loghub reaches S3 through a proxy that the test switches down and up.
    let s3_host = engines
        .s3
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let proxy = FaultProxy::start(s3_host).await.expect("proxy");
    let loghub_config = dir.join("loghub.toml");
    std::fs::write(
        &loghub_config,
        config.replace(
            &format!("endpoint = \"{}\"", engines.s3),
            &format!("endpoint = \"{}\"", proxy.http_url()),
        ),
    )
    .expect("loghub config");
    let control = start_service("control-api", &deployment.config_path, dir).await;
    let put = start_service("put-datas", &deployment.config_path, dir).await;
    let loghub = start_service("loghub", &loghub_config, dir).await;
    let base = control.client.base_url().to_string();
    let project = format!("arch-{}", deployment.suffix);
    control
        .client
        .create_project(&project)
        .await
        .expect("project");
    control
        .client
        .create_pool(&project, &json!({ "name": "web", "shards": 2 }))
        .await
        .expect("pool");
    enable_archive(&base, &project, "web", json!({})).await;

    let store = S3ObjectStore::connect(&S3ObjectStoreConfig {
        endpoint: Some(engines.s3.clone()),
        bucket: format!("lp-e2e-{}", deployment.suffix),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        allow_http: true,
        ..S3ObjectStoreConfig::default()
    })
    .expect("S3 client");
    let prefix = format!("tenant=default/archive/{project}/web/");

    // Routing reaches put-datas within seconds; the first put may be refused.
    let now = now_ms();
    let attempt = std::sync::atomic::AtomicU64::new(0);
    wait_for(Duration::from_secs(30), || {
        let put = put.client.clone();
        let project = project.clone();
        let n = attempt.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let probe = json!({ "time": now, "rid": format!("probe-{n}"), "message": "probe" });
        async move { put.put_records(&project, "web", &[probe]).await.ok() }
    })
    .await
    .expect("the pool is routable");
    let mut sent = put_all(&put.client, &project, "web", &records("before", 200, now)).await;
    let objects = wait_archived_s3(&store, &prefix, &sent, Duration::from_secs(60)).await;
    assert_exactly_once(&sent, &objects);

    // The object store goes away: records keep being accepted, none is archived, the
    // failures are counted and the lag grows.
    proxy.down();
    let during = put_all(&put.client, &project, "web", &records("during", 300, now)).await;
    let failures = wait_for(Duration::from_secs(60), || {
        let loghub = &loghub;
        async move {
            loghub
                .counter("logpool_archive_upload_failures_total")
                .await
                .filter(|n| *n > 0)
        }
    })
    .await;
    assert!(
        failures.is_some(),
        "no upload failure counted; loghub log:\n{}",
        log_tail(&loghub.log)
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let lag = loghub
        .counter("logpool_archive_lag_seconds")
        .await
        .unwrap_or(0);
    assert!(lag >= 2, "archive lag while the store is down: {lag}");
    let counts = archived_counts(&read_s3_objects(&store, &prefix).await);
    assert!(
        during.keys().all(|rid| !counts.contains_key(rid)),
        "records archived while the store was unreachable"
    );

    // Back: the backlog is archived, every record exactly once.
    proxy.up();
    sent.extend(during);
    let objects = wait_archived_s3(&store, &prefix, &sent, Duration::from_secs(120)).await;
    assert_exactly_once(&sent, &objects);
    let listing = control
        .client
        .get(&format!("/v1/projects/{project}/pools/web/archive"))
        .await
        .expect("listing");
    let listed: u64 = listing["objects"]
        .as_array()
        .map(|objects| objects.iter().filter_map(|o| o["records"].as_u64()).sum())
        .unwrap_or(0);
    // The listing counts what the objects hold: every sent record and the probe.
    let lines: usize = objects.iter().map(|o| o.lines.len()).sum();
    assert!(lines > sent.len());
    assert_eq!(listed, lines as u64, "{listing}");
    let lag = wait_for(Duration::from_secs(30), || {
        let loghub = &loghub;
        async move {
            loghub
                .counter("logpool_archive_lag_seconds")
                .await
                .filter(|lag| *lag == 0)
        }
    })
    .await;
    assert_eq!(
        lag,
        Some(0),
        "the archive lag returns to 0 after catching up"
    );
}
