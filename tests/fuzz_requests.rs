//! A bounded fuzz run against the real binary: random and mutated PutDatas bodies
//! (JSON, NDJSON, gzip, zstd, broken encodings), search query strings, pipe SQL,
//! tail filters and path parameters, sent with keys of every role (and wrong ones).
//!
//! Every answer must be below 500, except a `503` with `Retry-After` (documented
//! backpressure); the process must stay alive, `/healthz` must answer at the end,
//! the peak RSS must stay under [`PEAK_RSS_LIMIT_KIB`] and the records written
//! before the run must all still be found.
//!
//! The generator is seeded: the seed is printed, and `LOGPOOL_TEST_FUZZ_SEED=<n>`
//! replays a run. `LOGPOOL_TEST_FUZZ_SCALE=<n>` multiplies the number of cases (1 by
//! default; the run then takes about a minute).

use std::io::Write as _;
use std::time::{Duration, Instant};

use logpool_e2e::process_stats::ProcessStats;
use logpool_e2e::tenants::RawApi;
use logpool_e2e::{free_port, start_standalone_process, wait_for_count, ADMIN_KEY};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Map, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const TENANT: &str = "fuzz";
const PROJECT: &str = "proj";
const POOL: &str = "web";
const SEEDED: u64 = 120;
/// Peak resident memory the server may reach during the run.
const PEAK_RSS_LIMIT_KIB: u64 = 1536 * 1024;
/// Most failures printed.
const SHOWN_FAILURES: usize = 25;

/// Keys of every role, plus wrong ones.
struct Keys {
    all: Vec<(String, String)>,
}

impl Keys {
    fn pick(&self, rng: &mut StdRng) -> (String, String) {
        self.all.choose(rng).cloned().expect("keys")
    }

    fn named(&self, role: &str) -> String {
        self.all
            .iter()
            .find(|(name, _)| name == role)
            .map(|(_, key)| key.clone())
            .expect("role")
    }
}

/// What the run saw that it must not.
#[derive(Default)]
struct Findings {
    failures: Vec<String>,
    requests: usize,
}

impl Findings {
    fn check(&mut self, what: &str, status: u16, retry_after: bool, body: &str) {
        self.requests += 1;
        let backpressure = status == 503 && retry_after;
        if status >= 500 && !backpressure {
            let body: String = body.chars().take(300).collect();
            self.failures
                .push(format!("{what}\n    -> {status} {body}"));
        }
    }

    fn transport(&mut self, what: &str, error: &dyn std::fmt::Display) {
        self.requests += 1;
        self.failures
            .push(format!("{what}\n    -> no answer: {error}"));
    }
}

/// Sends one request and checks its answer.
#[allow(clippy::too_many_arguments)]
async fn send(
    http: &reqwest::Client,
    base: &str,
    findings: &mut Findings,
    method: Method,
    path: &str,
    key: &(String, String),
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
) {
    let mut request = http
        .request(method.clone(), format!("{base}{path}"))
        .bearer_auth(&key.1);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let body_len = body.as_ref().map_or(0, Vec::len);
    if let Some(body) = body {
        request = request.body(body);
    }
    let what = format!(
        "{method} {} as {} ({body_len} body bytes, headers {headers:?})",
        shorten(path, 400),
        key.0
    );
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key("retry-after");
            let text = response.text().await.unwrap_or_default();
            findings.check(&what, status, retry_after, &text);
        }
        Err(error) => findings.transport(&what, &error),
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let head: String = text.chars().take(max).collect();
        format!("{head}… ({} chars)", text.chars().count())
    }
}

// ---------------------------------------------------------------- generators

const WORDS: &[&str] = &[
    "error",
    "warn",
    "GET",
    "timeout",
    "user",
    "🦀",
    "café",
    "a",
    "0",
    "-1",
    "1e308",
    "NaN",
    "null",
    "true",
    "AND",
    "OR",
    "NOT",
    "TO",
    "_exists_",
    "message",
    "status",
    "host.name",
    "\u{0}",
    "\\",
    "\"",
    "'",
    "*",
    "?",
    ":",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "..",
    "%00",
];

