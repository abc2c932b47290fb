//! Alerts in distributed mode: two control-api processes (where the `alerts` job
//! runs) on etcd and MySQL, with put-datas and loghub on Pulsar and Elasticsearch.
//! The process leading the job is SIGKILLed while a rule fires and its notification
//! is still being refused by the receiver: the other process takes the job over
//! within the lease, continues the evaluation from the persisted state, and delivers
//! the notification from the outbox exactly once (no firing is lost, none doubled).
#![cfg(feature = "distributed")]

mod alerts_support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use alerts_support::{status_of, Receiver};
use logpool_e2e::services::{engines, log_tail, Deployment, Service};
use logpool_e2e::tenants::RawApi;
use logpool_e2e::wait_for;
use reqwest::Method;
use serde_json::{json, Value};

/// The lease of the test deployment's leaders, seconds.
const LEASE_SECS: u64 = 3;

/// Whether `service`'s log says it leads the `alerts` job now (its last word on it).
fn leads_alerts(service: &Service) -> bool {
    let log = without_colours(&std::fs::read_to_string(&service.log).unwrap_or_default());
    log.lines()
        .rfind(|line| line.contains("job leadership changed") && line.contains("alerts"))
        .is_some_and(|line| line.contains("leads=true"))
}

/// `text` without the terminal colour sequences (`ESC [ ... m`) the log may carry.
fn without_colours(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_killing_the_leading_control_api_neither_loses_nor_doubles_a_notification() {
    let Some(engines) = engines() else { return };
    let deployment = Deployment::new(&engines)
        .await
        .with_env("LOGPOOL_ALERTS__MIN_EVERY_SECS", "1")
        .with_env(
            "LOGPOOL_COORDINATION__LEASE_TTL_SECS",
            &LEASE_SECS.to_string(),
        );
    let mut controls = vec![
        deployment.start("control-api").await,
        deployment.start("control-api").await,
    ];
    let put = deployment.start("put-datas").await;
    let _loghub = deployment.start("loghub").await;
    let project = format!("alerts-{}", deployment.suffix);
    let api = RawApi::new(controls[0].client.base_url());
    api.create_project("default", &project).await;
    api.create_pool("default", &project, "web").await;

    let receiver = Receiver::start().await;
    receiver.recorded.down.store(true, Ordering::SeqCst);
    let channel = api
        .as_operator(
            "default",
            Method::POST,
            &format!("/v1/projects/{project}/alert-channels"),
            Some(&json!({ "name": "hook", "kind": "webhook", "config": { "url": receiver.url } })),
        )
        .await;
    assert_eq!(channel.status, 201, "{}", channel.text);
    let channel = channel.json()["id"].as_str().expect("id").to_string();
    let rule = api
        .as_operator(
            "default",
            Method::POST,
            &format!("/v1/projects/{project}/alerts"),
            Some(&json!({
                "name": "errors", "pool": "web", "query": "level:error", "window_secs": 600,
                "every_secs": 1, "condition": { "op": ">", "threshold": 0 },
                "renotify_secs": 0, "channels": [channel],
            })),
        )
        .await;
    assert_eq!(rule.status, 201, "{}", rule.text);
    let rule_id = rule.json()["id"].as_str().expect("id").to_string();
    put.client
        .put_records(
            &project,
            "web",
            &[json!({ "level": "error", "message": "boom" })],
        )
        .await
        .expect("put");

    // The rule fires; its notification is tried and refused.
    receiver
        .wait_until(Duration::from_secs(90), "a delivery attempt", |r| {
            !r.all_of(&rule_id).is_empty()
        })
        .await;
    let leader = wait_for(Duration::from_secs(10), || async {
        controls.iter().position(leads_alerts)
    })
    .await
    .expect("one control-api logs that it leads the alerts job");
    let mut killed = controls.remove(leader);
    let survivor = controls.pop().expect("the other control-api");
    assert!(!leads_alerts(&survivor), "one leader at a time");
    killed.child.start_kill().expect("SIGKILL");
    killed.child.wait().await.expect("killed");
    let killed_at = Instant::now();
    receiver.recorded.down.store(false, Ordering::SeqCst);

    // Evaluation resumes on the survivor within the lease (and a few rounds).
    let survivor_api = RawApi::new(survivor.client.base_url());
    let last_eval = || async {
        let rule = survivor_api
            .as_operator(
                "default",
                Method::GET,
                &format!("/v1/projects/{project}/alerts/{rule_id}"),
                None,
            )
            .await
            .json();
        rule["state"][0]["last_eval"].as_str().map(str::to_string)
    };
    let before = last_eval().await;
    let resumed = wait_for(Duration::from_secs(LEASE_SECS + 12), || async {
        let now = last_eval().await;
        (now.is_some() && now != before).then_some(())
    })
    .await;
    assert!(
        resumed.is_some(),
        "evaluation did not resume on the survivor:\n{}",
        log_tail(&survivor.log)
    );
    let resumed_after = killed_at.elapsed();
    assert!(
        resumed_after <= Duration::from_secs(LEASE_SECS + 12),
        "resumed after {resumed_after:?}"
    );
    let rule_now: Value = survivor_api
        .as_operator(
            "default",
            Method::GET,
            &format!("/v1/projects/{project}/alerts/{rule_id}"),
            None,
        )
        .await
        .json();
    assert_eq!(
        rule_now["state"][0]["state"], "firing",
        "the firing state carried over"
    );

    // The outbox entry the killed leader could not deliver is delivered, once.
    receiver
        .wait_until(Duration::from_secs(40), "the accepted notification", |r| {
            !r.accepted(&rule_id).is_empty()
        })
        .await;
    let delivered_after = killed_at.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let accepted = receiver.accepted(&rule_id);
    let statuses: Vec<(String, bool)> = accepted.iter().map(status_of).collect();
    assert_eq!(
        statuses,
        [("firing".to_string(), false)],
        "exactly one firing notification"
    );
    let attempts = receiver.all_of(&rule_id);
    let keys: Vec<Value> = attempts
        .iter()
        .map(|call| call.json()["dedupe_key"].clone())
        .collect();
    assert!(
        keys.iter().all(|key| *key == keys[0]),
        "one notification, retried: {keys:?}"
    );
    eprintln!(
        "failover: evaluation resumed {resumed_after:?} and the notification was delivered \
         {delivered_after:?} after the SIGKILL (lease {LEASE_SECS} s); {} attempts",
        attempts.len()
    );
}
