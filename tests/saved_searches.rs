//! Saved searches through the API: a search saved by one key is listed and opened by
//! another key of the project; keys of another project, readers trying to save and
//! writer (ingest-only) keys are refused; every limit answers 4xx naming its field and
//! limit. Runs on the SQLite metadata store, and on MySQL too when
//! `LOGPOOL_TEST_MYSQL_URL` is set (built with the `distributed` feature).

use logpool_e2e::tenants::{Answer, RawApi};
use logpool_e2e::TestServer;
use reqwest::Method;
use serde_json::{json, Value};

const SAVED: &str = "/v1/projects/shop/saved-searches";

struct Keys {
    admin: String,
    admin_id: String,
    reader: String,
    reader_id: String,
    writer: String,
    other_reader: String,
}

async fn world(server: &TestServer) -> (RawApi, Keys) {
    let api = RawApi::new(&server.url());
    for project in ["shop", "bank"] {
        api.create_project("default", project).await;
    }
    let (admin_id, admin) = api
        .create_key("default", "project_admin", Some("shop"))
        .await;
    let (reader_id, reader) = api.create_key("default", "reader", Some("shop")).await;
    let (_, writer) = api.create_key("default", "writer", Some("shop")).await;
    let (_, other_reader) = api.create_key("default", "reader", Some("bank")).await;
    let keys = Keys {
        admin,
        admin_id,
        reader,
        reader_id,
        writer,
        other_reader,
    };
    (api, keys)
}

async fn call(api: &RawApi, method: Method, path: &str, key: &str, body: Option<Value>) -> Answer {
    api.send(method, path, Some(key), None, body.as_ref()).await
}

