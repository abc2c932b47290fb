//! Shared by the archive tests: records with unique ids spread over several hours,
//! archive settings, reading archived objects back and the exactly-once check.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;

use logpool_client::LogpoolClient;
use serde_json::{json, Value};

/// Hours the test records are spread over (all in the past, inside retention).
pub const HOURS: i64 = 5;

/// A record as sent, by its `rid`.
pub type Sent = HashMap<String, Value>;

/// `count` records of one pool with unique ids, times spread over [`HOURS`] hours.
pub fn records(tag: &str, count: usize, now_ms: i64) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let hour = (i as i64 * 7) % HOURS + 1;
            let time_ms = now_ms - hour * 3_600_000 - (i as i64 % 1000) * 1_000 - 123;
            json!({
                "time": time_ms,
                "rid": format!("{tag}-{i}"),
                "message": format!("archive record {i} of {tag}: \"quoted\" é"),
                "n": i,
                "lat": i as f64 + 0.25,
                "ok": i.is_multiple_of(2),
            })
        })
        .collect()
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Sends an HTTP request with a JSON body as the operator and returns status and
/// JSON answer.
pub async fn send(method: &str, url: &str, body: &Value) -> (u16, Value) {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let response = client
        .request(method, url)
        .bearer_auth(logpool_e2e::ADMIN_KEY)
        .header("content-type", "application/json")
        .body(body.to_string())
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Turns archiving on for a pool with small, quick objects.
pub async fn enable_archive(base: &str, project: &str, pool: &str, settings: Value) {
    let mut body = json!({ "enabled": true, "max_delay_s": 1, "max_object_bytes": 16384 });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), settings.as_object()) {
        body.extend(extra.clone());
    }
    let url = format!("{base}/v1/projects/{project}/pools/{pool}/archive/settings");
    let (status, answer) = send("PUT", &url, &body).await;
    assert_eq!(status, 200, "enable archive: {answer}");
}

/// Puts records in batches of 50; returns the records the server acknowledged.
pub async fn put_all(client: &LogpoolClient, project: &str, pool: &str, records: &[Value]) -> Sent {
    let mut sent = Sent::new();
    for chunk in records.chunks(50) {
        client
            .put_records(project, pool, chunk)
            .await
            .expect("put records");
        for record in chunk {
            sent.insert(
                record["rid"].as_str().unwrap_or_default().to_string(),
                record.clone(),
            );
        }
    }
    sent
}

/// One archived object: its key (relative path) and its lines as JSON.
#[derive(Debug, Clone)]
pub struct ArchivedObject {
    pub key: String,
    pub lines: Vec<Value>,
}

/// Decompresses an object by its extension and parses every line.
pub fn parse_object(key: &str, data: &[u8]) -> ArchivedObject {
    let mut text = String::new();
    if key.ends_with(".jsonl.zst") {
        let bytes = zstd::decode_all(data).expect("zstd object");
        text = String::from_utf8(bytes).expect("utf-8 lines");
    } else if key.ends_with(".jsonl.gz") {
        flate2::read::GzDecoder::new(data)
            .read_to_string(&mut text)
            .expect("gzip object");
    } else {
        panic!("unexpected archived object {key}");
    }
    let lines = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON object per line"))
        .collect();
    ArchivedObject {
        key: key.to_string(),
        lines,
    }
}

/// Reads every archived data object under a local directory.
pub fn read_local_objects(root: &std::path::Path) -> Vec<ArchivedObject> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let key = path
                .strip_prefix(root)
                .map(|p| p.to_string_lossy().to_string())
                .unwrap_or_default();
            if key.ends_with(".jsonl.zst") || key.ends_with(".jsonl.gz") {
                if let Ok(data) = std::fs::read(&path) {
                    out.push(parse_object(&key, &data));
                }
            }
        }
    }
    out
}

/// rid -> how many times it is archived, over all objects.
pub fn archived_counts(objects: &[ArchivedObject]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for object in objects {
        for line in &object.lines {
            let rid = line["rid"].as_str().unwrap_or_default().to_string();
            *counts.entry(rid).or_insert(0) += 1;
        }
    }
    counts
}

