//! Pool stats in distributed mode: control-api reads the Pulsar backlog and the
//! Elasticsearch count and store size of a pool that put-datas and loghub (separate
//! processes) filled. Skipped (visibly) without the engine variables.
#![cfg(feature = "distributed")]

use std::time::Duration;

use logpool_e2e::services::{engines, log_tail, Deployment};
use logpool_e2e::wait_for;
use serde_json::{json, Value};

const RECORDS: u64 = 120;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_pool_stats_on_pulsar_and_elasticsearch() {
    let Some(engines) = engines() else { return };
    // Backlogs come from the broker's Prometheus metrics, as a production deployment
    // would configure them (they also give bytes, which the binary protocol does not).
    let metrics_url = std::env::var("LOGPOOL_TEST_PULSAR_METRICS_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:18080/metrics".to_string());
    let deployment = Deployment::new(&engines)
        .await
        .with_env("LOGPOOL_QUEUE__METRICS_URL", &metrics_url);
    let control = deployment.start("control-api").await;
    let put = deployment.start("put-datas").await;
    let _loghub = deployment.start("loghub").await;
    let project = format!("stats-{}", deployment.suffix);
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
    let stats_path = format!("/v1/projects/{project}/pools/web/stats");

    let records: Vec<Value> = (0..RECORDS)
        .map(|i| json!({ "message": format!("stats line {i}") }))
        .collect();
    // put-datas learns the new pool from the published routing within moments; only
    // "unknown pool" is retried, so no batch can be put twice.
    let mut accepted = false;
    for attempt in 0..100 {
        match put.client.put_records(&project, "web", &records).await {
            Ok(_) => {
                accepted = true;
                break;
            }
            Err(error) if error.status() == Some(404) && attempt < 99 => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(error) => panic!("put-datas refused the records: {error}"),
        }
    }
    assert!(accepted);

    // The broker refreshes its metrics periodically (about every 10 s on pulsar-lite).
    let settled = wait_for(Duration::from_secs(90), || {
        let (control, path) = (control.client.clone(), stats_path.clone());
        async move {
            let body = control.get(&path).await.ok()?;
            (body["records"] == RECORDS && body["backlog"]["loghub"]["messages"] == 0)
                .then_some(body)
        }
    })
    .await;
    let Some(settled) = settled else {
        let last = control.client.get(&stats_path).await;
        panic!(
            "stats never showed {RECORDS} records and no backlog: {last:?}\n{}",
            log_tail(&control.log)
        );
    };
    assert_eq!(settled["lag"]["unindexed_messages"], 0);
    assert!(settled["lag"]["newest_record_age_ms"].is_i64(), "{settled}");
    let shards = settled["shards"].as_array().expect("shards");
    assert_eq!(shards.len(), 2);
    assert!(
        shards
            .iter()
            .map(|s| s["end_position"].as_u64().expect("end position"))
            .sum::<u64>()
            > 0,
        "{settled}"
    );
    assert!(
        settled["storage_bytes"].as_u64().expect("storage") > 0,
        "{settled}"
    );
}
