//! Object store on the S3 protocol (distributed mode), built on the `object_store`
//! crate's [`AmazonS3`] client. It speaks to AWS S3 and to S3-compatible servers
//! (MinIO, Ceph, Aliyun OSS, Tencent COS, moto) through a configurable endpoint.
//!
//! Design and guarantees:
//! - **Keys.** Logical keys follow the same rules as the local store (`/`-separated,
//!   relative, no empty, `.` or `..` segment, no trailing `/`) and are checked before any
//!   request, so a key that is valid here is valid on both implementations. An optional
//!   configured `prefix` is prepended on the wire and stripped again by [`list`], which
//!   lets several deployments share one bucket.
//! - **Atomic puts.** S3 makes an object visible only once its upload completes: a
//!   single `PUT` below [`MULTIPART_THRESHOLD`], and above it a multipart upload whose
//!   parts become one object only on `CompleteMultipartUpload`. Readers therefore see the
//!   old object or the whole new one. Large objects use multipart because one `PUT` is
//!   bound by the request timeout (pitfall B24); each part gets the full timeout. A
//!   failed multipart upload is aborted so its parts do not linger; a put whose future
//!   is dropped mid-upload cannot abort, so buckets should carry the usual
//!   "abort incomplete multipart uploads" lifecycle rule.
//! - **String-prefix listing.** The trait's `list(prefix)` matches keys by plain string
//!   prefix (`a/c` matches `a/cd/x`), whereas `object_store`'s `list` matches whole path
//!   segments, so listing goes through the paginated `ListObjectsV2` call with the raw
//!   prefix and follows continuation tokens until the listing is complete.
//! - **Errors.** A missing key is [`ObjectStoreError::NotFound`]; a key rejected locally
//!   is [`ObjectStoreError::InvalidKey`]; everything the server or the network did wrong
//!   (connection refused, timeout, 5xx after retries, refused credentials) is
//!   [`ObjectStoreError::Unavailable`] with the client's message. Requests are retried a
//!   bounded number of times within one request timeout, so an unreachable server turns
//!   into an error in bounded time instead of the client's default three minutes.
//! - **No I/O at construction.** [`S3ObjectStore::connect`] only validates the
//!   configuration and builds the HTTP client; the first request reaches the server.
//!
//! [`list`]: ObjectStore::list

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ::object_store::aws::{AmazonS3, AmazonS3Builder};
use ::object_store::list::{PaginatedListOptions, PaginatedListStore};
use ::object_store::path::Path;
use ::object_store::{ClientOptions, ObjectStoreExt as _, PutPayload, RetryConfig, WriteMultipart};
use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{ObjectStore, ObjectStoreError, ObjectStoreResult};

/// Objects at least this large are uploaded with a multipart upload rather than one
/// `PUT`, so that no single request has to carry more than one part within the timeout.
pub const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;

/// Size of each multipart part (S3 requires at least 5 MiB for all but the last part).
const PART_SIZE: usize = 8 * 1024 * 1024;

/// Parts of one multipart upload in flight at once: enough to overlap latency, few
/// enough not to hold many part buffers' worth of requests open.
const PART_CONCURRENCY: usize = 4;

/// Retries of one request on connection errors, timeouts and 5xx answers.
const MAX_RETRIES: usize = 3;

/// Settings of the S3 object store.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3ObjectStoreConfig {
    /// Endpoint URL of an S3-compatible server, e.g. `http://127.0.0.1:9000`; unset means
    /// AWS S3 itself, addressed from `region`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Region used to sign requests (and to find the AWS endpoint when `endpoint` is unset).
    pub region: String,
    /// Bucket holding the objects; it must already exist.
    pub bucket: String,
    /// Access key id. Unset (together with `secret_access_key`) means the standard
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` environment
    /// variables, or else the instance metadata credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// Secret access key paired with `access_key_id`. Never printed by `Debug`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
    /// Address buckets as `https://{bucket}.{endpoint}` instead of `{endpoint}/{bucket}`
    /// (path style). Aliyun OSS and Tencent COS need `true`; MinIO and moto use `false`.
    pub virtual_hosted_style: bool,
    /// Allow plain `http://` endpoints (local MinIO or moto); off so credentials never
    /// travel unencrypted by accident.
    pub allow_http: bool,
    /// Key prefix prepended to every object key (without leading or trailing `/`), so
    /// several deployments can share a bucket; unset stores keys at the bucket root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Timeout of one HTTP request, in milliseconds (each multipart part counts as one).
    pub request_timeout_ms: u64,
}

