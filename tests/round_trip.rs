//! Round trip: the eight Loghub samples go in through PutDatas and every count that
//! comes back out equals a scan of the input files.

use std::collections::HashMap;

use logpool_client::wire::search::{HistogramParams, SearchParams};
use logpool_core::query::tokenize;
use logpool_e2e::{loghub_lines, wait_for_count, TestServer, LOGHUB_SYSTEMS};
use serde_json::{json, Value};

/// Records are stamped one second apart from here, so time ranges have a known answer.
const BASE_TIME_SECS: i64 = 1_700_000_000;
const PROJECT: &str = "loghub";

/// `dataset` holds a tag with a digit, so it never matches the alphabetic terms the
/// checks pick and bare-term counts stay equal to a scan of the message alone.
fn record(dataset: &str, line_no: usize, line: &str) -> Value {
    json!({
        "time": BASE_TIME_SECS + line_no as i64,
        "message": line,
        "line_no": line_no,
        "dataset": dataset,
    })
}

fn dataset_tag(system: &str) -> String {
    let index = LOGHUB_SYSTEMS
        .iter()
        .position(|s| *s == system)
        .unwrap_or(0);
    format!("ds{index}")
}

/// Lines whose tokens contain `needle` as consecutive tokens.
fn scan_count(lines: &[String], needle: &[String]) -> u64 {
    lines
        .iter()
        .filter(|line| tokenize(line).windows(needle.len()).any(|w| w == needle))
        .count() as u64
}

