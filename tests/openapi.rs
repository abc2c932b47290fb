//! The OpenAPI document: generated from the routes and the wire types, checked into
//! `docs/openapi.json`, served at `/v1/openapi.json`, valid for a validator nobody
//! here wrote, and true of the answers a running server gives.
//!
//! After changing a route or a wire type, regenerate the file with
//! `LOGPOOL_WRITE_OPENAPI=1 cargo test --test openapi`.

use std::path::PathBuf;

use logpool_e2e::{admin_http, wait_for_count, TestServer};
use serde_json::{json, Value};

fn checked_in_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json")
}

fn generated() -> String {
    logpool_standalone::openapi::document().expect("the document is JSON")
}

#[test]
fn checked_in_document_is_the_generated_one() {
    let generated = generated();
    if std::env::var_os("LOGPOOL_WRITE_OPENAPI").is_some() {
        std::fs::write(checked_in_path(), &generated).expect("write docs/openapi.json");
    }
    let checked_in = std::fs::read_to_string(checked_in_path()).expect("docs/openapi.json");
    assert!(
        checked_in == generated,
        "docs/openapi.json differs from the routes and wire types; regenerate it with \
         `LOGPOOL_WRITE_OPENAPI=1 cargo test --test openapi`"
    );
}

#[test]
fn every_route_is_documented_with_its_permission_and_roles() {
    let document: Value = serde_json::from_str(&generated()).expect("json");
    assert_eq!(document["openapi"], "3.1.0");
    let routes = logpool_standalone::openapi::routes();
    assert!(routes.len() > 40, "{} routes", routes.len());
    for route in &routes {
        let operation = &document["paths"][&route.path][route.method.to_ascii_lowercase()];
        assert!(
            operation.is_object(),
            "{} {} is not in the document",
            route.method,
            route.path
        );
        assert_eq!(
            operation["x-permission"], route.permission,
            "{} {}",
            route.method, route.path
        );
        let roles: Vec<&str> = operation["x-roles"]
            .as_array()
            .expect("x-roles")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(roles, route.roles, "{} {}", route.method, route.path);
        assert_eq!(
            roles.is_empty(),
            route.permission == "public",
            "only public routes need no role: {} {}",
            route.method,
            route.path
        );
    }
    // Every schema a route or a schema refers to is in the document.
    let text = generated();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap_or_default();
        assert!(
            document["components"]["schemas"][name].is_object(),
            "`{name}` is referred to but not defined"
        );
    }
    // The search answer's schema is the wire type's, field by field.
    let search = &document["paths"]["/v1/projects/{project}/pools/{pool}/search"]["post"];
    assert_eq!(
        search["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/SearchAnswer"
    );
    let answer = &document["components"]["schemas"]["SearchAnswer"]["properties"];
    for field in [
        "cursor",
        "hits",
        "partial",
        "progress",
        "total",
        "truncated",
    ] {
        assert!(answer[field].is_object(), "SearchAnswer.{field}");
    }
    assert_eq!(
        search["x-roles"],
        serde_json::json!(["operator", "tenant_admin", "project_admin", "reader"])
    );
}

