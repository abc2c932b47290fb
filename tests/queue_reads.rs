//! Reading pools as queues: shard cursors, record reads and consumer groups, against
//! the standalone product on its embedded engines.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logpool_client::pull::{earliest_cursor_of, GroupMember, PullReader, StartAt};
use logpool_client::{Encoding, LogpoolClient};
use logpool_e2e::{wait_for, TestServer};
use logpool_engines::config::QueueConfig;
use serde_json::{json, Value};

/// Every test finishes within this or fails.
const TEST_TIME_LIMIT: Duration = Duration::from_secs(120);

async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(TEST_TIME_LIMIT, body)
        .await
        .expect("the test finishes in time");
}

/// Puts `records` as one request pinned by `hash_key` and returns the shard it went to.
async fn put_pinned(
    client: &LogpoolClient,
    project: &str,
    pool: &str,
    hash_key: &str,
    records: &[Value],
) -> u32 {
    let body = serde_json::to_vec(&json!({ "logs": records })).expect("body");
    let answer = client
        .put_raw(
            project,
            pool,
            "application/json",
            Encoding::Identity,
            body,
            Some(hash_key),
        )
        .await
        .expect("put");
    let shards = answer["shards"].as_array().expect("shards in the answer");
    assert_eq!(
        shards.len(),
        1,
        "a pinned request goes to one shard: {answer}"
    );
    shards[0]["shard"].as_u64().expect("shard") as u32
}

/// Reads a shard from `cursor` to its end, `count` records at a time.
async fn read_to_end(reader: &mut PullReader, count: u32) -> Vec<Value> {
    let mut records = Vec::new();
    for _ in 0..10_000 {
        let batch = reader.next_batch(count).await.expect("read");
        assert!(batch.records.len() <= count as usize);
        records.extend(batch.records.iter().cloned());
        if batch.at_end() {
            return records;
        }
        assert!(
            !batch.records.is_empty(),
            "a read before the end returns records"
        );
    }
    panic!("the shard did not end");
}

fn numbers(records: &[Value]) -> Vec<u64> {
    records
        .iter()
        .map(|record| record["fields"]["n"].as_u64().expect("n"))
        .collect()
}

/// Reading each shard from `begin` to `end` yields exactly the records put to it, in
/// order, also in small steps that stop inside a batch; cursors taken before a restart
/// of the server still work after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_shard_reads_yield_exactly_the_records_in_order_and_survive_restart() {
    bounded(async {
        let server = TestServer::start().await.expect("server");
        let client = server.client.clone();
        client.create_project("reads").await.expect("project");
        client
            .create_pool("reads", &json!({ "name": "app", "shards": 2 }))
            .await
            .expect("pool");

        let mut expected: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        let mut n = 0u64;
        for batch in 0..24u64 {
            let size = 1 + batch % 5;
            let records: Vec<Value> = (0..size)
                .map(|offset| json!({ "message": format!("record {}", n + offset), "n": n + offset }))
                .collect();
            let shard = put_pinned(&client, "reads", "app", &format!("key-{batch}"), &records).await;
            expected
                .entry(shard)
                .or_default()
                .extend(n..n + size);
            n += size;
        }
        assert_eq!(expected.len(), 2, "both shards got records: {expected:?}");

        let shards = client.shards("reads", "app").await.expect("shards");
        assert_eq!(shards.len(), 2);
        for (index, shard) in shards.iter().enumerate() {
            assert_eq!(shard["shard"], json!(index));
            assert!(shard["begin_position"].as_u64() <= shard["end_position"].as_u64());
        }

        let mut saved = BTreeMap::new();
        for (shard, want) in &expected {
            let mut reader = PullReader::open(client.clone(), "reads", "app", *shard, &StartAt::Begin)
                .await
                .expect("reader");
            let begin_cursor = reader.cursor().to_string();
            let records = read_to_end(&mut reader, 3).await;
            assert_eq!(&numbers(&records), want, "shard {shard} in order, once each");
            for record in &records {
                assert_eq!(record["shard"], json!(shard));
                assert!(record["id"].as_str().is_some_and(|id| !id.is_empty()));
                assert!(record["time"].as_str().is_some());
            }
            // A cursor in the middle of the shard, taken before the restart.
            let mut partial = PullReader::at_cursor(client.clone(), "reads", "app", *shard, begin_cursor.clone());
            let first = partial.next_batch(4).await.expect("read");
            saved.insert(*shard, (begin_cursor, partial.cursor().to_string(), first.records.len()));
        }

        // Restart on the same data directory.
        let TestServer { standalone, data_dir, .. } = server;
        standalone.shutdown().await.expect("shutdown");
        let data_path = data_dir.path().to_path_buf();
        let restarted = TestServer::start_with(|config| config.data_dir = data_path)
            .await
            .expect("restart");
        let client = restarted.client.clone();
        for (shard, want) in &expected {
            let (begin_cursor, middle_cursor, read_before) = &saved[shard];
            let mut from_begin = PullReader::at_cursor(client.clone(), "reads", "app", *shard, begin_cursor.clone());
            assert_eq!(&numbers(&read_to_end(&mut from_begin, 1000).await), want);
            let mut from_middle = PullReader::at_cursor(client.clone(), "reads", "app", *shard, middle_cursor.clone());
            assert_eq!(
                numbers(&read_to_end(&mut from_middle, 2).await),
                want[*read_before..].to_vec(),
                "shard {shard} goes on after the restart where it stopped"
            );
        }
        restarted.standalone.shutdown().await.expect("shutdown");
        drop(data_dir);
    })
    .await;
}

