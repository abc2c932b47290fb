//! Distributed mode end to end: the five services as separate OS processes on
//! Pulsar (pulsar-lite behind the framing relay), OpenSearch, etcd, MariaDB and S3
//! (moto), all started by `scripts/test-engines.sh`. Projects and pools are created
//! through control-api, the Loghub samples go in through put-datas, every record is
//! found through search-api, and a pool created while everything runs is served
//! without a restart.
//!
//! Without the engine variables the test is skipped (visibly); `scripts/test-all.sh`
//! sets them and `LOGPOOL_REQUIRE_ENGINES`, so CI cannot pass by skipping.
#![cfg(feature = "distributed")]

use std::time::Duration;

use logpool_e2e::services::{
    count, engines, log_tail, start_service, stop, stored_ids, Deployment,
};
use logpool_e2e::{loghub_lines, wait_for, LOGHUB_SYSTEMS};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_five_services_as_processes_on_the_distributed_engines() {
    let Some(engines) = engines() else { return };
    let deployment = Deployment::new(&engines).await;
    let (dir, config_path, suffix) = (&deployment.dir, &deployment.config_path, &deployment.suffix);
    // control-api first: it migrates MySQL and publishes the first routing snapshot.
    let control = start_service("control-api", config_path, dir.path()).await;
    let mut services = [
        start_service("put-datas", config_path, dir.path()).await,
        start_service("search-api", config_path, dir.path()).await,
        start_service("loghub", config_path, dir.path()).await,
        start_service("tail-ws", config_path, dir.path()).await,
    ];
    let put = services[0].client.clone();
    let search = services[1].client.clone();
    let project = format!("e2e-{suffix}");

    // A pool created after every service started is served at once, everywhere.
    control
        .client
        .create_project(&project)
        .await
        .expect("project");
    control
        .client
        .create_pool(&project, &json!({ "name": "loghub", "shards": 2 }))
        .await
        .expect("pool");
    let mut expected_total = 0u64;
    let mut accepted_in_time = false;
    for attempt in 0..50 {
        match put
            .put_records(
                &project,
                "loghub",
                &[json!({ "message": "first", "dataset": "probe" })],
            )
            .await
        {
            Ok(_) => {
                accepted_in_time = true;
                break;
            }
            Err(error) if error.status() == Some(404) && attempt < 49 => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(error) => panic!("put-datas did not learn the new pool: {error}"),
        }
    }
    assert!(accepted_in_time);
    expected_total += 1;
    for system in LOGHUB_SYSTEMS {
        let records: Vec<Value> = loghub_lines(system)
            .into_iter()
            .enumerate()
            .map(|(i, line)| json!({ "message": line, "line_no": i, "dataset": system.to_lowercase() }))
            .collect();
        for chunk in records.chunks(1000) {
            let answer = put
                .put_records(&project, "loghub", chunk)
                .await
                .expect("put");
            assert_eq!(answer.accepted, chunk.len());
            expected_total += chunk.len() as u64;
        }
    }
    let indexed =
        wait_for(Duration::from_secs(120), || {
            let search = search.clone();
            let project = project.clone();
            async move {
                (count(&search, &project, "loghub", "").await? == expected_total).then_some(())
            }
        })
        .await;
    if indexed.is_none() {
        let seen = count(&search, &project, "loghub", "").await;
        panic!(
            "search-api saw {seen:?} of {expected_total} records\nloghub log:\n{}",
            log_tail(&services[2].log)
        );
    }
    for system in LOGHUB_SYSTEMS {
        let query = format!("dataset:{}", system.to_lowercase());
        let expected = loghub_lines(system).len() as u64;
        assert_eq!(
            count(&search, &project, "loghub", &query).await,
            Some(expected),
            "{system}"
        );
    }

    // A second pool, created while everything runs.
    control
        .client
        .create_pool(&project, &json!({ "name": "late", "shards": 1 }))
        .await
        .expect("late pool");
    let late_ok = wait_for(Duration::from_secs(30), || {
        let put = put.clone();
        let project = project.clone();
        async move {
            put.put_records(&project, "late", &[json!({ "message": "late pool works" })])
                .await
                .ok()
        }
    })
    .await;
    assert!(late_ok.is_some(), "put-datas never served the late pool");
    let late_found = wait_for(Duration::from_secs(60), || {
        let search = search.clone();
        let project = project.clone();
        async move {
            (count(&search, &project, "late", "\"late pool works\"").await? == 1).then_some(())
        }
    })
    .await;
    assert!(
        late_found.is_some(),
        "the late pool's record was not indexed:\n{}",
        log_tail(&services[2].log)
    );

    // The counters match what went in: put-datas accepted, and the one loghub
    // committed, every record exactly once (the probe, the Loghub lines and the late
    // pool's record).
    let records_in = expected_total + 1;
    let put_accepted = services[0]
        .counter("logpool_put_records_accepted_total")
        .await;
    assert_eq!(
        put_accepted,
        Some(records_in),
        "put-datas' accepted records"
    );
    let counted = wait_for(Duration::from_secs(10), || async {
        let indexed = services[2]
            .counter("logpool_loghub_records_indexed_total")
            .await?;
        (indexed >= records_in).then_some(indexed)
    })
    .await;
    assert_eq!(
        counted,
        Some(records_in),
        "loghub's indexed records:\n{}",
        log_tail(&services[2].log)
    );
    assert_eq!(
        services[2]
            .counter("logpool_loghub_messages_dead_lettered_total")
            .await,
        Some(0)
    );

    for service in services.iter_mut() {
        stop(service).await;
    }
    let mut control = control;
    stop(&mut control).await;
}