#[test]
fn every_answer_is_typed_and_every_error_status_listed() {
    let document: Value = serde_json::from_str(&generated()).expect("json");
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            operations += 1;
            let responses = operation["responses"].as_object().expect("responses");
            assert!(
                !responses.contains_key("default"),
                "{method} {path}: every status is listed, none falls under `default`"
            );
            // A JSON answer names its schema (only the document itself is any JSON).
            for (status, response) in responses {
                let schema = &response["content"]["application/json"]["schema"];
                if schema.is_null() || path == "/v1/openapi.json" {
                    continue;
                }
                assert!(
                    schema["$ref"].is_string(),
                    "{method} {path} {status}: the JSON answer has no schema of its own"
                );
            }
            if operation["x-permission"] != "public" {
                for status in ["400", "401", "403", "404", "429", "500", "503"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} does not list {status}"
                    );
                }
            }
        }
    }
    assert!(operations > 40, "{operations} operations");
    let statuses = |method: &str, path: &str| -> Vec<String> {
        document["paths"][path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path}"))
            .keys()
            .cloned()
            .collect()
    };
    let pool = "/v1/projects/{project}/pools/{pool}";
    let put = statuses("post", &format!("{pool}/logs"));
    for status in ["200", "409", "413", "415", "429", "503"] {
        assert!(
            put.iter().any(|s| s == status),
            "PutDatas lists {status}: {put:?}"
        );
    }
    for (method, route) in [
        ("get", "/search"),
        ("post", "/search"),
        ("post", "/search/stream"),
        ("post", "/histogram"),
        ("post", "/query"),
        ("get", "/records/{id}/context"),
    ] {
        let listed = statuses(method, &format!("{pool}{route}"));
        assert!(
            listed.iter().any(|s| s == "408"),
            "{method} {route} lists 408 for `wait_for`: {listed:?}"
        );
    }
    let records = statuses("get", &format!("{pool}/shards/{{shard}}/records"));
    assert!(records.iter().any(|s| s == "410"), "{records:?}");
    let create = statuses("post", "/v1/projects/{project}/pools");
    assert!(create.iter().any(|s| s == "409") && create.iter().any(|s| s == "415"));
    // The live tail's frames are described although WebSocket is no operation.
    let frames = document["components"]["schemas"]["TailFrame"]["oneOf"]
        .as_array()
        .expect("TailFrame");
    let kinds: Vec<&Value> = frames
        .iter()
        .map(|frame| &frame["properties"]["type"]["enum"][0])
        .collect();
    assert_eq!(
        kinds,
        [
            &Value::from("records"),
            &Value::from("dropped"),
            &Value::from("error")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_serves_the_document_without_a_key() {
    let server = TestServer::start().await.expect("server");
    let response = reqwest::get(format!("{}/v1/openapi.json", server.client.base_url()))
        .await
        .expect("get");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok()),
        Some("application/json")
    );
    let served = response.text().await.expect("body");
    let checked_in = std::fs::read_to_string(checked_in_path()).expect("docs/openapi.json");
    assert!(
        served == checked_in,
        "the served document is the checked-in one"
    );
    server.standalone.shutdown().await.expect("shutdown");
}

/// The Python that has `openapi_spec_validator`, or `None` (after saying why) to skip.
fn python() -> Option<String> {
    logpool_e2e::python_with("openapi_spec_validator", "openapi-spec-validator==0.9.0")
}

/// Validates `document` as OpenAPI 3.1; the validator's complaint on failure.
fn validate(python: &str, document: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, document).expect("write");
    let output = std::process::Command::new(python)
        .args([
            "-c",
            "import json, sys\n\
             from openapi_spec_validator import validate\n\
             from openapi_spec_validator.validation import OpenAPIV31SpecValidator\n\
             validate(json.load(open(sys.argv[1])), cls=OpenAPIV31SpecValidator)\n",
        ])
        .arg(&path)
        .output()
        .expect("run python");
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
fn document_is_valid_openapi_3_1() {
    let Some(python) = python() else { return };
    let document = generated();
    validate(&python, &document).unwrap_or_else(|error| panic!("{error}"));
    // The validator does refuse a broken document: a response without a description.
    let mut broken: Value = serde_json::from_str(&document).expect("json");
    broken["paths"]["/healthz"]["get"]["responses"]["200"]
        .as_object_mut()
        .expect("a 200 answer")
        .remove("description");
    let refused = validate(&python, &broken.to_string());
    assert!(
        refused.is_err(),
        "a document without a required field is refused"
    );
}

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    i64::try_from(since_epoch.as_millis()).expect("ms")
}

/// One answer of the running server, filed under the route it came from.
struct Sample {
    method: &'static str,
    template: &'static str,
    status: u16,
    body: Value,
}