fn word(rng: &mut StdRng) -> String {
    match rng.random_range(0..6) {
        0 => random_text(rng, 1..12),
        1 => rng.random::<i64>().to_string(),
        _ => (*WORDS.choose(rng).expect("word")).to_string(),
    }
}

/// Random text: ASCII, unicode, control characters.
fn random_text(rng: &mut StdRng, len: std::ops::Range<usize>) -> String {
    let n = rng.random_range(len);
    (0..n)
        .map(|_| match rng.random_range(0..10) {
            0 => char::from_u32(rng.random_range(0..0x20)).unwrap_or('x'),
            1 => char::from_u32(rng.random_range(0x80..0x3000)).unwrap_or('é'),
            2 => '🦀',
            _ => char::from(rng.random_range(b' '..b'~')),
        })
        .collect()
}

fn json_value(rng: &mut StdRng, depth: usize) -> Value {
    match rng.random_range(0..if depth > 3 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.random_bool(0.5)),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>() * 10f64.powi(rng.random_range(-300..300))),
        4 => json!(random_text(rng, 0..40)),
        5 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| json_value(rng, depth + 1))
                .collect(),
        ),
        _ => json_object(rng, depth + 1),
    }
}

fn json_object(rng: &mut StdRng, depth: usize) -> Value {
    let mut object = Map::new();
    for _ in 0..rng.random_range(0..6) {
        let key = match rng.random_range(0..5) {
            0 => String::new(),
            1 => "a.b..c".to_string(),
            2 => "time".to_string(),
            3 => "x".repeat(rng.random_range(100..300)),
            _ => random_text(rng, 1..10),
        };
        object.insert(key, json_value(rng, depth));
    }
    Value::Object(object)
}

/// An object nested `depth` levels deep.
fn deep_object(depth: usize) -> Value {
    let mut value = json!("bottom");
    for _ in 0..depth {
        value = json!({ "n": value });
    }
    value
}

fn record(rng: &mut StdRng) -> Value {
    let mut record = json!({ "message": format!("fuzz {}", random_text(rng, 0..30)) });
    if rng.random_bool(0.3) {
        record["time"] = match rng.random_range(0..6) {
            0 => json!(rng.random::<i64>()),
            1 => json!("2026-13-45T99:99:99Z"),
            2 => json!(rng.random::<u64>()),
            3 => json!(-1),
            4 => json!(random_text(rng, 0..20)),
            _ => json!(1.5e300),
        };
    }
    if rng.random_bool(0.5) {
        if let (Value::Object(extra), Value::Object(target)) = (json_object(rng, 1), &mut record) {
            target.extend(extra);
        }
    }
    record
}

