//! The OpenAPI document: generated from the routes and the wire types, checked into
//! `docs/openapi.json`, served at `/v1/openapi.json`, and valid for a validator
//! nobody here wrote.
//!
//! After changing a route or a wire type, regenerate the file with
//! `LOGPOOL_WRITE_OPENAPI=1 cargo test --test openapi`.

use std::path::PathBuf;
use std::process::Stdio;

use logpool_e2e::TestServer;
use serde_json::Value;

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
    assert_eq!(kinds, [&Value::from("records"), &Value::from("dropped")]);
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

/// The Python that has `openapi-spec-validator`, or `None` (after saying why) to skip.
fn python() -> Option<String> {
    let python = std::env::var("LOGPOOL_TEST_PYTHON")
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| "python3".to_string());
    let found = std::process::Command::new(&python)
        .args(["-c", "import openapi_spec_validator"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        return Some(python);
    }
    let message = format!(
        "{python} cannot import `openapi_spec_validator`; scripts/test-engines.sh installs it \
         (pip install openapi-spec-validator==0.9.0)"
    );
    if std::env::var_os("LOGPOOL_REQUIRE_ENGINES").is_some() {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    None
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