/// Sends a request (as the operator) and files its answer under `template`.
async fn sample(
    server: &TestServer,
    samples: &mut Vec<Sample>,
    method: &'static str,
    template: &'static str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let url = format!("{}{path}", server.url());
    let mut request = admin_http().request(method.parse().expect("method"), url);
    if let Some(body) = &body {
        request = request.json(body);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body: Value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: {text}"))
    };
    samples.push(Sample {
        method,
        template,
        status,
        body: body.clone(),
    });
    body
}

/// Samples the alert routes of project `shapes` (pool `web` exists).
async fn sample_alerts(s: &TestServer, samples: &mut Vec<Sample>) {
    let channels = "/v1/projects/{project}/alert-channels";
    // Nothing listens on port 9: the test send answers 200 with the failure.
    let channel_body = json!({ "name": "hook", "kind": "webhook",
        "config": { "url": "http://127.0.0.1:9/hook", "secret": "k", "headers": { "X-Team": "web" } } });
    let channel = sample(
        s,
        samples,
        "POST",
        channels,
        "/v1/projects/shapes/alert-channels",
        Some(channel_body.clone()),
    )
    .await;
    let channel_id = channel["id"].as_str().expect("channel id").to_string();
    let channel_path = format!("/v1/projects/shapes/alert-channels/{channel_id}");
    sample(
        s,
        samples,
        "POST",
        "/v1/projects/{project}/alert-channels/{id}/test",
        &format!("{channel_path}/test"),
        None,
    )
    .await;
    for (method, body) in [("GET", None), ("PUT", Some(channel_body))] {
        sample(
            s,
            samples,
            method,
            "/v1/projects/{project}/alert-channels/{id}",
            &channel_path,
            body,
        )
        .await;
    }
    sample(
        s,
        samples,
        "GET",
        channels,
        "/v1/projects/shapes/alert-channels",
        None,
    )
    .await;
    let rules = "/v1/projects/{project}/alerts";
    let rule_body = json!({ "name": "errors", "pool": "web", "query": "level:ERROR",
        "sql": "SELECT host, count(*) AS c GROUP BY host", "group_by": "host",
        "window_secs": 300, "every_secs": 60, "condition": { "op": ">", "threshold": 10 },
        "labels": { "team": "web" }, "channels": [channel_id] });
    let rule = sample(
        s,
        samples,
        "POST",
        rules,
        "/v1/projects/shapes/alerts",
        Some(rule_body.clone()),
    )
    .await;
    let rule_id = rule["id"].as_str().expect("rule id").to_string();
    let rule_path = format!("/v1/projects/shapes/alerts/{rule_id}");
    for (method, body) in [("GET", None), ("PUT", Some(rule_body))] {
        sample(
            s,
            samples,
            method,
            "/v1/projects/{project}/alerts/{id}",
            &rule_path,
            body,
        )
        .await;
    }
    sample(
        s,
        samples,
        "GET",
        "/v1/projects/{project}/alerts/{id}/history",
        &format!("{rule_path}/history?limit=10"),
        None,
    )
    .await;
    sample(s, samples, "GET", rules, "/v1/projects/shapes/alerts", None).await;
    sample(
        s,
        samples,
        "POST",
        rules,
        "/v1/projects/shapes/alerts",
        Some(
            json!({ "name": "bad", "pool": "web", "query": "level:(ERROR",
            "window_secs": 300, "every_secs": 60, "condition": { "op": ">", "threshold": 1 } }),
        ),
    )
    .await;
    let silences = "/v1/projects/{project}/alert-silences";
    sample(
        s,
        samples,
        "POST",
        silences,
        "/v1/projects/shapes/alert-silences",
        Some(json!({ "rule_id": rule_id, "ends_at": "now+1h", "comment": "deploy" })),
    )
    .await;
    sample(
        s,
        samples,
        "GET",
        silences,
        "/v1/projects/shapes/alert-silences",
        None,
    )
    .await;
}