/// Checks exactly once: every sent record is archived once, with every field equal,
/// `time` the same instant, and the object in the hour partition of its time.
pub fn assert_exactly_once(sent: &Sent, objects: &[ArchivedObject]) {
    let counts = archived_counts(objects);
    let missing: Vec<&String> = sent
        .keys()
        .filter(|rid| !counts.contains_key(*rid))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} records are not archived, e.g. {:?}",
        missing.len(),
        sent.len(),
        &missing[..missing.len().min(5)]
    );
    let doubled: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubled.is_empty(),
        "records archived more than once: {:?}",
        &doubled[..doubled.len().min(5)]
    );
    for object in objects {
        for line in &object.lines {
            let rid = line["rid"].as_str().unwrap_or_default();
            let Some(original) = sent.get(rid) else {
                continue;
            };
            let mut archived = line.clone();
            let mut expected = original.clone();
            let time = archived
                .as_object_mut()
                .and_then(|o| o.remove("time"))
                .expect("time");
            let sent_ms = expected
                .as_object_mut()
                .and_then(|o| o.remove("time"))
                .and_then(|t| t.as_i64())
                .expect("sent time");
            assert_eq!(archived, expected, "fields of {rid} differ");
            let time_ns = logpool_core::ingest::parse_time_text(time.as_str().expect("RFC 3339"))
                .expect("RFC 3339 time");
            assert_eq!(time_ns, sent_ms * 1_000_000, "time of {rid}");
            let hour =
                logpool_core::archive::hour_partition(logpool_core::archive::hour_of(time_ns));
            assert!(
                object.key.contains(&hour),
                "{rid} at {time} is in {} instead of {hour}",
                object.key
            );
        }
    }
}

/// Polls the objects until every sent record is archived (or `timeout`).
pub async fn wait_archived<F>(sent: &Sent, timeout: Duration, mut read: F) -> Vec<ArchivedObject>
where
    F: FnMut() -> Vec<ArchivedObject>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let objects = read();
        let counts = archived_counts(&objects);
        if sent.keys().all(|rid| counts.contains_key(rid)) || std::time::Instant::now() > deadline {
            return objects;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Counts the records of the archived objects under `dir` with DuckDB's
/// `read_json_auto`; `None` (with a visible note) when DuckDB is not installed and
/// engines are not required.
pub fn duckdb_count(dir: &std::path::Path) -> Option<u64> {
    let python = std::env::var("LOGPOOL_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = "import sys, duckdb\n\
con = duckdb.connect()\n\
pattern = sys.argv[1] + '/**/*.jsonl.*'\n\
rows = con.execute(\"SELECT count(*), count(DISTINCT rid), count(DISTINCT hour) FROM read_json_auto(?, hive_partitioning = true)\", [pattern]).fetchone()\n\
print(rows[0], rows[1], rows[2])\n";
    let output = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(dir)
        .output();
    let output = match output {
        Ok(output) => output,
        Err(error) => return skip_or_fail(&format!("cannot run {python}: {error}")),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        if stderr.contains("No module named 'duckdb'") {
            return skip_or_fail("the Python package duckdb is not installed");
        }
        panic!("DuckDB failed: {stderr}");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let numbers: Vec<u64> = stdout
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 3, "DuckDB answered {stdout}");
    assert_eq!(numbers[0], numbers[1], "DuckDB sees a record twice");
    assert!(numbers[2] >= 2, "DuckDB sees the hour partitions: {stdout}");
    Some(numbers[0])
}

fn skip_or_fail(reason: &str) -> Option<u64> {
    if std::env::var_os("LOGPOOL_REQUIRE_ENGINES").is_some() {
        panic!("{reason}, and LOGPOOL_REQUIRE_ENGINES is set");
    }
    eprintln!("SKIPPED the DuckDB check: {reason} (scripts/test-engines.sh installs it)");
    None
}