/// A cursor from a time starts at the first record put at or after it; a cursor from
/// `end` sees only what comes later.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_cursor_from_a_time_and_from_the_end() {
    bounded(async {
        let server = TestServer::start().await.expect("server");
        let client = &server.client;
        client.create_project("times").await.expect("project");
        client
            .create_pool("times", &json!({ "name": "app", "shards": 1 }))
            .await
            .expect("pool");
        let early: Vec<Value> = (0..3).map(|n| json!({ "n": n })).collect();
        put_pinned(client, "times", "app", "k", &early).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        let between_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64;
        tokio::time::sleep(Duration::from_millis(30)).await;
        let late: Vec<Value> = (3..6).map(|n| json!({ "n": n })).collect();
        put_pinned(client, "times", "app", "k", &late).await;

        let mut from_epoch_ms = PullReader::open(
            client.clone(),
            "times",
            "app",
            0,
            &StartAt::Time(between_ms.to_string()),
        )
        .await
        .expect("cursor from epoch ms");
        assert_eq!(
            numbers(&read_to_end(&mut from_epoch_ms, 100).await),
            [3, 4, 5]
        );
        let rfc3339 = logpool_core::record::format_time_ns(between_ms * 1_000_000);
        let mut from_rfc3339 =
            PullReader::open(client.clone(), "times", "app", 0, &StartAt::Time(rfc3339))
                .await
                .expect("cursor from RFC 3339");
        assert_eq!(
            numbers(&read_to_end(&mut from_rfc3339, 100).await),
            [3, 4, 5]
        );

        let mut from_end = PullReader::open(client.clone(), "times", "app", 0, &StartAt::End)
            .await
            .expect("cursor from end");
        assert!(from_end
            .next_batch(100)
            .await
            .expect("read")
            .records
            .is_empty());
        put_pinned(client, "times", "app", "k", &[json!({ "n": 6 })]).await;
        assert_eq!(numbers(&read_to_end(&mut from_end, 100).await), [6]);
        server.standalone.shutdown().await.expect("shutdown");
    })
    .await;
}

/// Asserts a 400 that names `field` and carries no records.
async fn assert_bad_request(response: reqwest::Response, field: &str) -> Value {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json error");
    assert_eq!(
        status, 400,
        "expected 400 naming `{field}`, got {status}: {body}"
    );
    assert_eq!(body["error"]["field"], json!(field), "{body}");
    assert!(body.get("records").is_none());
    body
}

