//! Dashboards through the API: a dashboard built by one key is listed, opened and
//! exported by another key of the project, and an export imports into another project
//! as the same dashboard; readers and writers cannot change them; every limit and
//! every panel whose query or SQL does not parse answers 4xx naming the field (and
//! the limit or position), and stores nothing. Runs on the SQLite metadata store, and
//! on MySQL too when `LOGPOOL_TEST_MYSQL_URL` is set (built with the `distributed`
//! feature).

use logpool_e2e::tenants::{Answer, RawApi};
use logpool_e2e::TestServer;
use reqwest::Method;
use serde_json::{json, Value};

const DASHBOARDS: &str = "/v1/projects/shop/dashboards";

struct Keys {
    admin: String,
    admin_id: String,
    bank_admin: String,
    reader: String,
    writer: String,
}

async fn world(server: &TestServer) -> (RawApi, Keys) {
    let api = RawApi::new(&server.url());
    for project in ["shop", "bank"] {
        api.create_project("default", project).await;
    }
    let (admin_id, admin) = api
        .create_key("default", "project_admin", Some("shop"))
        .await;
    let (_, bank_admin) = api
        .create_key("default", "project_admin", Some("bank"))
        .await;
    let (_, reader) = api.create_key("default", "reader", Some("shop")).await;
    let (_, writer) = api.create_key("default", "writer", Some("shop")).await;
    let keys = Keys {
        admin,
        admin_id,
        bank_admin,
        reader,
        writer,
    };
    (api, keys)
}

async fn call(api: &RawApi, method: Method, path: &str, key: &str, body: Option<Value>) -> Answer {
    api.send(method, path, Some(key), None, body.as_ref()).await
}

/// One panel of each kind, in a 2 × 2 grid.
fn four_panels() -> Value {
    json!([
        { "id": "errors", "title": "Errors over time", "kind": "histogram", "pool": "web",
          "query": "level:ERROR", "chart": { "type": "bar" }, "grid": { "x": 0, "y": 0, "w": 6, "h": 4 } },
        { "id": "total", "title": "Errors", "kind": "count", "pool": "web", "query": "level:ERROR",
          "chart": { "type": "number", "unit": "lines",
                     "thresholds": [{ "value": 0.0, "color": "green" }, { "value": 100.0, "color": "#dc2626" }] },
          "grid": { "x": 6, "y": 0, "w": 6, "h": 4 } },
        { "id": "latest", "title": "Latest", "kind": "table", "pool": "web", "query": "",
          "columns": ["status", "path"], "chart": { "type": "table" }, "grid": { "x": 0, "y": 4, "w": 6, "h": 6 } },
        { "id": "by-level", "title": "By level", "kind": "sql", "pool": "web", "query": "*",
          "sql": "SELECT level, count(*) AS c GROUP BY level", "chart": { "type": "pie" },
          "grid": { "x": 6, "y": 4, "w": 6, "h": 6 } },
    ])
}

/// A body with `panel` as its only panel (a count panel changed by `change`).
fn with_panel(change: impl FnOnce(&mut Value)) -> Value {
    let mut panel = json!({ "id": "p", "kind": "count", "pool": "web", "query": "x",
        "chart": { "type": "number" }, "grid": { "x": 0, "y": 0, "w": 3, "h": 2 } });
    change(&mut panel);
    json!({ "name": "bad", "panels": [panel] })
}

