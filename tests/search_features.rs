//! Search features around the hits, end to end on the standalone product: highlight,
//! context, field summary, the automatic histogram interval, the progressive search
//! planner (progress, partial answers, NDJSON streaming) and the request caps.
//!
//! Every expectation is computed from the records the test sends (a scan with the
//! core tokenizer), never from an engine.

use std::collections::HashMap;
use std::time::Duration;

use logpool_client::wire::search::HistogramParams;
use logpool_core::query::tokenize;
use logpool_e2e::{loghub_lines, wait_for_count, TestServer};
use serde_json::{json, Value};

const PROJECT: &str = "features";
const BASE_TIME_SECS: i64 = 1_700_000_000;
const DAY_SECS: i64 = 86_400;
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

fn source_of(line_no: usize) -> &'static str {
    if line_no.is_multiple_of(2) {
        "host-a"
    } else {
        "host-b"
    }
}

/// The Linux sample, one second apart, in one shard so queue order is line order.
async fn load_linux_pool(server: &TestServer, pool: &str) -> Vec<String> {
    let client = &server.client;
    client.create_project(PROJECT).await.expect("project");
    // The records carry times of 2023: the pool keeps (and so accepts) them.
    client
        .create_pool(
            PROJECT,
            &json!({"name": pool, "shards": 1, "retention_days": 3650}),
        )
        .await
        .expect("pool");
    let lines = loghub_lines("Linux");
    let records: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            json!({
                "time": BASE_TIME_SECS + i as i64,
                "message": line,
                "line_no": i,
                "source": source_of(i),
            })
        })
        .collect();
    for chunk in records.chunks(500) {
        client.put_records(PROJECT, pool, chunk).await.expect("put");
    }
    let total = lines.len() as u64;
    assert_eq!(
        wait_for_count(client, PROJECT, pool, "", total).await,
        total
    );
    lines
}