/// Cursors are bound to their pool and shard and tamper-evident; bad parameters and
/// bodies get a 400 naming the field; never another pool's data.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_tampered_or_foreign_cursors_and_bad_bodies_get_400() {
    bounded(async {
        let server = TestServer::start().await.expect("server");
        let client = &server.client;
        let http = logpool_e2e::admin_http();
        let base = server.url();
        client.create_project("tamper").await.expect("project");
        client.create_project("other").await.expect("project");
        for (project, pool) in [("tamper", "pa"), ("tamper", "pb"), ("other", "pa")] {
            client
                .create_pool(project, &json!({ "name": pool, "shards": 2 }))
                .await
                .expect("pool");
            put_pinned(
                client,
                project,
                pool,
                "k",
                &[json!({ "secret": format!("{project}/{pool}") })],
            )
            .await;
        }
        let cursor_a0 = client
            .cursor("tamper", "pa", 0, &StartAt::Begin)
            .await
            .expect("cursor");
        let records = |project: &str, pool: &str, shard: &str, query: &[(&str, &str)]| {
            http.get(format!(
                "{base}/v1/projects/{project}/pools/{pool}/shards/{shard}/records"
            ))
            .query(query)
            .send()
        };
        // The cursor works where it was issued.
        let ok = records("tamper", "pa", "0", &[("cursor", &cursor_a0)])
            .await
            .expect("send");
        assert_eq!(ok.status().as_u16(), 200);

        // On another pool, another project's pool of the same name, another shard.
        for (project, pool, shard) in [
            ("tamper", "pb", "0"),
            ("other", "pa", "0"),
            ("tamper", "pa", "1"),
        ] {
            let response = records(project, pool, shard, &[("cursor", &cursor_a0)])
                .await
                .expect("send");
            assert_bad_request(response, "cursor").await;
        }
        // Edited: every character position changed once.
        for index in 0..cursor_a0.len() {
            let mut edited: Vec<char> = cursor_a0.chars().collect();
            edited[index] = if edited[index] == 'A' { 'B' } else { 'A' };
            let edited: String = edited.into_iter().collect();
            let response = records("tamper", "pa", "0", &[("cursor", &edited)])
                .await
                .expect("send");
            assert_bad_request(response, "cursor").await;
        }
        for garbage in [
            "",
            "x",
            "not a cursor",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            let response = records("tamper", "pa", "0", &[("cursor", garbage)])
                .await
                .expect("send");
            assert_bad_request(response, "cursor").await;
        }
        let response = records("tamper", "pa", "0", &[]).await.expect("send");
        assert_bad_request(response, "cursor").await;
        for count in ["0", "1001"] {
            let response = records(
                "tamper",
                "pa",
                "0",
                &[("cursor", &cursor_a0), ("count", count)],
            )
            .await
            .expect("send");
            let body = assert_bad_request(response, "count").await;
            assert_eq!(body["error"]["max"], json!(1000));
        }
        let response = records("tamper", "pa", "x", &[("cursor", &cursor_a0)])
            .await
            .expect("send");
        assert_bad_request(response, "shard").await;
        let response = records("tamper", "pa", "7", &[("cursor", &cursor_a0)])
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), 404);
        let response = records("tamper", "ghost", "0", &[("cursor", &cursor_a0)])
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), 404);
        let response = http
            .get(format!(
                "{base}/v1/projects/tamper/pools/pa/shards/0/cursor"
            ))
            .query(&[("from", "yesterday-ish")])
            .send()
            .await
            .expect("send");
        assert_bad_request(response, "from").await;

        // Consumer group bodies.
        let groups = format!("{base}/v1/projects/tamper/pools/pa/consumer-groups");
        let post = |url: String, body: Value| http.post(url).json(&body).send();
        for (body, field) in [
            (json!({ "timeout_s": 10 }), "name"),
            (json!({ "name": "Bad Name!" }), "name"),
            (json!({ "name": "g1", "timeout_s": 0 }), "timeout_s"),
            (json!({ "name": "g1", "timeout_s": 999_999 }), "timeout_s"),
        ] {
            assert_bad_request(post(groups.clone(), body).await.expect("send"), field).await;
        }
        let unknown_field = post(groups.clone(), json!({ "name": "g1", "colour": "red" }))
            .await
            .expect("send");
        assert_eq!(unknown_field.status().as_u16(), 400);
        let created = post(groups.clone(), json!({ "name": "g1", "timeout_s": 10 }))
            .await
            .expect("send");
        assert_eq!(created.status().as_u16(), 201);
        let again = post(groups.clone(), json!({ "name": "g1" }))
            .await
            .expect("send");
        assert_eq!(again.status().as_u16(), 409);
        for (body, field) in [
            (json!({}), "consumer"),
            (json!({ "consumer": "has space" }), "consumer"),
        ] {
            let response = post(format!("{groups}/g1/heartbeat"), body)
                .await
                .expect("send");
            assert_bad_request(response, field).await;
        }
        let response = post(
            format!("{groups}/ghost/heartbeat"),
            json!({ "consumer": "c1" }),
        )
        .await
        .expect("send");
        assert_eq!(response.status().as_u16(), 404);
        let checkpoints = format!("{groups}/g1/checkpoints");
        let cursor_b0 = client
            .cursor("tamper", "pb", 0, &StartAt::Begin)
            .await
            .expect("cursor");
        for (body, field) in [
            (json!({ "cursor": cursor_a0 }), "shard"),
            (json!({ "shard": 0 }), "cursor"),
            (json!({ "shard": 0, "cursor": cursor_b0 }), "cursor"),
            (json!({ "shard": 1, "cursor": cursor_a0 }), "cursor"),
            (json!({ "shard": "zero", "cursor": cursor_a0 }), "shard"),
        ] {
            let response = http
                .put(&checkpoints)
                .json(&body)
                .send()
                .await
                .expect("send");
            assert_bad_request(response, field).await;
        }
        let saved = http
            .put(&checkpoints)
            .json(&json!({ "shard": 0, "cursor": cursor_a0 }))
            .send()
            .await
            .expect("send");
        assert_eq!(saved.status().as_u16(), 200);
        let response = http
            .delete(format!("{groups}/ghost"))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), 404);

        // Deleting the pool deletes its groups.
        client
            .delete_pool("tamper", "pa")
            .await
            .expect("delete pool");
        client
            .create_pool("tamper", &json!({ "name": "pa", "shards": 2 }))
            .await
            .expect("pool again");
        let listed = wait_for(Duration::from_secs(10), || async {
            let listed = client
                .get("/v1/projects/tamper/pools/pa/consumer-groups")
                .await
                .ok()?;
            Some(listed)
        })
        .await
        .expect("list groups");
        assert_eq!(listed["consumer_groups"], json!([]));
        // The old pool's cursor does not read the new pool of the same name.
        let response = records("tamper", "pa", "0", &[("cursor", &cursor_a0)])
            .await
            .expect("send");
        assert_bad_request(response, "cursor").await;
        server.standalone.shutdown().await.expect("shutdown");
    })
    .await;
}