/// Flips, cuts, repeats or inserts bytes.
fn mutate(rng: &mut StdRng, mut bytes: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.random_range(1..6) {
        if bytes.is_empty() {
            bytes.push(rng.random());
            continue;
        }
        let at = rng.random_range(0..bytes.len());
        match rng.random_range(0..5) {
            0 => bytes[at] = rng.random(),
            1 => bytes.truncate(at),
            2 => {
                let chunk: Vec<u8> = bytes[at..].iter().take(64).copied().collect();
                bytes.splice(at..at, chunk);
            }
            3 => bytes.insert(at, *b"{}[]\",:\\\n\0".choose(rng).expect("byte")),
            _ => {
                bytes.remove(at);
            }
        }
    }
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// A PutDatas body with its headers.
fn put_body(rng: &mut StdRng) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let records: Vec<Value> = (0..rng.random_range(0..20)).map(|_| record(rng)).collect();
    let (content_type, mut body) = match rng.random_range(0..7) {
        0 => (
            "application/json",
            serde_json::to_vec(&json!({ "source": random_text(rng, 0..10), "tags": json_object(rng, 2), "logs": records }))
                .expect("json"),
        ),
        1 => ("application/json", serde_json::to_vec(&records).expect("json")),
        2 => (
            "application/x-ndjson",
            records
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(if rng.random_bool(0.8) { "\n" } else { "\r\n\n" })
                .into_bytes(),
        ),
        3 => (
            "application/json",
            serde_json::to_vec(&json!({ "logs": [deep_object(rng.random_range(10..400))] }))
                .expect("json"),
        ),
        4 => ("application/json", serde_json::to_vec(&json_value(rng, 0)).expect("json")),
        5 => (
            *["text/plain", "application/xml", "", "application/json; charset=latin1", "multipart/form-data"]
                .choose(rng)
                .expect("type"),
            random_text(rng, 0..200).into_bytes(),
        ),
        _ => ("application/x-ndjson", random_text(rng, 0..500).into_bytes()),
    };
    if rng.random_bool(0.4) {
        body = mutate(rng, body);
    }
    let mut headers = vec![("content-type", content_type.to_string())];
    match rng.random_range(0..8) {
        0 => {
            headers.push(("content-encoding", "gzip".to_string()));
            body = gzip(&body);
            if rng.random_bool(0.5) {
                body = mutate(rng, body);
            }
        }
        1 => {
            headers.push(("content-encoding", "zstd".to_string()));
            body = zstd::encode_all(&body[..], 1).expect("zstd");
            if rng.random_bool(0.5) {
                body = mutate(rng, body);
            }
        }
        2 => headers.push((
            "content-encoding",
            (*["gzip", "br", "deflate, gzip", "identity", "zstd"]
                .choose(rng)
                .expect("encoding"))
            .to_string(),
        )),
        _ => {}
    }
    (headers, body)
}

/// A search query: mostly grammatical, sometimes large or broken.
fn search_query(rng: &mut StdRng, depth: usize) -> String {
    let leaf = |rng: &mut StdRng| -> String {
        match rng.random_range(0..9) {
            0 => format!("\"{} {}\"", word(rng), word(rng)),
            1 => format!("{}:{}", word(rng), word(rng)),
            2 => format!("{}*", word(rng)),
            3 => format!("status:[{} TO {}]", word(rng), word(rng)),
            4 => format!("latency:>{}", word(rng)),
            5 => format!("_exists_:{}", word(rng)),
            6 => format!("f?{}", word(rng)),
            _ => word(rng),
        }
    };
    if depth > 6 || rng.random_bool(0.3) {
        return leaf(rng);
    }
    match rng.random_range(0..7) {
        0 => format!("({})", search_query(rng, depth + 1)),
        1 => format!("NOT {}", search_query(rng, depth + 1)),
        2 => format!(
            "{} {} {}",
            search_query(rng, depth + 1),
            ["AND", "OR", "&&", "||", "", "AND NOT"]
                .choose(rng)
                .expect("op"),
            search_query(rng, depth + 1)
        ),
        3 => format!("{}:({})", word(rng), search_query(rng, depth + 1)),
        4 => {
            let inner = search_query(rng, depth + 1);
            mutate_text(rng, inner)
        }
        5 => format!("-{} +{}", leaf(rng), leaf(rng)),
        _ => leaf(rng),
    }
}

fn mutate_text(rng: &mut StdRng, text: String) -> String {
    String::from_utf8_lossy(&mutate(rng, text.into_bytes())).into_owned()
}

/// A search query of one of the large shapes the limits are about.
fn large_search_query(rng: &mut StdRng) -> String {
    match rng.random_range(0..4) {
        0 => {
            let depth = rng.random_range(50..2000);
            format!("{}a{}", "(".repeat(depth), ")".repeat(depth))
        }
        1 => (0..rng.random_range(500..5000))
            .map(|n| format!("term{n}"))
            .collect::<Vec<_>>()
            .join(" OR "),
        2 => (0..rng.random_range(100..500))
            .map(|n| format!("w{n}*x"))
            .collect::<Vec<_>>()
            .join(" OR "),
        _ => format!("{}a", "NOT ".repeat(rng.random_range(50..3000))),
    }
}

