//! The field summary counts every match in the range, not the newest sample: over a
//! dataset whose newest 1,000 matches all have one `source` and whose older ones
//! another, the top values and counts equal a pipe-SQL `GROUP BY` over the same
//! range, on the embedded engine and (with the distributed engines) on
//! Elasticsearch; a field with a value per record is flagged as high-cardinality
//! instead of listing counts of 1. The pool's schema lists every typed field, also
//! one only records older than the sample have.

use std::collections::BTreeMap;
use std::time::Instant;

use logpool_e2e::{wait_for_count, TestServer};
use serde_json::{json, Value};

const PROJECT: &str = "summary";
const POOL: &str = "app";
/// The newest records, all `source: k8s`: exactly the server's sample.
const NEWEST: u64 = 1_000;
/// Older records, `source` mostly `ux`.
const OLDER: u64 = 1_500;

/// Record `n`, `n` growing with time: the newest `NEWEST` come from k8s, the older
/// ones mostly from ux (every 7th from batch); a `request_id` for every two records
/// (too many values to list); `level` only on every other record.
fn record(n: u64, start_s: u64) -> Value {
    let source = if n >= OLDER {
        "k8s"
    } else if n.is_multiple_of(7) {
        "batch"
    } else {
        "ux"
    };
    let mut record = json!({
        "time": start_s + n,
        "message": format!("event {n} from {source}"),
        "source": source,
        "request_id": format!("req-{:05}", n / 2),
        "kind": "event",
    });
    if n.is_multiple_of(2) {
        record["level"] = json!(if n.is_multiple_of(6) { "warn" } else { "info" });
    }
    if n < 10 {
        // Only the oldest records: outside the sample the names come from.
        record["legacy_code"] = json!(n);
    }
    record
}

async fn setup(server: &TestServer) -> Vec<(&'static str, String)> {
    let client = &server.client;
    client.create_project(PROJECT).await.expect("project");
    client
        .create_pool(
            PROJECT,
            &json!({ "name": POOL, "shards": 2, "field_hints": { "kind": "keyword" } }),
        )
        .await
        .expect("pool");
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let start_s = now_s - 3 * 3600;
    let records: Vec<Value> = (0..OLDER + NEWEST).map(|n| record(n, start_s)).collect();
    for chunk in records.chunks(1_000) {
        client.put_records(PROJECT, POOL, chunk).await.expect("put");
    }
    let total = OLDER + NEWEST;
    assert_eq!(
        wait_for_count(client, PROJECT, POOL, "", total).await,
        total
    );
    vec![
        ("from", (start_s * 1000).to_string()),
        ("to", ((start_s + total) * 1000).to_string()),
    ]
}

/// `field` → value → count, by pipe SQL over the same range and query.
async fn sql_counts(
    server: &TestServer,
    range: &[(&str, String)],
    query: &str,
    field: &str,
) -> BTreeMap<String, u64> {
    let answer = server
        .client
        .post(
            &format!("/v1/projects/{PROJECT}/pools/{POOL}/query"),
            &json!({
                "query": format!("{query} | SELECT {field}, count(*) AS c GROUP BY {field}"),
                "from": range[0].1.parse::<i64>().expect("from"),
                "to": range[1].1.parse::<i64>().expect("to"),
            }),
        )
        .await
        .expect("sql");
    answer["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|row| !row[0].is_null())
        .map(|row| {
            (
                row[0].as_str().expect("a string key").to_string(),
                row[1].as_u64().expect("count"),
            )
        })
        .collect()
}

async fn summary(server: &TestServer, range: &[(&str, String)], query: &str) -> Value {
    let mut params: Vec<(&str, String)> = range.to_vec();
    params.push(("query", query.to_string()));
    let response = reqwest::Client::new()
        .get(format!(
            "{}/v1/projects/{PROJECT}/pools/{POOL}/fields",
            server.url()
        ))
        .bearer_auth(logpool_e2e::ADMIN_KEY)
        .query(&params)
        .send()
        .await
        .expect("fields");
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.expect("json")
}

fn field<'a>(answer: &'a Value, name: &str) -> &'a Value {
    answer["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|field| field["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not listed: {answer}"))
}

fn top_of(field: &Value) -> BTreeMap<String, u64> {
    field["top"]
        .as_array()
        .expect("top")
        .iter()
        .map(|top| {
            (
                top["value"].as_str().expect("value").to_string(),
                top["count"].as_u64().expect("count"),
            )
        })
        .collect()
}

