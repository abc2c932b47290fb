//! Object store on the S3 protocol (distributed mode), built on `aws-sdk-s3`. It speaks
//! to AWS S3 and to S3-compatible servers (MinIO, Ceph, Aliyun OSS, Tencent COS, moto)
//! through a configurable endpoint, with path-style or virtual-hosted addressing.
//!
//! Design and guarantees:
//! - **Keys.** Logical keys follow the same rules as the local store (`/`-separated,
//!   relative, no empty, `.` or `..` segment, no trailing `/`) and are checked before any
//!   request, so a key that is valid here is valid on both implementations. An optional
//!   configured `prefix` is prepended on the wire and stripped again by [`list`], which
//!   lets several deployments share one bucket.
//! - **Atomic puts.** S3 makes an object visible only once its upload completes: a
//!   single `PutObject` below `multipart_threshold_bytes`, and above it a multipart
//!   upload whose parts become one object only on `CompleteMultipartUpload`. Readers
//!   therefore see the old object or the whole new one. Large objects use multipart
//!   because one `PUT` is bound by the request timeout; each part gets the full
//!   timeout. A failed multipart upload is aborted so its parts do not linger (see
//!   [`multipart`]).
//! - **String-prefix listing.** The trait's `list(prefix)` matches keys by plain string
//!   prefix (`a/c` matches `a/cd/x`), which is exactly `ListObjectsV2`'s `prefix`; the
//!   listing follows continuation tokens until it is complete.
//! - **Encryption.** `server_side_encryption` (and `sse_kms_key_id`) is sent with every
//!   `PutObject` and `CreateMultipartUpload`.
//! - **Errors.** A missing key is [`ObjectStoreError::NotFound`]; a key rejected locally
//!   is [`ObjectStoreError::InvalidKey`]; everything the server or the network did wrong
//!   (connection refused, timeout, 5xx after retries, refused credentials) is
//!   [`ObjectStoreError::Unavailable`] with the client's message. Calls are retried a
//!   bounded number of times within twice the request timeout (see [`client`]), so an
//!   unreachable server turns into an error in bounded time.
//! - **No I/O at construction.** [`S3ObjectStore::connect`] only validates the
//!   configuration and builds the client; the first request reaches the server (and,
//!   without static keys, resolves the standard AWS credential chain).
//!
//! [`list`]: ObjectStore::list

mod client;
mod multipart;
mod settings;
#[cfg(test)]
mod tests;

use std::fmt;

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

pub use settings::{
    S3ConfigError, S3ObjectStoreConfig, ServerSideEncryption, DEFAULT_MULTIPART_PART_SIZE_BYTES,
    DEFAULT_MULTIPART_THRESHOLD_BYTES, MIN_PART_SIZE_BYTES,
};

use super::{ObjectStore, ObjectStoreError, ObjectStoreResult};

/// The encryption headers sent with every object written.
#[derive(Debug, Clone, Default)]
struct Encryption {
    mode: Option<aws_sdk_s3::types::ServerSideEncryption>,
    kms_key_id: Option<String>,
}

impl Encryption {
    fn from_config(config: &S3ObjectStoreConfig) -> Encryption {
        use aws_sdk_s3::types::ServerSideEncryption as Header;
        let mode = match config.server_side_encryption {
            ServerSideEncryption::None => None,
            ServerSideEncryption::Aes256 => Some(Header::Aes256),
            ServerSideEncryption::AwsKms => Some(Header::AwsKms),
        };
        Encryption {
            mode,
            kms_key_id: config.sse_kms_key_id.clone(),
        }
    }
}

