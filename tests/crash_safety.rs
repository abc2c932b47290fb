//! Crash safety: the `logpool` binary is killed with SIGKILL at random moments while
//! concurrent clients put records. After a restart, every record whose put got a
//! 2xx is searchable exactly once, and no record appears twice.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logpool_client::LogpoolClient;
use logpool_e2e::{count_records_by, free_port, start_standalone_process, wait_for};
use rand::Rng;
use serde_json::{json, Value};
use tokio::process::Child;

const PROJECT: &str = "crash";
const POOL: &str = "app";
const KILL_CYCLES: usize = 4;
const CLIENTS: usize = 4;

async fn start(
    data_dir: &std::path::Path,
    port: u16,
    log: &std::path::Path,
    ack_delay_ms: u64,
) -> Child {
    start_standalone_process(
        data_dir,
        port,
        log,
        &[
            ("LOGPOOL_LOGHUB__COMMIT_INTERVAL_MS", "300".to_string()),
            (
                "LOGPOOL_FAULT_INJECTION__LOGHUB_ACK_DELAY_MS",
                ack_delay_ms.to_string(),
            ),
        ],
    )
    .await
}

/// Puts batches with unique record ids until `stop`; records ids whose put got a 2xx.
async fn put_until_stopped(
    client: LogpoolClient,
    prefix: String,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<HashSet<String>>>,
) {
    let mut seq = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let size = rand::rng().random_range(20..150);
        let ids: Vec<String> = (0..size).map(|i| format!("{prefix}-{seq}-{i}")).collect();
        seq += 1;
        let records: Vec<Value> = ids
            .iter()
            .map(|id| json!({ "rid": id, "message": format!("crash record {id}") }))
            .collect();
        match client.put_records(PROJECT, POOL, &records).await {
            Ok(_) => acked.lock().expect("lock").extend(ids),
            // Unknown outcome: these ids may or may not be stored, never twice; a fresh
            // batch gets fresh ids so a retry can never be mistaken for a duplicate.
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Reads every record of the pool: rid -> number of times it is stored.
async fn all_record_ids(client: &LogpoolClient) -> HashMap<String, usize> {
    count_records_by(client, PROJECT, POOL, "rid")
        .await
        .expect("search")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_kill_9_loses_no_acknowledged_record_and_duplicates_none() {
    let data = tempfile::tempdir().expect("tempdir");
    let log = data.path().join("logpool.log");
    let data_dir = data.path().join("data");
    let port = free_port();
    let client = logpool_e2e::admin_client(&format!("http://127.0.0.1:{port}"));
    let acked = Arc::new(Mutex::new(HashSet::new()));
    for cycle in 0..KILL_CYCLES {
        // Odd cycles widen the commit-to-ack window so that a kill lands in it: then
        // the queue redelivers messages whose records are already in the index, and
        // only idempotent writes keep them from doubling.
        let ack_delay_ms = if cycle % 2 == 1 { 400 } else { 0 };
        let mut child = start(&data_dir, port, &log, ack_delay_ms).await;
        if cycle == 0 {
            client.create_project(PROJECT).await.expect("project");
            client
                .create_pool(PROJECT, &json!({ "name": POOL, "shards": 2 }))
                .await
                .expect("pool");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|c| {
                tokio::spawn(put_until_stopped(
                    client.clone(),
                    format!("c{cycle}-{c}"),
                    stop.clone(),
                    acked.clone(),
                ))
            })
            .collect();
        let run_for = Duration::from_millis(rand::rng().random_range(700..2500));
        tokio::time::sleep(run_for).await;
        child.start_kill().expect("kill -9");
        child.wait().await.expect("reap");
        stop.store(true, Ordering::SeqCst);
        for task in tasks {
            task.await.expect("client task");
        }
    }
    let acked: HashSet<String> = acked.lock().expect("lock").clone();
    assert!(
        acked.len() > 500,
        "the clients got only {} records acknowledged",
        acked.len()
    );

    let mut child = start(&data_dir, port, &log, 0).await;
    // Wait until every acknowledged record is searchable (indexing resumes from the queue).
    let found = wait_for(Duration::from_secs(60), || {
        let client = client.clone();
        let acked = acked.clone();
        async move {
            let ids = all_record_ids(&client).await;
            acked.iter().all(|id| ids.contains_key(id)).then_some(ids)
        }
    })
    .await;
    let ids = match found {
        Some(ids) => ids,
        None => {
            let ids = all_record_ids(&client).await;
            let missing = acked.iter().filter(|id| !ids.contains_key(*id)).count();
            panic!(
                "{missing} of {} acknowledged records are missing",
                acked.len()
            );
        }
    };
    let duplicated: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicated.is_empty(),
        "records stored more than once: {:?}",
        &duplicated[..duplicated.len().min(10)]
    );
    let total = client.count(PROJECT, POOL, "").await.expect("count");
    assert_eq!(
        total as usize,
        ids.len(),
        "the total counts each record once"
    );
    eprintln!(
        "acknowledged {}, stored {} (the rest had unknown outcomes)",
        acked.len(),
        ids.len()
    );

    // A graceful stop (SIGTERM) exits cleanly.
    let exit = logpool_e2e::stop_gracefully(&mut child).await;
    assert!(exit.success(), "graceful shutdown exit status {exit:?}");
}