async fn check_whole_range(server: &TestServer) {
    let range = setup(server).await;
    for query in ["*", "kind:event AND NOT source:batch"] {
        let started = Instant::now();
        let answer = summary(server, &range, query).await;
        println!("field summary of {query:?}: {:?}", started.elapsed());
        assert_eq!(answer["counts_exact"], true, "{answer}");
        assert_eq!(answer["fields_from_sample"], true, "{answer}");
        // The names come from the newest 1,000 matches, which are all k8s...
        assert_eq!(answer["sampled"].as_u64(), Some(NEWEST), "{answer}");
        let sources = sql_counts(server, &range, query, "source").await;
        let total: u64 = sources.values().sum();
        assert!(total > NEWEST, "the range holds more than the sample");
        assert_eq!(answer["total"].as_u64(), Some(total), "{answer}");
        // ... yet the counts are those of every match.
        let source = field(&answer, "source");
        assert_eq!(top_of(source), sources, "{answer}");
        assert_eq!(source["count"].as_u64(), Some(total));
        assert_eq!(source["distinct"].as_u64(), Some(sources.len() as u64));
        assert_eq!(source["high_cardinality"], false);
        // A field only some records have: its count is theirs, its values theirs.
        let levels = sql_counts(server, &range, query, "level").await;
        let level = field(&answer, "level");
        assert_eq!(top_of(level), levels, "{answer}");
        assert_eq!(level["count"].as_u64(), Some(levels.values().sum()));
        // A value per two records: flagged, not listed as counts of 2; its distinct
        // values counted (approximately on Elasticsearch).
        let request_id = field(&answer, "request_id");
        assert_eq!(request_id["high_cardinality"], true, "{request_id}");
        assert_eq!(request_id["top"], json!([]));
        let ids = sql_counts(server, &range, query, "request_id").await.len() as f64;
        let distinct = request_id["distinct"].as_u64().expect("distinct") as f64;
        assert!(
            (distinct - ids).abs() <= 0.02 * ids,
            "{request_id} of {ids}"
        );
    }
}

/// The schema names every field the records have (no more), with the summary's
/// types, the hint marked; the summary, named by the newest records, lacks the
/// field only the oldest have.
async fn check_schema(server: &TestServer) {
    let schema = server
        .client
        .get(&format!("/v1/projects/{PROJECT}/pools/{POOL}/schema"))
        .await
        .expect("schema");
    let types: BTreeMap<String, Value> = schema["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|field| {
            let name = field["name"].as_str().expect("name").to_string();
            assert_eq!(field["hinted"], name == "kind", "{field}");
            (name, field["type"].clone())
        })
        .collect();
    let sent: std::collections::BTreeSet<String> = (0..OLDER + NEWEST)
        .flat_map(|n| {
            let record = record(n, 0);
            record
                .as_object()
                .expect("object")
                .keys()
                .filter(|name| *name != "time")
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        types
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        sent,
        "{schema}"
    );
    assert_eq!(types["kind"], "keyword");
    assert_eq!(types["legacy_code"], "long");
    let summary = summary(server, &[], "*").await;
    for field in summary["fields"].as_array().expect("fields") {
        let name = field["name"].as_str().expect("name");
        assert_eq!(field["type"], types[name], "{name}");
    }
    assert!(
        !summary["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .any(|field| field["name"] == "legacy_code"),
        "the summary's names come from the newest records: {summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_field_summary_counts_every_match_in_the_range() {
    let started = Instant::now();
    let server = TestServer::start().await.expect("server");
    check_whole_range(&server).await;
    println!("embedded engine: {:?}", started.elapsed());
    let started = Instant::now();
    check_schema(&server).await;
    println!("schema: {:?}", started.elapsed());
}

/// With a query memory budget too small to count the distinct values of every field
/// in one pass, the fields are counted one by one: the counts stay exact, and the
/// fields whose values alone overflow the budget are flagged as high-cardinality
/// with the records holding them as the bound of their distinct values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_field_summary_over_the_memory_budget_flags_only_the_large_fields() {
    let started = Instant::now();
    // 2,500 unique lines and 1,250 request ids take about 60 and 30 KB to count (24
    // bytes a value); the few sources and levels a few hundred bytes.
    let server = TestServer::start_with(|config| {
        config.search.max_query_memory_bytes = 16 * 1024;
    })
    .await
    .expect("server");
    let range = setup(&server).await;
    let answer = summary(&server, &range, "*").await;
    assert_eq!(answer["counts_exact"], true, "{answer}");
    let sources = sql_counts(&server, &range, "*", "source").await;
    let source = field(&answer, "source");
    assert_eq!(top_of(source), sources, "{answer}");
    assert_eq!(source["high_cardinality"], false);
    let request_id = field(&answer, "request_id");
    assert_eq!(request_id["high_cardinality"], true, "{request_id}");
    assert_eq!(request_id["top"], json!([]));
    // Not counted (1,250): the records holding it bound the distinct values.
    assert_eq!(request_id["distinct"], request_id["count"], "{request_id}");
    assert_eq!(request_id["count"].as_u64(), Some(OLDER + NEWEST));
    println!("over the memory budget: {:?}", started.elapsed());
}

/// The same on the Elasticsearch (OpenSearch API) index engine, whose terms and
/// cardinality aggregations do the counting.
#[cfg(feature = "distributed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_field_summary_counts_every_match_in_the_range_on_elasticsearch() {
    let Some(engines) = logpool_e2e::services::engines() else {
        return;
    };
    let started = Instant::now();
    let server = TestServer::start_with(|config| {
        config.index = logpool_e2e::services::elasticsearch_index(&engines, "lpfs");
    })
    .await
    .expect("server");
    check_whole_range(&server).await;
    println!("Elasticsearch engine: {:?}", started.elapsed());
}
