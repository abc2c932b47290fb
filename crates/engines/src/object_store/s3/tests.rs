//! The S3 store against the S3-compatible test server (`moto_server`, started by
//! `scripts/test-engines.sh`); the tests that need it are skipped without
//! `LOGPOOL_TEST_S3_ENDPOINT`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::*;
use crate::object_store::conformance;

/// Upper bound of one test, so a hung server fails the test instead of the run.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

const MIB: usize = 1024 * 1024;

/// The S3-compatible test server, or `None` when the test is to be skipped.
fn endpoint() -> Option<String> {
    crate::test_env::engine_address("LOGPOOL_TEST_S3_ENDPOINT")
}

/// A loopback port nothing listens on (it was free a moment ago).
fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A bucket name no other test (or test run) uses.
fn random_bucket() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "logpool-test-{}-{}",
        crate::test_env::unique_suffix(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn config(endpoint: &str, bucket: &str, prefix: Option<&str>) -> S3ObjectStoreConfig {
    S3ObjectStoreConfig {
        endpoint: Some(endpoint.to_string()),
        bucket: bucket.to_string(),
        access_key_id: Some("test".to_string()),
        secret_access_key: Some("test".to_string()),
        allow_http: true,
        prefix: prefix.map(str::to_string),
        request_timeout_ms: 10_000,
        ..S3ObjectStoreConfig::default()
    }
}

/// A store on a fresh bucket of the test server, created through the store's own
/// client; `None` when there is no server.
async fn fresh_store_with(
    adjust: impl FnOnce(&mut S3ObjectStoreConfig),
) -> Option<(S3ObjectStore, String)> {
    let endpoint = endpoint()?;
    let bucket = random_bucket();
    let mut config = config(&endpoint, &bucket, None);
    adjust(&mut config);
    let store = S3ObjectStore::connect(&config).expect("connect");
    store
        .client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {bucket}: {}", DisplayErrorContext(&e)));
    Some((store, bucket))
}

async fn fresh_store(prefix: Option<&str>) -> Option<(S3ObjectStore, String)> {
    fresh_store_with(|c| c.prefix = prefix.map(str::to_string)).await
}

/// Bytes whose pattern reveals reordered, duplicated or missing parts.
fn patterned(size: usize) -> Bytes {
    (0..size)
        .map(|i| (i % 251) as u8 ^ (i / MIB) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// What S3 says of the object at the bucket key `key` (the store's prefix included).
async fn head_of(
    store: &S3ObjectStore,
    key: &str,
) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
    store
        .client
        .head_object()
        .bucket(&store.bucket)
        .key(key)
        .send()
        .await
        .expect("head")
}

/// Multipart uploads of the bucket not yet completed or aborted.
async fn open_uploads(store: &S3ObjectStore) -> usize {
    store
        .client
        .list_multipart_uploads()
        .bucket(&store.bucket)
        .send()
        .await
        .expect("list multipart uploads")
        .uploads()
        .len()
}

#[tokio::test]
async fn test_s3_conformance() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let Some((store, _)) = fresh_store(None).await else {
            return;
        };
        conformance::check_object_store(&store).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn test_s3_conformance_under_prefix() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let Some((store, _)) = fresh_store(Some("/deployment-a/archives/")).await else {
            return;
        };
        conformance::check_object_store(&store).await;
    })
    .await
    .expect("test timed out");
}

/// Records the URI of the request the client is about to send.
#[derive(Debug, Clone, Default)]
struct CaptureUri(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl aws_sdk_s3::config::Intercept for CaptureUri {
    fn name(&self) -> &'static str {
        "CaptureUri"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_s3::config::RuntimeComponents,
        _config: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        if let Ok(mut uri) = self.0.lock() {
            *uri = Some(context.request().uri().to_string());
        }
        Ok(())
    }
}