/// The whole scenario on one server, whatever its metadata store.
async fn dashboards_are_shared_checked_and_portable(server: &TestServer) {
    let (api, keys) = world(server).await;
    let body = json!({
        "name": "shop overview",
        "description": "what the shop team watches",
        "from": "now-24h",
        "to": "now",
        "refresh": "30s",
        "panels": four_panels(),
    });
    let created = call(
        &api,
        Method::POST,
        DASHBOARDS,
        &keys.admin,
        Some(body.clone()),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let created = created.json();
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["created_by"], keys.admin_id.as_str());

    // Another key of the project lists and opens it with everything it holds.
    let listed = call(&api, Method::GET, DASHBOARDS, &keys.reader, None).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json()["dashboards"][0]["id"], id.as_str());
    let one = format!("{DASHBOARDS}/{id}");
    let opened = call(&api, Method::GET, &one, &keys.reader, None).await;
    assert_eq!(opened.status, 200, "{}", opened.text);
    let opened = opened.json();
    for field in ["name", "description", "from", "to", "refresh", "panels"] {
        assert_eq!(opened[field], body[field], "{field}: {opened}");
    }

    // Readers open, they do not change; writers hold ingest-only keys.
    for (method, path, key) in [
        (Method::POST, DASHBOARDS.to_string(), &keys.reader),
        (Method::PUT, one.clone(), &keys.reader),
        (Method::DELETE, one.clone(), &keys.reader),
        (Method::POST, format!("{DASHBOARDS}/import"), &keys.reader),
        (Method::GET, DASHBOARDS.to_string(), &keys.writer),
        (Method::GET, format!("{one}/export"), &keys.writer),
    ] {
        let answer = call(&api, method.clone(), &path, key, Some(body.clone())).await;
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.text);
    }
    for missing in [format!("{DASHBOARDS}/abc"), format!("{DASHBOARDS}/999999")] {
        let answer = call(&api, Method::GET, &missing, &keys.reader, None).await;
        assert_eq!(answer.status, 404, "{missing}: {}", answer.text);
    }

    // A layout change (moved and resized panels) is a replace; the author stays.
    let mut moved = body.clone();
    moved["panels"][0]["grid"] = json!({ "x": 0, "y": 10, "w": 12, "h": 3 });
    moved["refresh"] = json!("off");
    let replaced = call(&api, Method::PUT, &one, &keys.admin, Some(moved.clone())).await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    let replaced = replaced.json();
    assert_eq!(replaced["panels"], moved["panels"]);
    assert_eq!(replaced["refresh"], "off");
    assert_eq!(replaced["created_by"], keys.admin_id.as_str());
    let again = call(
        &api,
        Method::POST,
        DASHBOARDS,
        &keys.admin,
        Some(body.clone()),
    )
    .await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.json()["error"]["field"], "name");

    // The export, imported into another project, is the same dashboard there.
    let exported = call(
        &api,
        Method::GET,
        &format!("{one}/export"),
        &keys.reader,
        None,
    )
    .await;
    assert_eq!(exported.status, 200, "{}", exported.text);
    let exported = exported.json();
    assert_eq!(exported["logpool_dashboard"], 1);
    assert!(exported["dashboard"].get("id").is_none(), "{exported}");
    let imported = call(
        &api,
        Method::POST,
        "/v1/projects/bank/dashboards/import",
        &keys.bank_admin,
        Some(exported.clone()),
    )
    .await;
    assert_eq!(imported.status, 201, "{}", imported.text);
    let imported = imported.json();
    for field in ["name", "description", "from", "to", "refresh", "panels"] {
        assert_eq!(imported[field], replaced[field], "{field}");
    }
    let mut future = exported.clone();
    future["logpool_dashboard"] = json!(2);
    let answer = call(
        &api,
        Method::POST,
        "/v1/projects/bank/dashboards/import",
        &keys.bank_admin,
        Some(future),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(answer.json()["error"]["field"], "logpool_dashboard");

    // Every limit and every panel that cannot run names its field, and stores nothing.
    let many: Vec<Value> = (0..51)
        .map(|n| {
            json!({ "id": format!("p{n}"), "kind": "count", "pool": "web",
            "chart": { "type": "number" }, "grid": { "x": 0, "y": n, "w": 1, "h": 1 } })
        })
        .collect();
    let refusals: Vec<(Value, &str, Option<Value>)> = vec![
        (json!({ "name": "n".repeat(101) }), "name", Some(json!(100))),
        (json!({ "name": "  " }), "name", None),
        (json!({ "name": "f", "from": "last tuesday" }), "from", None),
        (
            json!({ "name": "d", "description": "d".repeat(1001) }),
            "description",
            Some(json!(1000)),
        ),
        (
            json!({ "name": "many", "panels": many }),
            "panels",
            Some(json!(50)),
        ),
        (
            with_panel(|p| p["query"] = json!("level:(ERROR")),
            "panels[0].query",
            None,
        ),
        (
            with_panel(|p| p["query"] = json!("a".repeat(8 * 1024 + 1))),
            "panels[0].query",
            Some(json!(8192)),
        ),
        (
            with_panel(|p| {
                p["kind"] = json!("sql");
                p["sql"] = json!("SELECT count(*) FROM nowhere WHERE");
            }),
            "panels[0].sql",
            None,
        ),
        (
            with_panel(|p| p["kind"] = json!("sql")),
            "panels[0].sql",
            None,
        ),
        (
            with_panel(|p| p["sql"] = json!("SELECT 1")),
            "panels[0].sql",
            None,
        ),
        (
            with_panel(|p| p["chart"]["type"] = json!("pie")),
            "panels[0].chart.type",
            None,
        ),
        (
            with_panel(|p| p["chart"]["thresholds"] = json!([{ "value": 1, "color": "url(x)" }])),
            "panels[0].chart.thresholds",
            None,
        ),
        (
            with_panel(|p| p["grid"] = json!({ "x": 10, "y": 0, "w": 3, "h": 2 })),
            "panels[0].grid",
            Some(json!(12)),
        ),
        (
            with_panel(|p| p["grid"] = json!({ "x": 0, "y": 0, "w": 3, "h": 25 })),
            "panels[0].grid",
            Some(json!(24)),
        ),
        (
            with_panel(|p| p["id"] = json!("no spaces")),
            "panels[0].id",
            Some(json!(64)),
        ),
        (
            with_panel(|p| p["pool"] = json!("Not A Pool")),
            "panels[0].pool",
            None,
        ),
        (
            with_panel(|p| p["title"] = json!("t".repeat(201))),
            "panels[0].title",
            Some(json!(200)),
        ),
    ];
    for (refused, field, limit) in refusals {
        let answer = call(&api, Method::POST, DASHBOARDS, &keys.admin, Some(refused)).await;
        assert_eq!(answer.status, 400, "{field}: {}", answer.text);
        let error = &answer.json()["error"];
        assert_eq!(error["field"], field, "{error}");
        if let Some(limit) = limit {
            assert_eq!(error["limit"], limit, "{error}");
        }
    }
    // A query error says where: the unclosed group starts at character 6.
    let answer = call(
        &api,
        Method::POST,
        DASHBOARDS,
        &keys.admin,
        Some(with_panel(|p| p["query"] = json!("level:(ERROR"))),
    )
    .await;
    assert!(
        answer.json()["error"]["position"].is_u64(),
        "{}",
        answer.text
    );
    // Two panels with one id, and a refresh the console does not offer.
    let twice =
        json!({ "name": "twice", "panels": [four_panels()[0].clone(), four_panels()[0].clone()] });
    let answer = call(&api, Method::POST, DASHBOARDS, &keys.admin, Some(twice)).await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(answer.json()["error"]["field"], "panels[1].id");
    let answer = call(
        &api,
        Method::POST,
        DASHBOARDS,
        &keys.admin,
        Some(json!({ "name": "r", "refresh": "2m" })),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert!(answer.text.contains("refresh"), "{}", answer.text);
    let listed = call(&api, Method::GET, DASHBOARDS, &keys.reader, None).await;
    assert_eq!(
        listed.json()["dashboards"].as_array().map(Vec::len),
        Some(1)
    );

    let deleted = call(&api, Method::DELETE, &one, &keys.admin, None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let gone = call(&api, Method::GET, &one, &keys.reader, None).await;
    assert_eq!(gone.status, 404, "{}", gone.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_dashboards_on_sqlite() {
    let server = TestServer::start().await.expect("server");
    dashboards_are_shared_checked_and_portable(&server).await;
}

#[cfg(feature = "distributed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_dashboards_on_mysql() {
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
    let database = format!("logpool_dashboards_{}", std::process::id());
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
    dashboards_are_shared_checked_and_portable(&server).await;
}
