//! Reading pools as queues: shard cursors, record reads and consumer groups, against
//! the standalone product on its embedded engines.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logpool_client::pull::{earliest_cursor_of, GroupMember, PullReader, StartAt};
use logpool_client::wire::search::Hit;
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
    assert_eq!(
        answer.shards.len(),
        1,
        "a pinned request goes to one shard: {answer:?}"
    );
    answer.shards[0].shard as u32
}

/// Reads a shard from `cursor` to its end, `count` records at a time.
async fn read_to_end(reader: &mut PullReader, count: u32) -> Vec<Hit> {
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

fn numbers(records: &[Hit]) -> Vec<u64> {
    records
        .iter()
        .map(|record| record.fields["n"].as_u64().expect("n"))
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
            assert_eq!(shard.shard as usize, index);
            assert!(shard.begin_position <= shard.end_position);
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
                assert_eq!(record.shard, *shard);
                assert!(!record.id.is_empty());
                assert!(!record.time.is_empty());
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
            let begin = shards.first()?.begin_position;
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

/// What one group member did, shared with the test while it runs.
#[derive(Debug, Default)]
struct MemberLog {
    /// Every record number it processed, in order (repeats included).
    processed: Mutex<Vec<u64>>,
    /// Record numbers whose checkpoint was saved after processing.
    committed: Mutex<BTreeSet<u64>>,
    /// The shards it owns, as of its last heartbeat.
    owned: Mutex<Vec<u32>>,
    /// Checkpoints that could not be saved.
    commit_errors: AtomicUsize,
}

impl MemberLog {
    fn processed(&self) -> Vec<u64> {
        self.processed.lock().expect("lock").clone()
    }

    fn owned(&self) -> Vec<u32> {
        self.owned.lock().expect("lock").clone()
    }

    fn commit_errors(&self) -> usize {
        self.commit_errors.load(AtomicOrdering::SeqCst)
    }
}

/// The distinct records two members processed (or, with `committed`, checkpointed).
fn union_of(first: &MemberLog, second: &MemberLog, committed: bool) -> BTreeSet<u64> {
    let mut union = BTreeSet::new();
    for log in [first, second] {
        if committed {
            union.extend(log.committed.lock().expect("lock").iter().copied());
        } else {
            union.extend(log.processed.lock().expect("lock").iter().copied());
        }
    }
    union
}

/// Runs one group member until aborted: heartbeat, read, record what was processed,
/// checkpoint (counting the checkpoints that fail).
fn spawn_member(
    client: LogpoolClient,
    project: &'static str,
    consumer: &'static str,
    log: Arc<MemberLog>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut member = GroupMember::new(client, project, "app", "workers", consumer);
        loop {
            if let Ok(shards) = member.heartbeat().await {
                *log.owned.lock().expect("lock") = shards;
            }
            if let Ok(batches) = member.poll(7).await {
                for batch in batches {
                    let record_numbers = numbers(&batch.records);
                    log.processed
                        .lock()
                        .expect("lock")
                        .extend(record_numbers.iter().copied());
                    // A member may die between processing and checkpointing; the
                    // successor then repeats that batch, never skips it.
                    match member.commit(&batch).await {
                        Ok(()) => log.committed.lock().expect("lock").extend(record_numbers),
                        Err(_) => {
                            log.commit_errors.fetch_add(1, AtomicOrdering::SeqCst);
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// Shards move at most twice (when the second member joins and when one dies), and
/// each move repeats at most the last uncheckpointed batch of 7 records per shard.
const MAX_REPEATED: usize = 4 * 2 * 7;

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
        let groups = client.consumer_groups("groups", "app").await.expect("groups");
        assert_eq!(
            groups.iter().map(|g| (g.name.as_str(), g.timeout_s)).collect::<Vec<_>>(),
            [("workers", 2)]
        );
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

        let first_log = Arc::new(MemberLog::default());
        let second_log = Arc::new(MemberLog::default());
        let first = spawn_member(client.clone(), "groups", "first", first_log.clone());
        let second = spawn_member(client.clone(), "groups", "second", second_log.clone());

        let split = wait_for(Duration::from_secs(20), || async {
            let (a, b) = (first_log.owned(), second_log.owned());
            let busy = !first_log.processed().is_empty() && !second_log.processed().is_empty();
            (a.len() == 2 && b.len() == 2 && busy).then_some((a, b))
        })
        .await
        .expect("the two members split the shards and both process records");
        let all_shards: BTreeSet<u32> = split.0.iter().chain(split.1.iter()).copied().collect();
        assert_eq!(all_shards, BTreeSet::from([0, 1, 2, 3]), "{split:?}");
        // Both have processed and checkpointed every record so far.
        wait_for(Duration::from_secs(30), || async {
            (union_of(&first_log, &second_log, true).len() == 300).then_some(())
        })
        .await
        .expect("the members process and checkpoint the first 300 records");

        // Kill the first member: it stops without a goodbye, as a crashed process does.
        first.abort();
        let _ = first.await;
        let first_count_at_kill = first_log.processed().len();
        put_range(300..500).await;

        let taken_over = wait_for(Duration::from_secs(60), || async {
            let union = union_of(&first_log, &second_log, false);
            (second_log.owned().len() == 4 && union.len() == 500).then_some(union)
        })
        .await;
        second.abort();
        let union = taken_over.unwrap_or_else(|| {
            panic!(
                "the second member owns {:?} and the union misses {} records",
                second_log.owned(),
                500 - union_of(&first_log, &second_log, false).len()
            )
        });
        assert_eq!(union, (0..500).collect::<BTreeSet<u64>>(), "every record, no gap");
        assert_eq!(
            (first_log.commit_errors(), second_log.commit_errors()),
            (0, 0),
            "checkpoints failed"
        );
        // The survivor resumed from the checkpoints: records are repeated only around
        // the moments shards moved, not everything the killed member had processed.
        let num_processed = first_log.processed().len() + second_log.processed().len();
        let num_repeated = num_processed - 500;
        assert!(
            first_count_at_kill >= 60,
            "the killed member had done real work ({first_count_at_kill} records)"
        );
        assert!(
            num_repeated <= MAX_REPEATED,
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
    use std::sync::Arc;
    use std::time::Duration;

    use logpool_client::pull::{PullReader, StartAt};
    use logpool_client::LogpoolClient;
    use logpool_e2e::services::{engines, log_tail, Deployment};
    use logpool_e2e::wait_for;
    use serde_json::{json, Value};

    use super::{bounded, numbers, read_to_end, spawn_member, union_of, MemberLog, MAX_REPEATED};

    /// Puts records `numbers` as one request pinned by `hash_key` (waiting while
    /// put-datas does not know the pool yet) and returns their shard.
    async fn put_numbers(
        put: &LogpoolClient,
        project: &str,
        hash_key: &str,
        numbers: std::ops::Range<u64>,
    ) -> u32 {
        let records: Vec<Value> = numbers.map(|n| json!({ "n": n })).collect();
        loop {
            let body = serde_json::to_vec(&json!({ "logs": records })).expect("body");
            match put
                .put_raw(
                    project,
                    "app",
                    "application/json",
                    logpool_client::Encoding::Identity,
                    body,
                    Some(hash_key),
                )
                .await
            {
                Ok(answer) => return answer.shards[0].shard as u32,
                Err(error) if error.status() == Some(404) => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(error) => panic!("put: {error}"),
            }
        }
    }

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
                let shard = put_numbers(&put.client, project, &format!("key-{batch}"), n..n + size)
                    .await;
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
            let first_log = Arc::new(MemberLog::default());
            let second_log = Arc::new(MemberLog::default());
            let first = spawn_member(tail_a.client.clone(), project, "first", first_log.clone());
            let second = spawn_member(tail_b.client.clone(), project, "second", second_log.clone());
            let split = wait_for(Duration::from_secs(30), || async {
                let (a, b) = (first_log.owned(), second_log.owned());
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
            // Both have processed and checkpointed every record so far.
            wait_for(Duration::from_secs(30), || async {
                (union_of(&first_log, &second_log, true).len() as u64 == total).then_some(())
            })
            .await
            .expect("the members process and checkpoint every record");
            assert_eq!(
                (first_log.commit_errors(), second_log.commit_errors()),
                (0, 0),
                "checkpoints failed before the kill"
            );

            // SIGKILL the first member's tail-ws process, as a crash would: the member
            // can no longer heartbeat, and the second takes its shards over from the
            // checkpoints.
            let first_count_at_kill = first_log.processed().len();
            tail_a.child.start_kill().expect("kill -9");
            tail_a.child.wait().await.expect("reap");
            first.abort();
            let _ = first.await;
            // More records after the kill, on every shard.
            for batch in 0..20u64 {
                let from = total + batch * 10;
                put_numbers(&put.client, project, &format!("late-{batch}"), from..from + 10).await;
            }
            let total = total + 200;
            let taken_over = wait_for(Duration::from_secs(60), || async {
                let union = union_of(&first_log, &second_log, false);
                (second_log.owned().len() == 4 && union.len() as u64 == total).then_some(union)
            })
            .await;
            second.abort();
            let union = taken_over.unwrap_or_else(|| {
                panic!(
                    "the survivor owns {:?} and the union misses {} records\nsurviving tail-ws log:\n{}",
                    second_log.owned(),
                    total - union_of(&first_log, &second_log, false).len() as u64,
                    log_tail(&tail_b.log)
                )
            });
            assert_eq!(
                union,
                (0..total).collect::<BTreeSet<u64>>(),
                "every record, no gap"
            );
            assert_eq!(
                second_log.commit_errors(),
                0,
                "the survivor's checkpoints failed"
            );
            // The survivor resumed from the checkpoints: records are repeated only
            // around the moments shards moved, not everything the killed member had
            // processed.
            let num_processed = first_log.processed().len() + second_log.processed().len();
            let num_repeated = num_processed - total as usize;
            assert!(
                first_count_at_kill >= 20,
                "the killed member had done real work ({first_count_at_kill} records)"
            );
            assert!(
                num_repeated <= MAX_REPEATED,
                "{num_repeated} records processed twice; the killed member had processed {first_count_at_kill}"
            );
        })
        .await;
    }
}
