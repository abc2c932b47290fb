//! Bad input gets a 4xx JSON error naming the problem, the service stays healthy,
//! and data stored before is intact.

use std::io::Write;

use logpool_client::{ClientError, Encoding, LogpoolClient};
use logpool_e2e::{wait_for_count, TestServer};
use serde_json::{json, Value};

const PROJECT: &str = "shop";
const POOL: &str = "web";

async fn setup() -> TestServer {
    let server = TestServer::start_with(|config| {
        config.limits.max_body_bytes = 256 * 1024;
        config.limits.max_records_per_request = 100;
        config.limits.max_fields_per_record = 8;
        config.limits.max_field_name_chars = 32;
        config.limits.max_value_bytes = 1024;
    })
    .await
    .expect("server");
    server
        .client
        .create_project(PROJECT)
        .await
        .expect("project");
    server
        .client
        .create_pool(PROJECT, &json!({ "name": POOL }))
        .await
        .expect("pool");
    let records: Vec<Value> = (0..50)
        .map(|i| json!({ "message": format!("good record {i}") }))
        .collect();
    server
        .client
        .put_records(PROJECT, POOL, &records)
        .await
        .expect("seed");
    assert_eq!(
        wait_for_count(&server.client, PROJECT, POOL, "good", 50).await,
        50
    );
    server
}

/// (case name, content type, content encoding, body, expected status, text the message must hold)
type BadRequest = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    u16,
    &'static str,
);

/// Sends a raw body and returns (status, error object).
async fn raw(
    client: &LogpoolClient,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    raw_to(client, PROJECT, POOL, content_type, encoding, body).await
}

async fn raw_to(
    client: &LogpoolClient,
    project: &str,
    pool: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let url = format!(
        "{}/v1/projects/{project}/pools/{pool}/logs",
        client.base_url()
    );
    let mut request = client
        .request(reqwest::Method::POST, url)
        .header("content-type", content_type)
        .body(body);
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["error"].clone())
}

/// The search route of `POOL` in `project`; posted to directly, since these
/// requests are wrong on purpose and the typed client call cannot express them.
fn search_path(project: &str) -> String {
    format!("/v1/projects/{project}/pools/{POOL}/search")
}

