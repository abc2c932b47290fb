//! Distributed logpool behind its one front door: the five services as processes on
//! the real engines, and nginx in front of them running the gateway configuration
//! rendered from the Helm chart (helm/logpool), so the chart's routing is what is
//! tested. Through the gateway's single address: the client creates, puts and
//! searches; a live tail stays open well past the gateway's read timeout (tail-ws
//! pings keep it alive) and still delivers records; the client's address reaches
//! the services (failed-auth throttling per client); a 50 MiB body is refused with
//! put-datas's own 413 JSON; `logpool bench --url` runs; and the console walkthrough
//! passes in Chromium.
//!
//! Needs the engine servers (scripts/test-engines.sh), nginx and the chart renderer
//! (scripts/test-chart.sh install) and, for the console, Chromium
//! (scripts/test-browser.sh install). Without them the tests skip visibly, and fail
//! when LOGPOOL_REQUIRE_ENGINES is set.
#![cfg(feature = "distributed")]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::StreamExt;
use logpool_client::LogpoolClient;
use logpool_e2e::chart::{chart_dir, nginx, render_config_key, tools_or_skip, workspace};
use logpool_e2e::services::{engines, log_tail, Deployment, Service};
use logpool_e2e::{free_port, logpool_binary, wait_for, ADMIN_KEY};
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// The gateway's read timeout for tails in these tests: short, so that outliving
/// it several times takes seconds. tail-ws pings every second here.
const TAIL_READ_TIMEOUT_SECS: u64 = 3;

/// One cluster at a time: each is five services and nginx on two cores.
static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// nginx running the chart's gateway configuration (stopped when dropped).
struct Gateway {
    child: Child,
    url: String,
    error_log: PathBuf,
    /// One line per request, naming the upstream that answered (`upstream=...`).
    access_log: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // A killed nginx master leaves its workers running (and listening): stop it
        // with SIGTERM and wait until it has stopped them, before kill_on_drop.
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// The five services of one deployment and the gateway in front of them.
struct Cluster {
    deployment: Deployment,
    services: Vec<Service>,
    gateway: Gateway,
}

impl Cluster {
    /// A client of the gateway with the operator key.
    fn client(&self) -> LogpoolClient {
        LogpoolClient::new(&self.gateway.url)
            .expect("client")
            .with_api_key(ADMIN_KEY)
    }

