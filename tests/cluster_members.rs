//! Cluster membership across processes: every service process registers itself in
//! etcd under a lease, control-api lists them at `GET /v1/cluster/members`, a process
//! stopped gracefully leaves at once, and one killed with SIGKILL disappears when its
//! lease expires, and not before (the TTL is set to 3 s here through `LOGPOOL_*` configuration).
//!
//! Without the engine variables the test is skipped (visibly); `scripts/test-all.sh`
//! sets them and `LOGPOOL_REQUIRE_ENGINES`, so CI cannot pass by skipping.
#![cfg(feature = "distributed")]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use logpool_client::LogpoolClient;
use logpool_e2e::services::{engines, log_tail, stop, Deployment, Service};
use logpool_e2e::wait_for;
use serde_json::Value;

/// Long enough that the entry of a killed process is visibly kept for a while (it is
/// renewed every TTL/3), short enough for a quick test.
const LEASE_TTL_SECS: u64 = 3;

/// The member list as (service, id) -> entry.
async fn members(control: &LogpoolClient) -> Option<BTreeMap<(String, String), Value>> {
    let listed = control.get("/v1/cluster/members").await.ok()?;
    let entries = listed["members"].as_array()?;
    Some(
        entries
            .iter()
            .map(|member| {
                let key = (
                    member["service"].as_str().unwrap_or_default().to_string(),
                    member["id"].as_str().unwrap_or_default().to_string(),
                );
                (key, member.clone())
            })
            .collect(),
    )
}

/// The member id of a service started by the suite: its listening address.
fn member_id(service: &Service) -> String {
    service
        .client
        .base_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_members_register_leave_and_expire_with_their_lease() {
    let Some(engines) = engines() else { return };
    let deployment = Deployment::new(&engines).await.with_env(
        "LOGPOOL_COORDINATION__LEASE_TTL_SECS",
        &LEASE_TTL_SECS.to_string(),
    );
    let mut control = deployment.start("control-api").await;
    let mut others = vec![
        deployment.start("put-datas").await,
        deployment.start("search-api").await,
        deployment.start("tail-ws").await,
        deployment.start("loghub").await,
    ];
    let mut doomed = deployment.start("loghub").await;
    let client = control.client.clone();

    // Every process is listed, under its own address, with what it said about itself.
    let mut expected: Vec<(String, String)> = others
        .iter()
        .chain([&control, &doomed])
        .map(|service| (service.name.to_string(), member_id(service)))
        .collect();
    expected.sort();
    let listed = wait_for(Duration::from_secs(20), || {
        let client = client.clone();
        let expected = expected.clone();
        async move {
            let listed = members(&client).await?;
            (listed.keys().cloned().collect::<Vec<_>>() == expected).then_some(listed)
        }
    })
    .await;
    let Some(listed) = listed else {
        panic!(
            "expected members {expected:?}, listed {:?}\ncontrol-api log:\n{}",
            members(&client).await,
            log_tail(&control.log)
        );
    };
    for ((service, id), entry) in &listed {
        assert_eq!(entry["address"].as_str(), Some(id.as_str()), "{service}");
        assert!(
            entry["version"].as_str().is_some_and(|v| !v.is_empty()),
            "{entry}"
        );
        assert!(entry["started_at"].as_str().is_some(), "{entry}");
    }

    // SIGKILL: nothing deregisters, so the entry stays listed until the lease expires.
    // The process renewed its lease at most TTL/3 before it died, so the entry must
    // still be there for about 2/3 of the TTL after the kill, and gone soon after the
    // TTL (etcd checks expiry about every 500 ms).
    let doomed_key = ("loghub".to_string(), member_id(&doomed));
    doomed.child.start_kill().expect("kill -9");
    doomed.child.wait().await.expect("reap");
    let killed_at = Instant::now();
    let must_stay_for = Duration::from_millis(LEASE_TTL_SECS * 1000 / 2);
    let mut last_listed: Option<Duration> = None;
    let expired = loop {
        let listed = members(&client).await.expect("members");
        let seen_at = killed_at.elapsed();
        if listed.contains_key(&doomed_key) {
            last_listed = Some(seen_at);
        } else {
            break (seen_at, listed);
        }
        assert!(
            seen_at < Duration::from_secs(LEASE_TTL_SECS + 10),
            "the killed loghub is still listed {seen_at:?} after the kill"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (gone_after, expired) = expired;
    let last_listed = last_listed.unwrap_or_else(|| {
        panic!("the killed loghub was no longer listed right after the SIGKILL ({gone_after:?}): it deregistered, nothing waited for its lease")
    });
    assert!(
        last_listed >= must_stay_for,
        "the killed loghub's entry went {gone_after:?} after the kill, before its {LEASE_TTL_SECS} s lease could expire"
    );
    eprintln!(
        "killed member listed until {last_listed:?}, gone at {gone_after:?} after the SIGKILL"
    );
    assert_eq!(expired.len(), expected.len() - 1, "{expired:?}");

    // SIGTERM: the process revokes its lease before it exits, so it is gone at once.
    let mut survivor = others.pop().expect("loghub");
    let survivor_key = ("loghub".to_string(), member_id(&survivor));
    stop(&mut survivor).await;
    let after_stop = members(&client).await.expect("members");
    assert!(!after_stop.contains_key(&survivor_key), "{after_stop:?}");
    assert_eq!(after_stop.len(), expected.len() - 2);

    for service in others.iter_mut() {
        stop(service).await;
    }
    stop(&mut control).await;
}
