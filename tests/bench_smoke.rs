//! `logpool bench` at a small size: it runs to the end and reports every figure with
//! a sane value. The figures themselves are not judged here (they depend on the
//! machine); see BENCHMARKS.md.

use std::time::Duration;

use logpool_e2e::logpool_binary;
use serde_json::Value;

/// Bounds the whole run: the child server, 20,000 records, a short paced phase, the
/// queries and the baseline take well under a minute on a loaded 2-core machine.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `logpool bench` with `args` over the Loghub samples and returns its JSON
/// report; fails when it does not finish in time or does not succeed.
async fn run_bench(args: &[&str]) -> Value {
    let data_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/loghub-2k");
    let run = tokio::process::Command::new(logpool_binary())
        .arg("bench")
        .args(args)
        .args(["--json", "--logs"])
        .arg(&data_dir)
        .env("LOGPOOL_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(RUN_TIMEOUT, run)
        .await
        .expect("bench did not finish in time")
        .expect("run bench");
    assert!(
        output.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "bench output is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn positive(report: &Value, pointer: &str) -> f64 {
    let value = report
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} is missing or not a number in {report}"));
    assert!(
        value.is_finite() && value > 0.0,
        "{pointer} = {value} is not positive in {report}"
    );
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_reports_every_figure() {
    let report = run_bench(&[
        "--records",
        "20000",
        "--paced-secs",
        "2",
        "--query-runs",
        "3",
        "--protocol-records",
        "3000",
        "--protocol-rounds",
        "2",
        "--dashboard-runs",
        "3",
    ])
    .await;

    assert_eq!(report["records"], 20000);
    positive(&report, "/raw_bytes");
    let accepted = positive(&report, "/ingest/accepted_records_per_s");
    let indexed = positive(&report, "/ingest/indexed_records_per_s");
    positive(&report, "/ingest/accepted_mb_per_s");
    positive(&report, "/ingest/indexed_mb_per_s");
    // Records are searchable only after they were accepted.
    assert!(indexed <= accepted * 1.001, "{report}");

    for phase in ["/lag_at_full_load", "/lag_at_half_rate"] {
        positive(&report, &format!("{phase}/markers"));
        let p50 = positive(&report, &format!("{phase}/p50_ms"));
        let p99 = positive(&report, &format!("{phase}/p99_ms"));
        let max = positive(&report, &format!("{phase}/max_ms"));
        assert!(p50 <= p99 && p99 <= max, "{phase}: {report}");
        assert_eq!(
            report.pointer(&format!("{phase}/lost")),
            Some(&Value::from(0))
        );
    }
    positive(&report, "/lag_at_half_rate/rate_records_per_s");

    positive(&report, "/cpu/server_secs_per_million_records");
    positive(&report, "/cpu/load_generator_secs_per_million_records");
    let rss = positive(&report, "/peak_rss_bytes");
    assert!(rss > 1e6 && rss < 64e9, "{report}");
    for figure in ["queue", "index", "total"] {
        let ratio = positive(&report, &format!("/disk/{figure}_per_raw_byte"));
        assert!(ratio < 100.0, "{figure}: {report}");
    }
    // Where logpool's own index bytes go: tantivy's parts of every segment, which
    // are most of the directory (meta files and locks are the rest).
    let parts = report["disk"]["index_per_raw_byte_by_field"]
        .as_array()
        .expect("index parts");
    let share = |part: &str| -> f64 {
        parts
            .iter()
            .filter(|space| part.is_empty() || space["part"] == part)
            .filter_map(|space| space["per_raw_byte"].as_f64())
            .sum()
    };
    let index = positive(&report, "/disk/index_per_raw_byte");
    assert!(share("store") > 0.0, "{report}");
    assert!(share("") <= index && share("") > 0.5 * index, "{report}");

    let queries = report["queries"].as_array().expect("queries");
    let names: Vec<&str> = queries.iter().filter_map(|q| q["name"].as_str()).collect();
    assert_eq!(
        names,
        ["selective term", "phrase", "field + range", "histogram"]
    );
    for index in 0..queries.len() {
        positive(&report, &format!("/queries/{index}/p50_ms"));
        positive(&report, &format!("/queries/{index}/p99_ms"));
        // Every query of the set matches something in the Loghub lines.
        positive(&report, &format!("/queries/{index}/matches"));
    }

    assert_eq!(report["dashboard"]["panels"], 12, "{report}");
    assert_eq!(report["dashboard"]["runs"], 3, "{report}");
    let p50 = positive(&report, "/dashboard/p50_ms");
    assert!(p50 <= positive(&report, "/dashboard/max_ms"), "{report}");

    positive(&report, "/baseline/records_per_s");
    positive(&report, "/baseline/cpu_secs_per_million_records");
    positive(&report, "/baseline/index_per_raw_byte");
    let ratio = positive(&report, "/ratio_to_baseline");
    assert!(ratio < 100.0, "{report}");

    assert_protocol_figures(&report, 3000, 2);
}

/// The comparison of ingest protocols: every protocol ran every round, stored every
/// record it sent, and has a rate and a ratio to native PutDatas.
fn assert_protocol_figures(report: &Value, records: u64, rounds: u64) {
    let comparison = &report["protocol_ingest"];
    assert_eq!(comparison["records_per_round"], records, "{report}");
    assert_eq!(comparison["rounds"], rounds, "{report}");
    for protocol in ["putdatas", "es_bulk", "otlp"] {
        let figure = |name: &str| format!("/protocol_ingest/{protocol}/{name}");
        let median = positive(report, &figure("records_per_s"));
        let runs = comparison[protocol]["rounds_records_per_s"]
            .as_array()
            .unwrap_or_else(|| panic!("{protocol} rounds: {report}"));
        assert_eq!(runs.len() as u64, rounds, "{report}");
        let slowest = runs
            .iter()
            .filter_map(Value::as_f64)
            .fold(f64::MAX, f64::min);
        let fastest = runs.iter().filter_map(Value::as_f64).fold(0.0, f64::max);
        assert!(
            slowest <= median && median <= fastest,
            "{protocol}: {report}"
        );
        // Every record sent in every round is in the protocol's pool, once.
        assert_eq!(
            comparison[protocol]["stored_records"],
            records * rounds,
            "{protocol}: {report}"
        );
        positive(report, &figure("server_cpu_secs_per_million_records"));
        positive(report, &figure("body_bytes_per_record"));
        let ratio = positive(report, &figure("ratio_to_putdatas"));
        let native = positive(report, "/protocol_ingest/putdatas/records_per_s");
        assert!(
            (ratio - median / native).abs() < 1e-9 * ratio.max(1.0),
            "{protocol}: {report}"
        );
    }
    assert_eq!(comparison["putdatas"]["ratio_to_putdatas"], 1.0, "{report}");
}

/// Runs `logpool bench queries` on `data_dir` and returns its JSON report.
async fn bench_queries(data_dir: &std::path::Path) -> Value {
    let logs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/loghub-2k");
    let run = tokio::process::Command::new(logpool_binary())
        .args(["bench", "queries", "--records", "20000", "--runs", "3"])
        .args(["--warmup", "1", "--json", "--data-dir"])
        .arg(data_dir)
        .arg("--logs")
        .arg(&logs)
        .env("LOGPOOL_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(RUN_TIMEOUT, run)
        .await
        .expect("bench queries did not finish in time")
        .expect("run bench queries");
    assert!(
        output.status.success(),
        "bench queries failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "bench queries output is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// What a query's answer adds up to: the search total, the histogram's sum or the
/// sum of the top groups' counts.
fn answer_matches(answer: &Value) -> u64 {
    if let Some(total) = answer["total"].as_u64() {
        return total;
    }
    if let Some(counts) = answer["counts"].as_array() {
        return counts.iter().filter_map(Value::as_u64).sum();
    }
    answer["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("an answer of an unknown shape: {answer}"))
        .iter()
        .map(|group| group[1].as_u64().expect("group count"))
        .sum()
}

/// Compares the API's answer of one query with the raw engine's: the same totals
/// and hits, the same buckets at the same interval, the same top groups with the
/// same counts (groups tied at the last count may differ: where a top list cuts
/// between equal counts is arbitrary).
fn assert_same_answer(query: &Value) {
    let (api, raw) = (&query["api_answer"], &query["raw_answer"]);
    assert!(api.is_object() && raw.is_object(), "both answers: {query}");
    match (api["groups"].as_array(), raw["groups"].as_array()) {
        (Some(api_groups), Some(raw_groups)) => {
            let counts = |groups: &[Value]| -> Vec<u64> {
                groups
                    .iter()
                    .map(|group| group[1].as_u64().expect("group count"))
                    .collect()
            };
            assert_eq!(counts(api_groups), counts(raw_groups), "{query}");
            let cut = counts(api_groups).last().copied().unwrap_or(0);
            let above_cut = |groups: &[Value]| -> Vec<(String, u64)> {
                let mut kept: Vec<(String, u64)> = groups
                    .iter()
                    .map(|group| {
                        let value = group[0].as_str().expect("group value").to_string();
                        (value, group[1].as_u64().expect("group count"))
                    })
                    .filter(|(_, count)| *count > cut)
                    .collect();
                kept.sort();
                kept
            };
            assert_eq!(above_cut(api_groups), above_cut(raw_groups), "{query}");
            assert!(!api_groups.is_empty(), "{query}");
        }
        _ => assert_eq!(api, raw, "the API and the raw engine differ: {query}"),
    }
    assert_eq!(
        query["matches"].as_u64(),
        Some(answer_matches(api)),
        "the reported matches are the API's answer: {query}"
    );
}

/// The query benchmark at a small size: it builds its directory once and reuses it,
/// and every query gives the same answer through logpool's API as on the raw engine,
/// which is what makes the ratios of the large run meaningful.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_queries_agree_with_the_raw_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let built = bench_queries(dir.path()).await;
    positive(&built, "/build_secs");
    let reused = bench_queries(dir.path()).await;
    assert_eq!(reused["build_secs"], Value::Null, "{reused}");

    for report in [&built, &reused] {
        assert_eq!(report["records"], 20000);
        positive(report, "/segments");
        positive(report, "/index_bytes");
        let queries = report["queries"].as_array().expect("queries");
        let names: Vec<&str> = queries.iter().filter_map(|q| q["name"].as_str()).collect();
        assert_eq!(
            names,
            [
                "selective term",
                "frequent term",
                "phrase",
                "field + range",
                "number equals",
                "histogram over the day",
                "SQL group-by top 10"
            ]
        );
        for (index, query) in queries.iter().enumerate() {
            assert_same_answer(query);
            // The report's own verdict must agree with ours.
            assert_eq!(query["same_answer"], true, "{query}");
            positive(report, &format!("/queries/{index}/matches"));
            for side in ["api", "raw"] {
                let p50 = positive(report, &format!("/queries/{index}/{side}_p50_ms"));
                let p99 = positive(report, &format!("/queries/{index}/{side}_p99_ms"));
                assert!(p50 <= p99, "{query}");
            }
            positive(report, &format!("/queries/{index}/ratio_p50"));
        }
        // One record has the sequence number asked for.
        assert_eq!(queries[4]["matches"], 1, "{report}");
        // The histogram covers every record (they are spread over its day).
        assert_eq!(queries[5]["matches"], 20000, "{report}");
    }
}

/// The harness can leave out the `Idempotency-Key`, to measure what the key costs;
/// the run still waits until every record is searchable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_runs_without_the_idempotency_key() {
    let report = run_bench(&[
        "--records",
        "5000",
        "--paced-secs",
        "0",
        "--query-runs",
        "1",
        "--no-baseline",
        "--without-idempotency-key",
        "--protocol-rounds",
        "0",
    ])
    .await;
    assert_eq!(report["records"], 5000, "{report}");
    // No rounds: the comparison of protocols is left out.
    assert_eq!(report["protocol_ingest"], Value::Null, "{report}");
    positive(&report, "/ingest/accepted_records_per_s");
    positive(&report, "/ingest/indexed_records_per_s");
}
