//! Export of a search's matches: every record of a 20,000-record range as CSV and
//! NDJSON with the chosen columns, and, past `search.max_export_records`, the newest
//! records up to the limit with the truncation announced in the headers.

use std::collections::BTreeSet;

use logpool_e2e::{wait_for_count, TestServer, ADMIN_KEY};
use serde_json::{json, Value};

const PROJECT: &str = "exports";
const POOL: &str = "web";
/// Records in the exported range.
const IN_RANGE: u64 = 20_000;
/// Records after it, which only the whole-pool export reaches.
const AFTER_RANGE: u64 = 500;
/// The server's export limit: exactly the range, so the range is not truncated and
/// the whole pool is.
const EXPORT_LIMIT: usize = 20_000;

/// The message of record `n`: commas, quotes and, now and then, a second line, so
/// that the CSV quoting is exercised.
fn message_of(n: u64) -> String {
    if n.is_multiple_of(100) {
        format!("request {n}, said \"ok\"\n  at line two")
    } else {
        format!("request {n}, said \"ok\"")
    }
}

/// Splits RFC 4180 CSV into rows of cells.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    assert!(
        cell.is_empty() && row.is_empty(),
        "the CSV ends with a line break"
    );
    rows
}

struct Export {
    status: u16,
    matches: Option<u64>,
    truncated: Option<String>,
    content_type: String,
    body: String,
}

