//! Distributed mode end to end: the five services as separate OS processes on
//! Pulsar (pulsar-lite behind the framing relay), OpenSearch, etcd, MariaDB and S3
//! (moto), all started by `scripts/test-engines.sh`. Projects and pools are created
//! through control-api, the Loghub samples go in through put-datas, every record is
//! found through search-api, and a pool created while everything runs is served
//! without a restart.
//!
//! Without the engine variables the test is skipped (visibly); `scripts/test-all.sh`
//! sets them and `LOGPOOL_REQUIRE_ENGINES`, so CI cannot pass by skipping.
#![cfg(feature = "distributed")]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use logpool_client::LogpoolClient;
use logpool_e2e::{count_records_by, loghub_lines, logpool_binary, wait_for, LOGHUB_SYSTEMS};
use serde_json::{json, Value};
use tokio::process::{Child, Command};

struct Engines {
    pulsar: String,
    elasticsearch: String,
    etcd: String,
    mysql: String,
    s3: String,
}

fn engines() -> Option<Engines> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let found = (|| {
        Some(Engines {
            pulsar: get("LOGPOOL_TEST_PULSAR_URL")?,
            elasticsearch: get("LOGPOOL_TEST_ES_URL")?,
            etcd: get("LOGPOOL_TEST_ETCD_ENDPOINTS")?,
            mysql: get("LOGPOOL_TEST_MYSQL_URL")?,
            s3: get("LOGPOOL_TEST_S3_ENDPOINT")?,
        })
    })();
    if found.is_none() {
        assert!(
            std::env::var_os("LOGPOOL_REQUIRE_ENGINES").is_none(),
            "LOGPOOL_TEST_* engine variables are missing but LOGPOOL_REQUIRE_ENGINES is set"
        );
        eprintln!("SKIPPED: engine servers not configured; run ./scripts/test-all.sh");
    }
    found
}

fn service_binary(name: &str) -> PathBuf {
    logpool_binary().with_file_name(format!("logpool-{name}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

struct Service {
    name: &'static str,
    child: Child,
    client: LogpoolClient,
    log: PathBuf,
}

async fn start_service(name: &'static str, config: &Path, dir: &Path) -> Service {
    let binary = service_binary(name);
    assert!(
        binary.exists(),
        "{} is missing: build the workspace binaries with the distributed features",
        binary.display()
    );
    let port = free_port();
    let log = dir.join(format!("{name}-{port}.log"));
    let log_file = std::fs::File::create(&log).expect("log file");
    let child = Command::new(&binary)
        .arg("--config")
        .arg(config)
        .env("LOGPOOL_LISTEN", format!("127.0.0.1:{port}"))
        .env("LOGPOOL_DATA_DIR", dir.join(format!("{name}-{port}-data")))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log_file))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn service");
    let client = LogpoolClient::new(&format!("http://127.0.0.1:{port}")).expect("client");
    let ready = wait_for(Duration::from_secs(60), || {
        let client = client.clone();
        async move { client.get("/readyz").await.ok() }
    })
    .await;
    let service = Service {
        name,
        child,
        client,
        log,
    };
    if ready.is_none() {
        panic!("{name} did not become ready:\n{}", log_tail(&service.log));
    }
    service
}

/// The log's first lines (where a start-up error is) and its last ones.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let head: String = text.lines().take(15).collect::<Vec<_>>().join("\n");
    format!("{head}\n...\n{}", &text[text.len().saturating_sub(2000)..])
}

async fn create_bucket(endpoint: &str, bucket: &str) {
    let response = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("create bucket");
    assert!(
        response.status().is_success(),
        "bucket: {}",
        response.status()
    );
}

async fn count(search: &LogpoolClient, project: &str, pool: &str, query: &str) -> Option<u64> {
    search.count(project, pool, query).await.ok()
}

/// One isolated deployment on the shared engine servers: its own relay, bucket,
/// database, etcd prefix and index prefix.
struct Deployment {
    _relay: logpool_engines::queue::pulsar::test_relay::TestRelay,
    dir: tempfile::TempDir,
    config_path: PathBuf,
    suffix: String,
}

