//! Pipe SQL end to end: the Loghub samples go in through PutDatas, and every
//! group-by and time-bucket answer of `POST .../query` equals a computation over the
//! input files done here.

use std::collections::{BTreeMap, BTreeSet};

use logpool_core::query::tokenize;
use logpool_core::record::format_time_ns;
use logpool_e2e::{loghub_lines, wait_for_count, TestServer, LOGHUB_SYSTEMS};
use serde_json::{json, Value};

/// Records are stamped one second apart from here, so time buckets have a known answer.
const BASE_TIME_SECS: i64 = 1_700_000_000;
const PROJECT: &str = "sqlhub";
const NS_PER_SEC: i64 = 1_000_000_000;

/// The first alphabetic token of at least three letters: a key with many repeated
/// values (and no value for some lines, which form the null group).
fn first_word(line: &str) -> Option<String> {
    tokenize(line)
        .into_iter()
        .find(|token| token.len() >= 3 && token.chars().all(|c| c.is_ascii_alphabetic()))
}

fn record(line_no: usize, line: &str) -> Value {
    let mut record = json!({
        "time": BASE_TIME_SECS + line_no as i64,
        "message": line,
        "line_no": line_no,
        "len": line.chars().count(),
    });
    if let Some(word) = first_word(line) {
        record["word"] = json!(word);
    }
    record
}