impl Default for S3ObjectStoreConfig {
    fn default() -> Self {
        S3ObjectStoreConfig {
            endpoint: None,
            region: "us-east-1".to_string(),
            bucket: "logpool".to_string(),
            access_key_id: None,
            secret_access_key: None,
            virtual_hosted_style: false,
            allow_http: false,
            prefix: None,
            request_timeout_ms: 30_000,
        }
    }
}

// Written by hand so the secret never reaches logs that print the configuration.
impl fmt::Debug for S3ObjectStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3ObjectStoreConfig")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("allow_http", &self.allow_http)
            .field("prefix", &self.prefix)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .finish()
    }
}

/// Objects in one S3 bucket, optionally under a key prefix.
#[derive(Clone)]
pub struct S3ObjectStore {
    store: Arc<AmazonS3>,
    bucket: String,
    /// Normalised prefix with a trailing `/`, or empty.
    prefix: String,
}

impl fmt::Debug for S3ObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3ObjectStore")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl S3ObjectStore {
    /// Builds the client. No request is sent: an unreachable server or a missing bucket
    /// shows up on the first operation.
    ///
    /// # Errors
    /// [`ObjectStoreError::InvalidKey`] when `prefix` is not a valid key, and
    /// [`ObjectStoreError::Unavailable`] when the client cannot be built from the
    /// settings (e.g. only one of the two credential fields). An `http://` endpoint
    /// without `allow_http` is refused by every request rather than here.
    pub fn connect(config: &S3ObjectStoreConfig) -> ObjectStoreResult<S3ObjectStore> {
        let prefix = match config.prefix.as_deref().map(|p| p.trim_matches('/')) {
            None | Some("") => String::new(),
            Some(p) => {
                check_key(p)?;
                format!("{p}/")
            }
        };
        let timeout = Duration::from_millis(config.request_timeout_ms.max(1));
        let options = ClientOptions::new()
            .with_allow_http(config.allow_http)
            .with_timeout(timeout)
            .with_connect_timeout(timeout.min(Duration::from_secs(5)));
        let retry = RetryConfig {
            max_retries: MAX_RETRIES,
            retry_timeout: timeout,
            ..RetryConfig::default()
        };
        let mut builder = AmazonS3Builder::new()
            .with_region(&config.region)
            .with_bucket_name(&config.bucket)
            .with_virtual_hosted_style_request(config.virtual_hosted_style)
            .with_allow_http(config.allow_http)
            .with_client_options(options)
            .with_retry(retry);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        match (&config.access_key_id, &config.secret_access_key) {
            (Some(id), Some(secret)) => {
                builder = builder
                    .with_access_key_id(id)
                    .with_secret_access_key(secret);
            }
            (None, None) => {
                // The usual AWS variables, read explicitly rather than through
                // `AmazonS3Builder::from_env`, which would also let `AWS_ENDPOINT` and
                // friends silently override the configured endpoint.
                if let (Ok(id), Ok(secret)) = (
                    std::env::var("AWS_ACCESS_KEY_ID"),
                    std::env::var("AWS_SECRET_ACCESS_KEY"),
                ) {
                    builder = builder
                        .with_access_key_id(id)
                        .with_secret_access_key(secret);
                    if let Ok(token) = std::env::var("AWS_SESSION_TOKEN") {
                        builder = builder.with_token(token);
                    }
                }
            }
            _ => {
                return Err(ObjectStoreError::Unavailable(
                    "access_key_id and secret_access_key must be set together".to_string(),
                ))
            }
        }
        let store = builder
            .build()
            .map_err(|e| ObjectStoreError::Unavailable(format!("S3 client settings: {e}")))?;
        Ok(S3ObjectStore {
            store: Arc::new(store),
            bucket: config.bucket.clone(),
            prefix,
        })
    }

    /// The on-the-wire path of a logical key.
    fn path_of(&self, key: &str) -> ObjectStoreResult<Path> {
        check_key(key)?;
        Path::parse(format!("{}{key}", self.prefix))
            .map_err(|_| ObjectStoreError::InvalidKey(key.to_string()))
    }

    /// Uploads in parts, aborting the upload when a part fails so no parts linger.
    async fn put_multipart_upload(&self, path: &Path, data: Bytes) -> ::object_store::Result<()> {
        let upload = self.store.put_multipart(path).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut rest = data;
        while !rest.is_empty() {
            // Bounds the parts in flight; a failed part surfaces here.
            if let Err(error) = writer.wait_for_capacity(PART_CONCURRENCY).await {
                // The abort's own failure is secondary to the part's error.
                let _ = writer.abort().await;
                return Err(error);
            }
            let chunk = rest.split_to(rest.len().min(PART_SIZE));
            writer.put(chunk);
        }
        // `finish` aborts the upload itself when a part fails.
        writer.finish().await?;
        Ok(())
    }
}