/// A pipe SQL statement.
fn sql(rng: &mut StdRng) -> String {
    let column = |rng: &mut StdRng| -> String {
        match rng.random_range(0..8) {
            0 => "count(*)".to_string(),
            1 => format!("avg({})", word(rng)),
            2 => format!("percentile({}, {})", word(rng), word(rng)),
            3 => format!("count(DISTINCT {})", word(rng)),
            4 => format!("date_trunc('{}', time)", word(rng)),
            5 => format!("{}({})", word(rng), word(rng)),
            _ => word(rng),
        }
    };
    let columns: Vec<String> = (0..rng.random_range(1..5)).map(|_| column(rng)).collect();
    let mut statement = format!("{} | SELECT {}", search_query(rng, 3), columns.join(", "));
    if rng.random_bool(0.3) {
        statement.push_str(&format!(" FROM {}", word(rng)));
    }
    if rng.random_bool(0.5) {
        statement.push_str(&format!(" WHERE {} = {}", word(rng), word(rng)));
    }
    if rng.random_bool(0.5) {
        statement.push_str(&format!(" GROUP BY {}", word(rng)));
    }
    if rng.random_bool(0.3) {
        statement.push_str(&format!(" HAVING count(*) > {}", word(rng)));
    }
    if rng.random_bool(0.4) {
        statement.push_str(&format!(" ORDER BY {} DESC", column(rng)));
    }
    if rng.random_bool(0.4) {
        statement.push_str(&format!(
            " LIMIT {} OFFSET {}",
            rng.random::<i64>(),
            rng.random::<u64>()
        ));
    }
    if rng.random_bool(0.3) {
        statement = mutate_text(rng, statement);
    }
    statement
}

/// A pipe SQL statement of one of the large shapes the limits are about.
fn large_sql(rng: &mut StdRng) -> String {
    let n = rng.random_range(100..1200);
    match rng.random_range(0..4) {
        0 => format!(
            "* | SELECT count(*) WHERE {}",
            (0..n)
                .map(|i| format!("a={i}"))
                .collect::<Vec<_>>()
                .join(" AND ")
        ),
        1 => format!(
            "* | SELECT count(*) WHERE {}",
            (0..n)
                .map(|i| format!("a={i}"))
                .collect::<Vec<_>>()
                .join(" OR ")
        ),
        2 => format!(
            "* | SELECT {} AS x",
            (0..n * 3).map(|_| "1").collect::<Vec<_>>().join(" + ")
        ),
        _ => format!(
            "* | SELECT count(*) WHERE {}a=1{}",
            "(".repeat(n),
            ")".repeat(n)
        ),
    }
}

/// A value for a path parameter: traversal, NUL, unicode, very long, empty.
fn nasty_segment(rng: &mut StdRng) -> String {
    let raw = match rng.random_range(0..10) {
        0 => "..".to_string(),
        1 => "../../etc/passwd".to_string(),
        2 => "a\0b".to_string(),
        3 => "x".repeat(rng.random_range(200..6000)),
        4 => "é🦀\u{202e}".to_string(),
        5 => " ".to_string(),
        6 => "%2e%2e%2f".to_string(),
        7 => format!("{}-{}", rng.random::<u64>(), rng.random::<u64>()),
        8 => random_text(rng, 1..30),
        _ => "0000018bd0e3a2c0000000000011002a".to_string(),
    };
    percent_encode(&raw)
}

/// Percent-encodes everything but unreserved characters (so `..` stays `..`).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A random query string.
fn query_string(rng: &mut StdRng) -> String {
    let names = [
        "query",
        "from",
        "to",
        "limit",
        "cursor",
        "highlight",
        "track_total",
        "default_operator",
        "before",
        "after",
        "same_source",
        "start",
        "max",
        "position",
        "hash_key",
        "shard",
    ];
    let pairs: Vec<String> = (0..rng.random_range(0..5))
        .map(|_| {
            let value = match rng.random_range(0..4) {
                0 => rng.random::<i64>().to_string(),
                1 => search_query(rng, 4),
                2 => "-999999999d".to_string(),
                _ => random_text(rng, 0..20),
            };
            format!(
                "{}={}",
                names.choose(rng).expect("name"),
                percent_encode(&value)
            )
        })
        .collect();
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    }
}