    /// The logs of every process, for a failure message.
    fn logs(&self) -> String {
        let mut text = String::new();
        for service in &self.services {
            text.push_str(&format!(
                "--- {}\n{}\n",
                service.name,
                log_tail(&service.log)
            ));
        }
        text.push_str(&format!(
            "--- gateway\n{}\n",
            log_tail(&self.gateway.error_log)
        ));
        text
    }
}

/// Everything these tests need, or `None` (a visible skip) without it.
fn prerequisites() -> Option<logpool_e2e::services::Engines> {
    tools_or_skip(&["renderer", "nginx"])?;
    engines()
}

/// host:port of a service's HTTP address.
fn address_of(service: &Service) -> String {
    service
        .client
        .base_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// Renders the chart's nginx.conf with the services' addresses and starts nginx.
async fn start_gateway(services: &[Service], dir: &Path) -> Gateway {
    let find = |name: &str| {
        address_of(
            services
                .iter()
                .find(|s| s.name == name)
                .expect("service started"),
        )
    };
    let run = dir.join("gateway");
    std::fs::create_dir_all(&run).expect("gateway dir");
    let port = free_port();
    let error_log = run.join("error.log");
    let values = format!(
        "gateway:\n  listenAddress: 127.0.0.1\n  port: {port}\n  runDir: {run}\n  errorLog: {error}\n  accessLog: {run}/access.log\n  \
         workerProcesses: 1\n  workerConnections: 1024\n  tailReadTimeout: {TAIL_READ_TIMEOUT_SECS}s\n  \
         upstreams:\n    putDatas: \"{put}\"\n    searchApi: \"{search}\"\n    tailWs: \"{tail}\"\n    controlApi: \"{control}\"\n",
        run = run.display(),
        error = error_log.display(),
        put = find("put-datas"),
        search = find("search-api"),
        tail = find("tail-ws"),
        control = find("control-api"),
    );
    let values_path = run.join("local-values.yaml");
    std::fs::write(&values_path, values).expect("values");
    let conf =
        render_config_key(&chart_dir(), &[values_path], "nginx.conf").expect("render nginx.conf");
    assert!(conf.contains(&format!("proxy_read_timeout {TAIL_READ_TIMEOUT_SECS}s;")));
    let conf_path = run.join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("nginx.conf");
    let child = Command::new(nginx().expect("nginx"))
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(&run)
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(run.join("nginx.out")).expect("out"),
        ))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn nginx");
    let url = format!("http://127.0.0.1:{port}");
    let mut gateway = Gateway {
        child,
        url,
        error_log,
        access_log: run.join("access.log"),
    };
    let health = format!("{}/gateway/healthz", gateway.url);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if reqwest::get(&health).await.is_ok_and(|r| r.status() == 200) {
            return gateway;
        }
        if !matches!(gateway.child.try_wait(), Ok(None)) || Instant::now() > deadline {
            panic!(
                "nginx did not start:\n{}\n{}",
                std::fs::read_to_string(run.join("nginx.out")).unwrap_or_default(),
                log_tail(&gateway.error_log)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The five services (tail-ws pinging every second, the gateway trusted for
/// X-Forwarded-For) and the gateway.
async fn start_cluster(engines: &logpool_e2e::services::Engines) -> Cluster {
    // Pool stats read backlogs from the broker's metrics, as a deployment would.
    let metrics_url = std::env::var("LOGPOOL_TEST_PULSAR_METRICS_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:18080/metrics".to_string());
    let deployment = Deployment::new(engines)
        .await
        .with_env("LOGPOOL_QUEUE__METRICS_URL", &metrics_url)
        .with_env("LOGPOOL_TAIL__PING_INTERVAL_SECS", "1")
        .with_env("LOGPOOL_HTTP__TRUSTED_PROXIES", "127.0.0.1");
    let mut services = Vec::new();
    // control-api first: it migrates MySQL and publishes the first routing snapshot.
    for name in [
        "control-api",
        "put-datas",
        "search-api",
        "loghub",
        "tail-ws",
    ] {
        services.push(deployment.start(name).await);
    }
    let gateway = start_gateway(&services, deployment.dir.path()).await;
    Cluster {
        deployment,
        services,
        gateway,
    }
}

/// Creates a project and a pool through the gateway and waits until put-datas
/// (through the gateway) accepts records for it.
async fn project_with_pool(client: &LogpoolClient, project: &str, pool: &str) {
    client
        .create_project(project)
        .await
        .expect("project through the gateway");
    client
        .create_pool(project, &json!({ "name": pool, "shards": 2 }))
        .await
        .expect("pool through the gateway");
    let accepted = wait_for(Duration::from_secs(15), || async {
        client
            .put_records(project, pool, &[json!({ "message": "probe" })])
            .await
            .ok()
    })
    .await;
    assert!(
        accepted.is_some(),
        "put-datas never accepted records through the gateway"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_one_address_serves_ingest_search_tail_bench_and_refuses_a_big_body_with_json() {
    let Some(engines) = prerequisites() else {
        return;
    };
    let _one = ONE_CLUSTER.lock().await;
    let started = Instant::now();
    let cluster = start_cluster(&engines).await;
    println!("cluster up in {:?}", started.elapsed());
    let client = cluster.client();
    let project = format!("gw-{}", cluster.deployment.suffix);
    project_with_pool(&client, &project, "web").await;

    // Ingest and search through the one address.
    let records: Vec<Value> = (0..50)
        .map(|i| json!({ "message": format!("request {i} done"), "status": 200 + i % 2 }))
        .collect();
    client
        .put_records(&project, "web", &records)
        .await
        .expect("put through the gateway");
    let found = wait_for(Duration::from_secs(30), || async {
        let n = client.count(&project, "web", "done").await.ok()?;
        (n >= 50).then_some(n)
    })
    .await;
    assert_eq!(
        found,
        Some(50),
        "searched through the gateway:\n{}",
        cluster.logs()
    );

    // A streaming search passes through line by line (NDJSON), not as an nginx page.
    let stream = client
        .request(
            reqwest::Method::GET,
            format!(
                "{}/v1/projects/{project}/pools/web/search/stream?query=done",
                cluster.gateway.url
            ),
        )
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);
    let text = stream.text().await.expect("stream body");
    assert!(
        text.lines()
            .all(|line| serde_json::from_str::<Value>(line).is_ok()),
        "{text}"
    );

    every_route_reaches_its_service(&cluster).await;
    live_tail_outlives_the_read_timeout(&cluster, &client, &project).await;
    client_address_reaches_the_services(&cluster).await;
    big_body_gets_the_products_413(&cluster, &project).await;
    bench_runs_against_the_gateway(&cluster).await;
    println!("whole test {:?}", started.elapsed());
}

/// Every route of every service, from the services' own route lists, is sent by the
/// gateway to that service (the access log names the upstream that answered).
async fn every_route_reaches_its_service(cluster: &Cluster) {
    let lists = [
        (
            "control-api",
            logpool_control_api::routes().specs().to_vec(),
        ),
        ("put-datas", logpool_put_datas::routes().specs().to_vec()),
        ("search-api", logpool_search_api::routes().specs().to_vec()),
        ("tail-ws", logpool_tail_ws::tail::routes().specs().to_vec()),
        ("tail-ws", logpool_tail_ws::pull::routes().specs().to_vec()),
        // What Grafana's Elasticsearch data source sends: the read API under `/es`
        // is search-api's although the rest of `/es` is put-datas's.
        ("search-api", vec![grafana_msearch_probe()]),
    ];
    let http = reqwest::Client::new();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (owner, specs) in lists {
        let service = cluster
            .services
            .iter()
            .find(|s| s.name == owner)
            .expect("service");
        let expected = format!("upstream={}", address_of(service));
        for spec in specs {
            let path = spec
                .path
                .replace("{project}", "routing-probe")
                .replace("{pool}", "p")
                .replace("{tenant}", "t")
                .replace("{shard}", "0")
                .replace("{group}", "g")
                .replace("{id}", "x")
                .replace("{index}", "routing-probe.p")
                .replace("{name}", "logs-template")
                .replace("{file}", "app.js");
            // No key: each service answers at once (401, or the public page), and
            // nothing changes. The refusals count against a made-up client address
            // (the gateway is a trusted proxy), not against this test's own.
            let probe = format!("routing-probe-{checked}");
            let method =
                reqwest::Method::from_bytes(spec.method.as_str().as_bytes()).expect("method");
            let separator = if path.contains('?') { '&' } else { '?' };
            let answer = http
                .request(
                    method,
                    format!("{}{path}{separator}probe={probe}", cluster.gateway.url),
                )
                .header("x-forwarded-for", "198.18.0.1")
                .send()
                .await
                .expect("an answer through the gateway");
            let _ = answer.bytes().await;
            // nginx logs a request once its answer is sent: wait for the line.
            let marker = format!("probe={probe} ");
            let line = wait_for(Duration::from_secs(5), || {
                let log = std::fs::read_to_string(&cluster.gateway.access_log).unwrap_or_default();
                let line = log
                    .lines()
                    .find(|line| line.contains(&marker))
                    .map(str::to_string);
                async move { line }
            })
            .await
            .unwrap_or_default();
            if !line.contains(&expected) {
                wrong.push(format!(
                    "{} {} -> {line} (expected {owner})",
                    spec.method, spec.path
                ));
            }
            checked += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "routed to the wrong service:\n{}",
        wrong.join("\n")
    );
    assert!(checked > 40, "only {checked} routes");
    println!("{checked} routes reach their service through the gateway");
}

/// Grafana's multi-search, with the URL parameter it adds.
fn grafana_msearch_probe() -> logpool_api::auth::RouteSpec {
    logpool_api::auth::RouteSpec {
        method: axum::http::Method::POST,
        path: "/es/_msearch?max_concurrent_shard_requests=5".to_string(),
        permission: logpool_core::access::Permission::Read,
        token_in_query: false,
    }
}

/// A tail through the gateway is still open after several times the gateway's read
/// timeout with no record flowing (tail-ws's pings keep it), then delivers a record.
async fn live_tail_outlives_the_read_timeout(
    cluster: &Cluster,
    client: &LogpoolClient,
    project: &str,
) {
    let url = format!(
        "{}/v1/projects/{project}/pools/web/tail?query=marker",
        cluster.gateway.url.replacen("http://", "ws://", 1)
    );
    let mut request = url.into_client_request().expect("ws request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_KEY}").parse().expect("header"),
    );
    let (mut socket, response) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .expect("handshake in time")
    .expect("the tail upgrades through the gateway");
    assert_eq!(response.status(), 101);

    // Quiet for three read timeouts: only pings arrive (answered by the client).
    let opened = Instant::now();
    let quiet = Duration::from_secs(3 * TAIL_READ_TIMEOUT_SECS);
    let quiet_until = opened + quiet;
    let mut pings = 0;
    while Instant::now() < quiet_until {
        let left = quiet_until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.next()).await {
            Err(_) => break,
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(Message::Text(text)))) => {
                assert!(!text.contains("marker"), "no record was sent yet: {text}")
            }
            // A close, a reset or the end of the stream: the tail did not survive.
            Ok(other) => panic!(
                "the tail ended after {:?}: {other:?}\n{}",
                opened.elapsed(),
                cluster.logs()
            ),
        }
    }
    assert!(pings >= 2, "tail-ws pinged {pings} times in {quiet:?}");

    client
        .put_records(
            project,
            "web",
            &[json!({ "message": "marker after the quiet" })],
        )
        .await
        .expect("put");
    let delivered = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(frame) = socket.next().await {
            if let Message::Text(text) = frame.expect("frame") {
                let frame: Value = serde_json::from_str(&text).expect("JSON frame");
                if frame["type"] == "records" && text.contains("marker after the quiet") {
                    return true;
                }
            }
        }
        false
    })
    .await;
    assert_eq!(
        delivered,
        Ok(true),
        "the record reached the tail through the gateway:\n{}",
        cluster.logs()
    );
    let _ = socket.close(None).await;
    let errors = std::fs::read_to_string(&cluster.gateway.error_log).unwrap_or_default();
    assert!(!errors.contains("upstream timed out"), "{errors}");
}

