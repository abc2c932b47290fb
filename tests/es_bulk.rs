//! Elasticsearch bulk ingest (`/es`), seen by shippers nobody here wrote: the
//! official Python client's bulk helper (`tests/es_bulk_client.py`) and syslog-ng's
//! `elasticsearch-http()` destination, each sending N documents of which exactly N
//! must be found, with `@timestamp` as the record time and the fields as
//! documented; plus raw requests for the per-item errors and the refusals of bad
//! input.
//!
//! syslog-ng is installed by `scripts/test-shippers.sh install`, the Python client
//! by `scripts/test-engines.sh` with the other test clients (the test command runs
//! both). Without them the tests skip visibly; with `LOGPOOL_REQUIRE_ENGINES` set
//! they fail instead.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use logpool_core::record::format_time_ns;
use logpool_e2e::pools::{
    all_hits, assert_exactly, project_key, run_python_client, server_with_pools,
};
use logpool_e2e::{wait_for_count, TestServer};
use serde_json::{json, Value};

const PROJECT: &str = "shop";

/// A server with project `shop` and pool `pool`, and a `writer` key limited to the
/// project (what a shipper is given).
async fn server_with_pool(
    pool: &str,
    adjust: impl FnOnce(&mut logpool_e2e::Config),
) -> (TestServer, String) {
    let pools = [json!({ "name": pool, "shards": 2, "retention_days": 3650 })];
    let server = server_with_pools(PROJECT, &pools, adjust).await;
    let key = project_key(&server.client, "writer", PROJECT, "shipper").await;
    (server, key)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_elasticsearch_bulk_helper_stores_every_document_and_fails_only_the_bad_ones() {
    let Some(python) = logpool_e2e::python_with("elasticsearch", "elasticsearch==7.13.4") else {
        return;
    };
    let (server, key) = server_with_pool("web", |_| {}).await;
    const COUNT: i64 = 250;
    let start_ms = now_ms() - 3_600_000;
    let args = [
        format!("{}/es", server.url()),
        key.clone(),
        format!("{PROJECT}.web"),
        COUNT.to_string(),
        start_ms.to_string(),
    ];
    let report = run_python_client(&python, "es_bulk_client.py", &args).await;
    assert_eq!(report["version"], logpool_client::wire::es::ES_VERSION);
    assert_eq!(report["stored"], COUNT, "{report}");
    let failed = report["failed"].as_array().expect("failed items");
    let statuses: Vec<(i64, &str)> = failed
        .iter()
        .map(|item| {
            (
                item["status"].as_i64().unwrap_or_default(),
                item["type"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (400, "mapper_parsing_exception"),
            (404, "index_not_found_exception")
        ],
        "{report}"
    );

    assert_exactly(&server.client, PROJECT, "web", COUNT as u64).await;
    let hits = all_hits(&server.client, PROJECT, "web").await;
    let mut seen: Vec<i64> = hits
        .iter()
        .map(|hit| hit.fields["n"].as_i64().expect("n"))
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..COUNT).collect::<Vec<_>>());
    // `@timestamp` (epoch milliseconds) is the record time; nested objects are
    // flattened with dots.
    let seventh = hits
        .iter()
        .find(|hit| hit.fields["n"] == 7)
        .expect("document 7");
    assert_eq!(seventh.time, format_time_ns((start_ms + 7) * 1_000_000));
    assert_eq!(seventh.fields["message"], "bulk document 7");
    assert_eq!(seventh.fields["host.name"], "web-1");
    assert!(!seventh.fields.contains_key("@timestamp"));
}

/// The syslog-ng binary and its HTTP module, or `None` after saying why (a panic
/// under `LOGPOOL_REQUIRE_ENGINES`).
fn syslog_ng() -> Option<PathBuf> {
    let binary = PathBuf::from("/usr/sbin/syslog-ng");
    let scl = Path::new("/usr/share/syslog-ng/include/scl/elasticsearch/elastic-http.conf");
    let http_module = std::fs::read_dir("/usr/lib/syslog-ng")
        .into_iter()
        .flatten()
        .flatten()
        .any(|dir| dir.path().join("libhttp.so").exists());
    if binary.exists() && scl.exists() && http_module {
        return Some(binary);
    }
    let message = "syslog-ng with elasticsearch-http() is missing; scripts/test-shippers.sh \
                   installs it (Debian syslog-ng-core, syslog-ng-mod-http, syslog-ng-scl)";
    if std::env::var_os("LOGPOOL_REQUIRE_ENGINES").is_some() {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    None
}

/// The syslog-ng configuration of the README, reading RFC 5424 lines from `input`.
fn syslog_ng_config(input: &Path, url: &str, key: &str) -> String {
    format!(
        r#"@version: 3.38
@include "scl.conf"
options {{ stats_freq(0); frac-digits(3); keep-hostname(yes); }};
source s_test {{ file("{input}" flags(syslog-protocol) follow-freq(0.1)); }};
destination d_logpool {{
  elasticsearch-http(
    url("{url}/es/_bulk")
    index("shop.syslog")
    type("")
    user("syslog-ng")
    password("{key}")
    template("$(format-json host=${{HOST}} program=${{PROGRAM}} pid=${{PID}} severity=${{LEVEL}} facility=${{FACILITY}} message=${{MESSAGE}} @timestamp=${{ISODATE}})")
    batch_lines(100)
    batch_timeout(200)
    workers(2)
  );
}};
log {{ source(s_test); destination(d_logpool); }};
"#,
        input = input.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_ng_elasticsearch_http_delivers_every_message() {
    let Some(binary) = syslog_ng() else {
        return;
    };
    let (server, key) = server_with_pool("syslog", |_| {}).await;
    const COUNT: usize = 500;
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("input.log");
    // RFC 5424 lines an hour old, each with its own millisecond.
    let start_ms = now_ms() - 3_600_000;
    let mut file = std::fs::File::create(&input).expect("input");
    for n in 0..COUNT {
        let stamp = format_time_ns((start_ms + n as i64) * 1_000_000);
        writeln!(
            file,
            "<14>1 {stamp} web01 shopapp 4242 - - order {n} shipped"
        )
        .expect("write");
    }
    drop(file);
    let config = dir.path().join("syslog-ng.conf");
    std::fs::write(&config, syslog_ng_config(&input, &server.url(), &key)).expect("config");
    let mut child = tokio::process::Command::new(binary)
        .arg("--foreground")
        .arg("--no-caps")
        .arg(format!("--cfgfile={}", config.display()))
        .arg(format!(
            "--persist-file={}",
            dir.path().join("persist").display()
        ))
        .arg(format!("--pidfile={}", dir.path().join("pid").display()))
        .arg(format!("--control={}", dir.path().join("ctl").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start syslog-ng");

    let found = wait_for_count(&server.client, PROJECT, "syslog", "", COUNT as u64).await;
    if found != COUNT as u64 {
        let _ = child.start_kill();
        let output = child.wait_with_output().await.expect("syslog-ng output");
        panic!(
            "{found} of {COUNT} messages arrived; syslog-ng said: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_exactly(&server.client, PROJECT, "syslog", COUNT as u64).await;
    let _ = child.start_kill();

    let hits = all_hits(&server.client, PROJECT, "syslog").await;
    let mut orders: Vec<usize> = hits
        .iter()
        .map(|hit| {
            let message = hit.fields["message"].as_str().expect("message");
            message
                .strip_prefix("order ")
                .and_then(|rest| rest.strip_suffix(" shipped"))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected message {message:?}"))
        })
        .collect();
    orders.sort_unstable();
    assert_eq!(orders, (0..COUNT).collect::<Vec<_>>());
    let tenth = hits
        .iter()
        .find(|hit| hit.fields["message"] == "order 10 shipped")
        .expect("order 10");
    // The sender's time (`${ISODATE}` as `@timestamp`) is the record time.
    assert_eq!(tenth.time, format_time_ns((start_ms + 10) * 1_000_000));
    assert_eq!(tenth.fields["host"], "web01");
    assert_eq!(tenth.fields["program"], "shopapp");
    assert_eq!(tenth.fields["pid"], "4242");
    assert_eq!(tenth.fields["severity"], "info");
    assert_eq!(tenth.fields["facility"], "user");
}

/// A raw request to the server with the key as the Basic auth password.
async fn post_bulk(
    server: &TestServer,
    key: &str,
    path: &str,
    body: Vec<u8>,
    gzip: bool,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", server.url()))
        .basic_auth("shipper", Some(key))
        .header("content-type", "application/x-ndjson");
    let body = if gzip {
        request = request.header("content-encoding", "gzip");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&body).expect("gzip");
        encoder.finish().expect("gzip")
    } else {
        body
    };
    let response = request.body(body).send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Each item's action and status.
fn item_statuses(answer: &Value) -> Vec<(String, i64)> {
    answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            let (action, result) = item
                .as_object()
                .and_then(|o| o.iter().next())
                .expect("item");
            (action.clone(), result["status"].as_i64().expect("status"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_item_gets_its_own_status_and_broken_requests_are_refused_whole() {
    let (server, key) = server_with_pool("web", |config| {
        config.limits.max_body_bytes = 64 * 1024;
    })
    .await;
    let body = concat!(
        "{\"index\":{\"_index\":\"shop.web\",\"_id\":\"a\"}}\n",
        "{\"@timestamp\":\"2026-01-02T03:04:05.5Z\",\"message\":\"first\"}\n",
        "{\"index\":{\"_index\":\"shop.web\"}}\n",
        "{\"message\": \"broken\"\n",
        "{\"create\":{\"_index\":\"shop.absent\"}}\n",
        "{\"message\":\"nowhere\"}\n",
        "{\"update\":{\"_index\":\"shop.web\",\"_id\":\"a\"}}\n",
        "{\"doc\":{\"message\":\"changed\"}}\n",
        "{\"delete\":{\"_index\":\"shop.web\",\"_id\":\"a\"}}\n",
        "{\"create\":{}}\n",
        "{\"message\":\"second\",\"time\":\"own\",\"@timestamp\":1767323045000}\n",
        "{\"index\":{\"_index\":\"filebeat-7.10.2\"}}\n",
        "{\"message\":\"not a pool name\"}\n",
        // The key is limited to project `shop`.
        "{\"index\":{\"_index\":\"bank.web\"}}\n",
        "{\"message\":\"another project\"}\n",
    );
    // `/es/{index}/_bulk` names the index of actions without one; gzip is read.
    let (status, answer) = post_bulk(&server, &key, "/es/shop.web/_bulk", body.into(), true).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["errors"], true);
    let expected: Vec<(String, i64)> = [
        ("index", 201),
        ("index", 400),
        ("create", 404),
        ("update", 400),
        ("delete", 400),
        ("create", 201),
        ("index", 400),
        ("index", 403),
    ]
    .iter()
    .map(|(action, status)| (action.to_string(), *status))
    .collect();
    assert_eq!(item_statuses(&answer), expected, "{answer}");
    let items = answer["items"].as_array().expect("items");
    assert_eq!(items[0]["index"]["_id"], "a");
    assert_eq!(items[0]["index"]["result"], "created");
    assert_eq!(
        items[1]["index"]["error"]["type"],
        "mapper_parsing_exception"
    );
    assert!(
        items[1]["index"]["error"]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("line 4")),
        "{answer}"
    );
    assert_eq!(
        items[2]["create"]["error"]["type"],
        "index_not_found_exception"
    );
    assert_eq!(
        items[6]["index"]["error"]["type"],
        "invalid_index_name_exception"
    );
    assert_exactly(&server.client, PROJECT, "web", 2).await;
    let hits = all_hits(&server.client, PROJECT, "web").await;
    let first = hits
        .iter()
        .find(|hit| hit.fields["message"] == "first")
        .expect("first");
    assert_eq!(first.time, format_time_ns(1_767_323_045_500_000_000));
    let second = hits
        .iter()
        .find(|hit| hit.fields["message"] == "second")
        .expect("second");
    assert_eq!(second.time, format_time_ns(1_767_323_045_000_000_000));
    assert_eq!(second.fields["time_original"], "own");

    // Broken structure: the whole request is refused, naming the line; nothing of
    // it is stored.
    let unknown =
        "{\"index\":{\"_index\":\"shop.web\"}}\n{\"message\":\"x\"}\n{\"upsert\":{}}\n{}\n";
    let (status, answer) = post_bulk(&server, &key, "/es/_bulk", unknown.into(), false).await;
    assert_eq!(status, 400, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("line 3") && message.contains("upsert"),
        "{answer}"
    );
    let broken = "{\"index\":{\"_index\":\"shop.web\"}\n{\"message\":\"x\"}\n";
    let (status, answer) = post_bulk(&server, &key, "/es/_bulk", broken.into(), false).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("line 1"));
    // Over `max_body_bytes` (64 KiB here): 413 naming the limit.
    let line = "{\"index\":{\"_index\":\"shop.web\"}}\n{\"message\":\"padding padding\"}\n";
    let (status, answer) = post_bulk(
        &server,
        &key,
        "/es/_bulk",
        line.repeat(2000).into_bytes(),
        false,
    )
    .await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["limit"], "max_body_bytes", "{answer}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        server
            .client
            .count(PROJECT, "web", "")
            .await
            .expect("count"),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_calls_and_shipper_auth_forms_answer_as_shippers_expect() {
    let (server, key) = server_with_pool("web", |_| {}).await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.url());
    // The key as the Basic password (any user), as `ApiKey` and as `Bearer`.
    for request in [
        http.get(url("/es/")).basic_auth("anyone", Some(&key)),
        http.get(url("/es"))
            .header("authorization", format!("ApiKey {key}")),
        http.get(url("/es/")).bearer_auth(&key),
    ] {
        let response = request.send().await.expect("info");
        assert_eq!(response.status(), 200);
        let info: Value = response.json().await.expect("json");
        assert_eq!(
            info["version"]["number"],
            logpool_client::wire::es::ES_VERSION
        );
        // What 7.x clients (Logstash, the Python client 7.14 to 7.17) check of a
        // 7.10 server.
        assert_eq!(info["tagline"], "You Know, for Search");
        assert_eq!(info["version"]["build_flavor"], "default");
    }
    let no_key = http.get(url("/es/")).send().await.expect("no key");
    assert_eq!(no_key.status(), 401);
    let wrong = http
        .get(url("/es/"))
        .basic_auth("anyone", Some("lpk_nobody_wrong"))
        .send()
        .await
        .expect("wrong key");
    assert_eq!(wrong.status(), 401);
    // The same roles: a reader key may not ingest, whichever way it is sent.
    let reader = project_key(&server.client, "reader", PROJECT, "").await;
    let body = "{\"index\":{\"_index\":\"shop.web\"}}\n{\"message\":\"x\"}\n";
    let (status, _) = post_bulk(&server, &reader, "/es/_bulk", body.into(), false).await;
    assert_eq!(status, 403);

    let head = |path: &str| http.head(url(path)).basic_auth("x", Some(&key)).send();
    assert_eq!(head("/es/shop.web").await.expect("head").status(), 200);
    assert_eq!(head("/es/shop.absent").await.expect("head").status(), 404);
    assert_eq!(
        head("/es/_template/filebeat-7.10.2")
            .await
            .expect("head")
            .status(),
        200
    );
    let get_json = |path: &'static str| {
        let request = http.get(url(path)).basic_auth("x", Some(&key));
        async move {
            let response = request.send().await.expect(path);
            response.json::<Value>().await.expect("json")
        }
    };
    let license = get_json("/es/_license").await;
    assert_eq!(license["license"]["status"], "active");
    let xpack = get_json("/es/_xpack").await;
    assert_eq!(xpack["features"], json!({}));
    let health = http
        .get(url("/es/_cluster/health"))
        .basic_auth("x", Some(&key))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    assert_eq!(
        server
            .client
            .count(PROJECT, "web", "")
            .await
            .expect("count"),
        0
    );
}

/// A server whose queue refuses the first batch sent to any pool's shard 0, with
/// pools `web` and `api` of one shard each.
async fn server_with_a_refusing_queue() -> (TestServer, String) {
    let (server, key) = server_with_pool("web", |config| {
        config.idempotency.test_fail_first_produce_to_shard = Some(0);
    })
    .await;
    server
        .client
        .create_pool(
            PROJECT,
            &json!({ "name": "api", "shards": 1, "retention_days": 3650 }),
        )
        .await
        .expect("pool");
    (server, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_that_cannot_take_the_items_gets_them_retried_never_lost() {
    // Nothing stored: the whole request is the queue's 503 with `Retry-After`, which
    // shippers that read only the status line retry too; the retry stores it once.
    let (server, key) = server_with_a_refusing_queue().await;
    let one_pool = "{\"index\":{\"_index\":\"shop.api\"}}\n{\"message\":\"m\"}\n".repeat(3);
    let response = reqwest::Client::new()
        .post(format!("{}/es/_bulk", server.url()))
        .basic_auth("shipper", Some(&key))
        .body(one_pool.clone())
        .send()
        .await
        .expect("bulk");
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let (status, answer) = post_bulk(&server, &key, "/es/_bulk", one_pool.into(), false).await;
    assert_eq!(
        (status, &answer["errors"]),
        (200, &json!(false)),
        "{answer}"
    );
    assert_exactly(&server.client, PROJECT, "api", 3).await;

    // One pool refused, another stored: a 200 whose refused items say 503, to be
    // retried alone.
    let (server, key) = server_with_a_refusing_queue().await;
    let two_pools = concat!(
        "{\"index\":{\"_index\":\"shop.web\"}}\n{\"message\":\"w\"}\n",
        "{\"index\":{\"_index\":\"shop.api\"}}\n{\"message\":\"a\"}\n",
    );
    let (status, answer) = post_bulk(&server, &key, "/es/_bulk", two_pools.into(), false).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["errors"], true);
    let mut statuses: Vec<i64> = item_statuses(&answer).into_iter().map(|(_, s)| s).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 503], "{answer}");
    let refused = answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|item| item["index"]["status"] == 503)
        .expect("the refused item");
    assert_eq!(
        refused["index"]["error"]["type"],
        "es_rejected_execution_exception"
    );
    let stored_pool = if refused["index"]["_index"] == "shop.web" {
        "api"
    } else {
        "web"
    };
    assert_exactly(&server.client, PROJECT, stored_pool, 1).await;
}
