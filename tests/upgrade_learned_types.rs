//! An upgrade keeps the field types a pool had learned. Earlier versions kept them in
//! the index engine (for tantivy, `field_types.json` in the pool's directory); the
//! metadata store holds them now, and loghub imports the engine's copy at start. So a
//! field first seen as a number before the upgrade stays a number, whatever value
//! comes first after it, and the old file is gone once imported.

use std::path::{Path, PathBuf};
use std::time::Duration;

use logpool_client::LogpoolClient;
use logpool_e2e::{admin_client, free_port, start_standalone_process, stop_gracefully, wait_for};
use serde_json::{json, Value};
use tokio::process::Child;

const PROJECT: &str = "upgrade";
const POOL: &str = "app";
const WAIT: Duration = Duration::from_secs(30);

async fn stop(mut child: Child) {
    let exit = stop_gracefully(&mut child).await;
    assert!(exit.success(), "exit status {exit:?}");
}

/// The directory of the one pool under `{data}/index/{tenant}/{pool id}`.
fn pool_dir(data_dir: &Path) -> PathBuf {
    let mut pools = Vec::new();
    for tenant in std::fs::read_dir(data_dir.join("index")).expect("index dir") {
        let tenant = tenant.expect("entry").path();
        if !tenant.is_dir() {
            continue;
        }
        for pool in std::fs::read_dir(&tenant).expect("tenant dir") {
            let pool = pool.expect("entry").path();
            let numbered = pool
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.parse::<i64>().is_ok());
            if pool.is_dir() && numbered {
                pools.push(pool);
            }
        }
    }
    assert_eq!(pools.len(), 1, "one pool directory: {pools:?}");
    pools.remove(0)
}

async fn count(client: &LogpoolClient, query: &str) -> u64 {
    client.count(PROJECT, POOL, query).await.expect("count")
}

/// The type `/fields` shows for `field` once it shows one.
async fn shown_type(client: &LogpoolClient, field: &str) -> Value {
    let path = format!("/v1/projects/{PROJECT}/pools/{POOL}/fields?query=*&from=-1h");
    wait_for(WAIT, || {
        let client = client.clone();
        let path = path.clone();
        async move {
            let answer = client.get(&path).await.ok()?;
            answer["fields"]
                .as_array()?
                .iter()
                .find(|entry| entry["name"] == field)
                .map(|entry| entry["type"].clone())
        }
    })
    .await
    .unwrap_or_else(|| panic!("`{field}` never listed"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_types_the_index_engine_learned_survive_the_upgrade() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let log = data_dir.path().join("logpool.log");
    let port = free_port();
    let client = admin_client(&format!("http://127.0.0.1:{port}"));

    // The pool as an earlier version left it: data on disk, and its learned types in
    // the engine's own file.
    let child = start_standalone_process(data_dir.path(), port, &log, &[]).await;
    client.create_project(PROJECT).await.expect("project");
    client
        .create_pool(PROJECT, &json!({ "name": POOL }))
        .await
        .expect("pool");
    client
        .put_records(PROJECT, POOL, &[json!({ "message": "before the upgrade" })])
        .await
        .expect("put");
    wait_for(WAIT, || {
        let client = client.clone();
        async move { (count(&client, "before").await == 1).then_some(()) }
    })
    .await
    .expect("the first record is searchable");
    stop(child).await;
    let legacy = pool_dir(data_dir.path()).join("field_types.json");
    std::fs::write(&legacy, r#"{"code": "keyword", "latency": "long"}"#).expect("legacy file");

    // After the upgrade the first values would teach the opposite types: a number for
    // `code`, a string for `latency`.
    let child = start_standalone_process(data_dir.path(), port, &log, &[]).await;
    client
        .put_records(
            PROJECT,
            POOL,
            &[json!({ "message": "after the upgrade", "code": 500, "latency": "1200" })],
        )
        .await
        .expect("put");
    assert_eq!(shown_type(&client, "code").await, json!("keyword"));
    assert_eq!(shown_type(&client, "latency").await, json!("long"));
    // Typed as imported: `latency` compares as a number, `code` matches as a word.
    assert_eq!(count(&client, "latency:>=1000").await, 1);
    assert_eq!(count(&client, "code:500").await, 1);
    assert!(!legacy.exists(), "the imported file is removed");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("imported the field types the index engine had learned"),
        "the import is logged"
    );
    stop(child).await;
}