/// The gateway passes the client's address on: refused keys from one client are
/// throttled (429) while another client's refused key still gets a 401.
async fn client_address_reaches_the_services(cluster: &Cluster) {
    let http = reqwest::Client::new();
    let attempt = |client_address: &'static str| {
        http.get(format!("{}/v1/whoami", cluster.gateway.url))
            .header("authorization", "Bearer lpk_wrong_key")
            .header("x-forwarded-for", client_address)
            .send()
    };
    let mut throttled = false;
    for _ in 0..25 {
        let status = attempt("203.0.113.7").await.expect("request").status();
        if status == 429 {
            throttled = true;
            break;
        }
        assert_eq!(status, 401);
    }
    assert!(throttled, "the refused client was never throttled");
    let other = attempt("198.51.100.9").await.expect("request");
    assert_eq!(
        other.status(),
        401,
        "another client is not throttled: the services see each client's own address"
    );
}

/// 50 MiB to PutDatas: put-datas's 413 JSON naming the limit, not an nginx page.
async fn big_body_gets_the_products_413(cluster: &Cluster, project: &str) {
    let line = format!("{{\"message\":\"{}\"}}\n", "x".repeat(1000));
    let body = line.repeat(50 * 1024 * 1024 / line.len() + 1);
    assert!(body.len() >= 50 * 1024 * 1024);
    let response = reqwest::Client::new()
        .post(format!(
            "{}/v1/projects/{project}/pools/web/logs",
            cluster.gateway.url
        ))
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("an answer, not a broken connection");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, 413, "{text}\n{}", cluster.logs());
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}: {text}"
    );
    let error: Value = serde_json::from_str(&text).expect("JSON");
    assert!(text.contains("max_body_bytes"), "names the limit: {error}");
    assert!(!text.contains("nginx"), "{text}");
}

