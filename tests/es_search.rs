//! Elasticsearch-compatible search (`/es`) as Grafana's Elasticsearch data source
//! and the Python `elasticsearch` client use it: Grafana's `_msearch` requests
//! (`tests/data/grafana/*.ndjson`: logs panel, histogram, terms + metrics) over a
//! known dataset answer with the same numbers as the native search, histogram and
//! SQL over the same data; `_mapping`/`_field_caps` list the pool's fields with
//! Elasticsearch types; errors are Elasticsearch-shaped 4xx.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use logpool_client::wire::search::{HistogramParams, SearchParams};
use logpool_client::wire::TimeParam;
use logpool_core::record::format_time_ns;
use logpool_e2e::pools::{
    create_project_with_pools, project_key, run_python_client, server_with_pools,
};
use logpool_e2e::{wait_for_count, TestServer};
use serde_json::{json, Value};

const PROJECT: &str = "shop";
const INDEX: &str = "shop.web";
const RECORDS: i64 = 240;
const MINUTE_MS: i64 = 60_000;

/// The dataset: one record every 10 s for 40 minutes; hosts unevenly spread (and
/// every 25th record without one), every third record an error, latencies 1-100 ms.
fn record(n: i64, start_ms: i64) -> Value {
    let mut record = json!({
        "time": format_time_ns((start_ms + n * 10_000) * 1_000_000),
        "level": if n % 3 == 0 { "error" } else { "info" },
        "latency_ms": (n * 37) % 100 + 1,
        "message": format!("request {n} served"),
    });
    if n % 25 != 0 {
        let hosts = [
            "web-0", "web-0", "web-0", "web-1", "web-1", "web-2", "web-3",
        ];
        record["host"] = json!(hosts[(n % 7) as usize]);
    }
    record
}

struct Setup {
    server: TestServer,
    /// A reader key limited to `shop`.
    reader: String,
    /// A reader key limited to another project.
    stranger: String,
    /// The panel's time range, epoch ms (inclusive both ends, as Grafana sends).
    from_ms: i64,
    to_ms: i64,
}

async fn reader_key(server: &TestServer, project: &str) -> String {
    project_key(&server.client, "reader", project, "grafana").await
}

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

async fn setup_with(adjust: impl FnOnce(&mut logpool_e2e::Config)) -> Setup {
    let web = json!({ "name": "web", "shards": 2, "retention_days": 3650 });
    let server = server_with_pools(PROJECT, &[web], adjust).await;
    create_project_with_pools(&server.client, "other", &[]).await;
    let reader = reader_key(&server, PROJECT).await;
    let stranger = reader_key(&server, "other").await;
    let now_ms = now_ms();
    // Whole minutes, so that the 1-minute buckets of both APIs line up.
    let start_ms = (now_ms - 60 * MINUTE_MS) / MINUTE_MS * MINUTE_MS;
    let records: Vec<Value> = (0..RECORDS).map(|n| record(n, start_ms)).collect();
    server
        .client
        .put_records(PROJECT, "web", &records)
        .await
        .expect("ingest");
    assert_eq!(
        wait_for_count(&server.client, PROJECT, "web", "", RECORDS as u64).await,
        RECORDS as u64
    );
    Setup {
        server,
        reader,
        stranger,
        // The range starts mid-dataset and ends on a millisecond inside it: both
        // ends cut records, so an off-by-one in either shows.
        from_ms: start_ms + 5 * MINUTE_MS + 5_000,
        to_ms: start_ms + 35 * MINUTE_MS + 10_000,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or_default()
}

/// A Grafana fixture with the panel's range put in, as Grafana does.
fn fixture(name: &str, setup: &Setup) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/grafana")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .replace("\"$timeFrom\"", &setup.from_ms.to_string())
        .replace("\"$timeTo\"", &setup.to_ms.to_string())
}

