//! Settings of the S3 object store (`[object_store]` with `type = "s3"`) and their
//! checks, run when the configuration is loaded so a bad value stops the start with a
//! message naming the field instead of failing the first upload.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Smallest multipart part S3 accepts (every part but the last).
pub const MIN_PART_SIZE_BYTES: u64 = 5 * 1024 * 1024;

/// Largest single `PUT` and largest multipart part S3 accepts.
pub const MAX_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// Default of `multipart_threshold_bytes`.
pub const DEFAULT_MULTIPART_THRESHOLD_BYTES: u64 = 16 * 1024 * 1024;

/// Default of `multipart_part_size_bytes`.
pub const DEFAULT_MULTIPART_PART_SIZE_BYTES: u64 = 8 * 1024 * 1024;

/// Server-side encryption asked of S3 for every object written; the names are the
/// values of S3's `x-amz-server-side-encryption` header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ServerSideEncryption {
    /// No header: the bucket's default encryption applies.
    #[default]
    None,
    /// `AES256`: keys managed by S3 (SSE-S3).
    Aes256,
    /// `aws:kms`: keys in AWS KMS (SSE-KMS), `sse_kms_key_id` or the account's
    /// default `aws/s3` key.
    AwsKms,
}

impl ServerSideEncryption {
    const NAMES: [(&'static str, ServerSideEncryption); 3] = [
        ("none", ServerSideEncryption::None),
        ("AES256", ServerSideEncryption::Aes256),
        ("aws:kms", ServerSideEncryption::AwsKms),
    ];

    /// The configuration (and header) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerSideEncryption::None => "none",
            ServerSideEncryption::Aes256 => "AES256",
            ServerSideEncryption::AwsKms => "aws:kms",
        }
    }
}

impl TryFrom<String> for ServerSideEncryption {
    type Error = String;

    // A hand-written conversion so the error names the field; serde's own "unknown
    // variant" message loses it inside the internally tagged `[object_store]` table.
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ServerSideEncryption::NAMES
            .iter()
            .find(|(name, _)| *name == value)
            .map(|&(_, mode)| mode)
            .ok_or_else(|| {
                format!(
                    "`object_store.server_side_encryption` must be \"none\", \"AES256\" or \
                     \"aws:kms\", got {value:?}"
                )
            })
    }
}

impl From<ServerSideEncryption> for String {
    fn from(mode: ServerSideEncryption) -> String {
        mode.as_str().to_string()
    }
}

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
    /// Access key id. Unset (together with `secret_access_key`) means the standard AWS
    /// credential chain: the `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
    /// `AWS_SESSION_TOKEN` environment variables, the shared profile files
    /// (`AWS_PROFILE`), web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` with `AWS_ROLE_ARN`,
    /// as Kubernetes service accounts provide), container credentials, then the
    /// instance metadata service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// Secret access key paired with `access_key_id`. Never printed by `Debug`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
    /// Address buckets as `https://{bucket}.{endpoint}` instead of `{endpoint}/{bucket}`
    /// (path style). AWS, Aliyun OSS and Tencent COS want `true`; MinIO and moto use
    /// `false`.
    pub virtual_hosted_style: bool,
    /// Allow a plain `http://` endpoint (local MinIO or moto); off so credentials never
    /// travel unencrypted by accident.
    pub allow_http: bool,
    /// Key prefix prepended to every object key (without leading or trailing `/`), so
    /// several deployments can share a bucket; unset stores keys at the bucket root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Timeout of one HTTP request attempt, in milliseconds (each multipart part counts
    /// as one). Retries of one call end within twice this.
    pub request_timeout_ms: u64,
    /// Objects of at least this many bytes are uploaded in parts (multipart upload), so
    /// no single request carries more than one part within the timeout.
    pub multipart_threshold_bytes: u64,
    /// Size of each multipart part but the last (at least 5 MiB, S3's minimum).
    pub multipart_part_size_bytes: u64,
    /// Server-side encryption of every object written: `"none"` (the bucket's default),
    /// `"AES256"` (SSE-S3) or `"aws:kms"` (SSE-KMS).
    pub server_side_encryption: ServerSideEncryption,
    /// KMS key (id, ARN or alias) for `server_side_encryption = "aws:kms"`; unset means
    /// the account's `aws/s3` key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sse_kms_key_id: Option<String>,
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
            multipart_threshold_bytes: DEFAULT_MULTIPART_THRESHOLD_BYTES,
            multipart_part_size_bytes: DEFAULT_MULTIPART_PART_SIZE_BYTES,
            server_side_encryption: ServerSideEncryption::None,
            sse_kms_key_id: None,
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
            .field("multipart_threshold_bytes", &self.multipart_threshold_bytes)
            .field("multipart_part_size_bytes", &self.multipart_part_size_bytes)
            .field("server_side_encryption", &self.server_side_encryption)
            .field("sse_kms_key_id", &self.sse_kms_key_id)
            .finish()
    }
}

