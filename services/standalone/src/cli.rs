//! Client subcommands of the `logpool` binary: `put` and `search`.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use logpool_client::wire::search::SearchParams;
use logpool_client::wire::TimeParam;
use logpool_client::{new_request_key, ClientError, Encoding, LogpoolClient};
use serde_json::{json, Value};

/// Options of `logpool put`.
#[derive(Debug, Clone)]
pub struct PutOptions {
    /// Server URL.
    pub url: String,
    /// Project.
    pub project: String,
    /// Pool.
    pub pool: String,
    /// File to read; stdin when missing.
    pub file: Option<PathBuf>,
    /// Records per request.
    pub batch_records: usize,
    /// Bytes per request (before compression).
    pub batch_bytes: usize,
    /// Attempts per request on 429/503/transport errors.
    pub max_attempts: u32,
    /// Hide the progress bar.
    pub quiet: bool,
    /// PEM file of the CA that issued an `https://` server's certificate.
    pub ca_cert: Option<PathBuf>,
    /// API key sent as `Authorization: Bearer`.
    pub api_key: Option<String>,
    /// After the last batch, wait up to this long until every record sent is
    /// searchable (`--wait`); `None` returns once the records are durable.
    pub wait: Option<Duration>,
}

/// Sends a file line by line: a line that is a JSON object is sent as the record,
/// any other line as `{"message": line}`. Returns the number of records accepted.
/// With [`PutOptions::wait`], returns only once they are all searchable.
///
/// # Errors
/// Fails on unreadable input, a rejected request (4xx), when retries run out, or
/// when the records are not searchable within the wait.
pub async fn put(options: &PutOptions) -> anyhow::Result<u64> {
    let client = client(
        &options.url,
        options.ca_cert.as_deref(),
        options.api_key.as_deref(),
    )?;
    let (reader, total_bytes): (Box<dyn Read + Send>, Option<u64>) = match &options.file {
        Some(path) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("failed to open {}", path.display()))?;
            let size = file.metadata().map(|m| m.len()).ok();
            (Box::new(file), size)
        }
        None => (Box::new(std::io::stdin()), None),
    };
    let progress = match (total_bytes, options.quiet) {
        (_, true) => ProgressBar::hidden(),
        (Some(size), false) => {
            let bar = ProgressBar::new(size);
            bar.set_style(
                ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        }
        (None, false) => ProgressBar::new_spinner(),
    };
    let mut accepted = 0u64;
    let mut write_tokens = Vec::new();
    let mut batch = Vec::with_capacity(options.batch_bytes.min(16 * 1024 * 1024));
    let mut batch_records = 0usize;
    for (index, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.with_context(|| format!("failed to read line {}", index + 1))?;
        progress.inc(line.len() as u64 + 1);
        if line.trim().is_empty() {
            continue;
        }
        let record = match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(object)) => Value::Object(object),
            _ => json!({ "message": line }),
        };
        serde_json::to_writer(&mut batch, &record)?;
        batch.push(b'\n');
        batch_records += 1;
        if batch_records >= options.batch_records || batch.len() >= options.batch_bytes {
            let sent = send_with_retries(&client, options, std::mem::take(&mut batch)).await?;
            accepted += sent.accepted;
            write_tokens.push(sent.write_token);
            batch_records = 0;
            progress.set_message(format!("{accepted} records"));
        }
    }
    if batch_records > 0 {
        let sent = send_with_retries(&client, options, batch).await?;
        accepted += sent.accepted;
        write_tokens.push(sent.write_token);
    }
    if let Some(wait) = options.wait {
        progress.set_message(format!("{accepted} records, waiting until searchable"));
        wait_until_searchable(&client, options, &write_tokens, wait).await?;
    }
    progress.finish_with_message(format!("{accepted} records"));
    Ok(accepted)
}

/// What the server answered for one batch.
struct Sent {
    accepted: u64,
    write_token: String,
}

/// Waits until the records of every token are searchable, asking the server to hold
/// a one-hit search until they are (`wait_for`), for at most `wait` in all.
async fn wait_until_searchable(
    client: &LogpoolClient,
    options: &PutOptions,
    write_tokens: &[String],
    wait: Duration,
) -> anyhow::Result<()> {
    /// The server's longest wait per request.
    const MAX_SERVER_WAIT: Duration = Duration::from_secs(60);
    let deadline = tokio::time::Instant::now() + wait;
    for token in write_tokens {
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let params = SearchParams {
                limit: Some(1),
                track_total: Some(false),
                wait_for: Some(token.clone()),
                wait_timeout_ms: Some(left.min(MAX_SERVER_WAIT).as_millis() as u64),
                ..SearchParams::default()
            };
            match client
                .search(&options.project, &options.pool, &params)
                .await
            {
                Ok(_) => break,
                Err(ClientError::Http { status: 408, .. }) if !left.is_zero() => continue,
                Err(error) => bail!(
                    "the records were stored, but are not all searchable after {wait:?}: {error}"
                ),
            }
        }
    }
    Ok(())
}