/// The routes with parameters, with the methods that take a body.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/tenants/{tenant}"),
    ("GET", "/v1/tenants/{tenant}/keys"),
    ("PATCH", "/v1/tenants/{tenant}/keys/{id}"),
    ("DELETE", "/v1/tenants/{tenant}/keys/{id}"),
    ("GET", "/v1/tenants/{tenant}/quotas"),
    ("PUT", "/v1/tenants/{tenant}/quotas"),
    ("GET", "/v1/tenants/{tenant}/usage"),
    ("GET", "/v1/projects/{project}"),
    ("PATCH", "/v1/projects/{project}"),
    ("DELETE", "/v1/projects/{project}"),
    ("GET", "/v1/projects/{project}/quotas"),
    ("PUT", "/v1/projects/{project}/quotas"),
    ("GET", "/v1/projects/{project}/pools"),
    ("POST", "/v1/projects/{project}/pools"),
    ("GET", "/v1/projects/{project}/pools/{pool}"),
    ("PATCH", "/v1/projects/{project}/pools/{pool}"),
    ("DELETE", "/v1/projects/{project}/pools/{pool}"),
    ("GET", "/v1/projects/{project}/pools/{pool}/stats"),
    ("POST", "/v1/projects/{project}/pools/{pool}/logs"),
    ("GET", "/v1/projects/{project}/pools/{pool}/search"),
    ("GET", "/v1/projects/{project}/pools/{pool}/histogram"),
    ("GET", "/v1/projects/{project}/pools/{pool}/fields"),
    ("POST", "/v1/projects/{project}/pools/{pool}/query"),
    (
        "GET",
        "/v1/projects/{project}/pools/{pool}/records/{id}/context",
    ),
    ("GET", "/v1/projects/{project}/pools/{pool}/shards"),
    (
        "GET",
        "/v1/projects/{project}/pools/{pool}/shards/{shard}/cursor",
    ),
    (
        "GET",
        "/v1/projects/{project}/pools/{pool}/shards/{shard}/records",
    ),
    (
        "GET",
        "/v1/projects/{project}/pools/{pool}/archive/settings",
    ),
    (
        "PUT",
        "/v1/projects/{project}/pools/{pool}/archive/settings",
    ),
    ("GET", "/v1/projects/{project}/pools/{pool}/archive"),
    (
        "POST",
        "/v1/projects/{project}/pools/{pool}/archive/restore",
    ),
    (
        "GET",
        "/v1/projects/{project}/pools/{pool}/archive/restore/{id}",
    ),
    ("GET", "/v1/projects/{project}/pools/{pool}/consumer-groups"),
    (
        "POST",
        "/v1/projects/{project}/pools/{pool}/consumer-groups",
    ),
    (
        "DELETE",
        "/v1/projects/{project}/pools/{pool}/consumer-groups/{group}",
    ),
    (
        "POST",
        "/v1/projects/{project}/pools/{pool}/consumer-groups/{group}/heartbeat",
    ),
    (
        "PUT",
        "/v1/projects/{project}/pools/{pool}/consumer-groups/{group}/checkpoints",
    ),
    (
        "GET",
        "/v1/projects/{project}/pools/{pool}/consumer-groups/{group}/checkpoints",
    ),
];

/// A route with at least one parameter replaced by a nasty value; the others keep
/// the real names, so that nothing that exists is changed or deleted.
fn fuzzed_path(rng: &mut StdRng) -> (Method, String) {
    let (method, template) = *ROUTES.choose(rng).expect("route");
    let names = [
        "{tenant}",
        "{project}",
        "{pool}",
        "{id}",
        "{shard}",
        "{group}",
    ];
    let present: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| template.contains(name))
        .collect();
    let fuzzed = *present.choose(rng).expect("a parameter");
    let mut path = template.to_string();
    for name in present {
        let value = if name == fuzzed || rng.random_bool(0.3) {
            nasty_segment(rng)
        } else {
            match name {
                "{tenant}" => TENANT.to_string(),
                "{project}" => PROJECT.to_string(),
                "{pool}" => POOL.to_string(),
                "{shard}" => "0".to_string(),
                _ => "readers".to_string(),
            }
        };
        path = path.replace(name, &value);
    }
    (method.parse().expect("method"), path)
}