/// `logpool bench --url <gateway>` with a small record count.
async fn bench_runs_against_the_gateway(cluster: &Cluster) {
    let run = Command::new(logpool_binary())
        .args(["bench", "--url", &cluster.gateway.url])
        .args([
            "--records",
            "3000",
            "--clients",
            "2",
            "--batch-records",
            "500",
        ])
        .args([
            "--paced-secs",
            "0",
            "--query-runs",
            "2",
            "--no-baseline",
            "--json",
        ])
        // The protocol comparison once, small: `_bulk` and OTLP through the gateway.
        .args(["--protocol-records", "3000", "--protocol-rounds", "1"])
        .arg("--logs")
        .arg(workspace().join("tests/data/loghub-2k"))
        .env("LOGPOOL_API_KEY", ADMIN_KEY)
        .env("LOGPOOL_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("bench finishes in time")
        .expect("bench runs");
    assert!(
        output.status.success(),
        "bench through the gateway failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        cluster.logs()
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["records"], 3000, "{report}");
    let accepted = report
        .pointer("/ingest/accepted_records_per_s")
        .and_then(Value::as_f64)
        .unwrap_or_default();
    assert!(accepted > 0.0, "{report}");
    for protocol in ["putdatas", "es_bulk", "otlp"] {
        let rate = report
            .pointer(&format!("/protocol_ingest/{protocol}/records_per_s"))
            .and_then(Value::as_f64)
            .unwrap_or_default();
        assert!(rate > 0.0, "{protocol} through the gateway: {report}");
    }
    println!("bench through the gateway: {accepted:.0} records/s accepted");
}

/// The console walkthrough of tests/console.rs, in Chromium, at the gateway's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_console_walkthrough_through_the_gateway() {
    let Some(engines) = prerequisites() else {
        return;
    };
    let browser_missing = logpool_e2e::console_walkthrough::browser_missing();
    if let Some(why) = browser_missing {
        assert!(
            std::env::var_os("LOGPOOL_REQUIRE_ENGINES").is_none(),
            "browser missing ({why}) but LOGPOOL_REQUIRE_ENGINES is set"
        );
        eprintln!("SKIPPED: {why}; run scripts/test-browser.sh install");
        return;
    }
    let _one = ONE_CLUSTER.lock().await;
    let started = Instant::now();
    let cluster = start_cluster(&engines).await;
    let (output, shots) =
        logpool_e2e::console_walkthrough::run(&cluster.gateway.url, "console-screenshots-gateway")
            .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "console walkthrough through the gateway failed:\n{stdout}\n{stderr}\n{}",
        cluster.logs()
    );
    logpool_e2e::console_walkthrough::assert_every_step_ran(&stdout, &shots);
    println!(
        "console walkthrough through the gateway in {:?}",
        started.elapsed()
    );
}