/// Reads `logpool_loghub_records_indexed_total` from a loghub's /metrics text.
fn indexed_records(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("logpool_loghub_records_indexed_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_two_loghubs_share_the_queue_and_survive_a_kill_9() {
    let Some(engines) = engines() else { return };
    let deployment = Deployment::new(&engines).await;
    let (dir, config_path, suffix) = (&deployment.dir, &deployment.config_path, &deployment.suffix);
    let control = start_service("control-api", config_path, dir.path()).await;
    let put_service = start_service("put-datas", config_path, dir.path()).await;
    let search_service = start_service("search-api", config_path, dir.path()).await;
    let mut doomed = start_service("loghub", config_path, dir.path()).await;
    let mut survivor = start_service("loghub", config_path, dir.path()).await;
    let (put, search) = (put_service.client.clone(), search_service.client.clone());
    let project = format!("ha-{suffix}");
    control
        .client
        .create_project(&project)
        .await
        .expect("project");
    control
        .client
        .create_pool(&project, &json!({ "name": "app", "shards": 4 }))
        .await
        .expect("pool");
    wait_for(Duration::from_secs(30), || {
        let put = put.clone();
        let project = project.clone();
        async move {
            put.put_records(&project, "app", &[json!({ "rid": "probe" })])
                .await
                .ok()
        }
    })
    .await
    .expect("pool served");

    let mut acked = std::collections::HashSet::from(["probe".to_string()]);
    for batch in 0..60 {
        let records: Vec<Value> = (0..200)
            .map(|i| json!({ "rid": format!("{batch}-{i}"), "message": "ha record" }))
            .collect();
        // put-datas and the queue are untouched by the kill: every put must succeed.
        let answer = put
            .put_records(&project, "app", &records)
            .await
            .unwrap_or_else(|error| panic!("put {batch} failed: {error}"));
        assert_eq!(answer.accepted, 200, "put {batch}: {answer:?}");
        acked.extend((0..200).map(|i| format!("{batch}-{i}")));
        if batch == 20 {
            // Both loghubs share the subscription: wait until the doomed one has indexed
            // its share, then it dies without a chance to ack what it holds.
            let doomed_indexed = wait_for(Duration::from_secs(30), || {
                let metrics = format!("{}/metrics", doomed.client.base_url());
                async move {
                    let text = reqwest::get(metrics).await.ok()?.text().await.ok()?;
                    (indexed_records(&text) > 0).then_some(())
                }
            })
            .await;
            assert!(
                doomed_indexed.is_some(),
                "the first loghub never indexed anything"
            );
            doomed.child.start_kill().expect("kill -9");
            doomed.child.wait().await.expect("reap");
        }
    }
    let complete = wait_for(Duration::from_secs(120), || {
        let search = search.clone();
        let project = project.clone();
        let acked = acked.clone();
        async move {
            let ids = stored_ids(&search, &project, "app").await;
            acked.iter().all(|id| ids.contains_key(id)).then_some(ids)
        }
    })
    .await;
    let ids = match complete {
        Some(ids) => ids,
        None => {
            let ids = stored_ids(&search, &project, "app").await;
            let missing = acked.iter().filter(|id| !ids.contains_key(*id)).count();
            panic!(
                "{missing} of {} acknowledged records missing\nsurvivor log:\n{}",
                acked.len(),
                log_tail(&survivor.log)
            );
        }
    };
    assert_eq!(acked.len(), 1 + 60 * 200, "every put was acknowledged");
    let duplicated: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).take(10).collect();
    assert!(
        duplicated.is_empty(),
        "records stored twice: {duplicated:?}"
    );
    assert_eq!(ids.len(), acked.len(), "nothing but acknowledged records");

    stop(&mut survivor).await;
    for mut service in [put_service, search_service, control] {
        stop(&mut service).await;
    }
}
