//! A service process connects only to the engines its service uses: put-datas needs
//! the queue and the routing snapshot, not the metadata store or the index. Started
//! with both pointed at a closed port, it becomes ready and accepts records, which
//! loghub indexes and search-api finds. Skipped (visibly) without the engine variables.
#![cfg(feature = "distributed")]

use std::time::Duration;

use logpool_e2e::services::{count, engines, start_service_with_env, stop, Deployment};
use logpool_e2e::wait_for;
use serde_json::{json, Value};

/// An address where nothing listens: any connection to it is refused at once.
const CLOSED: &str = "127.0.0.1:1";
const RECORDS: u64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_put_datas_runs_without_the_metadata_store_and_the_index() {
    let Some(engines) = engines() else { return };
    let deployment = Deployment::new(&engines).await;
    let mut control = deployment.start("control-api").await;
    let mut loghub = deployment.start("loghub").await;
    let mut search = deployment.start("search-api").await;
    let mut env = deployment.env.clone();
    env.push((
        "LOGPOOL_METADATA__URL".into(),
        format!("mysql://root@{CLOSED}/unreachable"),
    ));
    env.push(("LOGPOOL_INDEX__URL".into(), format!("http://{CLOSED}")));
    // Returns once `/readyz` answers 200 (or panics with the log).
    let mut put = start_service_with_env(
        "put-datas",
        &deployment.config_path,
        deployment.dir.path(),
        &env,
    )
    .await;

    let project = format!("needs-{}", deployment.suffix);
    control
        .client
        .create_project(&project)
        .await
        .expect("project");
    control
        .client
        .create_pool(&project, &json!({ "name": "web" }))
        .await
        .expect("pool");
    let records: Vec<Value> = (0..RECORDS)
        .map(|i| json!({ "message": format!("needs line {i}") }))
        .collect();
    // Only "unknown pool" (the snapshot not seen yet) is retried: nothing is put twice.
    let accepted = wait_for(Duration::from_secs(30), || async {
        match put.client.put_records(&project, "web", &records).await {
            Ok(answer) => Some(answer.accepted as u64),
            Err(error) if error.status() == Some(404) => None,
            Err(error) => panic!("put-datas refused the records: {error}"),
        }
    })
    .await
    .expect("put-datas serves the new pool");
    assert_eq!(accepted, RECORDS);
    let found = wait_for(Duration::from_secs(60), || async {
        count(&search.client, &project, "web", "")
            .await
            .filter(|n| *n == RECORDS)
    })
    .await;
    assert_eq!(found, Some(RECORDS), "the records reach the index");
    for service in [&mut put, &mut search, &mut loghub, &mut control] {
        stop(service).await;
    }
}