/// Asks every kind of route of a running server and checks each answer against the
/// schema the document gives for its route and status: nothing the answer has is
/// missing from its schema (objects are checked closed), nothing required is absent,
/// and the status is one the document lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_what_the_document_says() {
    let Some(python) = python() else { return };
    let server = TestServer::start().await.expect("server");
    let samples = &mut Vec::new();
    let s = &server;
    const POOL: &str = "/v1/projects/{project}/pools/{pool}";
    let pool = "/v1/projects/shapes/pools/web";
    sample(s, samples, "GET", "/healthz", "/healthz", None).await;
    sample(s, samples, "GET", "/readyz", "/readyz", None).await;
    sample(s, samples, "GET", "/v1/whoami", "/v1/whoami", None).await;
    sample(
        s,
        samples,
        "GET",
        "/v1/cluster/members",
        "/v1/cluster/members",
        None,
    )
    .await;
    sample(s, samples, "GET", "/v1/tenants", "/v1/tenants", None).await;
    sample(
        s,
        samples,
        "GET",
        "/v1/tenants/{tenant}",
        "/v1/tenants/default",
        None,
    )
    .await;
    let key = sample(
        s,
        samples,
        "POST",
        "/v1/tenants/{tenant}/keys",
        "/v1/tenants/default/keys",
        Some(json!({ "role": "reader" })),
    )
    .await;
    let key_path = format!(
        "/v1/tenants/default/keys/{}",
        key["id"].as_str().expect("key id")
    );
    sample(
        s,
        samples,
        "PATCH",
        "/v1/tenants/{tenant}/keys/{id}",
        &key_path,
        Some(json!({ "enabled": false })),
    )
    .await;
    sample(
        s,
        samples,
        "GET",
        "/v1/tenants/{tenant}/keys",
        "/v1/tenants/default/keys",
        None,
    )
    .await;
    sample(
        s,
        samples,
        "POST",
        "/v1/projects",
        "/v1/projects",
        Some(json!({ "name": "shapes" })),
    )
    .await;
    sample(
        s,
        samples,
        "PATCH",
        "/v1/projects/{project}",
        "/v1/projects/shapes",
        Some(json!({ "description": "d" })),
    )
    .await;
    sample(s, samples, "GET", "/v1/projects", "/v1/projects", None).await;
    let saved_body = json!({ "name": "errors", "query": "level:ERROR", "from": "now-24h",
        "columns": ["status"], "chart": { "kind": "bar" } });
    let saved = sample(
        s,
        samples,
        "POST",
        "/v1/projects/{project}/saved-searches",
        "/v1/projects/shapes/saved-searches",
        Some(saved_body.clone()),
    )
    .await;
    let saved_path = format!(
        "/v1/projects/shapes/saved-searches/{}",
        saved["id"].as_str().expect("saved search id")
    );
    sample(
        s,
        samples,
        "GET",
        "/v1/projects/{project}/saved-searches",
        "/v1/projects/shapes/saved-searches",
        None,
    )
    .await;
    for (method, body) in [("GET", None), ("PUT", Some(saved_body.clone()))] {
        sample(
            s,
            samples,
            method,
            "/v1/projects/{project}/saved-searches/{id}",
            &saved_path,
            body,
        )
        .await;
    }
    sample(
        s,
        samples,
        "POST",
        "/v1/projects/{project}/saved-searches",
        "/v1/projects/shapes/saved-searches",
        Some(saved_body),
    )
    .await;
    for name in ["web", "spare"] {
        let body = json!({ "name": name, "shards": 2, "field_hints": { "status": "long" }, "max_event_age_days": 30 });
        sample(
            s,
            samples,
            "POST",
            "/v1/projects/{project}/pools",
            "/v1/projects/shapes/pools",
            Some(body),
        )
        .await;
    }
    sample_alerts(s, samples).await;
    // An error answer is the envelope, under a status the route lists.
    sample(
        s,
        samples,
        "POST",
        "/v1/projects/{project}/pools",
        "/v1/projects/shapes/pools",
        Some(json!({ "name": "web" })),
    )
    .await;
    sample(
        s,
        samples,
        "GET",
        POOL,
        "/v1/projects/shapes/pools/nope",
        None,
    )
    .await;
    sample(
        s,
        samples,
        "PATCH",
        POOL,
        pool,
        Some(json!({ "retention_days": 14, "max_event_age_days": null })),
    )
    .await;
    sample(s, samples, "GET", POOL, pool, None).await;
    sample(
        s,
        samples,
        "GET",
        "/v1/projects/{project}/pools",
        "/v1/projects/shapes/pools",
        None,
    )
    .await;

    // Records, one of them refused for its time (so the answer lists it).
    let logs = json!({ "logs": [
        { "message": "first", "status": 200 },
        { "message": "second", "status": 500 },
        { "message": "ancient", "time": now_ms() - 400 * 86_400_000 },
    ] });
    sample(
        s,
        samples,
        "POST",
        "/v1/projects/{project}/pools/{pool}/logs",
        &format!("{pool}/logs"),
        Some(logs),
    )
    .await;
    assert_eq!(
        wait_for_count(&server.client, "shapes", "web", "", 2).await,
        2
    );
    // The shipper protocols, into the other pool: an OTLP partial success, an OTLP
    // error (a Status), and a Loki push.
    let otlp = |pool: &str| {
        json!({ "resourceLogs": [{
            "resource": { "attributes": [
                { "key": "logpool.project", "value": { "stringValue": "shapes" } },
                { "key": "logpool.pool", "value": { "stringValue": pool } },
            ] },
            "scopeLogs": [{ "logRecords": [
                { "body": { "stringValue": "via otlp" } },
                { "body": { "stringValue": "bad id" }, "traceId": "abcd" },
            ] }],
        }] })
    };
    sample(
        s,
        samples,
        "POST",
        "/v1/logs",
        "/v1/logs",
        Some(otlp("spare")),
    )
    .await;
    sample(
        s,
        samples,
        "POST",
        "/v1/logs",
        "/v1/logs",
        Some(otlp("nope")),
    )
    .await;
    let push = json!({ "streams": [{
        "stream": { "logpool_project": "shapes", "logpool_pool": "spare" },
        "values": [[(now_ms() * 1_000_000).to_string(), "via loki"]],
    }] });
    sample(
        s,
        samples,
        "POST",
        "/loki/api/v1/push",
        "/loki/api/v1/push",
        Some(push),
    )
    .await;
    let search = sample(
        s,
        samples,
        "GET",
        "/v1/projects/{project}/pools/{pool}/search",
        &format!("{pool}/search?query=status:500&highlight=true"),
        None,
    )
    .await;
    let id = search["hits"][0]["id"].as_str().expect("a hit").to_string();
    sample(
        s,
        samples,
        "POST",
        "/v1/projects/{project}/pools/{pool}/search",
        &format!("{pool}/search"),
        Some(json!({ "query": "", "track_total": false })),
    )
    .await;
    sample(
        s,
        samples,
        "GET",
        "/v1/projects/{project}/pools/{pool}/histogram",
        &format!("{pool}/histogram?from=-1h"),
        None,
    )
    .await;
    sample(
        s,
        samples,
        "GET",
        "/v1/projects/{project}/pools/{pool}/fields",
        &format!("{pool}/fields"),
        None,
    )
    .await;
    sample(
        s,
        samples,
        "GET",
        "/v1/projects/{project}/pools/{pool}/records/{id}/context",
        &format!("{pool}/records/{id}/context"),
        None,
    )
    .await;
    sample(
        s,
        samples,
        "POST",
        "/v1/projects/{project}/pools/{pool}/query",
        &format!("{pool}/query"),
        Some(json!({ "query": "* | SELECT status, count(*) AS n GROUP BY status" })),
    )
    .await;
    sample(
        s,
        samples,
        "GET",
        "/v1/projects/{project}/pools/{pool}/stats",
        &format!("{pool}/stats"),
        None,
    )
    .await;

    // Queue reads and a consumer group.
    sample(
        s,
        samples,
        "GET",
        "/v1/projects/{project}/pools/{pool}/shards",
        &format!("{pool}/shards"),
        None,
    )
    .await;
    let cursor = sample(
        s,
        samples,
        "GET",
        "/v1/projects/{project}/pools/{pool}/shards/{shard}/cursor",
        &format!("{pool}/shards/0/cursor?from=begin"),
        None,
    )
    .await;
    let cursor = cursor["cursor"].as_str().expect("cursor").to_string();
    sample(
        s,
        samples,
        "GET",
        "/v1/projects/{project}/pools/{pool}/shards/{shard}/records",
        &format!("{pool}/shards/0/records?cursor={cursor}"),
        None,
    )
    .await;
    sample(
        s,
        samples,
        "GET",
        "/v1/projects/{project}/pools/{pool}/shards/{shard}/records",
        &format!("{pool}/shards/0/records?cursor=edited"),
        None,
    )
    .await;
    let groups = "/v1/projects/{project}/pools/{pool}/consumer-groups";
    sample(
        s,
        samples,
        "POST",
        groups,
        &format!("{pool}/consumer-groups"),
        Some(json!({ "name": "readers" })),
    )
    .await;
    sample(
        s,
        samples,
        "GET",
        groups,
        &format!("{pool}/consumer-groups"),
        None,
    )
    .await;
    sample(
        s,
        samples,
        "POST",
        "/v1/projects/{project}/pools/{pool}/consumer-groups/{group}/heartbeat",
        &format!("{pool}/consumer-groups/readers/heartbeat"),
        Some(json!({ "consumer": "w-1" })),
    )
    .await;
    let checkpoints = "/v1/projects/{project}/pools/{pool}/consumer-groups/{group}/checkpoints";
    sample(
        s,
        samples,
        "PUT",
        checkpoints,
        &format!("{pool}/consumer-groups/readers/checkpoints"),
        Some(json!({ "shard": 0, "cursor": cursor })),
    )
    .await;
    sample(
        s,
        samples,
        "GET",
        checkpoints,
        &format!("{pool}/consumer-groups/readers/checkpoints"),
        None,
    )
    .await;

    // Quotas and usage.
    let tenant_quotas = "/v1/tenants/{tenant}/quotas";
    sample(
        s,
        samples,
        "PUT",
        tenant_quotas,
        "/v1/tenants/default/quotas",
        Some(json!({ "concurrent_tails": 50 })),
    )
    .await;
    sample(
        s,
        samples,
        "GET",
        tenant_quotas,
        "/v1/tenants/default/quotas",
        None,
    )
    .await;
    let project_quotas = "/v1/projects/{project}/quotas";
    sample(
        s,
        samples,
        "PUT",
        project_quotas,
        "/v1/projects/shapes/quotas",
        Some(json!({ "storage_bytes": 1_000_000_000u64 })),
    )
    .await;
    sample(
        s,
        samples,
        "GET",
        project_quotas,
        "/v1/projects/shapes/quotas",
        None,
    )
    .await;
    sample(
        s,
        samples,
        "GET",
        "/v1/tenants/{tenant}/usage",
        "/v1/tenants/default/usage",
        None,
    )
    .await;

    // The archive: settings, listing, a restore and its status.
    let settings = "/v1/projects/{project}/pools/{pool}/archive/settings";
    sample(
        s,
        samples,
        "GET",
        settings,
        &format!("{pool}/archive/settings"),
        None,
    )
    .await;
    sample(
        s,
        samples,
        "PUT",
        settings,
        &format!("{pool}/archive/settings"),
        Some(json!({ "enabled": true, "compression": "gzip" })),
    )
    .await;
    sample(
        s,
        samples,
        "GET",
        "/v1/projects/{project}/pools/{pool}/archive",
        &format!("{pool}/archive?from=-1h"),
        None,
    )
    .await;
    let restore = sample(
        s,
        samples,
        "POST",
        "/v1/projects/{project}/pools/{pool}/archive/restore",
        &format!("{pool}/archive/restore"),
        Some(json!({ "from": now_ms() - 3_600_000, "into_pool": "spare" })),
    )
    .await;
    let restore_id = restore["id"].as_str().expect("restore id");
    sample(
        s,
        samples,
        "GET",
        "/v1/projects/{project}/pools/{pool}/archive/restore/{id}",
        &format!("{pool}/archive/restore/{restore_id}"),
        None,
    )
    .await;

    let filed: Vec<Value> = samples
        .iter()
        .map(|sample| {
            json!({
                "method": sample.method.to_ascii_lowercase(),
                "path": sample.template,
                "status": sample.status.to_string(),
                "body": sample.body,
            })
        })
        .collect();
    assert!(filed.len() > 45, "{} answers", filed.len());
    let statuses: Vec<&str> = filed.iter().filter_map(|s| s["status"].as_str()).collect();
    for status in ["200", "201", "202", "400", "404", "409"] {
        assert!(
            statuses.contains(&status),
            "no {status} answer sampled: {statuses:?}"
        );
    }
    let result = check_answers(&python, &generated(), &Value::from(filed));
    server.standalone.shutdown().await.expect("shutdown");
    result.unwrap_or_else(|error| panic!("{error}"));
    // The check does refuse an answer with a member its schema does not have.
    let extra = json!([{ "method": "get", "path": "/v1/whoami", "status": "200",
        "body": { "key_id": "k", "project": null, "role": "operator", "tenant": "default", "extra": 1 } }]);
    let refused = check_answers(&python, &generated(), &extra);
    assert!(
        refused
            .as_ref()
            .is_err_and(|error| error.contains("'extra' was unexpected")),
        "{refused:?}"
    );
}

