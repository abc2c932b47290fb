//! Typed HTTP client for logpool, used by the CLI, the benchmarks and the tests.
//!
//! Answers are the types of [`logpool_wire`] (re-exported as [`wire`]), the same
//! the server writes. Errors carry the server's error object decoded, so callers can
//! act on its `code`, and [`ClientError::is_retryable`] tells which answers are
//! worth retrying (429, 503, a 409 with `Retry-After`, and transport failures).
//!
//! Every PutDatas carries an `Idempotency-Key`: retry a failed put with the same key
//! ([`LogpoolClient::put_raw_with_key`], [`new_request_key`]) and the server stores
//! its records once, whatever part of the first attempt was stored.

pub mod access;
pub mod archive;
pub mod manage;
pub mod pull;

use std::time::Duration;

pub use logpool_wire as wire;
use logpool_wire::control::{CreateProject, Pool, Project};
use logpool_wire::ingest::PutAnswer;
use logpool_wire::search::{HistogramAnswer, HistogramParams, SearchAnswer, SearchParams};
use logpool_wire::{ErrorBody, ErrorCode, ErrorObject};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Serialize;
use serde_json::Value;

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a non-2xx status.
    #[error("HTTP {status}: {body}")]
    Http {
        /// The status.
        status: u16,
        /// The error object of the body, when the body is the API's error envelope
        /// (a proxy in between may answer otherwise).
        error: Option<Box<ErrorObject>>,
        /// The body as text.
        body: String,
        /// `Retry-After` in seconds, if sent.
        retry_after_secs: Option<u64>,
    },
    /// The request did not get an answer.
    #[error("transport error: {0}")]
    Transport(#[from] reqwest::Error),
    /// The answer was not the expected JSON.
    #[error("unexpected answer: {0}")]
    Decode(String),
}

impl ClientError {
    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            // A 409 with `Retry-After`: another attempt of the same keyed request is
            // still in progress.
            ClientError::Http {
                status,
                retry_after_secs,
                ..
            } => *status == 429 || *status == 503 || (*status == 409 && retry_after_secs.is_some()),
            ClientError::Transport(_) => true,
            ClientError::Decode(_) => false,
        }
    }

    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's error object, if it sent one.
    pub fn error(&self) -> Option<&ErrorObject> {
        match self {
            ClientError::Http { error, .. } => error.as_deref(),
            _ => None,
        }
    }

    /// The server's error code, if it sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        self.error().map(|error| error.code)
    }
}

/// Result alias.
pub type ClientResult<T> = Result<T, ClientError>;

/// A new random request key for `Idempotency-Key` (128 random bits, hex).
pub fn new_request_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// How a body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Not compressed.
    Identity,
    /// gzip.
    Gzip,
}

fn http_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .connect_timeout(Duration::from_secs(5))
}

/// A logpool HTTP client.
#[derive(Debug, Clone)]
pub struct LogpoolClient {
    base_url: String,
    http: reqwest::Client,
    /// Sent as `Authorization: Bearer <key>` (marked sensitive, so never logged).
    api_key: Option<String>,
}