impl Deployment {
    async fn new(engines: &Engines) -> Deployment {
        let relay = logpool_engines::queue::pulsar::test_relay::TestRelay::start(&engines.pulsar)
            .await
            .expect("relay");
        let suffix = format!(
            "{:x}",
            std::process::id() as u64 * 1_000_003 + rand::random::<u16>() as u64
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let bucket = format!("lp-e2e-{suffix}");
        create_bucket(&engines.s3, &bucket).await;
        let config = format!(
            r#"
    data_dir = "{data}"
    [queue]
    type = "pulsar"
    url = "{pulsar}"
    [index]
    type = "elasticsearch"
    url = "{es}"
    index_prefix = "lpe2e{suffix}"
    number_of_replicas = 0
    [metadata]
    type = "mysql"
    url = "{mysql}/logpool_e2e_{suffix}"
    [coordination]
    type = "etcd"
    endpoints = ["{etcd}"]
    prefix = "/logpool-e2e-{suffix}"
    [object_store]
    type = "s3"
    endpoint = "{s3}"
    bucket = "{bucket}"
    allow_http = true
    access_key_id = "test"
    secret_access_key = "test"
    [loghub]
    commit_interval_ms = 300
    "#,
            data = dir.path().display(),
            pulsar = relay.url(),
            es = engines.elasticsearch,
            mysql = engines.mysql,
            etcd = engines.etcd,
            s3 = engines.s3,
        );
        let config_path = dir.path().join("distributed.toml");
        std::fs::write(&config_path, config).expect("config");
        Deployment {
            _relay: relay,
            dir,
            config_path,
            suffix,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_five_services_as_processes_on_the_distributed_engines() {
    let Some(engines) = engines() else { return };
    let deployment = Deployment::new(&engines).await;
    let (dir, config_path, suffix) = (&deployment.dir, &deployment.config_path, &deployment.suffix);
    // control-api first: it migrates MySQL and publishes the first routing snapshot.
    let control = start_service("control-api", config_path, dir.path()).await;
    let mut services = [
        start_service("put-datas", config_path, dir.path()).await,
        start_service("search-api", config_path, dir.path()).await,
        start_service("loghub", config_path, dir.path()).await,
        start_service("tail-ws", config_path, dir.path()).await,
    ];
    let put = services[0].client.clone();
    let search = services[1].client.clone();
    let project = format!("e2e-{suffix}");

    // A pool created after every service started is served at once, everywhere.
    control
        .client
        .create_project(&project)
        .await
        .expect("project");
    control
        .client
        .create_pool(&project, &json!({ "name": "loghub", "shards": 2 }))
        .await
        .expect("pool");
    let mut expected_total = 0u64;
    let mut accepted_in_time = false;
    for attempt in 0..50 {
        match put
            .put_records(
                &project,
                "loghub",
                &[json!({ "message": "first", "dataset": "probe" })],
            )
            .await
        {
            Ok(_) => {
                accepted_in_time = true;
                break;
            }
            Err(error) if error.status() == Some(404) && attempt < 49 => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(error) => panic!("put-datas did not learn the new pool: {error}"),
        }
    }
    assert!(accepted_in_time);
    expected_total += 1;
    for system in LOGHUB_SYSTEMS {
        let records: Vec<Value> = loghub_lines(system)
            .into_iter()
            .enumerate()
            .map(|(i, line)| json!({ "message": line, "line_no": i, "dataset": system.to_lowercase() }))
            .collect();
        for chunk in records.chunks(1000) {
            let answer = put
                .put_records(&project, "loghub", chunk)
                .await
                .expect("put");
            assert_eq!(answer["accepted"].as_u64(), Some(chunk.len() as u64));
            expected_total += chunk.len() as u64;
        }
    }
    let indexed =
        wait_for(Duration::from_secs(120), || {
            let search = search.clone();
            let project = project.clone();
            async move {
                (count(&search, &project, "loghub", "").await? == expected_total).then_some(())
            }
        })
        .await;
    if indexed.is_none() {
        let seen = count(&search, &project, "loghub", "").await;
        panic!(
            "search-api saw {seen:?} of {expected_total} records\nloghub log:\n{}",
            log_tail(&services[2].log)
        );
    }
    for system in LOGHUB_SYSTEMS {
        let query = format!("dataset:{}", system.to_lowercase());
        let expected = loghub_lines(system).len() as u64;
        assert_eq!(
            count(&search, &project, "loghub", &query).await,
            Some(expected),
            "{system}"
        );
    }

    // A second pool, created while everything runs.
    control
        .client
        .create_pool(&project, &json!({ "name": "late", "shards": 1 }))
        .await
        .expect("late pool");
    let late_ok = wait_for(Duration::from_secs(30), || {
        let put = put.clone();
        let project = project.clone();
        async move {
            put.put_records(&project, "late", &[json!({ "message": "late pool works" })])
                .await
                .ok()
        }
    })
    .await;
    assert!(late_ok.is_some(), "put-datas never served the late pool");
    let late_found = wait_for(Duration::from_secs(60), || {
        let search = search.clone();
        let project = project.clone();
        async move {
            (count(&search, &project, "late", "\"late pool works\"").await? == 1).then_some(())
        }
    })
    .await;
    assert!(
        late_found.is_some(),
        "the late pool's record was not indexed:\n{}",
        log_tail(&services[2].log)
    );

    // Every service exposes its counters; loghub's match what went in.
    let metrics = reqwest::get(format!("{}/metrics", services[2].client.base_url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("logpool_loghub_records_indexed_total"),
        "{metrics}"
    );

    for service in services.iter_mut() {
        stop(service).await;
    }
    let mut control = control;
    stop(&mut control).await;
}

async fn stop(service: &mut Service) {
    if let Some(pid) = service.child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    match tokio::time::timeout(Duration::from_secs(30), service.child.wait()).await {
        Ok(Ok(status)) => assert!(
            status.success(),
            "{} exited with {status}:\n{}",
            service.name,
            log_tail(&service.log)
        ),
        _ => panic!("{} did not stop in time", service.name),
    }
}

/// Reads `logpool_loghub_records_indexed_total` from a loghub's /metrics text.
fn indexed_records(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("logpool_loghub_records_indexed_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

/// Reads every record id of a pool through search-api: id -> copies stored (empty
/// while search-api cannot answer yet).
async fn stored_ids(
    search: &LogpoolClient,
    project: &str,
    pool: &str,
) -> std::collections::HashMap<String, usize> {
    count_records_by(search, project, pool, "rid")
        .await
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_two_loghubs_share_the_queue_and_survive_a_kill_9() {
    let Some(engines) = engines() else { return };
    let deployment = Deployment::new(&engines).await;
    let (dir, config_path, suffix) = (&deployment.dir, &deployment.config_path, &deployment.suffix);
    let control = start_service("control-api", config_path, dir.path()).await;
    let put_service = start_service("put-datas", config_path, dir.path()).await;
    let search_service = start_service("search-api", config_path, dir.path()).await;
    let mut doomed = start_service("loghub", config_path, dir.path()).await;
    let mut survivor = start_service("loghub", config_path, dir.path()).await;
    let (put, search) = (put_service.client.clone(), search_service.client.clone());
    let project = format!("ha-{suffix}");
    control
        .client
        .create_project(&project)
        .await
        .expect("project");
    control
        .client
        .create_pool(&project, &json!({ "name": "app", "shards": 4 }))
        .await
        .expect("pool");
    wait_for(Duration::from_secs(30), || {
        let put = put.clone();
        let project = project.clone();
        async move {
            put.put_records(&project, "app", &[json!({ "rid": "probe" })])
                .await
                .ok()
        }
    })
    .await
    .expect("pool served");

    let mut acked = std::collections::HashSet::from(["probe".to_string()]);
    for batch in 0..60 {
        let records: Vec<Value> = (0..200)
            .map(|i| json!({ "rid": format!("{batch}-{i}"), "message": "ha record" }))
            .collect();
        if put.put_records(&project, "app", &records).await.is_ok() {
            acked.extend((0..200).map(|i| format!("{batch}-{i}")));
        }
        if batch == 20 {
            // Both loghubs share the subscription: wait until the doomed one has indexed
            // its share, then it dies without a chance to ack what it holds.
            let doomed_indexed = wait_for(Duration::from_secs(30), || {
                let metrics = format!("{}/metrics", doomed.client.base_url());
                async move {
                    let text = reqwest::get(metrics).await.ok()?.text().await.ok()?;
                    (indexed_records(&text) > 0).then_some(())
                }
            })
            .await;
            assert!(
                doomed_indexed.is_some(),
                "the first loghub never indexed anything"
            );
            doomed.child.start_kill().expect("kill -9");
            doomed.child.wait().await.expect("reap");
        }
    }
    let complete = wait_for(Duration::from_secs(120), || {
        let search = search.clone();
        let project = project.clone();
        let acked = acked.clone();
        async move {
            let ids = stored_ids(&search, &project, "app").await;
            acked.iter().all(|id| ids.contains_key(id)).then_some(ids)
        }
    })
    .await;
    let ids = match complete {
        Some(ids) => ids,
        None => {
            let ids = stored_ids(&search, &project, "app").await;
            let missing = acked.iter().filter(|id| !ids.contains_key(*id)).count();
            panic!(
                "{missing} of {} acknowledged records missing\nsurvivor log:\n{}",
                acked.len(),
                log_tail(&survivor.log)
            );
        }
    };
    let duplicated: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).take(10).collect();
    assert!(
        duplicated.is_empty(),
        "records stored twice: {duplicated:?}"
    );
    assert_eq!(ids.len(), acked.len(), "nothing but acknowledged records");

    stop(&mut survivor).await;
    for mut service in [put_service, search_service, control] {
        stop(&mut service).await;
    }
}