/// Validates each answer (`method`, `path`, `status`, `body`) against the schema the
/// document gives for it, with every object of the document's schemas closed
/// (`additionalProperties: false` where it says nothing); the complaints on failure.
fn check_answers(python: &str, document: &str, answers: &Value) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let document_path = dir.path().join("openapi.json");
    let answers_path = dir.path().join("answers.json");
    std::fs::write(&document_path, document).expect("write");
    std::fs::write(&answers_path, answers.to_string()).expect("write");
    let output = std::process::Command::new(python)
        .args([
            "-c",
            "import json, sys\n\
             from jsonschema import Draft202012Validator\n\
             document = json.load(open(sys.argv[1]))\n\
             def close(node):\n\
             \x20   if isinstance(node, dict):\n\
             \x20       if 'properties' in node and 'additionalProperties' not in node:\n\
             \x20           node['additionalProperties'] = False\n\
             \x20       for value in node.values(): close(value)\n\
             \x20   elif isinstance(node, list):\n\
             \x20       for value in node: close(value)\n\
             close(document['components'])\n\
             failures = []\n\
             for answer in json.load(open(sys.argv[2])):\n\
             \x20   where = f\"{answer['method']} {answer['path']} {answer['status']}\"\n\
             \x20   operation = document['paths'].get(answer['path'], {}).get(answer['method'])\n\
             \x20   if operation is None:\n\
             \x20       failures.append(f'{where}: no such operation'); continue\n\
             \x20   response = operation['responses'].get(answer['status'])\n\
             \x20   if response is None:\n\
             \x20       failures.append(f'{where}: status not listed'); continue\n\
             \x20   schema = response.get('content', {}).get('application/json', {}).get('schema')\n\
             \x20   if schema is None:\n\
             \x20       continue\n\
             \x20   schema = dict(schema, components=document['components'])\n\
             \x20   for error in Draft202012Validator(schema).iter_errors(answer['body']):\n\
             \x20       failures.append(f'{where}: {error.message} at {list(error.absolute_path)}')\n\
             print('\\n'.join(failures), file=sys.stderr)\n\
             sys.exit(1 if failures else 0)\n",
        ])
        .arg(&document_path)
        .arg(&answers_path)
        .output()
        .expect("run python");
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}