#[tokio::test]
async fn test_s3_addressing_style_follows_the_setting() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        // Nothing listens: only the address the request was built for matters.
        let port = unused_port();
        for (virtual_hosted_style, expected) in [
            (false, format!("http://localhost:{port}/b-1/p/k")),
            (true, format!("http://b-1.localhost:{port}/p/k")),
        ] {
            let mut config = config(&format!("http://localhost:{port}"), "b-1", Some("p"));
            config.virtual_hosted_style = virtual_hosted_style;
            config.request_timeout_ms = 500;
            let store = S3ObjectStore::connect(&config).expect("connect");
            let capture = CaptureUri::default();
            let _ = store
                .client
                .get_object()
                .bucket(&store.bucket)
                .key(store.wire_key("k").expect("key"))
                .customize()
                .interceptor(capture.clone())
                .send()
                .await;
            let uri = capture.0.lock().expect("lock").clone().unwrap_or_default();
            // The SDK appends `?x-id=GetObject`; the address is what comes before.
            assert_eq!(uri.split('?').next(), Some(expected.as_str()));
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn test_s3_prefixes_isolate_deployments_in_one_bucket() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let Some(endpoint) = endpoint() else { return };
        let Some((a, bucket)) = fresh_store(Some("a")).await else {
            return;
        };
        let b = S3ObjectStore::connect(&config(&endpoint, &bucket, Some("b"))).expect("b");
        let root = S3ObjectStore::connect(&config(&endpoint, &bucket, None)).expect("root");
        a.put("x/1", Bytes::from_static(b"from a"))
            .await
            .expect("put a");
        b.put("x/1", Bytes::from_static(b"from b"))
            .await
            .expect("put b");
        assert_eq!(a.get("x/1").await.expect("get a"), "from a".as_bytes());
        assert_eq!(b.get("x/1").await.expect("get b"), "from b".as_bytes());
        assert_eq!(a.list("").await.expect("list a"), ["x/1"]);
        assert_eq!(root.list("").await.expect("list root"), ["a/x/1", "b/x/1"]);
        a.delete("x/1").await.expect("delete a");
        assert_eq!(b.list("x").await.expect("list b"), ["x/1"]);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn test_s3_large_object_uses_multipart_and_round_trips() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        // A low threshold and S3's smallest part, so a modest object has three parts.
        let Some((store, _)) = fresh_store_with(|c| {
            c.prefix = Some("big".to_string());
            c.multipart_threshold_bytes = 6 * MIB as u64;
            c.multipart_part_size_bytes = 5 * MIB as u64;
        })
        .await
        else {
            return;
        };
        let data = patterned(10 * MIB + 12_345);
        store
            .put("archive/big.bin", data.clone())
            .await
            .expect("put");
        // A multipart object's ETag ends in `-{parts}`; one PUT's is a plain MD5.
        let head = head_of(&store, "big/archive/big.bin").await;
        let etag = head
            .e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string();
        assert!(etag.ends_with("-3"), "ETag of a 3-part upload: {etag}");
        assert_eq!(head.content_length(), Some(data.len() as i64));
        assert_eq!(open_uploads(&store).await, 0, "upload left open");
        let back = store.get("archive/big.bin").await.expect("get");
        assert_eq!(back.len(), data.len());
        assert!(back == data, "multipart object differs from what was put");

        // Below the threshold: one PUT, and it replaces the whole large object.
        let small = patterned(6 * MIB - 1);
        store
            .put("archive/big.bin", small.clone())
            .await
            .expect("overwrite");
        let head = head_of(&store, "big/archive/big.bin").await;
        let etag = head.e_tag().unwrap_or_default();
        assert!(!etag.contains('-'), "a single PUT's ETag: {etag}");
        assert!(store.get("archive/big.bin").await.expect("get") == small);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn test_s3_failed_multipart_upload_is_aborted() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let Some((mut store, _)) = fresh_store_with(|c| {
            c.multipart_threshold_bytes = MIB as u64;
        })
        .await
        else {
            return;
        };
        store
            .put("kept", Bytes::from_static(b"old"))
            .await
            .expect("put");
        // Parts below S3's 5 MiB minimum (which the settings refuse) make the server
        // refuse the completion, after every part was stored.
        store.part_size = MIB;
        let error = store
            .put("kept", patterned(3 * MIB))
            .await
            .expect_err("parts too small");
        assert!(
            matches!(&error, ObjectStoreError::Unavailable(m) if m.contains("EntityTooSmall")),
            "{error:?}"
        );
        assert_eq!(
            open_uploads(&store).await,
            0,
            "the failed upload was not aborted"
        );
        assert_eq!(
            store.get("kept").await.expect("get"),
            "old".as_bytes(),
            "a failed put must leave the old object"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn test_s3_server_side_encryption_is_sent() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        use aws_sdk_s3::types::ServerSideEncryption as Header;
        let cases = [
            (ServerSideEncryption::Aes256, None, Header::Aes256),
            (
                ServerSideEncryption::AwsKms,
                Some("alias/logpool-test"),
                Header::AwsKms,
            ),
        ];
        for (mode, kms_key, expected) in cases {
            let Some((store, _)) = fresh_store_with(|c| {
                c.server_side_encryption = mode;
                c.sse_kms_key_id = kms_key.map(str::to_string);
                c.multipart_threshold_bytes = 6 * MIB as u64;
                c.multipart_part_size_bytes = 5 * MIB as u64;
            })
            .await
            else {
                return;
            };
            // Both ways of writing carry the setting: one PUT and a multipart upload.
            for (key, data) in [("small", patterned(100)), ("large", patterned(7 * MIB))] {
                store.put(key, data.clone()).await.expect("put");
                let head = head_of(&store, key).await;
                assert_eq!(head.server_side_encryption(), Some(&expected), "{key}");
                assert_eq!(head.ssekms_key_id(), kms_key, "{key}");
                assert!(store.get(key).await.expect("get") == data, "{key}");
            }
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn test_s3_list_follows_pagination() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let Some((store, _)) = fresh_store(None).await else {
            return;
        };
        // S3 pages listings at 1000 keys.
        let keys: Vec<String> = (0..1050).map(|i| format!("p/{i:05}")).collect();
        futures::future::try_join_all(keys.iter().map(|k| store.put(k, Bytes::from_static(b"."))))
            .await
            .expect("put");
        assert_eq!(store.list("p/").await.expect("list"), keys);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn test_s3_unreachable_server_is_unavailable_in_bounded_time() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let port = unused_port();
        let mut config = config(&format!("http://127.0.0.1:{port}"), "nobucket", None);
        config.request_timeout_ms = 2_000;
        let store = S3ObjectStore::connect(&config).expect("connect sends nothing");
        let started = std::time::Instant::now();
        let error = store.get("k").await.expect_err("nothing listens");
        assert!(
            matches!(error, ObjectStoreError::Unavailable(_)),
            "{error:?}"
        );
        assert!(
            matches!(
                store.put("k", Bytes::new()).await,
                Err(ObjectStoreError::Unavailable(_))
            ),
            "put"
        );
        assert!(
            matches!(store.list("").await, Err(ObjectStoreError::Unavailable(_))),
            "list"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "took {:?}",
            started.elapsed()
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn test_s3_silent_server_is_unavailable_within_twice_the_timeout() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        // Accepts connections and never answers: each attempt times out, and all
        // attempts together end within twice the request timeout.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("addr");
        let accepting = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let mut config = config(&format!("http://{address}"), "silent", None);
        config.request_timeout_ms = 1_000;
        let store = S3ObjectStore::connect(&config).expect("connect");
        let started = std::time::Instant::now();
        let error = store.get("k").await.expect_err("no answer");
        let took = started.elapsed();
        accepting.abort();
        assert!(
            matches!(error, ObjectStoreError::Unavailable(_)),
            "{error:?}"
        );
        assert!(took < Duration::from_millis(3_000), "took {took:?}");
    })
    .await
    .expect("test timed out");
}

#[test]
fn test_s3_config_defaults_parse_and_redaction() {
    let parsed: S3ObjectStoreConfig = toml::from_str(
        r#"
        endpoint = "http://127.0.0.1:9000"
        access_key_id = "AKIA"
        secret_access_key = "very-secret"
        allow_http = true
        server_side_encryption = "aws:kms"
        sse_kms_key_id = "alias/logs"
        "#,
    )
    .expect("parse");
    assert_eq!(parsed.region, "us-east-1");
    assert_eq!(parsed.bucket, "logpool");
    assert!(!parsed.virtual_hosted_style);
    assert_eq!(parsed.request_timeout_ms, 30_000);
    assert_eq!(parsed.multipart_threshold_bytes, 16 * MIB as u64);
    assert_eq!(parsed.multipart_part_size_bytes, 8 * MIB as u64);
    assert_eq!(parsed.server_side_encryption, ServerSideEncryption::AwsKms);
    parsed.validate().expect("valid");
    let debug = format!("{parsed:?}");
    assert!(!debug.contains("very-secret"), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
    let text = toml::to_string(&S3ObjectStoreConfig::default()).expect("serialize");
    assert!(text.contains("server_side_encryption = \"none\""), "{text}");
    assert_eq!(
        toml::from_str::<S3ObjectStoreConfig>(&text).expect("reparse"),
        S3ObjectStoreConfig::default()
    );
    let unknown =
        toml::from_str::<S3ObjectStoreConfig>("path_style = true").expect_err("unknown key");
    assert!(unknown.to_string().contains("path_style"), "{unknown}");
}

#[test]
fn test_s3_bad_settings_name_the_field() {
    let error = toml::from_str::<S3ObjectStoreConfig>("server_side_encryption = \"aes\"")
        .expect_err("unknown mode")
        .to_string();
    assert!(
        error.contains("object_store.server_side_encryption") && error.contains("\"aes\""),
        "{error}"
    );
    let valid = S3ObjectStoreConfig::default();
    valid.validate().expect("defaults are valid");
    type Breakage = fn(&mut S3ObjectStoreConfig);
    let cases: [(&str, Breakage); 8] = [
        ("multipart_part_size_bytes", |c| {
            c.multipart_part_size_bytes = 5 * MIB as u64 - 1
        }),
        ("multipart_threshold_bytes", |c| {
            c.multipart_threshold_bytes = 0
        }),
        ("sse_kms_key_id", |c| {
            c.sse_kms_key_id = Some("alias/x".to_string())
        }),
        ("endpoint", |c| {
            c.endpoint = Some("http://127.0.0.1:9000".to_string())
        }),
        ("endpoint", |c| {
            c.endpoint = Some("127.0.0.1:9000".to_string())
        }),
        ("secret_access_key", |c| {
            c.access_key_id = Some("id".to_string())
        }),
        ("request_timeout_ms", |c| c.request_timeout_ms = 0),
        ("bucket", |c| c.bucket.clear()),
    ];
    for (field, break_it) in cases {
        let mut config = valid.clone();
        break_it(&mut config);
        let error = config.validate().expect_err(field);
        assert_eq!(error.field, field);
        let message = error.to_string();
        assert!(
            message.contains(&format!("`object_store.{field}`")),
            "{message}"
        );
        // `connect` refuses the same settings before building anything.
        assert!(
            matches!(S3ObjectStore::connect(&config), Err(ObjectStoreError::Unavailable(m)) if m.contains(field)),
            "{field}"
        );
    }
    let message = S3ObjectStoreConfig {
        multipart_part_size_bytes: MIB as u64,
        ..valid
    }
    .validate()
    .expect_err("small part")
    .to_string();
    assert!(
        message.contains("5242880") && message.contains("1048576"),
        "the limit and the value: {message}"
    );
}

#[test]
fn test_s3_connect_rejects_bad_settings_without_network() {
    let mut half_credentials = S3ObjectStoreConfig {
        access_key_id: Some("id".to_string()),
        ..S3ObjectStoreConfig::default()
    };
    assert!(matches!(
        S3ObjectStore::connect(&half_credentials),
        Err(ObjectStoreError::Unavailable(_))
    ));
    half_credentials.secret_access_key = Some("secret".to_string());
    half_credentials.prefix = Some("a/../b".to_string());
    assert!(matches!(
        S3ObjectStore::connect(&half_credentials),
        Err(ObjectStoreError::InvalidKey(_))
    ));
    half_credentials.prefix = Some("ok/".to_string());
    let store = S3ObjectStore::connect(&half_credentials).expect("valid settings");
    assert_eq!(store.prefix, "ok/");
}