async fn send(
    setup: &Setup,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: String,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", setup.server.url()))
        .basic_auth("grafana", Some(key))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The `responses` of an `_msearch`, each checked to be a 200.
async fn msearch(setup: &Setup, body: String) -> Vec<Value> {
    let (status, answer) = send(
        setup,
        &setup.reader,
        reqwest::Method::POST,
        "/es/_msearch",
        body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let responses = answer["responses"].as_array().expect("responses").clone();
    for response in &responses {
        assert_eq!(response["status"], 200, "{response}");
    }
    responses
}

fn time_params(setup: &Setup) -> (Option<TimeParam>, Option<TimeParam>) {
    // Grafana's `lte` includes the last millisecond; the native `to` is exclusive.
    (
        Some(TimeParam::Millis(setup.from_ms)),
        Some(TimeParam::Millis(setup.to_ms + 1)),
    )
}

/// Non-empty buckets of the native histogram: epoch ms → count.
async fn native_histogram(setup: &Setup, query: &str) -> BTreeMap<i64, u64> {
    let (from, to) = time_params(setup);
    let answer = setup
        .server
        .client
        .histogram(
            PROJECT,
            "web",
            &HistogramParams {
                query: Some(query.to_string()),
                from,
                to,
                interval: Some("1m".to_string()),
                ..HistogramParams::default()
            },
        )
        .await
        .expect("native histogram");
    answer
        .buckets
        .iter()
        .filter(|bucket| bucket.count > 0)
        .map(|bucket| (ms_of(&bucket.time), bucket.count))
        .collect()
}

fn ms_of(rfc3339: &str) -> i64 {
    logpool_core::timeexpr::parse_time_expr(rfc3339, 0).expect("an RFC 3339 time") / 1_000_000
}

/// Non-empty buckets of an Elasticsearch `date_histogram` answer, checking that
/// every bucket of the extended bounds is listed.
fn es_histogram(setup: &Setup, aggregation: &Value) -> BTreeMap<i64, u64> {
    let buckets = aggregation["buckets"].as_array().expect("buckets");
    let keys: Vec<i64> = buckets
        .iter()
        .map(|b| b["key"].as_i64().expect("key"))
        .collect();
    let first = setup.from_ms / MINUTE_MS * MINUTE_MS;
    let last = setup.to_ms / MINUTE_MS * MINUTE_MS;
    let expected: Vec<i64> = (0..)
        .map(|i| first + i * MINUTE_MS)
        .take_while(|k| *k <= last)
        .collect();
    assert_eq!(
        keys, expected,
        "every bucket from min to max, empty ones too"
    );
    for bucket in buckets {
        assert_eq!(
            bucket["key_as_string"],
            bucket["key"].to_string(),
            "format epoch_millis"
        );
    }
    buckets
        .iter()
        .filter(|b| b["doc_count"].as_u64() != Some(0))
        .map(|b| {
            (
                b["key"].as_i64().expect("key"),
                b["doc_count"].as_u64().expect("count"),
            )
        })
        .collect()
}

async fn sql(setup: &Setup, query: &str) -> Vec<Vec<Value>> {
    let (from, to) = time_params(setup);
    let answer = setup
        .server
        .client
        .post(
            &format!("/v1/projects/{PROJECT}/pools/web/query"),
            &json!({ "query": query, "from": from, "to": to }),
        )
        .await
        .expect("native SQL");
    serde_json::from_value(answer["rows"].clone()).expect("rows")
}

fn close(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
        _ => a == b,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_requests_answer_the_native_numbers() {
    let started = Instant::now();
    check_grafana_fixtures(&setup().await).await;
    println!("Grafana fixtures checked in {:?}", started.elapsed());
}

/// The same on the Elasticsearch (OpenSearch API) index engine, whose grouped
/// aggregation is its own.
#[cfg(feature = "distributed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_requests_answer_the_native_numbers_on_elasticsearch() {
    let Some(engines) = logpool_e2e::services::engines() else {
        return;
    };
    let started = Instant::now();
    let setup = setup_with(|config| {
        config.index = logpool_e2e::services::elasticsearch_index(&engines, "lpes");
    })
    .await;
    check_grafana_fixtures(&setup).await;
    println!(
        "Grafana fixtures checked on Elasticsearch in {:?}",
        started.elapsed()
    );
}

/// Each Grafana fixture against the native search, histogram and SQL.
async fn check_grafana_fixtures(setup: &Setup) {
    // Logs panel: the hits of the native search, in its order, and its total.
    let logs = msearch(setup, fixture("logs.ndjson", setup)).await;
    let (from, to) = time_params(setup);
    let native = setup
        .server
        .client
        .search(
            PROJECT,
            "web",
            &SearchParams {
                query: Some("level:error".to_string()),
                from,
                to,
                limit: Some(500),
                highlight: Some(true),
                ..SearchParams::default()
            },
        )
        .await
        .expect("native search");
    let hits = logs[0]["hits"]["hits"].as_array().expect("hits");
    assert!(
        native.total > 10 && native.total < RECORDS as u64 / 3,
        "{}",
        native.total
    );
    assert_eq!(
        logs[0]["hits"]["total"],
        json!({"value": native.total, "relation": "eq"})
    );
    let ids: Vec<&str> = hits
        .iter()
        .map(|hit| hit["_id"].as_str().expect("id"))
        .collect();
    let native_ids: Vec<&str> = native.hits.iter().map(|hit| hit.id.as_str()).collect();
    assert_eq!(ids, native_ids);
    let first = &hits[0];
    assert_eq!(first["_index"], INDEX);
    assert_eq!(first["_source"]["@timestamp"], native.hits[0].time);
    assert_eq!(first["_source"]["level"], "error");
    assert_eq!(
        first["_source"]["message"],
        native.hits[0].fields["message"]
    );
    // The words the native highlighter marks, with Grafana's tags.
    for (hit, native_hit) in hits.iter().zip(&native.hits) {
        let native_marks = native_hit.highlight.clone().unwrap_or_default();
        assert!(!native_marks.is_empty(), "{native_hit:?}");
        let expected: BTreeMap<String, Vec<String>> = native_marks
            .into_iter()
            .map(|(field, fragments)| {
                let fragments = fragments
                    .iter()
                    .map(|f| {
                        f.replace("<em>", "@HIGHLIGHT@")
                            .replace("</em>", "@/HIGHLIGHT@")
                    })
                    .collect();
                (field, fragments)
            })
            .collect();
        assert_eq!(hit["highlight"], json!(expected));
    }
    assert_eq!(
        first["highlight"]["level"],
        json!(["@HIGHLIGHT@error@/HIGHLIGHT@"])
    );
    // The logs volume histogram is the native histogram of the same query.
    let volume = es_histogram(setup, &logs[0]["aggregations"]["2"]);
    assert_eq!(volume, native_histogram(setup, "level:error").await);

    // Time series panel: count per minute over everything.
    let histogram = msearch(setup, fixture("histogram.ndjson", setup)).await;
    let counts = es_histogram(setup, &histogram[0]["aggregations"]["2"]);
    let native_counts = native_histogram(setup, "").await;
    assert_eq!(counts, native_counts);
    assert_eq!(
        histogram[0]["hits"]["total"]["value"].as_u64(),
        Some(native_counts.values().sum::<u64>())
    );
    assert!(
        histogram[0]["hits"]["hits"]
            .as_array()
            .expect("hits")
            .is_empty(),
        "size 0"
    );

    // Terms by host ordered by average latency, with a histogram of it per host.
    let terms = msearch(setup, fixture("terms_avg.ndjson", setup)).await;
    let expected = sql(
        setup,
        "level:error | SELECT host, count(*) AS c, avg(latency_ms) AS a GROUP BY host ORDER BY a DESC, host",
    )
    .await;
    let expected: Vec<&Vec<Value>> = expected.iter().filter(|row| !row[0].is_null()).collect();
    let buckets = terms[0]["aggregations"]["3"]["buckets"]
        .as_array()
        .expect("buckets");
    assert_eq!(buckets.len(), expected.len());
    assert!(buckets.len() >= 3, "{buckets:?}");
    for (bucket, row) in buckets.iter().zip(&expected) {
        assert_eq!(bucket["key"], row[0]);
        assert_eq!(bucket["doc_count"], row[1]);
        assert!(close(&bucket["1"]["value"], &row[2]), "{bucket} vs {row:?}");
    }
    let per_minute = sql(
        setup,
        "level:error | SELECT host, time_bucket('1m', time) AS t, count(*) AS c, avg(latency_ms) AS a GROUP BY host, t",
    )
    .await;
    let mut checked = 0;
    for row in per_minute.iter().filter(|row| !row[0].is_null()) {
        let bucket = buckets
            .iter()
            .find(|b| b["key"] == row[0])
            .expect("host bucket");
        let minute = ms_of(row[1].as_str().expect("bucket time"));
        let inner = bucket["2"]["buckets"]
            .as_array()
            .expect("inner buckets")
            .iter()
            .find(|b| b["key"] == minute)
            .unwrap_or_else(|| panic!("minute {minute} of {}", row[0]));
        assert_eq!(inner["doc_count"], row[2]);
        assert!(close(&inner["1"]["value"], &row[3]), "{inner} vs {row:?}");
        checked += 1;
    }
    let inner_total: u64 = buckets
        .iter()
        .flat_map(|b| b["2"]["buckets"].as_array().cloned().unwrap_or_default())
        .map(|b| b["doc_count"].as_u64().unwrap_or_default())
        .sum();
    assert_eq!(
        inner_total as usize,
        expected
            .iter()
            .map(|row| row[1].as_u64().unwrap_or(0) as usize)
            .sum::<usize>()
    );
    assert!(checked > 5, "{checked}");

    // Terms by count with every other metric.
    let expected = sql(
        setup,
        "* | SELECT host, count(*) AS c, sum(latency_ms), min(latency_ms), max(latency_ms), \
         percentile(latency_ms, 50), percentile(latency_ms, 95), count(DISTINCT latency_ms), \
         count(latency_ms) GROUP BY host ORDER BY c DESC, host",
    )
    .await;
    let expected: Vec<&Vec<Value>> = expected.iter().filter(|row| !row[0].is_null()).collect();
    let buckets = terms[1]["aggregations"]["2"]["buckets"]
        .as_array()
        .expect("buckets");
    assert_eq!(buckets.len(), expected.len());
    for (bucket, row) in buckets.iter().zip(&expected) {
        let got = [
            &bucket["key"],
            &bucket["doc_count"],
            &bucket["3"]["value"],
            &bucket["4"]["value"],
            &bucket["5"]["value"],
            &bucket["6"]["values"]["50.0"],
            &bucket["6"]["values"]["95.0"],
            &bucket["7"]["value"],
            &bucket["8"]["value"],
        ];
        for (got, want) in got.iter().zip(row.iter()) {
            assert!(close(got, want), "{bucket} vs {row:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_are_listed_with_elasticsearch_types() {
    let setup = setup().await;
    let (status, mapping) = send(
        &setup,
        &setup.reader,
        reqwest::Method::GET,
        "/es/shop.web/_mapping",
        String::new(),
    )
    .await;
    assert_eq!(status, 200, "{mapping}");
    let properties = &mapping[INDEX]["mappings"]["properties"];
    assert_eq!(properties["@timestamp"]["type"], "date");
    let (status, caps) = send(
        &setup,
        &setup.reader,
        reqwest::Method::GET,
        "/es/shop.web/_field_caps?fields=*",
        String::new(),
    )
    .await;
    assert_eq!(status, 200, "{caps}");
    assert_eq!(caps["indices"], json!([INDEX]));
    // The native field list names the same fields and types.
    let native = setup
        .server
        .client
        .get(&format!("/v1/projects/{PROJECT}/pools/web/fields"))
        .await
        .expect("native fields");
    let native = native["fields"].as_array().expect("fields");
    assert_eq!(native.len(), 4, "{native:?}");
    for field in native {
        let name = field["name"].as_str().expect("name");
        let es_type = match field["type"].as_str().expect("typed") {
            "text" => "text",
            "long" => "long",
            "double" => "double",
            "bool" => "boolean",
            other => panic!("unexpected type {other}"),
        };
        assert_eq!(properties[name]["type"], es_type, "{name}");
        assert_eq!(caps["fields"][name][es_type]["type"], es_type, "{name}");
        if es_type == "text" {
            assert_eq!(
                caps["fields"][format!("{name}.keyword")]["keyword"]["aggregatable"],
                true
            );
        }
    }
    let (status, some) = send(
        &setup,
        &setup.reader,
        reqwest::Method::POST,
        "/es/_field_caps?fields=lat*",
        String::new(),
    )
    .await;
    assert_eq!(status, 200, "{some}");
    assert_eq!(
        some["fields"]
            .as_object()
            .map(|f| f.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["latency_ms".to_string()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_elasticsearch_shaped() {
    let setup = setup().await;
    let error_of = |answer: &Value| {
        (
            answer["status"].as_i64().unwrap_or_default(),
            answer["error"]["type"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            answer["error"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            answer["error"]["root_cause"][0]["type"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    // An unsupported aggregation fails its own search only.
    let header = json!({"index": INDEX});
    let good = json!({"size": 1, "query": {"query_string": {"query": "level:error"}}});
    let bad = json!({"size": 0, "aggs": {"2": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1m"},
        "aggs": {"4": {"moving_avg": {"buckets_path": "1"}}}}}});
    let body = format!("{header}\n{good}\n{header}\n{bad}\n");
    let (status, answer) = send(
        &setup,
        &setup.reader,
        reqwest::Method::POST,
        "/es/_msearch",
        body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["responses"][0]["status"], 200, "{answer}");
    let (status, kind, reason, root) = error_of(&answer["responses"][1]);
    assert_eq!(
        (status, kind.as_str(), root.as_str()),
        (400, "parsing_exception", "parsing_exception")
    );
    assert!(reason.contains("[moving_avg]"), "{reason}");

    let cases = [
        (
            "/es/shop.web/_search",
            "{\"query\": ",
            setup.reader.as_str(),
            400,
            "parsing_exception",
            "not JSON",
        ),
        (
            "/es/shop.web/_search",
            "{\"query\": {\"regexp\": {\"host\": \"w.*\"}}}",
            setup.reader.as_str(),
            400,
            "parsing_exception",
            "[regexp]",
        ),
        (
            "/es/shop.web/_search",
            "{\"sort\": [{\"@timestamp\": \"asc\"}]}",
            setup.reader.as_str(),
            400,
            "parsing_exception",
            "sort.@timestamp.order",
        ),
        (
            "/es/shop.nope/_search",
            "{}",
            setup.reader.as_str(),
            404,
            "index_not_found_exception",
            "shop.nope",
        ),
        (
            "/es/not-an-index/_search",
            "{}",
            setup.reader.as_str(),
            404,
            "index_not_found_exception",
            "not-an-index",
        ),
        (
            "/es/shop.web/_search",
            "{}",
            setup.stranger.as_str(),
            403,
            "security_exception",
            "shop",
        ),
        (
            "/es/shop.web/_mapping",
            "",
            setup.stranger.as_str(),
            403,
            "security_exception",
            "shop",
        ),
        (
            "/es/shop.*/_search",
            "{}",
            setup.reader.as_str(),
            400,
            "parsing_exception",
            "wildcards",
        ),
    ];
    for (path, body, key, want_status, want_kind, named) in cases {
        let method = if path.ends_with("_mapping") {
            reqwest::Method::GET
        } else {
            reqwest::Method::POST
        };
        let (status, answer) = send(&setup, key, method, path, body.to_string()).await;
        let (body_status, kind, reason, _) = error_of(&answer);
        assert_eq!(
            (status, body_status, kind.as_str()),
            (want_status, i64::from(want_status), want_kind),
            "{path} {body}: {answer}"
        );
        assert!(reason.contains(named), "{path} {body}: {reason}");
    }
    // A body over the 2 MiB a search may have: refused whole, in the same shape.
    let big = format!(
        "{header}\n{}\n",
        json!({"query": {"query_string": {"query": "x".repeat(3 << 20)}}})
    );
    let (status, answer) = send(
        &setup,
        &setup.reader,
        reqwest::Method::POST,
        "/es/_msearch",
        big,
    )
    .await;
    assert_eq!((status, error_of(&answer).0), (413, 413), "{answer}");
    // A stranger's _msearch gets the refusal inside its response.
    let body = format!("{header}\n{good}\n");
    let (status, answer) = send(
        &setup,
        &setup.stranger,
        reqwest::Method::POST,
        "/es/_msearch",
        body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(error_of(&answer["responses"][0]).1, "security_exception");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_elasticsearch_client_searches_and_pages() {
    let Some(python) = logpool_e2e::python_with("elasticsearch", "elasticsearch==7.13.4") else {
        return;
    };
    let setup = setup().await;
    let args = [
        format!("{}/es", setup.server.url()),
        setup.reader.clone(),
        INDEX.to_string(),
        "level:error".to_string(),
    ];
    let report = run_python_client(&python, "es_search_client.py", &args).await;
    assert_eq!(
        report["fields"],
        json!(["@timestamp", "host", "latency_ms", "level", "message"])
    );
    // The same two pages as the native search and its cursor.
    let client = &setup.server.client;
    let params = SearchParams {
        query: Some("level:error".to_string()),
        limit: Some(5),
        ..SearchParams::default()
    };
    let first = client
        .search(PROJECT, "web", &params)
        .await
        .expect("page 1");
    let second = client
        .search(
            PROJECT,
            "web",
            &SearchParams {
                cursor: first.cursor.clone(),
                ..params.clone()
            },
        )
        .await
        .expect("page 2");
    let ids = |hits: &[logpool_client::wire::search::Hit]| {
        hits.iter().map(|hit| json!(hit.id)).collect::<Vec<_>>()
    };
    assert_eq!(report["total"], first.total);
    assert_eq!(report["hits"], json!(ids(&first.hits)));
    assert_eq!(report["next"], json!(ids(&second.hits)));
    let hosts = sql_all_time(client, "level:error | SELECT host, count(*) GROUP BY host").await;
    let expected: serde_json::Map<String, Value> = hosts
        .into_iter()
        .filter(|row| !row[0].is_null())
        .map(|row| {
            (
                row[0].as_str().unwrap_or_default().to_string(),
                row[1].clone(),
            )
        })
        .collect();
    assert_eq!(report["hosts"], Value::Object(expected));
}

async fn sql_all_time(client: &logpool_client::LogpoolClient, query: &str) -> Vec<Vec<Value>> {
    let answer = client
        .post(
            &format!("/v1/projects/{PROJECT}/pools/web/query"),
            &json!({ "query": query }),
        )
        .await
        .expect("native SQL");
    serde_json::from_value(answer["rows"].clone()).expect("rows")
}