/// Data that retention removed is answered 410 with the earliest valid cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
// The embedded queue is the only queue type unless the Pulsar feature is built in.
#[allow(irrefutable_let_patterns)]
async fn test_cursor_into_removed_data_gets_410_with_the_earliest_cursor() {
    bounded(async {
        let server = TestServer::start_with(|config| {
            if let QueueConfig::Embedded(queue) = &mut config.queue {
                // One message per segment, deleted as soon as indexed.
                queue.segment_max_bytes = 1;
                queue.retention_secs = 0;
            }
        })
        .await
        .expect("server");
        let client = &server.client;
        client.create_project("expire").await.expect("project");
        client
            .create_pool("expire", &json!({ "name": "app", "shards": 1 }))
            .await
            .expect("pool");
        let old_cursor = client
            .cursor("expire", "app", 0, &StartAt::Begin)
            .await
            .expect("cursor");
        for n in 0..5 {
            put_pinned(client, "expire", "app", "k", &[json!({ "n": n })]).await;
        }
        let begin = wait_for(Duration::from_secs(60), || async {
            let shards = client.shards("expire", "app").await.ok()?;
            let begin = shards.first()?["begin_position"].as_u64()?;
            (begin > 0).then_some(begin)
        })
        .await
        .expect("retention removes the oldest messages");
        assert!(begin <= 4, "the newest segment stays");
        let error = client
            .read_records("expire", "app", 0, &old_cursor, 10)
            .await
            .expect_err("the cursor's data is gone");
        assert_eq!(error.status(), Some(410), "{error}");
        let earliest = earliest_cursor_of(&error).expect("earliest cursor in the 410");
        let batch = client
            .read_records("expire", "app", 0, &earliest, 10)
            .await
            .expect("read from the earliest cursor");
        let read = numbers(&batch.records);
        assert!(!read.is_empty() && read.last() == Some(&4), "{read:?}");
        server.standalone.shutdown().await.expect("shutdown");
    })
    .await;
}