/// A setting of the S3 object store that cannot work; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`object_store.{field}` (LOGPOOL_OBJECT_STORE__{env}) {problem}", env = field.to_uppercase())]
pub struct S3ConfigError {
    /// The field, as spelled in `[object_store]`.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl S3ConfigError {
    fn new(field: &'static str, problem: impl Into<String>) -> S3ConfigError {
        S3ConfigError {
            field,
            problem: problem.into(),
        }
    }
}

impl S3ObjectStoreConfig {
    /// Checks every setting without any network access.
    ///
    /// # Errors
    /// The first setting that cannot work, named in the error.
    pub fn validate(&self) -> Result<(), S3ConfigError> {
        if let Some(endpoint) = &self.endpoint {
            if endpoint.starts_with("http://") {
                if !self.allow_http {
                    return Err(S3ConfigError::new(
                        "endpoint",
                        format!(
                            "is plain http ({endpoint}): use https, or set \
                             `object_store.allow_http = true` for a local test store"
                        ),
                    ));
                }
            } else if !endpoint.starts_with("https://") {
                return Err(S3ConfigError::new(
                    "endpoint",
                    format!("must be an http:// or https:// URL, got {endpoint:?}"),
                ));
            }
        }
        if self.region.is_empty() {
            return Err(S3ConfigError::new("region", "must not be empty"));
        }
        if self.bucket.is_empty() {
            return Err(S3ConfigError::new("bucket", "must not be empty"));
        }
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            let (set, unset) = if self.access_key_id.is_some() {
                ("access_key_id", "secret_access_key")
            } else {
                ("secret_access_key", "access_key_id")
            };
            return Err(S3ConfigError::new(
                unset,
                format!(
                    "must be set together with `object_store.{set}` (leave both unset for \
                     the standard AWS credential chain)"
                ),
            ));
        }
        if self.request_timeout_ms == 0 {
            return Err(S3ConfigError::new("request_timeout_ms", "must be positive"));
        }
        if !(MIN_PART_SIZE_BYTES..=MAX_PUT_BYTES).contains(&self.multipart_part_size_bytes) {
            return Err(S3ConfigError::new(
                "multipart_part_size_bytes",
                format!(
                    "must be between {MIN_PART_SIZE_BYTES} (5 MiB, S3's smallest part) and \
                     {MAX_PUT_BYTES} (5 GiB), got {}",
                    self.multipart_part_size_bytes
                ),
            ));
        }
        if !(1..=MAX_PUT_BYTES).contains(&self.multipart_threshold_bytes) {
            return Err(S3ConfigError::new(
                "multipart_threshold_bytes",
                format!(
                    "must be between 1 and {MAX_PUT_BYTES} (5 GiB, S3's largest single \
                     upload), got {}",
                    self.multipart_threshold_bytes
                ),
            ));
        }
        if self.sse_kms_key_id.is_some()
            && self.server_side_encryption != ServerSideEncryption::AwsKms
        {
            return Err(S3ConfigError::new(
                "sse_kms_key_id",
                format!(
                    "needs `object_store.server_side_encryption = \"aws:kms\"`, got {:?}",
                    self.server_side_encryption.as_str()
                ),
            ));
        }
        if self.sse_kms_key_id.as_deref() == Some("") {
            return Err(S3ConfigError::new(
                "sse_kms_key_id",
                "must not be empty (leave it unset for the account's aws/s3 key)",
            ));
        }
        Ok(())
    }
}