/// The local store's key rules, so both implementations accept the same keys.
fn check_key(key: &str) -> ObjectStoreResult<()> {
    let valid = !key.is_empty()
        && !key.starts_with('/')
        && !key.ends_with('/')
        && key
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
    if valid {
        Ok(())
    } else {
        Err(ObjectStoreError::InvalidKey(key.to_string()))
    }
}

/// Maps a client error on `key` to the role's error.
fn map_error(key: &str, error: ::object_store::Error) -> ObjectStoreError {
    match error {
        ::object_store::Error::NotFound { .. } => ObjectStoreError::NotFound(key.to_string()),
        ::object_store::Error::InvalidPath { .. } => ObjectStoreError::InvalidKey(key.to_string()),
        other => ObjectStoreError::Unavailable(other.to_string()),
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put(&self, key: &str, data: Bytes) -> ObjectStoreResult<()> {
        let path = self.path_of(key)?;
        let result = if data.len() >= MULTIPART_THRESHOLD {
            self.put_multipart_upload(&path, data).await
        } else {
            self.store
                .put(&path, PutPayload::from_bytes(data))
                .await
                .map(|_| ())
        };
        result.map_err(|e| map_error(key, e))
    }

    async fn get(&self, key: &str) -> ObjectStoreResult<Bytes> {
        let path = self.path_of(key)?;
        let result = self.store.get(&path).await.map_err(|e| map_error(key, e))?;
        result.bytes().await.map_err(|e| map_error(key, e))
    }

    async fn list(&self, prefix: &str) -> ObjectStoreResult<Vec<String>> {
        let raw_prefix = format!("{}{prefix}", self.prefix);
        let mut keys = Vec::new();
        let mut page_token = None;
        loop {
            let options = PaginatedListOptions {
                page_token,
                ..PaginatedListOptions::default()
            };
            let page = self
                .store
                .list_paginated(
                    (!raw_prefix.is_empty()).then_some(raw_prefix.as_str()),
                    options,
                )
                .await
                .map_err(|e| map_error(prefix, e))?;
            for object in page.result.objects {
                // The server filtered by prefix already; stripping can only fail for
                // a misbehaving server, whose stray keys are skipped.
                if let Some(key) = object.location.as_ref().strip_prefix(&self.prefix) {
                    if key.starts_with(prefix) {
                        keys.push(key.to_string());
                    }
                }
            }
            // The loop ends when the server reports no further page.
            match page.page_token {
                Some(token) => page_token = Some(token),
                None => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> ObjectStoreResult<()> {
        let path = self.path_of(key)?;
        match self.store.delete(&path).await {
            // S3 answers success for a missing key; some compatible servers answer 404.
            Ok(()) | Err(::object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(map_error(key, error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::object_store::conformance;

    /// Upper bound of one test, so a hung server fails the test instead of the run.
    const TEST_TIMEOUT: Duration = Duration::from_secs(120);

    /// The S3-compatible test server (`moto_server`, started by
    /// `scripts/test-engines.sh`), or `None` when the test is to be skipped.
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

    /// Creates a bucket with an unsigned `PUT /{bucket}` (moto accepts it; the
    /// `object_store` crate has no create-bucket call).
    async fn create_bucket(endpoint: &str, bucket: &str) {
        let authority = endpoint
            .strip_prefix("http://")
            .expect("test endpoint must be http://")
            .trim_end_matches('/');
        let mut stream = tokio::net::TcpStream::connect(authority)
            .await
            .unwrap_or_else(|e| panic!("connect to S3 test server {authority}: {e}"));
        let request = format!(
            "PUT /{bucket} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send create bucket");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .expect("read create bucket answer");
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "create bucket {bucket}: {response}"
        );
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

    /// A store on a fresh bucket of the test server; `None` when there is no server.
    async fn fresh_store(prefix: Option<&str>) -> Option<(S3ObjectStore, String)> {
        let endpoint = endpoint()?;
        let bucket = random_bucket();
        create_bucket(&endpoint, &bucket).await;
        let store = S3ObjectStore::connect(&config(&endpoint, &bucket, prefix)).expect("connect");
        Some((store, bucket))
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
            let Some((store, _)) = fresh_store(Some("big")).await else {
                return;
            };
            // Just above the threshold, with a short last part, and a pattern that
            // would reveal reordered or duplicated parts.
            let size = MULTIPART_THRESHOLD + PART_SIZE / 2 + 12_345;
            let data: Bytes = (0..size)
                .map(|i| (i % 251) as u8 ^ (i / PART_SIZE) as u8)
                .collect::<Vec<u8>>()
                .into();
            store
                .put("archive/big.bin", data.clone())
                .await
                .expect("put");
            let back = store.get("archive/big.bin").await.expect("get");
            assert_eq!(back.len(), data.len());
            assert!(back == data, "multipart object differs from what was put");
            // Overwriting with a small object replaces the whole large one.
            store
                .put("archive/big.bin", Bytes::from_static(b"small"))
                .await
                .expect("overwrite");
            assert_eq!(
                store.get("archive/big.bin").await.expect("get"),
                "small".as_bytes()
            );
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
            futures::future::try_join_all(
                keys.iter().map(|k| store.put(k, Bytes::from_static(b"."))),
            )
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

    #[test]
    fn test_s3_config_defaults_parse_and_redaction() {
        let parsed: S3ObjectStoreConfig = toml::from_str(
            r#"
            endpoint = "http://127.0.0.1:9000"
            access_key_id = "AKIA"
            secret_access_key = "very-secret"
            allow_http = true
            "#,
        )
        .expect("parse");
        assert_eq!(parsed.region, "us-east-1");
        assert_eq!(parsed.bucket, "logpool");
        assert!(!parsed.virtual_hosted_style);
        assert_eq!(parsed.request_timeout_ms, 30_000);
        let debug = format!("{parsed:?}");
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
        let text = toml::to_string(&S3ObjectStoreConfig::default()).expect("serialize");
        assert_eq!(
            toml::from_str::<S3ObjectStoreConfig>(&text).expect("reparse"),
            S3ObjectStoreConfig::default()
        );
        let unknown =
            toml::from_str::<S3ObjectStoreConfig>("path_style = true").expect_err("unknown key");
        assert!(unknown.to_string().contains("path_style"), "{unknown}");
    }

    #[tokio::test]
    async fn test_s3_plain_http_endpoint_needs_allow_http() {
        tokio::time::timeout(TEST_TIMEOUT, async {
            // The client refuses before connecting, so no server is needed.
            let endpoint = format!("http://127.0.0.1:{}", unused_port());
            let mut config = config(&endpoint, "any-bucket", None);
            config.allow_http = false;
            let store = S3ObjectStore::connect(&config).expect("connect");
            let error = store.get("k").await.expect_err("http refused");
            assert!(
                matches!(error, ObjectStoreError::Unavailable(_)),
                "{error:?}"
            );
        })
        .await
        .expect("test timed out");
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
}