/// Objects in one S3 bucket, optionally under a key prefix.
#[derive(Clone)]
pub struct S3ObjectStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// Normalised prefix with a trailing `/`, or empty.
    prefix: String,
    /// Objects of at least this many bytes go up in parts.
    multipart_threshold: usize,
    /// Size of each part but the last.
    part_size: usize,
    encryption: Encryption,
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
    /// [`ObjectStoreError::Unavailable`] naming the field when another setting cannot
    /// work (see [`S3ObjectStoreConfig::validate`]).
    pub fn connect(config: &S3ObjectStoreConfig) -> ObjectStoreResult<S3ObjectStore> {
        let prefix = match config.prefix.as_deref().map(|p| p.trim_matches('/')) {
            None | Some("") => String::new(),
            Some(p) => {
                check_key(p)?;
                format!("{p}/")
            }
        };
        config
            .validate()
            .map_err(|e| ObjectStoreError::Unavailable(format!("S3 settings: {e}")))?;
        Ok(S3ObjectStore {
            client: client::build(config),
            bucket: config.bucket.clone(),
            prefix,
            multipart_threshold: usize::try_from(config.multipart_threshold_bytes)
                .unwrap_or(usize::MAX),
            part_size: usize::try_from(config.multipart_part_size_bytes).unwrap_or(usize::MAX),
            encryption: Encryption::from_config(config),
        })
    }

    /// The on-the-wire key of a logical key.
    fn wire_key(&self, key: &str) -> ObjectStoreResult<String> {
        check_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    /// One `PutObject` for an object below the multipart threshold.
    async fn put_single(&self, wire_key: &str, data: Bytes) -> ObjectStoreResult<()> {
        let length = i64::try_from(data.len()).unwrap_or(i64::MAX);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(wire_key)
            .content_length(length)
            .body(ByteStream::from(data))
            .set_server_side_encryption(self.encryption.mode.clone())
            .set_ssekms_key_id(self.encryption.kms_key_id.clone())
            .send()
            .await
            .map_err(|e| unavailable("put", wire_key, e))?;
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

/// Whether the server answered 404 (a missing key, on S3 and compatible servers).
fn is_not_found<E>(error: &SdkError<E, HttpResponse>) -> bool {
    error
        .raw_response()
        .is_some_and(|response| response.status().as_u16() == 404)
}

/// A failed call as the role's error, with the client's whole error chain.
fn unavailable<E, R>(operation: &str, wire_key: &str, error: SdkError<E, R>) -> ObjectStoreError
where
    E: std::error::Error + 'static,
    R: fmt::Debug,
{
    ObjectStoreError::Unavailable(format!(
        "S3 {operation} `{wire_key}`: {}",
        DisplayErrorContext(&error)
    ))
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put(&self, key: &str, data: Bytes) -> ObjectStoreResult<()> {
        let wire_key = self.wire_key(key)?;
        if data.len() >= self.multipart_threshold && !data.is_empty() {
            self.put_multipart(&wire_key, data).await
        } else {
            self.put_single(&wire_key, data).await
        }
    }

    async fn get(&self, key: &str) -> ObjectStoreResult<Bytes> {
        let wire_key = self.wire_key(key)?;
        let object = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&wire_key)
            .send()
            .await
        {
            Ok(object) => object,
            Err(error)
                if is_not_found(&error)
                    || error.as_service_error().is_some_and(|e| e.is_no_such_key()) =>
            {
                return Err(ObjectStoreError::NotFound(key.to_string()))
            }
            Err(error) => return Err(unavailable("get", &wire_key, error)),
        };
        // A stalled body is cut by the client's stalled-stream protection.
        let body = object.body.collect().await.map_err(|e| {
            ObjectStoreError::Unavailable(format!(
                "S3 get `{wire_key}`: reading the body: {}",
                DisplayErrorContext(&e)
            ))
        })?;
        Ok(body.into_bytes())
    }

    async fn list(&self, prefix: &str) -> ObjectStoreResult<Vec<String>> {
        let raw_prefix = format!("{}{prefix}", self.prefix);
        let mut keys = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .set_prefix((!raw_prefix.is_empty()).then(|| raw_prefix.clone()))
                .set_continuation_token(continuation.take())
                .send()
                .await
                .map_err(|e| unavailable("list", &raw_prefix, e))?;
            for object in page.contents() {
                // The server filtered by prefix already; stripping can only fail for a
                // misbehaving server, whose stray keys are skipped.
                if let Some(key) = object
                    .key()
                    .and_then(|wire| wire.strip_prefix(&self.prefix))
                {
                    if key.starts_with(prefix) {
                        keys.push(key.to_string());
                    }
                }
            }
            // The loop ends when the server reports no further page.
            match page.next_continuation_token() {
                Some(token) if page.is_truncated() == Some(true) => {
                    continuation = Some(token.to_string());
                }
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> ObjectStoreResult<()> {
        let wire_key = self.wire_key(key)?;
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&wire_key)
            .send()
            .await
        {
            // S3 answers success for a missing key; some compatible servers answer 404.
            Ok(_) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            Err(error) => Err(unavailable("delete", &wire_key, error)),
        }
    }
}