async fn send_with_retries(
    client: &LogpoolClient,
    options: &PutOptions,
    body: Vec<u8>,
) -> anyhow::Result<Sent> {
    let mut delay = Duration::from_millis(200);
    // Every attempt of this batch carries the same key, so a retry after a partly
    // stored attempt stores nothing twice.
    let request_key = new_request_key();
    for attempt in 1..=options.max_attempts.max(1) {
        let result = client
            .put_raw_with_key(
                &options.project,
                &options.pool,
                "application/x-ndjson",
                Encoding::Gzip,
                body.clone(),
                None,
                &request_key,
            )
            .await;
        match result {
            Ok(answer) => {
                return Ok(Sent {
                    accepted: answer.accepted as u64,
                    write_token: answer.write_token,
                })
            }
            Err(error) if error.is_retryable() && attempt < options.max_attempts => {
                let wait = match &error {
                    ClientError::Http {
                        retry_after_secs: Some(secs),
                        ..
                    } => Duration::from_secs(*secs),
                    _ => delay,
                };
                tracing::warn!(%error, attempt, "put failed; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(error) => bail!("put failed: {error}"),
        }
    }
    bail!("put failed after {} attempts", options.max_attempts)
}

/// Options of `logpool search`.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// Server URL.
    pub url: String,
    /// Project.
    pub project: String,
    /// Pool.
    pub pool: String,
    /// Query.
    pub query: String,
    /// Start.
    pub from: Option<String>,
    /// End.
    pub to: Option<String>,
    /// Hits to print.
    pub limit: usize,
    /// Print raw JSON hits.
    pub json: bool,
    /// PEM file of the CA that issued an `https://` server's certificate.
    pub ca_cert: Option<PathBuf>,
    /// API key sent as `Authorization: Bearer`.
    pub api_key: Option<String>,
}

/// A client for `url` that sends `api_key`, trusting only `ca_cert` when it is given.
fn client(
    url: &str,
    ca_cert: Option<&Path>,
    api_key: Option<&str>,
) -> anyhow::Result<LogpoolClient> {
    let client = tls_client(url, ca_cert)?;
    Ok(match api_key {
        Some(key) => client.with_api_key(key),
        None => client,
    })
}

/// A client for `url`, trusting only `ca_cert` when it is given.
fn tls_client(url: &str, ca_cert: Option<&Path>) -> anyhow::Result<LogpoolClient> {
    match ca_cert {
        None => Ok(LogpoolClient::new(url)?),
        Some(path) => {
            let pem = std::fs::read(path).with_context(|| {
                format!(
                    "failed to read the CA file {} (--ca-cert / LOGPOOL_CA_CERT)",
                    path.display()
                )
            })?;
            LogpoolClient::with_ca_pem(url, &pem).with_context(|| {
                format!(
                    "the CA file {} (--ca-cert / LOGPOOL_CA_CERT) is not usable",
                    path.display()
                )
            })
        }
    }
}

/// Prints the newest matching records, one per line. Returns the total.
///
/// # Errors
/// Fails on a rejected or failed request.
pub async fn search(options: &SearchOptions) -> anyhow::Result<u64> {
    let client = client(
        &options.url,
        options.ca_cert.as_deref(),
        options.api_key.as_deref(),
    )?;
    let params = SearchParams {
        query: Some(options.query.clone()),
        from: options.from.clone().map(TimeParam::from),
        to: options.to.clone().map(TimeParam::from),
        limit: Some(options.limit),
        ..SearchParams::default()
    };
    let answer = client
        .search(&options.project, &options.pool, &params)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for hit in &answer.hits {
        if options.json {
            println!("{}", serde_json::to_string(hit)?);
        } else {
            let message = hit
                .fields
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| Value::Object(hit.fields.clone()).to_string());
            println!("{} {}", hit.time, message);
        }
    }
    let total = answer.total;
    eprintln!("{total} matching records");
    Ok(total)
}