async fn export(server: &TestServer, params: &[(&str, String)]) -> Export {
    let response = reqwest::Client::new()
        .get(format!(
            "{}/v1/projects/{PROJECT}/pools/{POOL}/export",
            server.url()
        ))
        .bearer_auth(ADMIN_KEY)
        .query(params)
        .send()
        .await
        .expect("export");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    Export {
        status: response.status().as_u16(),
        matches: header("x-logpool-export-matches").and_then(|text| text.parse().ok()),
        truncated: header("x-logpool-export-truncated"),
        content_type: header("content-type").unwrap_or_default(),
        body: response.text().await.expect("body"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_export_sends_every_match_with_its_columns_and_announces_truncation() {
    let server = TestServer::start_with(|config| {
        config.search.max_export_records = EXPORT_LIMIT;
    })
    .await
    .expect("server");
    let client = &server.client;
    client.create_project(PROJECT).await.expect("project");
    client
        .create_pool(PROJECT, &json!({ "name": POOL, "shards": 2 }))
        .await
        .expect("pool");
    // Ten records a second from two hours ago; the later ones an hour after.
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let base_s = now_s - 7200;
    let time_of = |n: u64| {
        if n < IN_RANGE {
            base_s + n / 10
        } else {
            base_s + 3600 + (n - IN_RANGE) / 10
        }
    };
    let records: Vec<Value> = (0..IN_RANGE + AFTER_RANGE)
        .map(|n| {
            json!({
                "time": time_of(n),
                "message": message_of(n),
                "n": n,
                "level": if n.is_multiple_of(3) { "ERROR" } else { "INFO" },
                "http": { "status": 200 + (n % 5) },
            })
        })
        .collect();
    for chunk in records.chunks(2_000) {
        client.put_records(PROJECT, POOL, chunk).await.expect("put");
    }
    let total = IN_RANGE + AFTER_RANGE;
    assert_eq!(
        wait_for_count(client, PROJECT, POOL, "", total).await,
        total
    );
    let range = [
        ("from", (base_s * 1000).to_string()),
        ("to", ((base_s + IN_RANGE / 10) * 1000).to_string()),
    ];

    // CSV of the range: a header of the chosen columns, then every record once.
    let started = std::time::Instant::now();
    let mut params = range.to_vec();
    params.push(("format", "csv".to_string()));
    params.push(("columns", "time,n,message,http.status".to_string()));
    let csv = export(&server, &params).await;
    assert_eq!(csv.status, 200, "{}", csv.body);
    println!("CSV export of {IN_RANGE} records: {:?}", started.elapsed());
    assert!(
        csv.content_type.starts_with("text/csv"),
        "{}",
        csv.content_type
    );
    assert_eq!(
        (csv.matches, csv.truncated.as_deref()),
        (Some(IN_RANGE), Some("false"))
    );
    let rows = parse_csv(&csv.body);
    assert_eq!(rows[0], ["time", "n", "message", "http.status"]);
    assert_eq!(rows.len() as u64, IN_RANGE + 1);
    let mut seen = BTreeSet::new();
    for row in &rows[1..] {
        assert_eq!(row.len(), 4, "{row:?}");
        let n: u64 = row[1].parse().expect("n");
        assert_eq!(row[2], message_of(n), "{row:?}");
        assert_eq!(row[3], (200 + n % 5).to_string(), "{row:?}");
        assert!(row[0].starts_with("20"), "an RFC 3339 time: {row:?}");
        assert!(seen.insert(n), "record {n} twice");
    }
    assert_eq!(seen, (0..IN_RANGE).collect::<BTreeSet<u64>>());

    // CSV without columns: time and message.
    let mut params = range.to_vec();
    params.push(("format", "csv".to_string()));
    params.push(("query", "level:ERROR".to_string()));
    let errors = export(&server, &params).await;
    let rows = parse_csv(&errors.body);
    assert_eq!(rows[0], ["time", "message"]);
    let expected_errors = (0..IN_RANGE).filter(|n| n.is_multiple_of(3)).count();
    assert_eq!(rows.len(), expected_errors + 1);
    assert_eq!(errors.matches, Some(expected_errors as u64));

    // NDJSON with columns: one object of exactly those columns per record.
    let mut params = range.to_vec();
    params.push(("columns", "n,level".to_string()));
    let ndjson = export(&server, &params).await;
    assert_eq!(ndjson.status, 200, "{}", ndjson.body);
    assert!(ndjson.content_type.starts_with("application/x-ndjson"));
    let mut seen = BTreeSet::new();
    for line in ndjson.body.lines() {
        let object: Value = serde_json::from_str(line).expect("a JSON line");
        let keys: Vec<&String> = object.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["level", "n"], "{line}");
        let n = object["n"].as_u64().expect("n");
        assert_eq!(
            object["level"],
            if n.is_multiple_of(3) { "ERROR" } else { "INFO" }
        );
        assert!(seen.insert(n), "record {n} twice");
    }
    assert_eq!(seen.len() as u64, IN_RANGE);

    // The whole pool passes the limit: the newest records up to it, announced.
    let whole = export(&server, &[("columns", "n".to_string())]).await;
    assert_eq!(whole.status, 200, "{}", whole.body);
    assert_eq!(
        (whole.matches, whole.truncated.as_deref()),
        (Some(total), Some("true"))
    );
    let sent: Vec<u64> = whole
        .body
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).expect("line")["n"]
                .as_u64()
                .expect("n")
        })
        .collect();
    assert_eq!(sent.len(), EXPORT_LIMIT);
    let oldest_sent = sent.iter().map(|&n| time_of(n)).min().expect("some");
    let newest_left = (0..total)
        .filter(|n| !sent.contains(n))
        .map(time_of)
        .max()
        .expect("some left out");
    assert!(
        newest_left <= oldest_sent,
        "the newest records are the ones sent"
    );

    // Bad parameters are refused before anything is sent, naming field and limit.
    let refused = export(&server, &[("limit", (EXPORT_LIMIT + 1).to_string())]).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let error: Value = serde_json::from_str(&refused.body).expect("json");
    assert_eq!(error["error"]["field"], "limit");
    assert_eq!(error["error"]["limit"], EXPORT_LIMIT);
    let refused = export(&server, &[("format", "xml".to_string())]).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let limited = export(&server, &[("limit", "10".to_string())]).await;
    assert_eq!(limited.body.lines().count(), 10);
    assert_eq!(limited.truncated.as_deref(), Some("true"));
}
