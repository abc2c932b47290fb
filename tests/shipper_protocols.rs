//! OTLP logs over HTTP (`POST /v1/logs`) and Loki push (`POST /loki/api/v1/push`)
//! against the standalone product, with clients nobody here wrote: the OpenTelemetry
//! Python SDK's OTLP/HTTP exporter, `opentelemetry-proto`'s messages, and
//! `python-logging-loki` (`tests/shipper_clients.py`). Each sends N records and
//! exactly N are found, with the fields `docs/api.md` documents; a malformed record
//! is rejected alone where the protocol has partial success; bad input gets a 4xx
//! naming the problem.
//!
//! The Python clients are installed by `scripts/test-engines.sh`. Without them those
//! tests skip visibly; with `LOGPOOL_REQUIRE_ENGINES` set they fail instead. The
//! raw-HTTP checks always run.

use logpool_client::wire::search::Hit;
use logpool_e2e::pools::{self, all_hits, assert_exactly, run_python_client};
use logpool_e2e::{admin_http, TestServer, ADMIN_KEY};
use prost::Message as _;
use serde_json::{json, Value};

const PROJECT: &str = "ship";

/// The Python that has the OpenTelemetry SDK and its OTLP/HTTP exporter.
fn otel_python() -> Option<String> {
    logpool_e2e::python_with(
        "opentelemetry.exporter.otlp.proto.http",
        "opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2",
    )
}

/// The Python that has `python-logging-loki`.
fn loki_python() -> Option<String> {
    logpool_e2e::python_with("logging_loki", "python-logging-loki==0.3.1")
}

/// Runs a command of `tests/shipper_clients.py` and reads the JSON line it prints.
async fn client(python: &str, args: &[&str]) -> Value {
    run_python_client(python, "shipper_clients.py", args).await
}

/// A server (bodies up to 256 KiB) with project `ship` and `pools` of two shards.
async fn server_with_pools(pools: &[&str]) -> TestServer {
    let pools: Vec<Value> = pools
        .iter()
        .map(|pool| json!({ "name": pool, "shards": 2 }))
        .collect();
    pools::server_with_pools(PROJECT, &pools, |config| {
        config.limits.max_body_bytes = 256 * 1024;
    })
    .await
}