/// The most frequent alphabetic token of at least five letters (by lines holding it)
/// among those in fewer than 500 lines, so a field summary sample holds every match.
fn common_word(lines: &[String]) -> String {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for line in lines {
        let mut tokens = tokenize(line);
        tokens.sort();
        tokens.dedup();
        for token in tokens {
            if token.len() >= 5 && token.chars().all(|c| c.is_ascii_alphabetic()) {
                *counts.entry(token).or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .filter(|(_, count)| *count < 500)
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(word, _)| word)
        .expect("a word")
}

async fn get_json(server: &TestServer, path: &str, query: &[(&str, String)]) -> (u16, Value) {
    let response = logpool_e2e::admin_http()
        .get(format!("{}{path}", server.url()))
        .query(query)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.expect("json");
    (status, body)
}

fn line_no(hit: &Value) -> usize {
    hit["fields"]["line_no"].as_u64().expect("line_no") as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_highlight_context_fields_and_histogram_on_loghub() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let server = TestServer::start().await.expect("server");
        let pool = "linux";
        let lines = load_linux_pool(&server, pool).await;
        let search_path = format!("/v1/projects/{PROJECT}/pools/{pool}/search");
        let word = common_word(&lines);
        let matching: Vec<usize> = (0..lines.len())
            .filter(|i| tokenize(&lines[*i]).contains(&word))
            .collect();

        // Highlight: every hit marks the word in its message, and nothing else.
        let (status, page) = get_json(
            &server,
            &search_path,
            &[
                ("query", word.clone()),
                ("highlight", "true".into()),
                ("limit", "50".into()),
            ],
        )
        .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["total"].as_u64(), Some(matching.len() as u64));
        assert_eq!(page["partial"], json!(false));
        assert_eq!(page["progress"], json!({"scanned": 1, "total": 1}));
        let hits = page["hits"].as_array().expect("hits");
        assert_eq!(hits.len(), matching.len().min(50));
        for hit in hits {
            let fragments = hit["highlight"]["message"].as_array().expect("marked");
            let marked: Vec<String> = fragments
                .iter()
                .flat_map(|f| {
                    f.as_str()
                        .unwrap_or_default()
                        .split("<em>")
                        .skip(1)
                        .filter_map(|rest| rest.split("</em>").next())
                        .map(str::to_lowercase)
                        .collect::<Vec<_>>()
                })
                .collect();
            assert!(!marked.is_empty(), "{hit}");
            assert!(marked.iter().all(|m| *m == word), "{marked:?} in {hit}");
            let expected_marks = tokenize(&lines[line_no(hit)])
                .iter()
                .filter(|t| **t == word)
                .count();
            assert_eq!(marked.len(), expected_marks, "{hit}");
        }
        // Without the flag hits carry no highlight.
        let (_, plain) = get_json(&server, &search_path, &[("query", word.clone())]).await;
        assert!(plain["hits"][0].get("highlight").is_none());

        // Context: the anchor's neighbours in queue order (= line order here).
        let anchor_line = 1_000;
        let (_, found) = get_json(
            &server,
            &search_path,
            &[("query", format!("line_no:{anchor_line}"))],
        )
        .await;
        let anchor_id = found["hits"][0]["id"].as_str().expect("id").to_string();
        let context_path =
            format!("/v1/projects/{PROJECT}/pools/{pool}/records/{anchor_id}/context");
        let (status, context) = get_json(
            &server,
            &context_path,
            &[("before", "5".into()), ("after", "3".into())],
        )
        .await;
        assert_eq!(status, 200, "{context}");
        assert_eq!(line_no(&context["anchor"]), anchor_line);
        let numbers = |key: &str, answer: &Value| -> Vec<usize> {
            answer[key]
                .as_array()
                .expect(key)
                .iter()
                .map(line_no)
                .collect()
        };
        assert_eq!(numbers("before", &context), (995..1000).collect::<Vec<_>>());
        assert_eq!(numbers("after", &context), vec![1001, 1002, 1003]);
        let (_, same_source) = get_json(
            &server,
            &context_path,
            &[
                ("before", "3".into()),
                ("after", "2".into()),
                ("same_source", "true".into()),
            ],
        )
        .await;
        assert_eq!(numbers("before", &same_source), vec![994, 996, 998]);
        assert_eq!(numbers("after", &same_source), vec![1002, 1004]);
        // A bad id is a 400 naming `id`; an unknown one a 404.
        let bad = format!("/v1/projects/{PROJECT}/pools/{pool}/records/nonsense/context");
        let (status, error) = get_json(&server, &bad, &[]).await;
        assert_eq!(
            (status, error["error"]["field"].clone()),
            (400, json!("id"))
        );
        let parts: Vec<&str> = anchor_id.split('-').collect();
        let unknown_id = format!("{}-{}-999999-0", parts[0], parts[1]);
        let unknown = format!("/v1/projects/{PROJECT}/pools/{pool}/records/{unknown_id}/context");
        assert_eq!(get_json(&server, &unknown, &[]).await.0, 404);

        // Field summary over the query's matches (fewer than the sample size).
        assert!(
            matching.len() < 1_000,
            "the summary below must see every match"
        );
        let (status, summary) = get_json(
            &server,
            &format!("/v1/projects/{PROJECT}/pools/{pool}/fields"),
            &[("query", word.clone())],
        )
        .await;
        assert_eq!(status, 200, "{summary}");
        assert_eq!(summary["sampled"].as_u64(), Some(matching.len() as u64));
        let fields = summary["fields"].as_array().expect("fields");
        let source = fields
            .iter()
            .find(|f| f["name"] == "source")
            .expect("source summarised");
        assert_eq!(source["count"].as_u64(), Some(matching.len() as u64));
        let mut expected_sources: HashMap<&str, u64> = HashMap::new();
        for i in &matching {
            *expected_sources.entry(source_of(*i)).or_default() += 1;
        }
        for top in source["top"].as_array().expect("top") {
            let value = top["value"].as_str().expect("value");
            assert_eq!(top["count"].as_u64(), expected_sources.get(value).copied());
        }

        // Histogram with an automatic interval: 30 to 120 buckets, each count a scan.
        let span_secs = lines.len() as i64;
        let (status, histogram) = get_json(
            &server,
            &format!("/v1/projects/{PROJECT}/pools/{pool}/histogram"),
            &[
                ("query", word.clone()),
                ("from", (BASE_TIME_SECS * 1000).to_string()),
                ("to", ((BASE_TIME_SECS + span_secs) * 1000).to_string()),
            ],
        )
        .await;
        assert_eq!(status, 200, "{histogram}");
        let interval_secs = histogram["interval_ms"].as_i64().expect("interval") / 1000;
        let buckets = histogram["buckets"].as_array().expect("buckets");
        assert!(
            (30..=120).contains(&buckets.len()),
            "{} buckets",
            buckets.len()
        );
        let first_bucket = BASE_TIME_SECS.div_euclid(interval_secs) * interval_secs;
        for (k, bucket) in buckets.iter().enumerate() {
            let start = first_bucket + k as i64 * interval_secs;
            let expected = matching
                .iter()
                .filter(|i| {
                    let t = BASE_TIME_SECS + **i as i64;
                    t >= start && t < start + interval_secs
                })
                .count() as u64;
            assert_eq!(bucket["count"].as_u64(), Some(expected), "bucket {k}");
        }
    })
    .await
    .expect("test took too long");
}