/// The most frequent alphabetic token (by lines containing it), the most frequent
/// adjacent pair of alphabetic tokens and the least frequent alphabetic token:
/// deterministic picks that exist in the data.
fn pick_term_and_phrase(lines: &[String]) -> (String, Vec<String>, String) {
    let mut term_lines: HashMap<String, usize> = HashMap::new();
    let mut pair_lines: HashMap<(String, String), usize> = HashMap::new();
    for line in lines {
        let tokens = tokenize(line);
        let mut seen_terms = std::collections::HashSet::new();
        let mut seen_pairs = std::collections::HashSet::new();
        for token in &tokens {
            if token.len() >= 4
                && token.chars().all(|c| c.is_ascii_alphabetic())
                && seen_terms.insert(token.clone())
            {
                *term_lines.entry(token.clone()).or_default() += 1;
            }
        }
        for pair in tokens.windows(2) {
            let alphabetic = pair
                .iter()
                .all(|t| t.len() >= 3 && t.chars().all(|c| c.is_ascii_alphabetic()));
            if alphabetic && seen_pairs.insert((pair[0].clone(), pair[1].clone())) {
                *pair_lines
                    .entry((pair[0].clone(), pair[1].clone()))
                    .or_default() += 1;
            }
        }
    }
    let best = |counts: Vec<(String, usize)>| {
        counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(k, _)| k)
            .unwrap_or_default()
    };
    let common = best(term_lines.iter().map(|(k, v)| (k.clone(), *v)).collect());
    let rare = best(
        term_lines
            .iter()
            .map(|(k, v)| (k.clone(), usize::MAX - *v))
            .collect(),
    );
    let phrase = pair_lines
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|((a, b), _)| vec![a, b])
        .unwrap_or_default();
    (common, phrase, rare)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_loghub_samples_round_trip_with_exact_counts() {
    let server = TestServer::start().await.expect("server");
    let client = &server.client;
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
        let lines = loghub_lines(system);
        let tag = dataset_tag(system);
        let records: Vec<Value> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| record(&tag, i, l))
            .collect();
        for chunk in records.chunks(700) {
            let answer = client
                .put_records(PROJECT, &pool, chunk)
                .await
                .expect("put");
            assert_eq!(answer.accepted, chunk.len());
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

        let (term, phrase, rare) = pick_term_and_phrase(&lines);
        let expect_term = scan_count(&lines, std::slice::from_ref(&term));
        let expect_rare = scan_count(&lines, std::slice::from_ref(&rare));
        let expect_phrase = scan_count(&lines, &phrase);
        assert!(
            expect_term > 0 && expect_phrase > 0 && expect_rare > 0,
            "{system}: picks exist"
        );
        let phrase_query = format!("\"{}\"", phrase.join(" "));
        let checks: Vec<(String, u64)> = vec![
            (term.clone(), expect_term),
            (rare.clone(), expect_rare),
            (phrase_query.clone(), expect_phrase),
            (format!("message:{term}"), expect_term),
            (format!("NOT {term}"), total - expect_term),
            (format!("dataset:{}", dataset_tag(system)), total),
            ("line_no:[100 TO 199]".to_string(), 100),
            ("line_no:>=1990".to_string(), (total - 1990).min(total)),
            (
                format!("{term} AND line_no:<1000"),
                scan_count(&lines[..1000], std::slice::from_ref(&term)),
            ),
            (format!("({term} OR {rare}) AND NOT {phrase_query}"), {
                lines
                    .iter()
                    .filter(|l| {
                        let t = tokenize(l);
                        (t.contains(&term) || t.contains(&rare))
                            && !t.windows(2).any(|w| w == phrase.as_slice())
                    })
                    .count() as u64
            }),
        ];
        for (query, expected) in checks {
            let got = client.count(PROJECT, &pool, &query).await.expect("count");
            assert_eq!(got, expected, "{system}: query {query}");
        }

        // Time range: records are one second apart from BASE_TIME_SECS.
        let ranged = client
            .search(
                PROJECT,
                &pool,
                &SearchParams {
                    query: Some(term.clone()),
                    from: Some(((BASE_TIME_SECS + 500) * 1000).into()),
                    to: Some(((BASE_TIME_SECS + 1500) * 1000).into()),
                    limit: Some(10),
                    ..SearchParams::default()
                },
            )
            .await
            .expect("ranged search");
        assert_eq!(
            Some(ranged.total),
            Some(scan_count(&lines[500..1500], std::slice::from_ref(&term))),
            "{system}: time range"
        );
        let rfc_ranged = client
            .search(
                PROJECT,
                &pool,
                &SearchParams {
                    from: Some("2023-11-14T22:13:20Z".into()),
                    to: Some("2023-11-14T22:14:20Z".into()),
                    limit: Some(1),
                    ..SearchParams::default()
                },
            )
            .await
            .expect("rfc3339 range");
        assert_eq!(rfc_ranged.total, 60, "{system}: RFC 3339 range");

        // Newest first, and the hit carries what was sent.
        let newest = client
            .search(
                PROJECT,
                &pool,
                &SearchParams {
                    limit: Some(1),
                    ..SearchParams::default()
                },
            )
            .await
            .expect("newest");
        let hit = &newest.hits[0];
        assert_eq!(
            hit.fields["line_no"].as_u64(),
            Some(total - 1),
            "{system}: newest first"
        );
        assert_eq!(
            hit.fields["message"].as_str(),
            Some(lines[lines.len() - 1].as_str())
        );
        assert!(!hit.id.is_empty() && !hit.time.is_empty());

        // Paging with the cursor visits every match exactly once.
        let mut seen = std::collections::HashSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let params = SearchParams {
                query: Some(term.clone()),
                limit: Some(333),
                cursor: cursor.take(),
                ..SearchParams::default()
            };
            let page = client.search(PROJECT, &pool, &params).await.expect("page");
            for hit in &page.hits {
                assert!(
                    seen.insert(hit.id.clone()),
                    "{system}: a page repeated a hit"
                );
            }
            match page.cursor {
                Some(next) if !page.hits.is_empty() => cursor = Some(next),
                _ => break,
            }
        }
        assert_eq!(
            seen.len() as u64,
            expect_term,
            "{system}: paging visits every match"
        );

        // The histogram counts every record of the range once.
        let histogram = client
            .histogram(
                PROJECT,
                &pool,
                &HistogramParams {
                    from: Some((BASE_TIME_SECS * 1000).into()),
                    to: Some(((BASE_TIME_SECS + 2000) * 1000).into()),
                    ..HistogramParams::default()
                },
            )
            .await
            .expect("histogram");
        let buckets = histogram.buckets;
        assert!(buckets.len() <= 120, "{system}: at most 120 buckets");
        let sum: u64 = buckets.iter().map(|b| b.count).sum();
        assert_eq!(sum, total, "{system}: histogram sums to the total");
    }
    server.standalone.shutdown().await.expect("shutdown");
}