fn field<'a>(hit: &'a Hit, name: &str) -> &'a Value {
    hit.fields.get(name).unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_sdk_exporter_stores_every_record_with_the_documented_fields() {
    let Some(python) = otel_python() else { return };
    let server = server_with_pools(&["by-header", "by-resource"]).await;
    let url = server.url();
    const N: u64 = 41;
    let n = N.to_string();
    let sent = client(
        &python,
        &[
            "otlp-sdk",
            &url,
            ADMIN_KEY,
            &n,
            "headers",
            PROJECT,
            "by-header",
        ],
    )
    .await;
    assert!(
        sent["results"]
            .as_array()
            .is_some_and(|r| !r.is_empty() && r.iter().all(|result| result == "SUCCESS")),
        "{sent}"
    );
    assert_exactly(&server.client, PROJECT, "by-header", N).await;
    let records = all_hits(&server.client, PROJECT, "by-header").await;
    let trace_id = sent["trace_id"].as_str().expect("trace id");
    let logged: Vec<&Hit> = records
        .iter()
        .filter(|hit| field(hit, "scope.name") == "shop.orders")
        .collect();
    assert_eq!(logged.len() as u64, N - 1);
    for hit in &logged {
        assert_eq!(field(hit, "resource.attributes.service.name"), "checkout");
        assert_eq!(field(hit, "attributes.shop.region"), "eu");
        assert_eq!(field(hit, "trace_id"), trace_id);
        assert_eq!(field(hit, "span_id"), &sent["span_id"]);
        let message = field(hit, "message").as_str().expect("message");
        let order: i64 = message
            .strip_prefix("order ")
            .and_then(|rest| rest.strip_suffix(" placed"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("message `{message}`"));
        assert_eq!(field(hit, "attributes.order.id"), order);
        let (text, number) = if order % 2 == 1 {
            ("WARN", 13)
        } else {
            ("INFO", 9)
        };
        assert_eq!(field(hit, "severity_text"), text, "{:?}", hit.fields);
        assert_eq!(field(hit, "severity_number"), number);
        assert!(field(hit, "observed_time_unix_nano").is_number());
    }
    let audit = records
        .iter()
        .find(|hit| field(hit, "scope.name") == "shop.audit")
        .expect("the structured record");
    assert_eq!(field(audit, "scope.version"), "1.2.3");
    assert_eq!(field(audit, "body.op"), "refund");
    assert_eq!(field(audit, "body.amount"), 12.5);
    assert_eq!(field(audit, "attributes.audit"), true);
    assert_eq!(field(audit, "severity_number"), 17);
    assert_eq!(field(audit, "severity_text"), "ERROR");
    assert_eq!(field(audit, "event_name"), "order.refund");
    assert!(audit.fields.get("trace_id").is_none());

    // The pool named by resource attributes instead of headers.
    client(
        &python,
        &[
            "otlp-sdk",
            &url,
            ADMIN_KEY,
            "5",
            "resource",
            PROJECT,
            "by-resource",
        ],
    )
    .await;
    assert_exactly(&server.client, PROJECT, "by-resource", 5).await;
    assert_exactly(&server.client, PROJECT, "by-header", N).await;
    server.standalone.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_protobuf_partial_success_rejects_only_the_malformed_record() {
    let Some(python) = otel_python() else { return };
    let server = server_with_pools(&["partial"]).await;
    let answer = client(
        &python,
        &["otlp-raw", &server.url(), ADMIN_KEY, PROJECT, "partial"],
    )
    .await;
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(answer["content_type"], "application/x-protobuf");
    assert_eq!(answer["rejected"], 1, "{answer}");
    let message = answer["message"].as_str().expect("message");
    assert!(
        message.contains("logRecords[1]") && message.contains("span_id must be 8 bytes, got 3"),
        "{message}"
    );
    assert_exactly(&server.client, PROJECT, "partial", 2).await;
    let mut messages: Vec<String> = all_hits(&server.client, PROJECT, "partial")
        .await
        .iter()
        .map(|hit| {
            field(hit, "message")
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    messages.sort();
    assert_eq!(messages, ["first", "third"]);
    server.standalone.shutdown().await.expect("shutdown");
}

/// An OTLP/JSON request body with one resource naming `pool` (or none).
fn otlp_json(pool: Option<&str>, records: Vec<Value>) -> Value {
    let mut attributes = vec![json!({"key": "service.name", "value": {"stringValue": "api"}})];
    if let Some(pool) = pool {
        attributes.push(json!({"key": "logpool.project", "value": {"stringValue": PROJECT}}));
        attributes.push(json!({"key": "logpool.pool", "value": {"stringValue": pool}}));
    }
    json!({"resourceLogs": [{
        "resource": {"attributes": attributes},
        "scopeLogs": [{"scope": {"name": "raw"}, "logRecords": records}]
    }]})
}

async fn post(
    server: &TestServer,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, String, String) {
    let response = admin_http()
        .post(format!("{}{path}", server.url()))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (
        status,
        media,
        String::from_utf8_lossy(&response.bytes().await.expect("body")).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_json_partial_success_and_bad_input_are_named() {
    let server = server_with_pools(&["json"]).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos()
        .to_string();
    let good = |text: &str| {
        json!({"timeUnixNano": now, "severityNumber": 9, "body": {"stringValue": text},
               "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
               "attributes": [{"key": "n", "value": {"intValue": "7"}}]})
    };
    let short_trace = json!({"body": {"stringValue": "bad"}, "traceId": "abcd"});
    // Older than the pool's event-time window: refused by PutDatas, named here.
    let ancient = json!({"timeUnixNano": "946684800000000000", "body": {"stringValue": "old"}});
    let body = otlp_json(
        Some("json"),
        vec![good("one"), short_trace, good("two"), ancient],
    );
    let (status, media, text) = post(
        &server,
        "/v1/logs",
        "application/json",
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(
        (status, media.as_str()),
        (200, "application/json"),
        "{text}"
    );
    let answer: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        answer["partialSuccess"]["rejectedLogRecords"], 2,
        "{answer}"
    );
    let message = answer["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("logRecords[1]: trace_id must be 16 bytes, got 2")
            && message.contains("logRecords[3]: event time")
            && message.contains("max_event_age_days"),
        "{answer}"
    );
    // A request with nothing rejected answers an empty response.
    let body = otlp_json(Some("json"), vec![good("three")]);
    let (status, _, text) = post(
        &server,
        "/v1/logs",
        "application/json",
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!((status, text.as_str()), (200, "{}"));
    assert_exactly(&server.client, PROJECT, "json", 3).await;
    let stored = all_hits(&server.client, PROJECT, "json").await;
    assert!(stored.iter().all(
        |hit| field(hit, "trace_id") == "5b8efff798038103d269b633813fc60c"
            && field(hit, "span_id") == "eee19b7ec3c1b174"
            && field(hit, "attributes.n") == 7
            && field(hit, "severity_text") == "INFO"
            && field(hit, "resource.attributes.service.name") == "api"
    ));

    // Bad input: each a 4xx whose Status names the problem; nothing more is stored.
    // A 20 KB resource attribute shared by 100 records: a small body that would
    // expand to 2 MB of records, more than 4 x max_body_bytes (256 KiB here).
    let mut expanding = otlp_json(Some("json"), vec![json!({}); 100]);
    expanding["resourceLogs"][0]["resource"]["attributes"][0]["value"]["stringValue"] =
        json!("r".repeat(20_000));
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "expanding",
            "application/json",
            expanding.to_string().into_bytes(),
            413,
            "4 x max_body_bytes",
        ),
        (
            "broken protobuf",
            "application/x-protobuf",
            vec![0x0a, 0xff, 0xff, 0x01],
            400,
            "malformed protobuf body",
        ),
        (
            "broken JSON",
            "application/json",
            b"{\"resourceLogs\": [".to_vec(),
            400,
            "malformed OTLP/JSON body",
        ),
        (
            "bad time",
            "application/json",
            otlp_json(Some("json"), vec![json!({"timeUnixNano": "soon"})])
                .to_string()
                .into_bytes(),
            400,
            "logRecords[0].timeUnixNano",
        ),
        (
            "unknown pool",
            "application/json",
            otlp_json(Some("nope"), vec![good("x")])
                .to_string()
                .into_bytes(),
            404,
            "pool `nope` not found",
        ),
        (
            "no pool",
            "application/json",
            otlp_json(None, vec![good("x")]).to_string().into_bytes(),
            400,
            "X-Logpool-Pool",
        ),
        (
            "wrong type",
            "text/plain",
            b"hello".to_vec(),
            415,
            "application/x-protobuf",
        ),
        (
            "oversized",
            "application/json",
            vec![b' '; 300 * 1024],
            413,
            "max_body_bytes",
        ),
    ];
    for (case, content_type, body, expected, named) in cases {
        let (status, media, text) = post(&server, "/v1/logs", content_type, body).await;
        assert_eq!(status, expected, "{case}: {text}");
        assert!(text.contains(named), "{case}: `{text}` names `{named}`");
        if content_type == "application/json" {
            let status: Value = serde_json::from_str(&text).expect("a JSON Status");
            assert!(
                status["code"].as_i64().is_some_and(|code| code > 0),
                "{case}: {status}"
            );
            assert_eq!(media, "application/json");
        }
    }
    assert_exactly(&server.client, PROJECT, "json", 3).await;
    server.standalone.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_logging_loki_pushes_land_with_labels_as_fields() {
    let Some(python) = loki_python() else { return };
    let server = server_with_pools(&["loki-v1", "loki-v0"]).await;
    const N: u64 = 30;
    let n = N.to_string();
    // Version 1 sends today's JSON; version 0 (the library's default) the legacy one.
    for (version, pool) in [("1", "loki-v1"), ("0", "loki-v0")] {
        let sent = client(
            &python,
            &["loki", &server.url(), ADMIN_KEY, &n, version, PROJECT, pool],
        )
        .await;
        assert_eq!(sent["errors"], json!([]), "version {version}");
        assert_exactly(&server.client, PROJECT, pool, N).await;
        let stored = all_hits(&server.client, PROJECT, pool).await;
        let mut invoices: Vec<i64> = stored
            .iter()
            .map(|hit| {
                assert_eq!(field(hit, "labels.app"), "billing");
                assert_eq!(
                    field(hit, "labels.logger"),
                    &json!(format!("billing.v{version}"))
                );
                let message = field(hit, "message").as_str().expect("message");
                let invoice: i64 = message
                    .strip_prefix("invoice ")
                    .and_then(|rest| rest.strip_suffix(" sent"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("message `{message}`"));
                let level = if invoice % 3 == 0 { "error" } else { "info" };
                assert_eq!(field(hit, "labels.severity"), level);
                invoice
            })
            .collect();
        invoices.sort_unstable();
        assert_eq!(
            invoices,
            (0..N as i64).collect::<Vec<_>>(),
            "version {version}"
        );
    }
    server.standalone.shutdown().await.expect("shutdown");
}

/// A Loki `PushRequest` (snappy-compressed protobuf) as Promtail sends it.
fn loki_protobuf(labels: &str, lines: &[(&str, &[(&str, &str)])]) -> Vec<u8> {
    use logpool_put_datas::loki::proto::{
        EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter, Timestamp,
    };
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let request = PushRequest {
        streams: vec![StreamAdapter {
            labels: labels.to_string(),
            entries: lines
                .iter()
                .enumerate()
                .map(|(i, (line, metadata))| EntryAdapter {
                    timestamp: Some(Timestamp {
                        seconds,
                        nanos: i as i32,
                    }),
                    line: line.to_string(),
                    structured_metadata: metadata
                        .iter()
                        .map(|(name, value)| LabelPairAdapter {
                            name: name.to_string(),
                            value: value.to_string(),
                        })
                        .collect(),
                })
                .collect(),
        }],
    };
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .expect("snappy")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_protobuf_and_json_pushes_and_their_errors() {
    let server = server_with_pools(&["loki"]).await;
    let push = "/loki/api/v1/push";
    let labels = r#"{job="web", logpool_project="ship", logpool_pool="loki"}"#;
    let body = loki_protobuf(labels, &[("GET /", &[("trace_id", "t1")]), ("GET /a", &[])]);
    let (status, _, text) = post(&server, push, "application/x-protobuf", body).await;
    assert_eq!(status, 204, "{text}");
    // JSON with one entry whose timestamp is not nanoseconds: the others are
    // stored, and the 400 names the one left out (as Loki answers partial writes).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos()
        .to_string();
    let body = json!({"streams": [{"stream": {"job": "api", "logpool_project": PROJECT, "logpool_pool": "loki"},
        "values": [[now, "one", {"user": "ann"}], ["yesterday", "bad"], [now, "two"],
                   ["946684800000000000", "old"]]}]});
    let (status, media, text) = post(
        &server,
        push,
        "application/json",
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(media.starts_with("text/plain"), "{media}");
    assert!(
        text.contains("2 entries rejected (2 stored)")
            && text.contains("streams[0].values[1]: timestamp `yesterday`")
            && text.contains("streams[0].values[3]: event time")
            && text.contains("max_event_age_days"),
        "{text}"
    );
    assert_exactly(&server.client, PROJECT, "loki", 4).await;
    let stored = all_hits(&server.client, PROJECT, "loki").await;
    let by_message = |message: &str| {
        stored
            .iter()
            .find(|hit| field(hit, "message") == message)
            .unwrap_or_else(|| panic!("`{message}` stored"))
    };
    assert_eq!(field(by_message("GET /"), "labels.job"), "web");
    assert_eq!(field(by_message("GET /"), "metadata.trace_id"), "t1");
    assert_eq!(field(by_message("one"), "metadata.user"), "ann");
    assert_eq!(field(by_message("two"), "labels.job"), "api");

    // Bad input: a text 4xx naming the problem; nothing stored.
    let with_pool = |labels: &str| loki_protobuf(labels, &[("x", &[])]);
    let big_labels = format!(
        r#"{{logpool_project="ship", logpool_pool="loki", big="{}"}}"#,
        "l".repeat(20_000)
    );
    let entries: Vec<(&str, &[(&str, &str)])> = vec![("x", &[]); 100];
    let expanding = loki_protobuf(&big_labels, &entries);
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "expanding",
            "application/x-protobuf",
            expanding,
            413,
            "4 x max_body_bytes",
        ),
        (
            "bad snappy",
            "application/x-protobuf",
            b"\xff\xff\xff\xff\xffnot snappy".to_vec(),
            400,
            "malformed snappy body",
        ),
        (
            "broken protobuf",
            "application/x-protobuf",
            snap::raw::Encoder::new()
                .compress_vec(&[0x0a, 0xff, 0xff, 0x01])
                .expect("snappy"),
            400,
            "malformed protobuf body",
        ),
        (
            "bad labels",
            "application/x-protobuf",
            with_pool("{job=web}"),
            400,
            "streams[0].labels",
        ),
        (
            "unknown pool",
            "application/x-protobuf",
            with_pool(r#"{logpool_project="ship", logpool_pool="nope"}"#),
            404,
            "pool `nope` not found",
        ),
        (
            "no pool",
            "application/x-protobuf",
            with_pool(r#"{job="web"}"#),
            400,
            "X-Logpool-Pool",
        ),
        (
            "broken JSON",
            "application/json",
            b"{\"streams\": [".to_vec(),
            400,
            "malformed Loki JSON body",
        ),
        (
            "wrong type",
            "text/plain",
            b"x".to_vec(),
            415,
            "application/x-protobuf",
        ),
        (
            "oversized",
            "application/json",
            vec![b' '; 300 * 1024],
            413,
            "max_body_bytes",
        ),
    ];
    for (case, content_type, body, expected, named) in cases {
        let (status, media, text) = post(&server, push, content_type, body).await;
        assert_eq!(status, expected, "{case}: {text}");
        assert!(media.starts_with("text/plain"), "{case}: {media}");
        assert!(text.contains(named), "{case}: `{text}` names `{named}`");
    }
    // Headers name the pool too, and win over labels.
    let response = admin_http()
        .post(format!("{}{push}", server.url()))
        .header("content-type", "application/x-protobuf")
        .header("x-logpool-project", PROJECT)
        .header("x-logpool-pool", "loki")
        .body(with_pool(
            r#"{logpool_project="ship", logpool_pool="nope"}"#,
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 204);
    assert_exactly(&server.client, PROJECT, "loki", 5).await;
    server.standalone.shutdown().await.expect("shutdown");
}

/// Sends the OTLP/JSON `body` up to `attempts` times and returns the first refusal:
/// its status, `Retry-After` and body text.
async fn first_refused_otlp_json(
    server: &TestServer,
    body: &[u8],
    attempts: usize,
) -> Option<(u16, Option<reqwest::header::HeaderValue>, String)> {
    for _ in 0..attempts {
        let response = admin_http()
            .post(format!("{}/v1/logs", server.url()))
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("send");
        if response.status().is_success() {
            continue;
        }
        let retry_after = response.headers().get("retry-after").cloned();
        let status = response.status().as_u16();
        return Some((status, retry_after, response.text().await.expect("body")));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after_in_each_protocol() {
    let server = TestServer::start_with(|config| {
        // Irrefutable unless a distributed queue engine is compiled in.
        #[allow(irrefutable_let_patterns)]
        if let logpool_engines::config::QueueConfig::Embedded(queue) = &mut config.queue {
            queue.max_backlog_bytes_per_shard = 4096;
        }
        // Nothing is acked for a minute, so the backlog only grows.
        config.loghub.commit_interval_ms = 60_000;
    })
    .await
    .expect("server");
    let full = json!({ "name": "full", "shards": 1 });
    pools::create_project_with_pools(&server.client, PROJECT, &[full]).await;
    let records: Vec<Value> = (0..100)
        .map(|i| json!({"body": {"stringValue": format!("payload {i} {}", "z".repeat(40))}}))
        .collect();
    let body = otlp_json(Some("full"), records).to_string().into_bytes();
    let (status, retry_after, text) = first_refused_otlp_json(&server, &body, 50)
        .await
        .expect("the queue filled up");
    assert_eq!(status, 503, "{text}");
    assert!(retry_after.is_some(), "Retry-After is set");
    let otlp_status: Value = serde_json::from_str(&text).expect("a JSON Status");
    assert_eq!(
        otlp_status["code"], 14,
        "UNAVAILABLE, which OTLP clients retry"
    );
    // The queue is still full: Loki push gets its 503 too.
    let response = admin_http()
        .post(format!("{}/loki/api/v1/push", server.url()))
        .header("content-type", "application/x-protobuf")
        .body(loki_protobuf(
            r#"{logpool_project="ship", logpool_pool="full"}"#,
            &[("more", &[])],
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().get("retry-after").is_some());
    server.standalone.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_quotas_refuse_with_429_and_retry_after_in_each_protocol() {
    let server = server_with_pools(&["metered"]).await;
    let response = admin_http()
        .put(format!("{}/v1/projects/{PROJECT}/quotas", server.url()))
        .json(&json!({ "ingest_records_per_s": 50 }))
        .send()
        .await
        .expect("set quota");
    assert!(response.status().is_success(), "{}", response.status());
    let records: Vec<Value> = (0..40)
        .map(|i| json!({"body": {"stringValue": format!("metered {i}")}}))
        .collect();
    let body = otlp_json(Some("metered"), records).to_string().into_bytes();
    let (status, retry_after, text) = first_refused_otlp_json(&server, &body, 20)
        .await
        .expect("the quota ran out");
    assert_eq!(status, 429, "{text}");
    assert!(retry_after.is_some(), "Retry-After is set");
    let otlp_status: Value = serde_json::from_str(&text).expect("a JSON Status");
    assert_eq!(otlp_status["code"], 8, "RESOURCE_EXHAUSTED");
    assert!(
        text.contains("ingest_records_per_s"),
        "names the limit: {text}"
    );
    let response = admin_http()
        .post(format!("{}/loki/api/v1/push", server.url()))
        .header("content-type", "application/x-protobuf")
        .header("x-logpool-project", PROJECT)
        .header("x-logpool-pool", "metered")
        .body(loki_protobuf(r#"{job="x"}"#, &[("more", &[])]))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().get("retry-after").is_some());
    let text = response.text().await.expect("body");
    assert!(text.contains("ingest_records_per_s"), "{text}");
    server.standalone.shutdown().await.expect("shutdown");
}