/// Runs one group member until aborted: heartbeat, read, record what was processed,
/// checkpoint.
fn spawn_member(
    client: LogpoolClient,
    project: &'static str,
    consumer: &'static str,
    processed: Arc<Mutex<Vec<u64>>>,
    owned: Arc<Mutex<Vec<u32>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut member = GroupMember::new(client, project, "app", "workers", consumer);
        loop {
            if let Ok(shards) = member.heartbeat().await {
                *owned.lock().expect("lock") = shards;
            }
            if let Ok(batches) = member.poll(7).await {
                for batch in batches {
                    processed
                        .lock()
                        .expect("lock")
                        .extend(numbers(&batch.records));
                    // A member may die between processing and checkpointing; the
                    // successor then repeats that batch, never skips it.
                    let _ = member.commit(&batch).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// Two members split the shards; one is killed; the other takes its shards over from
/// the checkpoints; together they processed every record, with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_consumer_group_members_split_shards_and_take_over_after_a_kill() {
    bounded(async {
        let server = TestServer::start().await.expect("server");
        let client = server.client.clone();
        client.create_project("groups").await.expect("project");
        client
            .create_pool("groups", &json!({ "name": "app", "shards": 4 }))
            .await
            .expect("pool");
        client
            .create_consumer_group("groups", "app", "workers", 2, false)
            .await
            .expect("group");
        let put_range = |range: std::ops::Range<u64>| {
            let client = client.clone();
            async move {
                for start in range.clone().step_by(10) {
                    let records: Vec<Value> = (start..(start + 10).min(range.end))
                        .map(|n| json!({ "n": n }))
                        .collect();
                    put_pinned(&client, "groups", "app", &format!("key-{start}"), &records).await;
                }
            }
        };
        put_range(0..300).await;

        let first_processed = Arc::new(Mutex::new(Vec::new()));
        let second_processed = Arc::new(Mutex::new(Vec::new()));
        let first_owned = Arc::new(Mutex::new(Vec::new()));
        let second_owned = Arc::new(Mutex::new(Vec::new()));
        let first = spawn_member(client.clone(), "groups", "first", first_processed.clone(), first_owned.clone());
        let second = spawn_member(client.clone(), "groups", "second", second_processed.clone(), second_owned.clone());

        let split = wait_for(Duration::from_secs(20), || async {
            let a = first_owned.lock().expect("lock").clone();
            let b = second_owned.lock().expect("lock").clone();
            let busy = !first_processed.lock().expect("lock").is_empty()
                && !second_processed.lock().expect("lock").is_empty();
            (a.len() == 2 && b.len() == 2 && busy).then_some((a, b))
        })
        .await
        .expect("the two members split the shards and both process records");
        let all_shards: BTreeSet<u32> = split.0.iter().chain(split.1.iter()).copied().collect();
        assert_eq!(all_shards, BTreeSet::from([0, 1, 2, 3]), "{split:?}");
        let union_of = |first: &Mutex<Vec<u64>>, second: &Mutex<Vec<u64>>| {
            let mut union: BTreeSet<u64> = first.lock().expect("lock").iter().copied().collect();
            union.extend(second.lock().expect("lock").iter().copied());
            union
        };
        wait_for(Duration::from_secs(30), || async {
            (union_of(&first_processed, &second_processed).len() == 300).then_some(())
        })
        .await
        .expect("the members process the first 300 records");
        // Settle: both have checkpointed what they processed.
        tokio::time::sleep(Duration::from_millis(500)).await;

        // Kill the first member: it stops without a goodbye, as a crashed process does.
        first.abort();
        let _ = first.await;
        put_range(300..500).await;

        let first_count_at_kill = first_processed.lock().expect("lock").len();
        let taken_over = wait_for(Duration::from_secs(60), || async {
            let owned = second_owned.lock().expect("lock").clone();
            let union = union_of(&first_processed, &second_processed);
            (owned.len() == 4 && union.len() == 500).then_some(union)
        })
        .await;
        second.abort();
        let union = taken_over.unwrap_or_else(|| {
            panic!(
                "the second member owns {:?} and the union misses {} records",
                second_owned.lock().expect("lock"),
                500 - first_processed
                    .lock()
                    .expect("lock")
                    .iter()
                    .chain(second_processed.lock().expect("lock").iter())
                    .collect::<BTreeSet<_>>()
                    .len()
            )
        });
        assert_eq!(union, (0..500).collect::<BTreeSet<u64>>(), "every record, no gap");
        // The survivor resumed from the checkpoints: records are repeated only around
        // the moments shards moved (at most a couple of 7-record batches per shard),
        // not everything the killed member had processed.
        let num_processed = first_processed.lock().expect("lock").len()
            + second_processed.lock().expect("lock").len();
        let num_repeated = num_processed - 500;
        assert!(
            first_count_at_kill >= 60,
            "the killed member had done real work ({first_count_at_kill} records)"
        );
        assert!(
            num_repeated <= 4 * 2 * 7,
            "{num_repeated} records processed twice; the killed member had processed {first_count_at_kill}"
        );
        server.standalone.shutdown().await.expect("shutdown");
    })
    .await;
}

/// The same reads and consumer groups in distributed mode: Pulsar positions, the
/// cursor key and the group state shared by two tail-ws processes through MySQL, and
/// a member whose tail-ws process is killed.
#[cfg(feature = "distributed")]
mod distributed {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use logpool_client::pull::{PullReader, StartAt};
    use logpool_e2e::services::{engines, stop, Deployment};
    use logpool_e2e::wait_for;
    use serde_json::{json, Value};

    use super::{bounded, numbers, read_to_end, spawn_member};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn test_reads_and_groups_across_two_tail_ws_processes_on_pulsar() {
        let Some(engines) = engines() else { return };
        bounded(async {
            let deployment = Deployment::new(&engines).await;
            // control-api first: it migrates MySQL and publishes the routing.
            let control = deployment.start("control-api").await;
            let put = deployment.start("put-datas").await;
            let mut tail_a = deployment.start("tail-ws").await;
            let tail_b = deployment.start("tail-ws").await;
            let project: &'static str =
                Box::leak(format!("pull-{}", deployment.suffix).into_boxed_str());
            control
                .client
                .create_project(project)
                .await
                .expect("project");
            control
                .client
                .create_pool(project, &json!({ "name": "app", "shards": 4 }))
                .await
                .expect("pool");
            // The tail-ws processes learn the pool through etcd.
            for service in [&tail_a.client, &tail_b.client] {
                wait_for(Duration::from_secs(20), || async {
                    service.shards(project, "app").await.ok().map(drop)
                })
                .await
                .expect("tail-ws knows the new pool");
            }
            let mut expected: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
            let mut n = 0u64;
            for batch in 0..40u64 {
                let size = 1 + batch % 4;
                let records: Vec<Value> = (n..n + size).map(|n| json!({ "n": n })).collect();
                let shard = loop {
                    let body = serde_json::to_vec(&json!({ "logs": records })).expect("body");
                    match put
                        .client
                        .put_raw(
                            project,
                            "app",
                            "application/json",
                            logpool_client::Encoding::Identity,
                            body,
                            Some(&format!("key-{batch}")),
                        )
                        .await
                    {
                        Ok(answer) => {
                            break answer["shards"][0]["shard"].as_u64().expect("shard") as u32
                        }
                        Err(error) if error.status() == Some(404) => {
                            tokio::time::sleep(Duration::from_millis(200)).await
                        }
                        Err(error) => panic!("put: {error}"),
                    }
                };
                expected.entry(shard).or_default().extend(n..n + size);
                n += size;
            }
            let total = n;

            // Begin to end on every shard through process A; A's cursors work on B.
            for (shard, want) in &expected {
                let mut reader = PullReader::open(
                    tail_a.client.clone(),
                    project,
                    "app",
                    *shard,
                    &StartAt::Begin,
                )
                .await
                .expect("reader");
                let begin_cursor = reader.cursor().to_string();
                assert_eq!(
                    &numbers(&read_to_end(&mut reader, 3).await),
                    want,
                    "shard {shard}"
                );
                let mut on_b = PullReader::at_cursor(
                    tail_b.client.clone(),
                    project,
                    "app",
                    *shard,
                    begin_cursor,
                );
                assert_eq!(
                    &numbers(&read_to_end(&mut on_b, 1000).await),
                    want,
                    "shard {shard} on B"
                );
            }

            // One group member per tail-ws process.
            tail_a
                .client
                .create_consumer_group(project, "app", "workers", 2, false)
                .await
                .expect("group");
            let first_processed = Arc::new(Mutex::new(Vec::new()));
            let second_processed = Arc::new(Mutex::new(Vec::new()));
            let first_owned = Arc::new(Mutex::new(Vec::new()));
            let second_owned = Arc::new(Mutex::new(Vec::new()));
            let first = spawn_member(
                tail_a.client.clone(),
                project,
                "first",
                first_processed.clone(),
                first_owned.clone(),
            );
            let second = spawn_member(
                tail_b.client.clone(),
                project,
                "second",
                second_processed.clone(),
                second_owned.clone(),
            );
            let split = wait_for(Duration::from_secs(30), || async {
                let a = first_owned.lock().expect("lock").clone();
                let b = second_owned.lock().expect("lock").clone();
                (a.len() == 2 && b.len() == 2).then_some((a, b))
            })
            .await
            .expect("the members, each through its own tail-ws, split the shards");
            let all: BTreeSet<u32> = split.0.iter().chain(split.1.iter()).copied().collect();
            assert_eq!(
                all,
                BTreeSet::from([0, 1, 2, 3]),
                "one owner per shard: {split:?}"
            );

            // Kill the first member's tail-ws process: the member can no longer
            // heartbeat, and the second takes its shards over from the checkpoints.
            stop(&mut tail_a).await;
            first.abort();
            let _ = first.await;
            let union = wait_for(Duration::from_secs(60), || async {
                let owned = second_owned.lock().expect("lock").clone();
                let mut union: BTreeSet<u64> = first_processed
                    .lock()
                    .expect("lock")
                    .iter()
                    .copied()
                    .collect();
                union.extend(second_processed.lock().expect("lock").iter().copied());
                (owned.len() == 4 && union.len() as u64 == total).then_some(union)
            })
            .await;
            second.abort();
            let union = union.unwrap_or_else(|| {
                panic!("the survivor owns {:?}", second_owned.lock().expect("lock"))
            });
            assert_eq!(
                union,
                (0..total).collect::<BTreeSet<u64>>(),
                "every record, no gap"
            );
        })
        .await;
    }
}