/// Five records per day on five consecutive days ending today, newest last.
async fn load_five_days(server: &TestServer, pool: &str, now_secs: i64) -> Vec<i64> {
    let client = &server.client;
    client.create_project(PROJECT).await.expect("project");
    client
        .create_pool(
            PROJECT,
            &json!({"name": pool, "shards": 1, "retention_days": 30}),
        )
        .await
        .expect("pool");
    let mut times = Vec::new();
    for day in (0..5).rev() {
        for k in 0..5 {
            times.push(now_secs - day * DAY_SECS - k);
        }
    }
    let records: Vec<Value> = times
        .iter()
        .map(|t| json!({"time": t, "message": format!("tick at {t}")}))
        .collect();
    client
        .put_records(PROJECT, pool, &records)
        .await
        .expect("put");
    // Counted with a histogram: a search may stop early on purpose in these tests.
    let indexed = logpool_e2e::wait_for(Duration::from_secs(30), || async {
        let histogram = client
            .histogram(
                PROJECT,
                pool,
                &HistogramParams {
                    query: Some("tick".to_string()),
                    from: Some("-6d".into()),
                    ..HistogramParams::default()
                },
            )
            .await
            .ok()?;
        let counted: u64 = histogram.buckets.iter().map(|b| b.count).sum();
        (counted == 25).then_some(())
    })
    .await;
    assert!(indexed.is_some(), "all 25 records indexed");
    times
}