fn error_of(result: Result<Value, ClientError>) -> (u16, Value) {
    match result {
        Err(ClientError::Http { status, body, .. }) => {
            let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            (status, parsed["error"].clone())
        }
        other => panic!("expected an HTTP error, got {other:?}"),
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_bad_ingest_requests_are_named_and_harmless() {
    let server = setup().await;
    let client = &server.client;
    let big_value = "x".repeat(2000);
    let many_fields: serde_json::Map<String, Value> =
        (0..9).map(|i| (format!("f{i}"), json!(i))).collect();
    let too_many_records: Vec<Value> = (0..101).map(|_| json!({ "message": "m" })).collect();
    let huge_body = format!(
        "{{\"logs\":[{{\"message\":\"{}\"}}]}}",
        "y".repeat(300 * 1024)
    );
    let bomb = gzip(&vec![b' '; 2 * 1024 * 1024]);
    let cases: Vec<BadRequest> = vec![
        (
            "malformed JSON",
            "application/json",
            None,
            b"{\"logs\": [".to_vec(),
            400,
            "malformed JSON",
        ),
        (
            "bad NDJSON line",
            "application/x-ndjson",
            None,
            b"{\"message\":\"a\"}\n{\"message\":\"b\"}\n{nope\n".to_vec(),
            400,
            "line 3",
        ),
        (
            "NDJSON record over the field limit",
            "application/x-ndjson",
            None,
            format!(
                "{{\"message\":\"a\"}}\n{{\"o\":{}}}\n",
                serde_json::to_string(&many_fields).expect("json")
            )
            .into_bytes(),
            413,
            "`max_fields_per_record` exceeded at `line 2`",
        ),
        (
            "NDJSON array value",
            "application/x-ndjson",
            None,
            b"{\"message\":\"a\",\"ids\":[1]}\n".to_vec(),
            400,
            "`line 1.ids`",
        ),
        (
            "wrong content type",
            "text/plain",
            None,
            b"hello".to_vec(),
            415,
            "Content-Type",
        ),
        (
            "corrupt gzip",
            "application/json",
            Some("gzip"),
            b"\x1f\x8b\x08\x00garbage".to_vec(),
            400,
            "gzip",
        ),
        (
            "unknown encoding",
            "application/json",
            Some("br"),
            b"{}".to_vec(),
            415,
            "Content-Encoding",
        ),
        (
            "body limit",
            "application/json",
            None,
            huge_body.into_bytes(),
            413,
            "max_body_bytes",
        ),
        (
            "gzip bomb",
            "application/json",
            Some("gzip"),
            bomb,
            413,
            "max_body_bytes",
        ),
        (
            "record count",
            "application/json",
            None,
            serde_json::to_vec(&json!({ "logs": too_many_records })).expect("json"),
            413,
            "max_records_per_request",
        ),
        (
            "fields per record",
            "application/json",
            None,
            serde_json::to_vec(&json!({ "logs": [many_fields] })).expect("json"),
            413,
            "max_fields_per_record",
        ),
        (
            "field name",
            "application/json",
            None,
            serde_json::to_vec(&json!({ "logs": [{ "a".repeat(33): 1 }] })).expect("json"),
            413,
            "max_field_name_chars",
        ),
        (
            "value size",
            "application/json",
            None,
            serde_json::to_vec(&json!({ "logs": [{ "message": big_value }] })).expect("json"),
            413,
            "max_value_bytes",
        ),
        (
            "unparsable time",
            "application/json",
            None,
            br#"{"logs":[{"message":"a"},{"time":"yesterday-ish"}]}"#.to_vec(),
            400,
            "logs[1].time",
        ),
        (
            "array value",
            "application/json",
            None,
            br#"{"logs":[{"ids":[1,2]}]}"#.to_vec(),
            400,
            "logs[0].ids",
        ),
        (
            "empty batch",
            "application/json",
            None,
            br#"{"logs":[]}"#.to_vec(),
            400,
            "no log records",
        ),
        (
            "unknown envelope key",
            "application/json",
            None,
            br#"{"logz":[]}"#.to_vec(),
            400,
            "logz",
        ),
    ];
    for (name, content_type, encoding, body, status, needle) in cases {
        let (got_status, error) = raw(client, content_type, encoding, body).await;
        assert_eq!(got_status, status, "{name}: {error}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(needle),
            "{name}: `{message}` should mention `{needle}`"
        );
        assert!(error["code"].is_string(), "{name}: error has a code");
        let health = client.get("/healthz").await.expect("healthy");
        assert_eq!(health["status"], "ok");
    }
    // Unknown project and pool.
    let (status, error) = raw_to(
        client,
        "nope",
        POOL,
        "application/json",
        None,
        br#"{"logs":[{"m":1}]}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 404, "{error}");
    let (status, error) = raw_to(
        client,
        PROJECT,
        "nope",
        "application/json",
        None,
        br#"{"logs":[{"m":1}]}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 404, "{error}");
    assert!(error["message"]
        .as_str()
        .unwrap_or_default()
        .contains("nope"));
    // Nothing stored before was lost, nothing of the bad requests was stored.
    assert_eq!(client.count(PROJECT, POOL, "").await.expect("count"), 50);
    assert_eq!(
        client.count(PROJECT, POOL, "good").await.expect("count"),
        50
    );
    // A good request still works afterwards.
    client
        .put_raw(
            PROJECT,
            POOL,
            "application/json",
            Encoding::Gzip,
            br#"{"logs":[{"message":"after"}]}"#.to_vec(),
            None,
        )
        .await
        .expect("put");
    assert_eq!(wait_for_count(client, PROJECT, POOL, "after", 1).await, 1);
    server.standalone.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_bad_search_requests_are_named() {
    let server = setup().await;
    let client = &server.client;
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "query": "status:(500 OR" }), "position"),
        (json!({ "query": "a AND" }), "position"),
        (json!({ "query": "\"unclosed" }), "position"),
        (json!({ "from": "last tuesday" }), "from"),
        (json!({ "to": "soonish" }), "to"),
        (json!({ "from": "now", "to": "-1h" }), "from"),
        (json!({ "limit": 0 }), "limit"),
        (json!({ "limit": 10001 }), "limit"),
        (json!({ "cursor": "not-a-cursor" }), "cursor"),
        (json!({ "default_operator": "xor" }), "default_operator"),
        (json!({ "unknown": 1 }), "unknown"),
    ];
    for (params, needle) in cases {
        let (status, error) = error_of(client.post(&search_path(PROJECT), &params).await);
        assert_eq!(status, 400, "{params}: {error}");
        let text = error.to_string();
        assert!(
            text.contains(needle),
            "{params}: `{text}` should mention `{needle}`"
        );
    }
    let (_, error) = error_of(
        client
            .post(&search_path(PROJECT), &json!({ "query": "status:(500 OR" }))
            .await,
    );
    assert_eq!(error["field"], "query");
    assert!(error["position"].is_u64(), "{error}");
    // GET with the query string works too, and names the same problem.
    let (status, error) = error_of(
        client
            .get(&format!(
                "/v1/projects/{PROJECT}/pools/{POOL}/search?query=a%20AND"
            ))
            .await,
    );
    assert_eq!(status, 400);
    assert!(error["position"].is_u64());
    let (status, _) = error_of(
        client
            .post(
                &format!("/v1/projects/{PROJECT}/pools/{POOL}/histogram"),
                &json!({ "interval": "1s", "from": "-1d" }),
            )
            .await,
    );
    assert_eq!(status, 400, "too many buckets");
    // Times far outside what a log can carry are refused by name, as numbers and as
    // text; before, a huge negative `from` overflowed the histogram's bucket rounding.
    for (from, to) in [
        (json!(-5_851_314_828_368_225_800_i64), json!("now")),
        (json!("-5851314828368225800"), json!("now")),
        (json!("-1h"), json!("9223372036854775807")),
        (json!("-1h"), json!("now+15000w")),
    ] {
        let (status, error) = error_of(
            client
                .post(
                    &format!("/v1/projects/{PROJECT}/pools/{POOL}/histogram"),
                    &json!({ "from": from, "to": to }),
                )
                .await,
        );
        assert_eq!(status, 400, "{from}..{to}: {error}");
        assert!(error.to_string().contains("out of range"), "{error}");
    }
    let (status, error) = error_of(
        client
            .get(&format!(
                "/v1/projects/{PROJECT}/pools/{POOL}/search?limit=abc"
            ))
            .await,
    );
    assert_eq!(status, 400);
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("limit"),
        "{error}"
    );
    let response = client
        .request(
            reqwest::Method::POST,
            format!(
                "{}/v1/projects/{PROJECT}/pools/{POOL}/logs?nope=1",
                client.base_url()
            ),
        )
        .header("content-type", "application/json")
        .body(r#"[{"message":"x"}]"#)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("json error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nope"),
        "{body}"
    );
    let (status, _) = error_of(client.post(&search_path("nope"), &json!({})).await);
    assert_eq!(status, 404);
    assert_eq!(
        client.count(PROJECT, POOL, "good").await.expect("count"),
        50
    );
    server.standalone.shutdown().await.expect("shutdown");
}
