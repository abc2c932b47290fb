//! Alerts end to end on a standalone server: rules fire through real receivers (an
//! HTTP server in this test that records every webhook call, and an aiosmtpd SMTP
//! server), with the matching lines, the HMAC signature, pending evaluations,
//! re-notification, resolution, `group_by` (search count and SQL), silences,
//! `no_data`, delivery retries, bad input and the per-tenant quota.
//!
//! The server runs with `alerts.min_every_secs = 1` so rules can be evaluated every
//! second and the scenarios take seconds; the default of 10 is checked separately.

mod alerts_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alerts_support::{status_of, Receiver};
use hmac::{Hmac, KeyInit, Mac};
use logpool_e2e::tenants::{Answer, RawApi};
use logpool_e2e::{python_with, wait_for, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, BufReader};

async fn server() -> TestServer {
    TestServer::start_with(|config| config.alerts.min_every_secs = 1)
        .await
        .expect("server")
}

async fn call(api: &RawApi, method: Method, path: &str, body: Option<Value>) -> Answer {
    api.as_operator("default", method, path, body.as_ref())
        .await
}

async fn create(api: &RawApi, path: &str, body: Value) -> Value {
    let answer = call(api, Method::POST, path, Some(body)).await;
    assert_eq!(answer.status, 201, "POST {path}: {}", answer.text);
    answer.json()
}

/// A project with pool `web`.
async fn project(api: &RawApi, name: &str) {
    api.create_project("default", name).await;
    api.create_pool("default", name, "web").await;
}

async fn webhook(api: &RawApi, project: &str, receiver: &Receiver, secret: Option<&str>) -> String {
    let channel = create(
        api,
        &format!("/v1/projects/{project}/alert-channels"),
        json!({ "name": "hook", "kind": "webhook",
                "config": { "url": receiver.url, "secret": secret } }),
    )
    .await;
    channel["id"].as_str().expect("channel id").to_string()
}

async fn put(server: &TestServer, project: &str, records: &[Value]) {
    server
        .client
        .put_records(project, "web", records)
        .await
        .expect("put");
}

async fn rule(api: &RawApi, project: &str, body: Value) -> String {
    let rule = create(api, &format!("/v1/projects/{project}/alerts"), body).await;
    rule["id"].as_str().expect("rule id").to_string()
}

fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256={hex}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_rule_fires_after_pending_notifies_once_renotifies_and_resolves_once() {
    let server = server().await;
    let api = RawApi::new(&server.url());
    project(&api, "ops").await;
    let receiver = Receiver::start().await;
    let channel = webhook(&api, "ops", &receiver, Some("hook-secret")).await;
    let rule_id = rule(
        &api,
        "ops",
        json!({
            "name": "error burst", "pool": "web", "query": "level:error",
            "window_secs": 5, "every_secs": 1,
            "condition": { "op": ">=", "threshold": 3 },
            "pending_evaluations": 2, "renotify_secs": 4, "max_lines": 3,
            "severity": "critical", "labels": { "team": "web" },
            "description": "{{value}} errors in {{window}}",
            "channels": [channel],
        }),
    )
    .await;

    // Errors keep coming until the feeder stops: the rule breaches all along.
    let feeding = Arc::new(AtomicBool::new(true));
    let feeder = {
        let feeding = feeding.clone();
        let client = server.client.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while feeding.load(Ordering::SeqCst) {
                n += 1;
                let records = [
                    json!({ "level": "error", "message": format!("payment failed #{n}a") }),
                    json!({ "level": "error", "message": format!("payment failed #{n}b") }),
                    json!({ "level": "info", "message": format!("all good #{n}") }),
                ];
                client
                    .put_records("ops", "web", &records)
                    .await
                    .expect("put");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };

    receiver
        .wait_until(Duration::from_secs(30), "a firing notification", |r| {
            !r.accepted(&rule_id).is_empty()
        })
        .await;
    let first = receiver.accepted(&rule_id)[0].clone();
    let body = first.json();
    assert_eq!(status_of(&first), ("firing".to_string(), false));
    assert_eq!(
        first.signature.as_deref(),
        Some(signature("hook-secret", &first.body).as_str()),
        "the HMAC covers the exact body"
    );
    assert_eq!(body["rule"]["name"], "error burst");
    assert_eq!(body["rule"]["severity"], "critical");
    assert_eq!(body["rule"]["labels"]["team"], "web");
    assert_eq!(body["threshold"], 3.0);
    let value = body["value"].as_f64().expect("value");
    assert!(value >= 3.0, "{body}");
    assert_eq!(body["description"], format!("{value} errors in 5 s"));
    assert!(body["console_url"]
        .as_str()
        .is_some_and(|url| url.contains("#/explore?project=ops&pool=web&q=level%3Aerror")));
    let lines = body["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 3, "max_lines newest lines: {body}");
    let times: Vec<&str> = lines
        .iter()
        .filter_map(|line| line["time"].as_str())
        .collect();
    assert!(
        times.windows(2).all(|pair| pair[0] >= pair[1]),
        "newest first: {times:?}"
    );
    for line in lines {
        assert_eq!(
            line["fields"]["level"], "error",
            "only matching lines: {line}"
        );
        assert!(line["line"]
            .as_str()
            .is_some_and(|text| text.starts_with("payment failed")));
    }

    // Still breaching after renotify_secs: one repeat, with a key of its own.
    receiver
        .wait_until(
            Duration::from_secs(20),
            "a repeated firing notification",
            |r| r.accepted(&rule_id).iter().any(|call| status_of(call).1),
        )
        .await;

    feeding.store(false, Ordering::SeqCst);
    feeder.await.expect("feeder");
    receiver
        .wait_until(Duration::from_secs(30), "a resolved notification", |r| {
            r.accepted(&rule_id)
                .iter()
                .any(|call| status_of(call).0 == "resolved")
        })
        .await;
    // A few more evaluations change nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let calls = receiver.accepted(&rule_id);
    let statuses: Vec<(String, bool)> = calls.iter().map(status_of).collect();
    let count = |status: &str, repeat: bool| {
        statuses
            .iter()
            .filter(|(s, r)| s == status && *r == repeat)
            .count()
    };
    assert_eq!(count("firing", false), 1, "notified once: {statuses:?}");
    assert!(count("firing", true) >= 1, "{statuses:?}");
    assert_eq!(count("resolved", false), 1, "resolved once: {statuses:?}");
    let mut keys: Vec<String> = calls
        .iter()
        .map(|call| {
            call.json()["dedupe_key"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len(),
        calls.len(),
        "every notification has its own key"
    );

    let history = call(
        &api,
        Method::GET,
        &format!("/v1/projects/ops/alerts/{rule_id}/history"),
        None,
    )
    .await
    .json();
    let transitions: Vec<(String, String, bool)> = history["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .map(|t| {
            (
                t["from"].as_str().unwrap_or_default().to_string(),
                t["to"].as_str().unwrap_or_default().to_string(),
                t["notified"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let expected = [
        ("firing", "resolved", true),
        ("pending", "firing", true),
        ("ok", "pending", false),
    ]
    .map(|(from, to, notified)| (from.to_string(), to.to_string(), notified));
    assert_eq!(transitions, expected, "newest first, one per change");
    let rule = call(
        &api,
        Method::GET,
        &format!("/v1/projects/ops/alerts/{rule_id}"),
        None,
    )
    .await
    .json();
    assert_eq!(rule["state"][0]["state"], "resolved", "{rule}");
    assert_eq!(rule["last_error"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_group_by_alerts_once_per_group_for_search_counts_and_sql() {
    let server = server().await;
    let api = RawApi::new(&server.url());
    project(&api, "fleet").await;
    let receiver = Receiver::start().await;
    let channel = webhook(&api, "fleet", &receiver, None).await;
    let mut records = Vec::new();
    for (host, count) in [("web-1", 3), ("web-2", 4), ("web-3", 1)] {
        for n in 0..count {
            records.push(
                json!({ "level": "error", "host": host, "message": format!("{host} down {n}") }),
            );
        }
    }
    records.push(json!({ "level": "info", "host": "web-3", "message": "fine" }));
    put(&server, "fleet", &records).await;
    let common = json!({
        "pool": "web", "query": "level:error", "window_secs": 120, "every_secs": 1,
        "condition": { "op": ">", "threshold": 2 }, "group_by": "host",
        "renotify_secs": 0, "max_lines": 10, "channels": [channel],
    });
    let mut by_search = common.clone();
    by_search["name"] = json!("errors per host");
    let mut by_sql = common.clone();
    by_sql["name"] = json!("errors per host (sql)");
    by_sql["sql"] = json!("SELECT host, count(*) AS errors GROUP BY host");
    let search_rule = rule(&api, "fleet", by_search).await;
    let sql_rule = rule(&api, "fleet", by_sql).await;

    for rule_id in [&search_rule, &sql_rule] {
        receiver
            .wait_until(
                Duration::from_secs(30),
                "a notification per breaching host",
                |r| r.accepted(rule_id).len() >= 2,
            )
            .await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for rule_id in [&search_rule, &sql_rule] {
        let mut groups: Vec<(String, f64)> = receiver
            .accepted(rule_id)
            .iter()
            .map(|call| {
                let body = call.json();
                assert_eq!(body["status"], "firing");
                let group = body["group"].as_str().expect("group").to_string();
                for line in body["lines"].as_array().expect("lines") {
                    assert_eq!(
                        line["fields"]["host"],
                        group.as_str(),
                        "lines of the group only"
                    );
                }
                (group, body["value"].as_f64().expect("value"))
            })
            .collect();
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            groups,
            [("web-1".to_string(), 3.0), ("web-2".to_string(), 4.0)],
            "one notification per breaching group ({rule_id})"
        );
        let rule = call(
            &api,
            Method::GET,
            &format!("/v1/projects/fleet/alerts/{rule_id}"),
            None,
        )
        .await
        .json();
        let states: Vec<(String, String)> = rule["state"]
            .as_array()
            .expect("state")
            .iter()
            .map(|s| {
                (
                    s["group"].as_str().unwrap_or_default().to_string(),
                    s["state"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        assert_eq!(
            states,
            [
                ("web-1".to_string(), "firing".to_string()),
                ("web-2".to_string(), "firing".to_string()),
                ("web-3".to_string(), "ok".to_string()),
            ]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_silence_mutes_notifications_and_the_history_records_them() {
    let server = server().await;
    let api = RawApi::new(&server.url());
    project(&api, "quiet").await;
    let receiver = Receiver::start().await;
    let channel = webhook(&api, "quiet", &receiver, None).await;
    create(
        &api,
        "/v1/projects/quiet/alert-silences",
        json!({ "labels": { "team": "db" }, "ends_at": "now+1h", "comment": "maintenance" }),
    )
    .await;
    let body = |name: &str, team: &str| {
        json!({
            "name": name, "pool": "web", "query": "level:error", "window_secs": 120,
            "every_secs": 1, "condition": { "op": ">", "threshold": 0 },
            "labels": { "team": team }, "channels": [channel],
        })
    };
    let muted = rule(&api, "quiet", body("db errors", "db")).await;
    // A rule whose pool is gone fails every evaluation; the others go on.
    api.create_pool("default", "quiet", "gone").await;
    let mut broken_body = body("broken", "web");
    broken_body["pool"] = json!("gone");
    let broken = rule(&api, "quiet", broken_body).await;
    let deleted = call(&api, Method::DELETE, "/v1/projects/quiet/pools/gone", None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let loud = rule(&api, "quiet", body("web errors", "web")).await;
    put(
        &server,
        "quiet",
        &[json!({ "level": "error", "message": "boom" })],
    )
    .await;
    receiver
        .wait_until(
            Duration::from_secs(30),
            "the unmuted rule's notification",
            |r| !r.accepted(&loud).is_empty(),
        )
        .await;
    let muted_history = wait_for(Duration::from_secs(20), || async {
        let history = call(
            &api,
            Method::GET,
            &format!("/v1/projects/quiet/alerts/{muted}/history"),
            None,
        )
        .await
        .json();
        let fired = history["transitions"]
            .as_array()?
            .iter()
            .find(|t| t["to"] == "firing")?
            .clone();
        Some(fired)
    })
    .await
    .expect("the muted rule fires");
    assert_eq!(muted_history["muted"], true, "{muted_history}");
    assert_eq!(muted_history["notified"], false, "{muted_history}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        receiver.all_of(&muted).is_empty(),
        "a silenced rule sends nothing"
    );
    let broken = call(
        &api,
        Method::GET,
        &format!("/v1/projects/quiet/alerts/{broken}"),
        None,
    )
    .await
    .json();
    assert!(broken["last_error"].is_string(), "{broken}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_no_data_fires_is_retried_until_accepted_and_resolves_on_data() {
    let server = server().await;
    let api = RawApi::new(&server.url());
    project(&api, "heartbeat").await;
    let receiver = Receiver::start().await;
    // The receiver refuses the first two attempts: the outbox retries with backoff.
    receiver.recorded.refuse.store(2, Ordering::SeqCst);
    let channel = webhook(&api, "heartbeat", &receiver, None).await;
    let rule_id = rule(
        &api,
        "heartbeat",
        json!({
            "name": "no heartbeat", "pool": "web", "query": "kind:heartbeat",
            "window_secs": 3, "every_secs": 1, "condition": { "op": "no_data" },
            "channels": [channel],
        }),
    )
    .await;
    receiver
        .wait_until(
            Duration::from_secs(30),
            "the no-data notification, after retries",
            |r| !r.accepted(&rule_id).is_empty(),
        )
        .await;
    let attempts = receiver.all_of(&rule_id);
    assert_eq!(
        attempts.len(),
        3,
        "two refused attempts, then the accepted one"
    );
    let keys: Vec<Value> = attempts
        .iter()
        .map(|call| call.json()["dedupe_key"].clone())
        .collect();
    assert!(
        keys.iter().all(|key| *key == keys[0]),
        "retries of one notification"
    );
    let fired = receiver.accepted(&rule_id)[0].json();
    assert_eq!(fired["status"], "firing");
    assert_eq!(fired["value"], 0.0);
    let channel_state = call(
        &api,
        Method::GET,
        &format!("/v1/projects/heartbeat/alert-channels/{channel}"),
        None,
    )
    .await
    .json();
    assert_eq!(
        channel_state["last_delivery"]["ok"], true,
        "{channel_state}"
    );

    let feeding = Arc::new(AtomicBool::new(true));
    let feeder = {
        let feeding = feeding.clone();
        let client = server.client.clone();
        tokio::spawn(async move {
            while feeding.load(Ordering::SeqCst) {
                let beat = [json!({ "kind": "heartbeat", "message": "alive" })];
                client
                    .put_records("heartbeat", "web", &beat)
                    .await
                    .expect("put");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    receiver
        .wait_until(Duration::from_secs(30), "the resolved notification", |r| {
            r.accepted(&rule_id)
                .iter()
                .any(|call| status_of(call).0 == "resolved")
        })
        .await;
    feeding.store(false, Ordering::SeqCst);
    feeder.await.expect("feeder");
    let firing = receiver
        .accepted(&rule_id)
        .iter()
        .filter(|call| call.json()["dedupe_key"] == fired["dedupe_key"])
        .count();
    assert_eq!(firing, 1, "delivered once despite the retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_bad_rules_channels_and_silences_are_refused_naming_the_field() {
    let server = server().await;
    let api = RawApi::new(&server.url());
    project(&api, "strict").await;
    let receiver = Receiver::start().await;
    let channel = webhook(&api, "strict", &receiver, Some("top-secret")).await;
    let valid = json!({
        "name": "r", "pool": "web", "query": "level:error", "window_secs": 60,
        "every_secs": 10, "condition": { "op": ">", "threshold": 1 }, "channels": [channel],
    });
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    for (body, field, position) in [
        (with("query", json!("level:(error")), "query", true),
        (with("sql", json!("SELECT count(* FROM x")), "sql", true),
        (with("sql", json!("SELECT host")), "sql", false),
        (
            with("sql", json!("SELECT host, count(*) AS c GROUP BY host")),
            "group_by",
            false,
        ),
        (with("every_secs", json!(0)), "every_secs", false),
        (with("window_secs", json!(0)), "window_secs", false),
        (
            with("condition", json!({ "op": "~", "threshold": 1 })),
            "condition.op",
            false,
        ),
        (
            with("condition", json!({ "op": ">" })),
            "condition.threshold",
            false,
        ),
        (with("severity", json!("fatal")), "severity", false),
        (with("channels", json!(["ch_999999"])), "channels", false),
        (with("max_lines", json!(1000)), "max_lines", false),
        (
            with("pending_evaluations", json!(0)),
            "pending_evaluations",
            false,
        ),
    ] {
        let answer = call(
            &api,
            Method::POST,
            "/v1/projects/strict/alerts",
            Some(body.clone()),
        )
        .await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text);
        let error = &answer.json()["error"];
        assert_eq!(error["field"], field, "{body}: {}", answer.text);
        if position {
            assert!(error["position"].is_u64(), "{body}: {}", answer.text);
        }
    }
    let unknown_pool = call(
        &api,
        Method::POST,
        "/v1/projects/strict/alerts",
        Some(with("pool", json!("nope"))),
    )
    .await;
    assert_eq!(unknown_pool.status, 404, "{}", unknown_pool.text);

    // Secrets are write-only; a replace that sends `***` back keeps them.
    let stored = call(
        &api,
        Method::GET,
        &format!("/v1/projects/strict/alert-channels/{channel}"),
        None,
    )
    .await
    .json();
    assert_eq!(stored["config"]["secret"], "***");
    let replaced = call(
        &api,
        Method::PUT,
        &format!("/v1/projects/strict/alert-channels/{channel}"),
        Some(json!({ "name": "renamed", "kind": "webhook",
                     "config": { "url": receiver.url, "secret": "***" } })),
    )
    .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    // "Send test" goes out signed with the kept secret.
    let tested = call(
        &api,
        Method::POST,
        &format!("/v1/projects/strict/alert-channels/{channel}/test"),
        None,
    )
    .await;
    assert_eq!(tested.status, 200, "{}", tested.text);
    assert_eq!(
        tested.json(),
        json!({ "ok": true, "status": 200, "error": null })
    );
    let test_call = receiver.all_of("al_test");
    assert_eq!(test_call.len(), 1);
    assert_eq!(
        test_call[0].signature.as_deref(),
        Some(signature("top-secret", &test_call[0].body).as_str())
    );
    // An unreachable receiver answers the test with the reason, and the channel shows it.
    let dead = create(
        &api,
        "/v1/projects/strict/alert-channels",
        json!({ "name": "dead", "kind": "slack", "config": { "url": "http://127.0.0.1:9/x" } }),
    )
    .await;
    let dead_id = dead["id"].as_str().expect("id");
    let tested = call(
        &api,
        Method::POST,
        &format!("/v1/projects/strict/alert-channels/{dead_id}/test"),
        None,
    )
    .await
    .json();
    assert_eq!(tested["ok"], false, "{tested}");
    assert!(tested["error"].is_string(), "{tested}");
    let dead = call(
        &api,
        Method::GET,
        &format!("/v1/projects/strict/alert-channels/{dead_id}"),
        None,
    )
    .await
    .json();
    assert_eq!(dead["last_delivery"]["ok"], false, "{dead}");

    for (body, field) in [
        (
            json!({ "name": "x", "kind": "pager", "config": {} }),
            "kind",
        ),
        (
            json!({ "name": "x", "kind": "webhook", "config": {} }),
            "config.url",
        ),
        (
            json!({ "name": "x", "kind": "email", "config": { "smtp_host": "h", "from": "a@b", "to": [] } }),
            "config.to",
        ),
    ] {
        let answer = call(
            &api,
            Method::POST,
            "/v1/projects/strict/alert-channels",
            Some(body),
        )
        .await;
        assert_eq!(answer.status, 400, "{}", answer.text);
        assert_eq!(answer.json()["error"]["field"], field, "{}", answer.text);
    }
    let silence = call(
        &api,
        Method::POST,
        "/v1/projects/strict/alert-silences",
        Some(json!({ "ends_at": "now+1h" })),
    )
    .await;
    assert_eq!(
        silence.status, 400,
        "a silence of everything: {}",
        silence.text
    );
    assert_eq!(silence.json()["error"]["field"], "labels");

    // The tenant's rule quota counts rules across its projects.
    let quotas = call(
        &api,
        Method::PUT,
        "/v1/tenants/default/quotas",
        Some(json!({ "alert_rules": 2 })),
    )
    .await;
    assert_eq!(quotas.status, 200, "{}", quotas.text);
    rule(&api, "strict", valid.clone()).await;
    project(&api, "strict-2").await;
    let mut elsewhere = valid.clone();
    elsewhere["channels"] = json!([]);
    rule(&api, "strict-2", elsewhere.clone()).await;
    let over = call(
        &api,
        Method::POST,
        "/v1/projects/strict-2/alerts",
        Some(elsewhere),
    )
    .await;
    assert_eq!(over.status, 409, "{}", over.text);
    assert_eq!(over.json()["error"]["limit"], 2, "{}", over.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_the_shortest_schedule_is_ten_seconds_by_default() {
    let server = TestServer::start().await.expect("server");
    let api = RawApi::new(&server.url());
    project(&api, "slow").await;
    let body = |every: u64| {
        json!({ "name": "r", "pool": "web", "query": "*", "window_secs": 60, "every_secs": every,
                "condition": { "op": ">", "threshold": 1 } })
    };
    let fast = call(
        &api,
        Method::POST,
        "/v1/projects/slow/alerts",
        Some(body(9)),
    )
    .await;
    assert_eq!(fast.status, 400, "{}", fast.text);
    assert_eq!(fast.json()["error"]["field"], "every_secs");
    assert_eq!(fast.json()["error"]["limit"], 10);
    let ok = call(
        &api,
        Method::POST,
        "/v1/projects/slow/alerts",
        Some(body(10)),
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
}

/// A running aiosmtpd (`tests/alerts_smtp_server.py`) and the messages it printed.
struct SmtpServer {
    port: u16,
    messages: Arc<Mutex<Vec<Value>>>,
    _child: tokio::process::Child,
}

async fn smtp_server(python: &str, mode: &str) -> SmtpServer {
    let port = logpool_e2e::free_port();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests");
    let mut child = tokio::process::Command::new(python)
        .arg(format!("{dir}/alerts_smtp_server.py"))
        .args([port.to_string(), mode.to_string()])
        .args([
            format!("{dir}/data/tls/server.pem"),
            format!("{dir}/data/tls/server-key.pem"),
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start aiosmtpd");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("aiosmtpd starts")
        .expect("read");
    assert_eq!(ready.as_deref(), Some("ready"));
    let messages = Arc::new(Mutex::new(Vec::new()));
    let sink = messages.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(message) = serde_json::from_str::<Value>(&line) {
                sink.lock().expect("lock").push(message);
            }
        }
    });
    SmtpServer {
        port,
        messages,
        _child: child,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_email_notifications_reach_a_real_smtp_server_with_auth() {
    let Some(python) = python_with("aiosmtpd", "aiosmtpd") else {
        return;
    };
    let smtp = smtp_server(&python, "auth").await;
    let server = server().await;
    let api = RawApi::new(&server.url());
    project(&api, "mail").await;
    let channel = create(
        &api,
        "/v1/projects/mail/alert-channels",
        json!({ "name": "oncall mail", "kind": "email", "config": {
            "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_tls": "none",
            "username": "alerts", "password": "s3cret",
            "from": "logpool@example.test", "to": ["oncall@example.test", "lead@example.test"],
        } }),
    )
    .await;
    let channel_id = channel["id"].as_str().expect("id").to_string();
    assert_eq!(channel["config"]["password"], "***");
    let tested = call(
        &api,
        Method::POST,
        &format!("/v1/projects/mail/alert-channels/{channel_id}/test"),
        None,
    )
    .await
    .json();
    assert_eq!(tested["ok"], true, "{tested}");
    assert_eq!(tested["status"], 250, "{tested}");

    rule(
        &api,
        "mail",
        json!({
            "name": "disk full", "pool": "web", "query": "disk", "window_secs": 120,
            "every_secs": 1, "condition": { "op": ">=", "threshold": 2 },
            "description": "{{value}} disk errors", "channels": [channel_id],
        }),
    )
    .await;
    put(
        &server,
        "mail",
        &[
            json!({ "message": "disk full on /var" }),
            json!({ "message": "disk full on /home" }),
            json!({ "message": "unrelated" }),
        ],
    )
    .await;
    let message = wait_for(Duration::from_secs(30), || async {
        smtp.messages
            .lock()
            .expect("lock")
            .iter()
            .find(|m| {
                m["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("disk full on"))
            })
            .cloned()
    })
    .await
    .expect("the alert email arrives");
    assert_eq!(message["mail_from"], "logpool@example.test");
    assert_eq!(
        message["rcpt_tos"],
        json!(["oncall@example.test", "lead@example.test"])
    );
    assert_eq!(message["auth_user"], "alerts");
    let content = message["content"].as_str().expect("content");
    assert!(content.contains("Subject: [FIRING] disk full"), "{content}");
    assert!(content.contains("2 disk errors"), "{content}");
    assert!(content.contains("disk full on /var") && content.contains("disk full on /home"));
    assert!(!content.contains("unrelated"), "{content}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_email_over_starttls_checks_the_server_certificate() {
    let Some(python) = python_with("aiosmtpd", "aiosmtpd") else {
        return;
    };
    let smtp = smtp_server(&python, "starttls").await;
    // The standalone binary, trusting the test CA through SSL_CERT_FILE as any
    // process using the system's roots does.
    let data = tempfile::tempdir().expect("dir");
    let port = logpool_e2e::free_port();
    let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tls/ca.pem");
    let _child = logpool_e2e::start_standalone_process(
        data.path(),
        port,
        &data.path().join("log"),
        &[("SSL_CERT_FILE", ca.to_string())],
    )
    .await;
    let trusting = RawApi::new(&format!("http://127.0.0.1:{port}"));
    // The in-process server does not trust the test CA: the same channel fails there.
    let untrusting_server = server().await;
    let untrusting = RawApi::new(&untrusting_server.url());
    let channel = json!({ "name": "tls mail", "kind": "email", "config": {
        "smtp_host": "localhost", "smtp_port": smtp.port, "smtp_tls": "starttls",
        "username": "alerts", "password": "s3cret",
        "from": "logpool@example.test", "to": ["oncall@example.test"],
    } });
    for (api, ok) in [(&untrusting, false), (&trusting, true)] {
        api.create_project("default", "tls").await;
        let created = create(api, "/v1/projects/tls/alert-channels", channel.clone()).await;
        let id = created["id"].as_str().expect("id");
        let tested = call(
            api,
            Method::POST,
            &format!("/v1/projects/tls/alert-channels/{id}/test"),
            None,
        )
        .await
        .json();
        assert_eq!(tested["ok"], ok, "{}: {tested}", api.base_url());
    }
    let messages = smtp.messages.lock().expect("lock").clone();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["tls"], true);
    assert_eq!(messages[0]["auth_user"], "alerts");
}