// ---------------------------------------------------------------- the run

async fn tail_once(
    base_ws: &str,
    findings: &mut Findings,
    key: &(String, String),
    query: &str,
    start: &str,
) {
    let url = format!(
        "{base_ws}/v1/projects/{PROJECT}/pools/{POOL}/tail?query={}&start={}",
        percent_encode(query),
        percent_encode(start)
    );
    let what = format!(
        "TAIL query={} start={start:?} as {}",
        shorten(query, 300),
        key.0
    );
    let mut request = match url.as_str().into_client_request() {
        Ok(request) => request,
        Err(error) => return findings.transport(&what, &error),
    };
    if let Ok(value) = format!("Bearer {}", key.1).parse() {
        request.headers_mut().insert("authorization", value);
    }
    let connect = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(request),
    )
    .await;
    match connect {
        Err(_) => findings.transport(&what, &"handshake timed out"),
        Ok(Ok((mut socket, response))) => {
            findings.check(&what, response.status().as_u16(), false, "");
            let _ = socket.close(None).await;
        }
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
            let body = response
                .body()
                .as_ref()
                .map(|body| String::from_utf8_lossy(body).into_owned())
                .unwrap_or_default();
            let retry_after = response.headers().contains_key("retry-after");
            findings.check(&what, response.status().as_u16(), retry_after, &body);
        }
        Ok(Err(error)) => findings.transport(&what, &error),
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_fuzzed_requests_get_no_5xx_and_the_server_survives() {
    let started = Instant::now();
    let seed = env_number("LOGPOOL_TEST_FUZZ_SEED").unwrap_or_else(rand::random);
    let scale = env_number("LOGPOOL_TEST_FUZZ_SCALE").unwrap_or(1).max(1) as usize;
    println!("fuzz seed {seed} (replay with LOGPOOL_TEST_FUZZ_SEED={seed}), scale {scale}");
    let mut rng = StdRng::seed_from_u64(seed);

    let root = tempfile::tempdir().expect("tempdir");
    let log = root.path().join("logpool.log");
    let port = free_port();
    let mut child = start_standalone_process(
        &root.path().join("data"),
        port,
        &log,
        &[
            ("LOGPOOL_LOGHUB__COMMIT_INTERVAL_MS", "300".to_string()),
            // Wrong keys are part of the run; throttling them would hide the rest.
            (
                "LOGPOOL_HTTP__MAX_AUTH_FAILURES_PER_ADDRESS",
                "0".to_string(),
            ),
        ],
    )
    .await;
    let pid = child.id().expect("pid");
    let base = format!("http://127.0.0.1:{port}");
    let base_ws = format!("ws://127.0.0.1:{port}");
    let api = RawApi::new(&base);
    api.create_tenant(TENANT).await;
    api.create_project(TENANT, PROJECT).await;
    api.create_pool(TENANT, PROJECT, POOL).await;
    api.create_group(TENANT, PROJECT, POOL, "readers").await;
    let mut all = vec![("operator".to_string(), ADMIN_KEY.to_string())];
    for role in ["tenant_admin", "project_admin", "writer", "reader"] {
        let (_, key) = api.create_key(TENANT, role, None).await;
        all.push((role.to_string(), key));
    }
    all.push(("wrong".to_string(), "lpk_nosuch_secret".to_string()));
    all.push(("garbage".to_string(), "lpk__".to_string()));
    let keys = Keys { all };
    let writer = ("writer".to_string(), keys.named("writer"));
    let reader = ("reader".to_string(), keys.named("reader"));

    // Records written before the run, which must all be there after it.
    let marker = format!("seeded{:x}", rand::random::<u64>());
    let seeded: Vec<Value> = (0..SEEDED)
        .map(|n| json!({ "message": format!("{marker} record {n}") }))
        .collect();
    let put = api
        .send(
            Method::POST,
            &format!("/v1/projects/{PROJECT}/pools/{POOL}/logs"),
            Some(&writer.1),
            None,
            Some(&json!({ "logs": seeded })),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    let reader_client = logpool_client::LogpoolClient::new(&base)
        .expect("client")
        .with_api_key(reader.1.clone());
    let found = wait_for_count(&reader_client, PROJECT, POOL, &marker, SEEDED).await;
    assert_eq!(found, SEEDED, "seeded records searchable");

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http");
    let mut findings = Findings::default();
    let pool_path = format!("/v1/projects/{PROJECT}/pools/{POOL}");
    let alive = |child: &mut tokio::process::Child| child.try_wait().ok().flatten().is_none();

    // PutDatas bodies.
    for _ in 0..900 * scale {
        let (headers, body) = put_body(&mut rng);
        let key = if rng.random_bool(0.85) {
            writer.clone()
        } else {
            keys.pick(&mut rng)
        };
        let path = format!(
            "{pool_path}/logs{}",
            if rng.random_bool(0.2) {
                query_string(&mut rng)
            } else {
                String::new()
            }
        );
        send(
            &http,
            &base,
            &mut findings,
            Method::POST,
            &path,
            &key,
            &headers,
            Some(body),
        )
        .await;
    }
    println!("puts done at {:?}", started.elapsed());
    assert!(alive(&mut child), "server died during PutDatas fuzzing");

    // Search query strings, on every read route.
    for _ in 0..1200 * scale {
        let query = search_query(&mut rng, 0);
        let key = if rng.random_bool(0.8) {
            reader.clone()
        } else {
            keys.pick(&mut rng)
        };
        let route = ["search", "histogram", "fields", "search/stream"]
            .choose(&mut rng)
            .expect("route");
        if rng.random_bool(0.5) {
            let path = format!(
                "{pool_path}/{route}?query={}{}",
                percent_encode(&query),
                query_string(&mut rng).replacen('?', "&", 1)
            );
            send(
                &http,
                &base,
                &mut findings,
                Method::GET,
                &path,
                &key,
                &[],
                None,
            )
            .await;
        } else {
            let mut body = json!({ "query": query });
            if rng.random_bool(0.5) {
                body["limit"] = json_value(&mut rng, 3);
                body["from"] = json_value(&mut rng, 3);
                body["cursor"] = json!(random_text(&mut rng, 0..40));
                body["highlight"] = json!(rng.random_bool(0.5));
            }
            let headers = [("content-type", "application/json".to_string())];
            let body = serde_json::to_vec(&body).expect("json");
            send(
                &http,
                &base,
                &mut findings,
                Method::POST,
                &format!("{pool_path}/{route}"),
                &key,
                &headers,
                Some(body),
            )
            .await;
        }
    }
    println!("searches done at {:?}", started.elapsed());
    assert!(alive(&mut child), "server died during search fuzzing");

    // Pipe SQL.
    for _ in 0..750 * scale {
        let statement = sql(&mut rng);
        let body = serde_json::to_vec(&json!({ "query": statement })).expect("json");
        let headers = [("content-type", "application/json".to_string())];
        send(
            &http,
            &base,
            &mut findings,
            Method::POST,
            &format!("{pool_path}/query"),
            &reader,
            &headers,
            Some(body),
        )
        .await;
    }
    println!("SQL done at {:?}", started.elapsed());
    assert!(alive(&mut child), "server died during SQL fuzzing");

    // Tail filters.
    for _ in 0..100 * scale {
        let query = search_query(&mut rng, 2);
        let start = [
            "now".to_string(),
            "-5m".to_string(),
            "-999999d".to_string(),
            random_text(&mut rng, 0..12),
            rng.random::<i64>().to_string(),
        ]
        .choose(&mut rng)
        .expect("start")
        .clone();
        let key = if rng.random_bool(0.8) {
            reader.clone()
        } else {
            keys.pick(&mut rng)
        };
        tail_once(&base_ws, &mut findings, &key, &query, &start).await;
    }
    println!("tails done at {:?}", started.elapsed());
    assert!(alive(&mut child), "server died during tail fuzzing");

    // Path parameters and query strings on every route with parameters.
    for _ in 0..1200 * scale {
        let (method, path) = fuzzed_path(&mut rng);
        let path = format!("{path}{}", query_string(&mut rng));
        let key = keys.pick(&mut rng);
        let (headers, body) = if method == Method::GET || method == Method::DELETE {
            (Vec::new(), None)
        } else {
            let body = if rng.random_bool(0.5) {
                serde_json::to_vec(&json_object(&mut rng, 1)).expect("json")
            } else {
                mutate(
                    &mut rng,
                    br#"{"name":"x","enabled":false,"shards":1,"into_pool":"web"}"#.to_vec(),
                )
            };
            (
                vec![("content-type", "application/json".to_string())],
                Some(body),
            )
        };
        send(
            &http,
            &base,
            &mut findings,
            method,
            &path,
            &key,
            &headers,
            body,
        )
        .await;
    }
    println!("paths done at {:?}", started.elapsed());
    assert!(alive(&mut child), "server died during path fuzzing");

    // Last: the large shapes the query limits are about (deep nesting, many terms,
    // many wildcards, long AND/OR chains in SQL).
    for _ in 0..15 * scale {
        let (route, body) = if rng.random_bool(0.5) {
            (
                "search",
                json!({ "query": large_search_query(&mut rng), "limit": 1 }),
            )
        } else {
            ("query", json!({ "query": large_sql(&mut rng) }))
        };
        let headers = [("content-type", "application/json".to_string())];
        let body = serde_json::to_vec(&body).expect("json");
        send(
            &http,
            &base,
            &mut findings,
            Method::POST,
            &format!("{pool_path}/{route}"),
            &reader,
            &headers,
            Some(body),
        )
        .await;
        if !alive(&mut child) {
            break;
        }
    }
    println!("large queries done at {:?}", started.elapsed());

    let stats = ProcessStats::read(pid);
    let survived = alive(&mut child);
    let healthy = survived
        && http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success());
    let intact = if survived {
        reader_client.count(PROJECT, POOL, &marker).await.ok()
    } else {
        None
    };
    println!(
        "{} requests, {} failures, server {stats:?}, run took {:?}",
        findings.requests,
        findings.failures.len(),
        started.elapsed()
    );
    if !survived {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail = &text[text.len().saturating_sub(2000)..];
        findings
            .failures
            .push(format!("the server died; its log ends with:\n{tail}"));
    }
    let _ = child.start_kill();
    if survived && !findings.failures.is_empty() {
        // What the server said about its 5xx answers.
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let errors: Vec<&str> = text
            .lines()
            .filter(|line| line.contains("ERROR"))
            .take(SHOWN_FAILURES)
            .collect();
        findings
            .failures
            .push(format!("the server's errors:\n{}", errors.join("\n")));
    }
    let shown: Vec<&String> = findings
        .failures
        .iter()
        .take(SHOWN_FAILURES)
        .chain(
            findings
                .failures
                .last()
                .filter(|_| findings.failures.len() > SHOWN_FAILURES),
        )
        .collect();
    assert!(
        findings.failures.is_empty(),
        "seed {seed}: {} failures, the first ones:\n{}",
        findings.failures.len(),
        shown
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        healthy,
        "seed {seed}: /healthz does not answer after the run"
    );
    assert_eq!(intact, Some(SEEDED), "seed {seed}: earlier records lost");
    let peak = stats.map_or(0, |stats| stats.peak_rss_kib);
    assert!(
        peak < PEAK_RSS_LIMIT_KIB,
        "seed {seed}: peak RSS {peak} KiB over {PEAK_RSS_LIMIT_KIB} KiB"
    );
}