/// Now in seconds, moved back out of the first seconds of a UTC day so that the five
/// records of "today" stay on one day.
fn now_secs() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    if now.rem_euclid(DAY_SECS) < 10 {
        now - 10
    } else {
        now
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_progressive_search_streams_and_stops_early() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let server = TestServer::start_with(|config| {
            config.search.partitions_per_step = 1;
        })
        .await
        .expect("server");
        let pool = "days";
        let now = now_secs();
        let mut times = load_five_days(&server, pool, now).await;
        times.sort_unstable_by(|a, b| b.cmp(a));
        let mut days: Vec<i64> = times.iter().map(|t| t.div_euclid(DAY_SECS)).collect();
        days.dedup();
        let path = format!("/v1/projects/{PROJECT}/pools/{pool}/search");

        // A full search scans every day and counts every match.
        let (status, all) = get_json(&server, &path, &[("query", "tick".into())]).await;
        assert_eq!(status, 200, "{all}");
        assert_eq!(all["total"], json!(25));
        assert_eq!(
            all["progress"],
            json!({"scanned": days.len(), "total": days.len()})
        );
        assert_eq!(all["partial"], json!(false));

        // Without an exact total the planner stops on the day that filled the page.
        let newest_day = days[0];
        let on_newest_day = times
            .iter()
            .filter(|t| t.div_euclid(DAY_SECS) == newest_day)
            .count();
        let (_, early) = get_json(
            &server,
            &path,
            &[
                ("query", "tick".into()),
                ("limit", "3".into()),
                ("track_total", "false".into()),
            ],
        )
        .await;
        assert_eq!(
            early["progress"],
            json!({"scanned": 1, "total": days.len()})
        );
        assert_eq!(early["total"].as_u64(), Some(on_newest_day as u64));
        let early_times: Vec<String> = early["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .map(|h| h["time"].as_str().expect("time").to_string())
            .collect();
        assert_eq!(early_times.len(), 3);
        assert!(early["cursor"].is_string());

        // The stream sends one line per day, then the closing line; its hits are the
        // hits of the plain search in the same order.
        let text = logpool_e2e::admin_http()
            .get(format!("{}{path}/stream", server.url()))
            .query(&[("query", "tick")])
            .send()
            .await
            .expect("stream")
            .text()
            .await
            .expect("body");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("ndjson line"))
            .collect();
        assert_eq!(lines.len(), days.len() + 1, "{text}");
        for (k, line) in lines[..days.len()].iter().enumerate() {
            assert_eq!(
                line["progress"],
                json!({"scanned": k + 1, "total": days.len()})
            );
        }
        let streamed: Vec<Value> = lines[..days.len()]
            .iter()
            .flat_map(|l| l["hits"].as_array().cloned().unwrap_or_default())
            .collect();
        assert_eq!(&streamed, all["hits"].as_array().expect("hits"));
        let done = &lines[days.len()];
        assert_eq!(
            (done["done"].clone(), done["total"].clone()),
            (json!(true), json!(25))
        );
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_time_budget_answers_partial_and_caps_name_their_limit() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let server = TestServer::start_with(|config| {
            config.search.partitions_per_step = 1;
            config.search.time_budget_ms = 0;
            config.search.max_time_range_days = 30;
            config.search.max_context_records = 20;
        })
        .await
        .expect("server");
        let pool = "budget";
        let now = now_secs();
        load_five_days(&server, pool, now).await;
        let path = format!("/v1/projects/{PROJECT}/pools/{pool}/search");

        // A spent budget answers after the first step with what it has.
        let (status, partial) = get_json(&server, &path, &[("query", "tick".into())]).await;
        assert_eq!(status, 200, "{partial}");
        assert_eq!(partial["partial"], json!(true));
        assert_eq!(partial["progress"]["scanned"], json!(1));
        assert!(partial["progress"]["total"].as_u64() > Some(1));
        let found = partial["hits"].as_array().expect("hits").len() as u64;
        assert_eq!(partial["total"].as_u64(), Some(found));
        assert!(found > 0 && found < 25);

        // Caps: the time range, the page size and the context size, each named.
        let (status, error) = get_json(
            &server,
            &path,
            &[("from", "-31d".into()), ("to", "now".into())],
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(error["error"]["field"], json!("from"));
        assert!(error["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("30 days"));
        let (status, error) = get_json(&server, &path, &[("limit", "10001".into())]).await;
        assert_eq!(
            (status, error["error"]["field"].clone()),
            (400, json!("limit"))
        );
        let (_, any) = get_json(&server, &path, &[("limit", "1".into())]).await;
        let id = any["hits"][0]["id"].as_str().expect("id").to_string();
        let context_path = format!("/v1/projects/{PROJECT}/pools/{pool}/records/{id}/context");
        let (status, error) = get_json(&server, &context_path, &[("after", "21".into())]).await;
        assert_eq!(status, 400);
        assert_eq!(error["error"]["field"], json!("after"));
        assert_eq!(error["error"]["limit"], json!(20));
        // A query mistake names its position.
        let (status, error) = get_json(&server, &path, &[("query", "status:(500 OR".into())]).await;
        assert_eq!(status, 400);
        assert_eq!(error["error"]["position"], json!(14));
    })
    .await
    .expect("test took too long");
}