/// The whole scenario on one server, whatever its metadata store.
async fn saved_searches_are_shared_and_guarded(server: &TestServer) {
    let (api, keys) = world(server).await;
    let body = json!({
        "name": "checkout errors",
        "query": "level:ERROR AND path:/checkout",
        "from": "now-24h",
        "to": "now",
        "pool": "web",
        "columns": ["status", "path"],
        "chart": { "kind": "line", "series": ["p95"] },
    });
    let created = call(&api, Method::POST, SAVED, &keys.admin, Some(body.clone())).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let created = created.json();
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["created_by"], keys.admin_id.as_str());

    // Another key of the project lists and opens it, with everything saved.
    let listed = call(&api, Method::GET, SAVED, &keys.reader, None).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json()["saved_searches"][0]["id"], id.as_str());
    let one = format!("{SAVED}/{id}");
    let opened = call(&api, Method::GET, &one, &keys.reader, None).await;
    assert_eq!(opened.status, 200, "{}", opened.text);
    let opened = opened.json();
    for field in ["name", "query", "from", "to", "pool", "columns", "chart"] {
        assert_eq!(opened[field], body[field], "{field}: {opened}");
    }

    // Readers open, they do not save; writers hold ingest-only keys.
    for (method, path, key) in [
        (Method::POST, SAVED.to_string(), &keys.reader),
        (Method::PUT, one.clone(), &keys.reader),
        (Method::DELETE, one.clone(), &keys.reader),
        (Method::GET, SAVED.to_string(), &keys.writer),
        (Method::POST, SAVED.to_string(), &keys.writer),
    ] {
        let answer = call(&api, method.clone(), &path, key, Some(body.clone())).await;
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.text);
    }
    // A key of another project: its own project has no such search, this one is not
    // its to see.
    let answer = call(&api, Method::GET, &one, &keys.other_reader, None).await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    let elsewhere = format!("/v1/projects/bank/saved-searches/{id}");
    let answer = call(&api, Method::GET, &elsewhere, &keys.other_reader, None).await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    let answer = call(
        &api,
        Method::GET,
        &format!("{SAVED}/abc"),
        &keys.reader,
        None,
    )
    .await;
    assert_eq!(answer.status, 404, "{}", answer.text);

    // Replace records the editor and keeps the author.
    let mut changed = body.clone();
    changed["columns"] = json!(["message"]);
    changed["from"] = json!("2026-01-01T00:00:00Z");
    let replaced = call(&api, Method::PUT, &one, &keys.admin, Some(changed.clone())).await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    assert_eq!(replaced.json()["columns"], json!(["message"]));
    let again = call(&api, Method::POST, SAVED, &keys.admin, Some(body.clone())).await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.json()["error"]["field"], "name");

    // Every limit names its field and its limit, and stores nothing.
    let refusals = [
        (json!({ "name": "n".repeat(101) }), "name", Some(100)),
        (json!({ "name": "" }), "name", None),
        (
            json!({ "name": "q", "query": "a".repeat(8 * 1024 + 1) }),
            "query",
            Some(8192),
        ),
        (json!({ "name": "f", "from": "last tuesday" }), "from", None),
        (
            json!({ "name": "c", "columns": vec!["f"; 51] }),
            "columns",
            Some(50),
        ),
        (
            json!({ "name": "ch", "chart": { "big": "x".repeat(16 * 1024) } }),
            "chart",
            Some(16 * 1024),
        ),
        (json!({ "name": "p", "pool": "Not A Pool" }), "pool", None),
    ];
    for (refused, field, limit) in refusals {
        let answer = call(&api, Method::POST, SAVED, &keys.admin, Some(refused)).await;
        assert_eq!(answer.status, 400, "{field}: {}", answer.text);
        let error = &answer.json()["error"];
        assert_eq!(error["field"], field, "{error}");
        if let Some(limit) = limit {
            assert_eq!(error["limit"], limit, "{error}");
        }
    }
    let listed = call(&api, Method::GET, SAVED, &keys.reader, None).await;
    assert_eq!(
        listed.json()["saved_searches"].as_array().map(Vec::len),
        Some(1)
    );

    // The count per project: 500, the 501st is refused naming the limit.
    for n in 1..500 {
        let answer = call(
            &api,
            Method::POST,
            SAVED,
            &keys.admin,
            Some(json!({ "name": format!("search {n}") })),
        )
        .await;
        assert_eq!(answer.status, 201, "{n}: {}", answer.text);
    }
    let full = call(
        &api,
        Method::POST,
        SAVED,
        &keys.admin,
        Some(json!({ "name": "one more" })),
    )
    .await;
    assert_eq!(full.status, 409, "{}", full.text);
    assert_eq!(full.json()["error"]["limit"], 500);

    let deleted = call(&api, Method::DELETE, &one, &keys.admin, None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let gone = call(&api, Method::GET, &one, &keys.reader, None).await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    let _ = keys.reader_id;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_saved_searches_on_sqlite() {
    let server = TestServer::start().await.expect("server");
    saved_searches_are_shared_and_guarded(&server).await;
}

#[cfg(feature = "distributed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_saved_searches_on_mysql() {
    let Some(base) = std::env::var("LOGPOOL_TEST_MYSQL_URL")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        assert!(
            std::env::var_os("LOGPOOL_REQUIRE_ENGINES").is_none(),
            "LOGPOOL_TEST_MYSQL_URL is missing but LOGPOOL_REQUIRE_ENGINES is set"
        );
        eprintln!("SKIPPED: LOGPOOL_TEST_MYSQL_URL not set");
        return;
    };
    let database = format!("logpool_saved_{}", std::process::id());
    let server = TestServer::start_with(|config: &mut logpool_e2e::Config| {
        config.metadata = logpool_engines::config::MetadataConfig::Mysql(
            logpool_engines::metadata::mysql::MysqlMetadataConfig {
                url: format!("{base}/{database}"),
                ..Default::default()
            },
        );
    })
    .await
    .expect("server on MySQL");
    saved_searches_are_shared_and_guarded(&server).await;
}