async fn sql(http: &reqwest::Client, base: &str, pool: &str, query: &str) -> (u16, Value) {
    let response = http
        .post(format!("{base}/v1/projects/{PROJECT}/pools/{pool}/query"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("query request");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("query answer is JSON");
    (status, body)
}

async fn rows(http: &reqwest::Client, base: &str, pool: &str, query: &str) -> Vec<Value> {
    let (status, body) = sql(http, base, pool, query).await;
    assert_eq!(status, 200, "{pool}: `{query}` answered {body}");
    body["rows"].as_array().cloned().expect("rows")
}

fn time_text(secs: i64) -> Value {
    json!(format_time_ns(secs * NS_PER_SEC))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_loghub_group_by_and_time_buckets_equal_a_scan() {
    let server = TestServer::start().await.expect("server");
    check_loghub_sql(&server).await;
}

/// The same checks with the standalone server on Elasticsearch (OpenSearch API).
#[cfg(feature = "distributed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_loghub_sql_on_elasticsearch_equals_a_scan() {
    let Some(engines) = logpool_e2e::services::engines() else {
        return;
    };
    let server = TestServer::start_with(|config| {
        config.index = logpool_e2e::services::elasticsearch_index(&engines, "lpsql");
    })
    .await
    .expect("server");
    check_loghub_sql(&server).await;
}

async fn check_loghub_sql(server: &TestServer) {
    let client = &server.client;
    let http = reqwest::Client::builder()
        .default_headers(logpool_e2e::admin_headers())
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .expect("http client");
    let base = server.url();
    client
        .create_project(PROJECT)
        .await
        .expect("create project");
    for system in LOGHUB_SYSTEMS {
        let pool = system.to_lowercase();
        // The records carry times of 2023: the pool keeps (and so accepts) them.
        client
            .create_pool(
                PROJECT,
                &json!({ "name": pool, "shards": 2, "retention_days": 3650 }),
            )
            .await
            .expect("create pool");
        let records: Vec<Value> = loghub_lines(system)
            .iter()
            .enumerate()
            .map(|(i, line)| record(i, line))
            .collect();
        for chunk in records.chunks(700) {
            client
                .put_records(PROJECT, &pool, chunk)
                .await
                .expect("put");
        }
    }
    for system in LOGHUB_SYSTEMS {
        let pool = system.to_lowercase();
        let lines = loghub_lines(system);
        let total = lines.len() as u64;
        assert_eq!(
            wait_for_count(client, PROJECT, &pool, "", total).await,
            total,
            "{system}: all records indexed"
        );

        // Group by a field: the top 10 by count, ties by the word.
        let mut per_word: BTreeMap<Option<String>, u64> = BTreeMap::new();
        for line in &lines {
            *per_word.entry(first_word(line)).or_insert(0) += 1;
        }
        let mut top: Vec<(Option<String>, u64)> = per_word.clone().into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(10);
        let expected: Vec<Value> = top
            .iter()
            .map(|(word, count)| json!([word, count]))
            .collect();
        let got = rows(
            &http,
            &base,
            &pool,
            "* | SELECT word, count(*) AS c GROUP BY word ORDER BY c DESC, word LIMIT 10",
        )
        .await;
        assert_eq!(got, expected, "{system}: top words");

        // Every group, with HAVING, against the scan.
        let query = format!(
            "* | SELECT word, count(*) AS c FROM {pool} GROUP BY word HAVING c >= 5 ORDER BY word"
        );
        let expected: Vec<Value> = per_word
            .iter()
            .filter(|(_, count)| **count >= 5)
            .map(|(word, count)| json!([word, count]))
            .collect();
        assert_eq!(
            rows(&http, &base, &pool, &query).await,
            expected,
            "{system}: HAVING"
        );

        // Time buckets: per minute, and per 5 minutes with sums and maxima.
        let mut per_minute: BTreeMap<i64, u64> = BTreeMap::new();
        let mut per_five: BTreeMap<i64, (u64, u64, u64)> = BTreeMap::new();
        for (i, line) in lines.iter().enumerate() {
            let secs = BASE_TIME_SECS + i as i64;
            *per_minute.entry(secs.div_euclid(60) * 60).or_insert(0) += 1;
            let len = line.chars().count() as u64;
            let entry = per_five
                .entry(secs.div_euclid(300) * 300)
                .or_insert((0, 0, 0));
            entry.0 += 1;
            entry.1 += len;
            entry.2 = entry.2.max(len);
        }
        let expected: Vec<Value> = per_minute
            .iter()
            .map(|(secs, count)| json!([time_text(*secs), count]))
            .collect();
        let got = rows(
            &http,
            &base,
            &pool,
            "* | SELECT date_trunc('minute', time) AS m, count(*) GROUP BY m ORDER BY m",
        )
        .await;
        assert_eq!(got, expected, "{system}: per minute");
        let got = rows(
            &http,
            &base,
            &pool,
            "* | SELECT time_bucket('5m', time), count(*), sum(len), max(len) GROUP BY 1 ORDER BY 1",
        )
        .await;
        assert_eq!(got.len(), per_five.len(), "{system}: 5-minute buckets");
        for (row, (secs, (count, sum, max))) in got.iter().zip(&per_five) {
            assert_eq!(row[0], time_text(*secs), "{system}: bucket start");
            assert_eq!(row[1].as_u64(), Some(*count), "{system}: bucket count");
            assert_eq!(row[2].as_f64(), Some(*sum as f64), "{system}: bucket sum");
            assert_eq!(row[3].as_f64(), Some(*max as f64), "{system}: bucket max");
        }

        // The search before the pipe and WHERE filter together.
        let (word, _) = top
            .iter()
            .find(|(word, _)| word.is_some())
            .cloned()
            .expect("a word");
        let word = word.expect("a word");
        let matching: Vec<&String> = lines[1000..]
            .iter()
            .filter(|line| tokenize(line).contains(&word))
            .collect();
        let distinct_words: BTreeSet<Option<String>> = matching
            .iter()
            .filter_map(|line| first_word(line))
            .map(Some)
            .collect();
        let got = rows(
            &http,
            &base,
            &pool,
            &format!("{word} | SELECT count(*), count(DISTINCT word) WHERE line_no >= 1000"),
        )
        .await;
        assert_eq!(
            got,
            vec![json!([matching.len(), distinct_words.len()])],
            "{system}: filtered global aggregate"
        );

        // WHERE on the event time is a time range.
        let query = format!(
            "* | SELECT count(*) AS n WHERE time >= '{}' AND time < '{}'",
            format_time_ns((BASE_TIME_SECS + 500) * NS_PER_SEC),
            format_time_ns((BASE_TIME_SECS + 1500) * NS_PER_SEC),
        );
        assert_eq!(
            rows(&http, &base, &pool, &query).await,
            vec![json!([1000.min(lines.len().saturating_sub(500))])],
            "{system}: time range in WHERE"
        );

        // Rows without aggregates: the newest records first.
        let got = rows(
            &http,
            &base,
            &pool,
            "* | SELECT line_no, word ORDER BY time DESC LIMIT 3",
        )
        .await;
        let expected: Vec<Value> = (lines.len() - 3..lines.len())
            .rev()
            .map(|i| json!([i, first_word(&lines[i])]))
            .collect();
        assert_eq!(got, expected, "{system}: newest rows");
    }

    // Unsupported SQL is a 400 naming the construct and where it is.
    let query = "* | SELECT count(*) FROM apache JOIN bgl ON apache.x = bgl.x";
    let (status, body) = sql(&http, &base, "apache", query).await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("JOIN is not supported"), "{body}");
    assert_eq!(
        body["error"]["position"].as_u64(),
        Some(query.find("bgl").expect("bgl") as u64),
        "{body}"
    );
    let (status, body) = sql(&http, &base, "apache", "* | SELECT count(*) FROM bgl").await;
    assert_eq!(status, 400, "FROM another pool: {body}");
    // Refused statements name why, on both engines. (Grouping by the raw line is
    // answered now: statements the index cannot aggregate read the records.)
    for (statement, why) in [(
        "* | SELECT no_such_function(word), count(*) GROUP BY word",
        "function no_such_function is not supported",
    )] {
        let (status, body) = sql(&http, &base, "apache", statement).await;
        assert_eq!(status, 400, "{statement}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(why),
            "{body}"
        );
    }
    let (status, _) = sql(&http, &base, "apache", "status:500").await;
    assert_eq!(status, 400, "a query without a pipe");
}