impl LogpoolClient {
    /// Creates a client for `base_url` (e.g. `http://127.0.0.1:8080`).
    ///
    /// # Errors
    /// Fails when the HTTP client cannot be built.
    pub fn new(base_url: &str) -> ClientResult<LogpoolClient> {
        let http = http_builder().build()?;
        Ok(LogpoolClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            http,
            api_key: None,
        })
    }

    /// Creates a client for an `https://` server whose certificate is issued by one
    /// of the PEM certificates in `ca_pem`; only those are trusted (as with
    /// `curl --cacert`).
    ///
    /// # Errors
    /// Fails when `ca_pem` holds no usable certificate.
    pub fn with_ca_pem(base_url: &str, ca_pem: &[u8]) -> ClientResult<LogpoolClient> {
        let roots = reqwest::Certificate::from_pem_bundle(ca_pem)?;
        if roots.is_empty() {
            return Err(ClientError::Decode(
                "the CA file holds no PEM certificate".to_string(),
            ));
        }
        let http = http_builder().tls_certs_only(roots).build()?;
        Ok(LogpoolClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            http,
            api_key: None,
        })
    }

    /// Returns the base URL this client talks to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The same client, sending `key` with every request.
    pub fn with_api_key(mut self, key: impl Into<String>) -> LogpoolClient {
        self.api_key = Some(key.into());
        self
    }

    /// The API key this client sends, if any.
    pub fn api_key(&self) -> Option<&str> {
        self.api_key.as_deref()
    }

    /// A request to `url` carrying the API key.
    pub fn request(&self, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.api_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Decodes a 2xx answer as `T` (an empty body as JSON `null`), and any other
    /// status as [`ClientError::Http`].
    async fn answer<T: DeserializeOwned>(response: reqwest::Response) -> ClientResult<T> {
        let status = response.status();
        let retry_after_secs = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = response.text().await?;
        if !status.is_success() {
            let error = serde_json::from_str::<ErrorBody>(&body)
                .ok()
                .map(|envelope| Box::new(envelope.error));
            return Err(ClientError::Http {
                status: status.as_u16(),
                error,
                body,
                retry_after_secs,
            });
        }
        let text = if body.is_empty() { "null" } else { &body };
        serde_json::from_str(text).map_err(|e| ClientError::Decode(format!("{e}: {body}")))
    }

    /// Creates a project.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn create_project(&self, name: &str) -> ClientResult<Project> {
        let body = CreateProject {
            name: name.to_string(),
            description: String::new(),
        };
        let response = self
            .request(reqwest::Method::POST, self.url("/v1/projects"))
            .json(&body)
            .send()
            .await?;
        Self::answer(response).await
    }

    /// Creates a pool with the given body: a [`wire::control::CreatePool`], or any
    /// JSON (`{"name": ..., "shards": ...}`).
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn create_pool(&self, project: &str, body: &impl Serialize) -> ClientResult<Pool> {
        let response = self
            .request(
                reqwest::Method::POST,
                self.url(&format!("/v1/projects/{project}/pools")),
            )
            .json(body)
            .send()
            .await?;
        Self::answer(response).await
    }

    /// Deletes a pool.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn delete_pool(&self, project: &str, pool: &str) -> ClientResult<()> {
        let response = self
            .request(
                reqwest::Method::DELETE,
                self.url(&format!("/v1/projects/{project}/pools/{pool}")),
            )
            .send()
            .await?;
        Self::answer::<IgnoredAny>(response).await.map(drop)
    }

    /// Sends a raw PutDatas body under a new request key.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn put_raw(
        &self,
        project: &str,
        pool: &str,
        content_type: &str,
        encoding: Encoding,
        body: Vec<u8>,
        hash_key: Option<&str>,
    ) -> ClientResult<PutAnswer> {
        let key = new_request_key();
        self.put_raw_with_key(project, pool, content_type, encoding, body, hash_key, &key)
            .await
    }

    /// Sends a raw PutDatas body with `Idempotency-Key: request_key`. Sending the
    /// same body with the same key again (a retry) stores nothing twice.
    ///
    /// # Errors
    /// Any non-2xx answer.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_raw_with_key(
        &self,
        project: &str,
        pool: &str,
        content_type: &str,
        encoding: Encoding,
        body: Vec<u8>,
        hash_key: Option<&str>,
        request_key: &str,
    ) -> ClientResult<PutAnswer> {
        self.send_put(
            project,
            pool,
            content_type,
            encoding,
            body,
            hash_key,
            Some(request_key),
        )
        .await
    }

    /// Sends a raw PutDatas body without an `Idempotency-Key`, so a retry may store
    /// its records twice. Only for measuring what the key costs
    /// (`logpool bench --without-idempotency-key`); use [`LogpoolClient::put_raw`].
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn put_raw_without_key(
        &self,
        project: &str,
        pool: &str,
        content_type: &str,
        encoding: Encoding,
        body: Vec<u8>,
    ) -> ClientResult<PutAnswer> {
        self.send_put(project, pool, content_type, encoding, body, None, None)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_put(
        &self,
        project: &str,
        pool: &str,
        content_type: &str,
        encoding: Encoding,
        body: Vec<u8>,
        hash_key: Option<&str>,
        request_key: Option<&str>,
    ) -> ClientResult<PutAnswer> {
        let mut request = self
            .request(
                reqwest::Method::POST,
                self.url(&format!("/v1/projects/{project}/pools/{pool}/logs")),
            )
            .header(reqwest::header::CONTENT_TYPE, content_type);
        if let Some(request_key) = request_key {
            request = request.header("Idempotency-Key", request_key);
        }
        if let Some(key) = hash_key {
            request = request.query(&[("hash_key", key)]);
        }
        let body = match encoding {
            Encoding::Identity => body,
            Encoding::Gzip => {
                use std::io::Write;
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                encoder
                    .write_all(&body)
                    .map_err(|e| ClientError::Decode(e.to_string()))?;
                request = request.header(reqwest::header::CONTENT_ENCODING, "gzip");
                encoder
                    .finish()
                    .map_err(|e| ClientError::Decode(e.to_string()))?
            }
        };
        Self::answer(request.body(body).send().await?).await
    }

    /// Sends records as a JSON PutDatas body `{"logs": records}`.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn put_records(
        &self,
        project: &str,
        pool: &str,
        records: &[Value],
    ) -> ClientResult<PutAnswer> {
        /// The PutDatas body (`wire::ingest::PutBody`) of records already in JSON.
        #[derive(Serialize)]
        struct Logs<'a> {
            logs: &'a [Value],
        }
        let body = serde_json::to_vec(&Logs { logs: records })
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        self.put_raw(
            project,
            pool,
            "application/json",
            Encoding::Identity,
            body,
            None,
        )
        .await
    }

    /// Searches a pool (one page, newest first).
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn search(
        &self,
        project: &str,
        pool: &str,
        params: &SearchParams,
    ) -> ClientResult<SearchAnswer> {
        let response = self
            .request(
                reqwest::Method::POST,
                self.url(&format!("/v1/projects/{project}/pools/{pool}/search")),
            )
            .json(params)
            .send()
            .await?;
        Self::answer(response).await
    }

    /// Counts records per time bucket.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn histogram(
        &self,
        project: &str,
        pool: &str,
        params: &HistogramParams,
    ) -> ClientResult<HistogramAnswer> {
        let response = self
            .request(
                reqwest::Method::POST,
                self.url(&format!("/v1/projects/{project}/pools/{pool}/histogram")),
            )
            .json(params)
            .send()
            .await?;
        Self::answer(response).await
    }

    /// Returns the total number of records matching `query` (all time).
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn count(&self, project: &str, pool: &str, query: &str) -> ClientResult<u64> {
        let params = SearchParams {
            query: Some(query.to_string()),
            limit: Some(1),
            ..SearchParams::default()
        };
        Ok(self.search(project, pool, &params).await?.total)
    }

    /// POSTs any JSON body to any path and returns the JSON answer (for requests
    /// the typed calls cannot express, such as deliberately wrong ones).
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn post(&self, path: &str, body: &impl Serialize) -> ClientResult<Value> {
        Self::answer(
            self.request(reqwest::Method::POST, self.url(path))
                .json(body)
                .send()
                .await?,
        )
        .await
    }

    /// GETs any path and returns the JSON answer.
    ///
    /// # Errors
    /// Any non-2xx answer.
    pub async fn get(&self, path: &str) -> ClientResult<Value> {
        self.get_as(path).await
    }

    /// Sends `body` as JSON with `method` to `path` and decodes the answer as `T`.
    async fn send_as<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &impl Serialize,
    ) -> ClientResult<T> {
        Self::answer(
            self.request(method, self.url(path))
                .json(body)
                .send()
                .await?,
        )
        .await
    }

    /// GETs any path and decodes the answer as `T` (a wire type).
    ///
    /// # Errors
    /// Any non-2xx answer, or one that is not a `T`.
    pub async fn get_as<T: DeserializeOwned>(&self, path: &str) -> ClientResult<T> {
        Self::answer(
            self.request(reqwest::Method::GET, self.url(path))
                .send()
                .await?,
        )
        .await
    }
}
