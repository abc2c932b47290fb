//! Builds the `aws-sdk-s3` client from the settings: endpoint and addressing, bounded
//! timeouts and retries, and the credentials (static from the configuration, or the
//! standard AWS chain resolved on first use so construction does no I/O).

use std::time::Duration;

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_credential_types::provider::{future, ProvideCredentials};
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    SharedCredentialsProvider,
};
use tokio::sync::OnceCell;

use super::settings::S3ObjectStoreConfig;

/// Retries of one call on connection errors, timeouts, throttling and 5xx answers.
const MAX_RETRIES: u32 = 3;

/// The longest a connection attempt may take, however long the request timeout is.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// First and longest pause between two attempts (jittered exponential backoff).
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The S3 client for `config`, which must have passed [`S3ObjectStoreConfig::validate`].
pub(super) fn build(config: &S3ObjectStoreConfig) -> aws_sdk_s3::Client {
    let attempt_timeout = Duration::from_millis(config.request_timeout_ms.max(1));
    // Bounded so an outage turns into an error in bounded time: each attempt has the
    // request timeout, and all attempts of one call together at most twice that.
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(attempt_timeout.min(MAX_CONNECT_TIMEOUT))
        .operation_attempt_timeout(attempt_timeout)
        .operation_timeout(attempt_timeout * 2)
        .build();
    let retries = RetryConfig::standard()
        .with_max_attempts(MAX_RETRIES + 1)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF);
    let credentials = match (&config.access_key_id, &config.secret_access_key) {
        (Some(id), Some(secret)) => SharedCredentialsProvider::new(Credentials::new(
            id,
            secret,
            None,
            None,
            "logpool-config",
        )),
        _ => SharedCredentialsProvider::new(StandardChainOnFirstUse {
            region: Region::new(config.region.clone()),
            chain: OnceCell::new(),
        }),
    };
    let mut builder = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .force_path_style(!config.virtual_hosted_style)
        .credentials_provider(credentials)
        .timeout_config(timeouts)
        .retry_config(retries)
        // Checksums only where S3 requires them: the default (streamed `aws-chunked`
        // bodies with trailing checksums) is refused by many S3-compatible stores.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    // Set explicitly, never from `AWS_ENDPOINT_URL`, so the environment cannot silently
    // point the store elsewhere than the configuration says.
    if let Some(endpoint) = &config.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// The standard AWS credential chain (environment, profile files, web identity,
/// container credentials, instance metadata), built on the first request: building it
/// is asynchronous, and the store is constructed synchronously without I/O. The SDK
/// caches the credentials it yields and refreshes them before they expire.
#[derive(Debug)]
struct StandardChainOnFirstUse {
    region: Region,
    chain: OnceCell<DefaultCredentialsChain>,
}

impl ProvideCredentials for StandardChainOnFirstUse {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let chain = self
                .chain
                .get_or_init(|| {
                    DefaultCredentialsChain::builder()
                        .region(self.region.clone())
                        .build()
                })
                .await;
            chain.provide_credentials().await
        })
    }
}
