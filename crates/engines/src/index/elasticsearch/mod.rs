//! The distributed index: Elasticsearch (or OpenSearch) through the `elasticsearch`
//! crate, with daily indices per pool.
//!
//! # Layout
//! Each pool has one index per UTC day of event time, an index template that gives new
//! indices their settings, mappings and the pool's read alias, and that alias (see
//! [`naming`] for the names and why they start with the pool id, [`mapping`] for the
//! document layout). Retention deletes whole daily indices; searches name the daily
//! indices of their time range when it is short, and the alias otherwise.
//!
//! # Guarantees
//! - **No doubles.** Every document is a bulk `create` with `_id` =
//!   [`DocIdentity::doc_id`]; a redelivered message's documents answer 409, which counts
//!   as indexed. `replace_existing` is therefore not needed and ignored: the same queue
//!   position always carries the same record, so keeping the first copy is the same
//!   end state as replacing it, without a second write.
//! - **Nothing lost silently.** A bulk answer is read item by item ([`bulk`]): items the
//!   cluster cannot take now (429, 5xx) are retried with jittered exponential backoff,
//!   and when they still fail after `max_retries` the write returns
//!   [`IndexError::Unavailable`] so the caller nacks and the queue keeps the records.
//!   Items refused for good (a mapping conflict with a declared field type, the field
//!   limit) come back in [`WriteReport::rejected`] for the dead letter.
//! - **Durable before searchable.** Elasticsearch has the documents in its translog
//!   once a bulk item answered; [`LogIndex::commit`] refreshes the indices written
//!   since the last commit, which makes them searchable.
//! - **Same answers as the embedded index.** Queries are compiled from the AST
//!   ([`dsl`]), never passed as a query string; the conformance suite runs on both.
//! - **Errors mean what the trait says.** No connection, timeouts, 429 and 5xx are
//!   [`IndexError::Unavailable`]; a query the cluster refuses is
//!   [`IndexError::InvalidQuery`]; too many histogram buckets or hits is
//!   [`IndexError::LimitExceeded`].
//!
//! Indices are created explicitly (with the template's settings, mappings and alias in
//! the request) before the first write of a day, so writes do not depend on
//! `action.auto_create_index`. [`ElasticsearchIndex::create_index_for_day`] lets a
//! scheduler create tomorrow's index ahead of time, spread over the day rather than
//! all pools at midnight.

mod aggregate;
mod bulk;
mod context;
mod dsl;
mod legacy_types;
mod mapping;
mod naming;
mod plan;

use logpool_core::pool_id::PoolId;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use elasticsearch::auth::Credentials;
use elasticsearch::http::headers::{HeaderMap, HeaderValue, CONTENT_TYPE};
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::http::{Method, Url};
use elasticsearch::Elasticsearch;
use logpool_core::memory::json_map_bytes;
use logpool_core::routing::PoolRoute;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use self::bulk::{BulkLine, ItemOutcome};
use self::mapping::{TemplateSettings, RECORD, SHARD, TIEBREAK, TIME, TIME_MS};
use self::naming::{day_of, day_of_date, index_name, DAY_NS};
use super::plan::PlanningWork;
use super::{
    ContextPage, ContextRequest, HistogramBucket, HistogramRequest, IndexDoc, IndexError,
    IndexResult, LogIndex, PageRequest, PlannedPartition, RejectedDoc, SearchHit, SearchPage,
    SearchPlan, SearchRequest, SortKey, TimePartition, WriteReport,
};

/// Elasticsearch refuses `from + size` above `index.max_result_window` (10 000 by default).
const MAX_SEARCH_SIZE: usize = 10_000;
/// Hits asked for in the first chunk of a page; later chunks are sized from the memory
/// budget left and the largest hit seen.
const FIRST_CHUNK_HITS: usize = 100;
/// Most hits asked for in one later chunk.
const MAX_CHUNK_HITS: usize = 2_000;
/// Bytes charged per search hit beyond its fields (id, sort key, map nodes).
const HIT_OVERHEAD_BYTES: usize = 128;
/// Longest list of index names put in a URL; Elasticsearch's request line limit is 4 KB.
const MAX_URL_NAMES_BYTES: usize = 3_000;

/// Settings of the Elasticsearch index.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElasticsearchIndexConfig {
    /// Base URL of the cluster (or of a load balancer in front of it), `http://` or
    /// `https://` (TLS through rustls).
    pub url: String,
    /// User for HTTP basic authentication; unset sends no credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password paired with `username`. Never printed by `Debug`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// First part of every index, alias and template name (lowercase letters, digits
    /// and `-`), so several deployments can share one cluster.
    pub index_prefix: String,
    /// Timeout of one HTTP request, in milliseconds.
    pub request_timeout_ms: u64,
    /// Largest `_bulk` request body in bytes; bigger writes are split (a single larger
    /// document is sent alone).
    pub max_bulk_bytes: usize,
    /// Retries of documents the cluster could not take (429, 5xx, no connection) before
    /// a write fails with "unavailable" and the caller redelivers.
    pub max_retries: u32,
    /// Backoff before the first retry, in milliseconds; it doubles per retry (with
    /// jitter) up to `retry_max_backoff_ms`.
    pub retry_initial_backoff_ms: u64,
    /// Longest backoff between two retries, in milliseconds.
    pub retry_max_backoff_ms: u64,
    /// Primary shards of each daily index.
    pub number_of_shards: u32,
    /// Replicas of each daily index (a one-node cluster stays `yellow` with 1, which
    /// readiness accepts).
    pub number_of_replicas: u32,
    /// `index.mapping.total_fields.limit` of each daily index; a record that would add
    /// fields beyond it is refused and goes to the dead letter.
    pub total_fields_limit: u32,
    /// Longest string (in characters) kept for range queries on text fields; longer
    /// values are still searchable by their words.
    pub keyword_ignore_above: u32,
}

impl Default for ElasticsearchIndexConfig {
    fn default() -> Self {
        ElasticsearchIndexConfig {
            url: "http://127.0.0.1:9200".to_string(),
            username: None,
            password: None,
            index_prefix: "logpool".to_string(),
            request_timeout_ms: 30_000,
            max_bulk_bytes: 8 * 1024 * 1024,
            max_retries: 5,
            retry_initial_backoff_ms: 100,
            retry_max_backoff_ms: 5_000,
            number_of_shards: 1,
            number_of_replicas: 1,
            total_fields_limit: 2_000,
            keyword_ignore_above: 256,
        }
    }
}

// Written by hand so the password never reaches logs that print the configuration.
impl std::fmt::Debug for ElasticsearchIndexConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElasticsearchIndexConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("index_prefix", &self.index_prefix)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("max_bulk_bytes", &self.max_bulk_bytes)
            .field("max_retries", &self.max_retries)
            .field("retry_initial_backoff_ms", &self.retry_initial_backoff_ms)
            .field("retry_max_backoff_ms", &self.retry_max_backoff_ms)
            .field("number_of_shards", &self.number_of_shards)
            .field("number_of_replicas", &self.number_of_replicas)
            .field("total_fields_limit", &self.total_fields_limit)
            .field("keyword_ignore_above", &self.keyword_ignore_above)
            .finish()
    }
}

/// The Elasticsearch implementation of [`LogIndex`].
pub struct ElasticsearchIndex {
    client: Elasticsearch,
    config: ElasticsearchIndexConfig,
    /// Pools whose template this process has written.
    ensured_pools: Mutex<HashSet<PoolId>>,
    /// Daily indices this process knows to exist.
    created_indices: Mutex<HashSet<String>>,
    /// Indices written since the last commit, to refresh on commit.
    dirty_indices: Mutex<HashSet<String>>,
    /// State of the backoff jitter generator.
    jitter: AtomicU64,
    /// Index listings and query compilations of reads (what a search plan saves).
    work: PlanningWork,
}

impl std::fmt::Debug for ElasticsearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElasticsearchIndex")
            .field("url", &self.config.url)
            .field("index_prefix", &self.config.index_prefix)
            .finish()
    }
}

/// One HTTP answer.
struct EsResponse {
    status: u16,
    body: Vec<u8>,
}

impl EsResponse {
    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn json(&self) -> IndexResult<Value> {
        serde_json::from_slice(&self.body)
            .map_err(|e| IndexError::Internal(format!("elasticsearch answered invalid JSON: {e}")))
    }

    /// `(type, reason)` of an error answer, as far as it can be read.
    fn error(&self) -> (String, String) {
        let body: Value = serde_json::from_slice(&self.body).unwrap_or(Value::Null);
        let error = &body["error"];
        let root = error["root_cause"].get(0).unwrap_or(error);
        let kind = root["type"]
            .as_str()
            .or_else(|| error["type"].as_str())
            .unwrap_or("unknown_error")
            .to_string();
        let mut reason = root["reason"]
            .as_str()
            .or_else(|| error["reason"].as_str())
            .or_else(|| error.as_str())
            .unwrap_or("")
            .to_string();
        if let Some(cause) = error["caused_by"]["reason"].as_str() {
            reason.push_str(&format!(" (caused by: {cause})"));
        }
        (kind, reason)
    }

    fn describe(&self) -> String {
        let (kind, reason) = self.error();
        format!("status {}: {kind}: {reason}", self.status)
    }

    /// The error for an unexpected answer of an administrative request.
    fn into_error(self, what: &str) -> IndexError {
        let text = format!("failed to {what}: {}", self.describe());
        if matches!(self.status, 401 | 403 | 408 | 429) || self.status >= 500 {
            IndexError::Unavailable(text)
        } else {
            IndexError::Internal(text)
        }
    }
}

/// A request body.
enum Body {
    Json(Value),
    NdJson(Vec<u8>),
}

impl ElasticsearchIndex {
    /// Builds a client for the cluster at `config.url`. No request is made: a cluster
    /// that is down shows in [`LogIndex::check_health`] and as
    /// [`IndexError::Unavailable`] from requests, so services can start before it.
    ///
    /// # Errors
    /// [`IndexError::Internal`] for an invalid URL or index prefix, or a client that
    /// cannot be built.
    pub fn connect(config: ElasticsearchIndexConfig) -> IndexResult<ElasticsearchIndex> {
        if !naming::is_valid_index_prefix(&config.index_prefix) {
            return Err(IndexError::Internal(format!(
                "index_prefix `{}` must be lowercase letters, digits and `-`, starting with a letter or digit",
                config.index_prefix.escape_debug()
            )));
        }
        if config.max_bulk_bytes == 0 {
            return Err(IndexError::Internal(
                "max_bulk_bytes must be positive".to_string(),
            ));
        }
        let url = Url::parse(&config.url).map_err(|e| {
            IndexError::Internal(format!(
                "elasticsearch url `{}` is invalid: {e}",
                config.url
            ))
        })?;
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
            .timeout(Duration::from_millis(config.request_timeout_ms.max(1)));
        if let Some(username) = &config.username {
            builder = builder.auth(Credentials::Basic(
                username.clone(),
                config.password.clone().unwrap_or_default(),
            ));
        }
        let transport = builder.build().map_err(|e| {
            IndexError::Internal(format!("failed to build the elasticsearch client: {e}"))
        })?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        Ok(ElasticsearchIndex {
            client: Elasticsearch::new(transport),
            config,
            ensured_pools: Mutex::new(HashSet::new()),
            created_indices: Mutex::new(HashSet::new()),
            dirty_indices: Mutex::new(HashSet::new()),
            jitter: AtomicU64::new(seed | 1),
            work: PlanningWork::default(),
        })
    }

    /// Creates the pool's index for `day` (UTC) unless it exists, with the pool's
    /// template written first. Meant for creating tomorrow's index ahead of time.
    ///
    /// # Errors
    /// [`IndexError::Unavailable`] when the cluster cannot be reached.
    pub async fn create_index_for_day(&self, pool: &PoolRoute, day: time::Date) -> IndexResult<()> {
        self.ensure_template_once(pool).await?;
        let name = index_name(&self.config.index_prefix, pool, day_of_date(day));
        self.create_index(pool, &name).await
    }

    fn template_settings(&self) -> TemplateSettings {
        TemplateSettings {
            number_of_shards: self.config.number_of_shards.max(1),
            number_of_replicas: self.config.number_of_replicas,
            total_fields_limit: self.config.total_fields_limit.max(100),
            keyword_ignore_above: self.config.keyword_ignore_above.max(1),
        }
    }

    /// Sends one request. Only a failure to get an answer at all is an `Err`.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Body>,
    ) -> IndexResult<EsResponse> {
        let mut headers = HeaderMap::new();
        let bytes = match body {
            None => None,
            Some(Body::Json(value)) => Some(serde_json::to_vec(&value).map_err(|e| {
                IndexError::Internal(format!("request body cannot be serialized: {e}"))
            })?),
            Some(Body::NdJson(bytes)) => {
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-ndjson"),
                );
                Some(bytes)
            }
        };
        let response = self
            .client
            .send(method, path, headers, Some(query), bytes, None)
            .await
            .map_err(|e| {
                IndexError::Unavailable(format!(
                    "elasticsearch at {} cannot be reached: {e}",
                    self.config.url
                ))
            })?;
        let status = response.status_code().as_u16();
        let body = response.bytes().await.map_err(|e| {
            IndexError::Unavailable(format!("elasticsearch answer was cut off: {e}"))
        })?;
        Ok(EsResponse {
            status,
            body: body.to_vec(),
        })
    }

    async fn ensure_template_once(&self, pool: &PoolRoute) -> IndexResult<()> {
        if lock(&self.ensured_pools).contains(&pool.pool_id) {
            return Ok(());
        }
        self.put_template(pool).await
    }

    async fn put_template(&self, pool: &PoolRoute) -> IndexResult<()> {
        let name = naming::template_name(&self.config.index_prefix, pool.pool_id);
        let body =
            mapping::template_body(&self.config.index_prefix, pool, self.template_settings());
        let response = self
            .call(
                Method::Put,
                &format!("_index_template/{name}"),
                &[],
                Some(Body::Json(body)),
            )
            .await?;
        if !response.is_success() {
            return Err(response.into_error(&format!("write index template `{name}`")));
        }
        lock(&self.ensured_pools).insert(pool.pool_id);
        Ok(())
    }

    /// Creates one daily index unless this process knows it exists. The request carries
    /// the template's settings, mappings and alias, so the index is right even if the
    /// template was deleted behind our back.
    async fn create_index(&self, pool: &PoolRoute, name: &str) -> IndexResult<()> {
        if lock(&self.created_indices).contains(name) {
            return Ok(());
        }
        let template =
            mapping::template_body(&self.config.index_prefix, pool, self.template_settings());
        let body = template["template"].clone();
        let response = self
            .call(Method::Put, name, &[], Some(Body::Json(body)))
            .await?;
        let exists = response.status == 400 && response.error().0.contains("already_exists");
        if !response.is_success() && !exists {
            return Err(response.into_error(&format!("create index `{name}`")));
        }
        lock(&self.created_indices).insert(name.to_string());
        Ok(())
    }

    /// Where a search over `[from_ns, to_ns)` looks: the daily indices by name when the
    /// range is short, so shards of other days are not even asked, else the alias.
    fn search_target(&self, pool: &PoolRoute, from_ns: i64, to_ns: i64) -> String {
        let alias = naming::alias_name(&self.config.index_prefix, pool);
        if from_ns == i64::MIN || to_ns == i64::MAX || to_ns <= from_ns {
            return alias;
        }
        let first_day = day_of(from_ns);
        let last_day = day_of(to_ns.saturating_sub(1));
        let per_name = alias.len() + 12;
        let max_days = (MAX_URL_NAMES_BYTES / per_name.max(1)) as i64;
        if last_day - first_day + 1 > max_days {
            return alias;
        }
        (first_day..=last_day)
            .map(|day| index_name(&self.config.index_prefix, pool, day))
            .collect::<Vec<String>>()
            .join(",")
    }

    /// Counts one compilation, and compiles `query` restricted to `[from_ns, to_ns)`.
    fn compile_in_range(
        &self,
        query: &logpool_core::query::Query,
        types: &BTreeMap<String, logpool_core::routing::FieldType>,
        from_ns: i64,
        to_ns: i64,
    ) -> IndexResult<Value> {
        self.work.compiled();
        dsl::compile_with_time_range(query, types, from_ns, to_ns)
    }

    /// One page of hits of `query` in `target`, in the page's order.
    async fn search_page(
        &self,
        target: &str,
        query: &Value,
        page: &PageRequest,
    ) -> IndexResult<SearchPage> {
        // The page is fetched in chunks (search_after), each sized from the remaining
        // memory budget and the largest hit so far, so a page of large records stops
        // at the budget instead of arriving whole in one answer.
        let mut hits = Vec::new();
        let mut total = None;
        let mut after = page.after;
        let mut truncated = false;
        let mut chunk = page.limit.min(FIRST_CHUNK_HITS);
        loop {
            let mut body = json!({
                "query": query,
                "sort": dsl::time_sort(page.order),
                "size": chunk,
                "track_total_hits": total.is_none(),
                "_source": [TIME, SHARD, TIEBREAK, RECORD],
            });
            if let Some(after) = after {
                body["search_after"] = dsl::search_after(after);
            }
            let Some(response) = self.run_search(target, body).await? else {
                break;
            };
            let (chunk_hits, chunk_total) = parse_search_hits(&response)?;
            drop(response);
            if total.is_none() {
                total = Some(chunk_total.ok_or_else(|| {
                    IndexError::Internal("search answer has no hit count".to_string())
                })?);
            }
            let fetched = chunk_hits.len();
            let mut largest = 0;
            for hit in chunk_hits {
                let charge = json_map_bytes(&hit.fields) + HIT_OVERHEAD_BYTES;
                if hits.is_empty() {
                    page.memory.charge_anyway(charge);
                } else if page.memory.try_charge(charge).is_err() {
                    truncated = true;
                    break;
                }
                largest = largest.max(charge);
                after = Some(hit.sort_key);
                hits.push(hit);
            }
            if truncated || fetched < chunk || hits.len() >= page.limit {
                break;
            }
            let room = page.memory.limit().saturating_sub(page.memory.used());
            chunk = (room / largest.max(1))
                .clamp(1, MAX_CHUNK_HITS)
                .min(page.limit - hits.len());
        }
        Ok(SearchPage {
            hits,
            total: total.unwrap_or(0),
            truncated,
        })
    }

    /// Runs a search body; a missing alias or index means "no data yet".
    async fn run_search(&self, target: &str, body: Value) -> IndexResult<Option<Value>> {
        let response = self
            .call(
                Method::Post,
                &format!("{target}/_search"),
                &[("ignore_unavailable", "true"), ("allow_no_indices", "true")],
                Some(Body::Json(body)),
            )
            .await?;
        if response.is_success() {
            return response.json().map(Some);
        }
        let (kind, reason) = response.error();
        if response.status == 404 && kind == "index_not_found_exception" {
            return Ok(None);
        }
        let text = format!("{kind}: {reason}");
        let described = response.describe();
        Err(
            if kind.contains("too_many_buckets") || described.contains("too_many_buckets") {
                IndexError::LimitExceeded(format!(
                    "too many histogram buckets ({text}); use a larger interval"
                ))
            } else if response.status == 400 {
                IndexError::InvalidQuery(text)
            } else if matches!(response.status, 401 | 403 | 408 | 429) || response.status >= 500 {
                IndexError::Unavailable(format!("search failed: {described}"))
            } else {
                IndexError::Internal(format!("search failed: {described}"))
            },
        )
    }

    /// Lists the pool's daily indices (open or closed).
    async fn list_pool_indices(&self, pool_id: PoolId) -> IndexResult<Vec<String>> {
        let pattern = naming::pool_index_pattern(&self.config.index_prefix, pool_id);
        let response = self
            .call(
                Method::Get,
                &format!("_cat/indices/{pattern}"),
                &[
                    ("format", "json"),
                    ("h", "index"),
                    ("expand_wildcards", "all"),
                ],
                None,
            )
            .await?;
        if response.status == 404 {
            return Ok(Vec::new());
        }
        if !response.is_success() {
            return Err(response.into_error(&format!("list indices `{pattern}`")));
        }
        let rows = response.json()?;
        let mut names: Vec<String> = rows
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|row| row["index"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        // A wildcard also matches the alias; keep only the pool's daily indices.
        names.retain(|name| {
            naming::parse_index_day(&self.config.index_prefix, pool_id, name).is_some()
        });
        names.sort();
        Ok(names)
    }

    /// Deletes indices by name, a URL-sized group at a time; missing ones are skipped.
    async fn delete_indices(&self, names: &[String]) -> IndexResult<()> {
        for group in url_groups(names) {
            let response = self
                .call(
                    Method::Delete,
                    &group,
                    &[("ignore_unavailable", "true"), ("allow_no_indices", "true")],
                    None,
                )
                .await?;
            if !response.is_success() && response.status != 404 {
                return Err(response.into_error(&format!("delete indices `{group}`")));
            }
        }
        let mut created = lock(&self.created_indices);
        let mut dirty = lock(&self.dirty_indices);
        for name in names {
            created.remove(name);
            dirty.remove(name);
        }
        Ok(())
    }

    /// Sends `lines` until each is indexed, rejected, or retries run out.
    /// Returns the rejection reason per rejected line position.
    async fn bulk_write(
        &self,
        pool: &PoolRoute,
        lines: &[BulkLine],
    ) -> IndexResult<BTreeMap<usize, String>> {
        let mut rejected = BTreeMap::new();
        let mut pending: Vec<usize> = (0..lines.len()).collect();
        let mut attempt: u32 = 0;
        loop {
            let mut retry: Vec<usize> = Vec::new();
            let mut last_reason = String::new();
            // Indices must exist before their documents arrive (see `create_index`).
            let needed: HashSet<&str> = pending.iter().map(|&i| lines[i].index.as_str()).collect();
            let mut creation_error = None;
            for name in needed {
                if let Err(error) = self.create_index(pool, name).await {
                    creation_error = Some(error);
                    break;
                }
            }
            match creation_error {
                Some(IndexError::Unavailable(reason)) => {
                    last_reason = reason;
                    retry = pending.clone();
                }
                Some(other) => return Err(other),
                None => {
                    let batch: Vec<&BulkLine> = pending.iter().map(|&i| &lines[i]).collect();
                    for (members, body) in bulk::chunk(&batch, self.config.max_bulk_bytes) {
                        let member_lines: Vec<usize> =
                            members.iter().map(|&m| pending[m]).collect();
                        match self.send_bulk(body, &member_lines, lines).await {
                            Ok(outcomes) => {
                                for (line, outcome) in member_lines.iter().zip(outcomes) {
                                    match outcome {
                                        ItemOutcome::Indexed => {}
                                        ItemOutcome::Retry(reason) => {
                                            if reason.contains("index_not_found") {
                                                lock(&self.created_indices)
                                                    .remove(&lines[*line].index);
                                            }
                                            last_reason = reason;
                                            retry.push(*line);
                                        }
                                        ItemOutcome::Rejected(reason) => {
                                            rejected.insert(*line, reason);
                                        }
                                    }
                                }
                            }
                            Err(BulkFailure::Retry(reason)) => {
                                last_reason = reason;
                                retry.extend(member_lines);
                            }
                            Err(BulkFailure::Fatal(error)) => return Err(error),
                        }
                    }
                }
            }
            if retry.is_empty() {
                return Ok(rejected);
            }
            if attempt >= self.config.max_retries {
                return Err(IndexError::Unavailable(format!(
                    "{} of {} documents not indexed after {} attempts; last error: {last_reason}",
                    retry.len(),
                    lines.len(),
                    attempt + 1
                )));
            }
            let backoff = self.backoff(attempt);
            tracing::warn!(
                pending = retry.len(),
                attempt = attempt + 1,
                backoff_ms = backoff.as_millis() as u64,
                reason = %last_reason,
                "elasticsearch could not take every document; retrying"
            );
            tokio::time::sleep(backoff).await;
            pending = retry;
            attempt += 1;
        }
    }

    /// Sends one bulk body and reads its items.
    async fn send_bulk(
        &self,
        body: Vec<u8>,
        member_lines: &[usize],
        lines: &[BulkLine],
    ) -> Result<Vec<ItemOutcome>, BulkFailure> {
        let response = match self
            .call(Method::Post, "_bulk", &[], Some(Body::NdJson(body)))
            .await
        {
            Ok(response) => response,
            Err(IndexError::Unavailable(reason)) => return Err(BulkFailure::Retry(reason)),
            Err(other) => return Err(BulkFailure::Fatal(other)),
        };
        // Written or not, these indices need a refresh at the next commit.
        {
            let mut dirty = lock(&self.dirty_indices);
            for line in member_lines {
                dirty.insert(lines[*line].index.clone());
            }
        }
        match response.status {
            200..=299 => bulk::parse_response(&response.body, member_lines.len())
                .map_err(|reason| BulkFailure::Fatal(IndexError::Internal(reason))),
            413 if member_lines.len() == 1 => Ok(vec![ItemOutcome::Rejected(format!(
                "document is larger than the cluster accepts: {}",
                response.describe()
            ))]),
            413 => Err(BulkFailure::Fatal(IndexError::LimitExceeded(format!(
                "bulk request refused as too large; lower max_bulk_bytes ({})",
                response.describe()
            )))),
            408 | 429 | 500..=599 | 401 | 403 => Err(BulkFailure::Retry(response.describe())),
            _ => Err(BulkFailure::Fatal(IndexError::Internal(format!(
                "bulk request refused: {}",
                response.describe()
            )))),
        }
    }

    /// Exponential backoff with "equal jitter": half fixed, half random, so many
    /// writers that failed together do not retry together.
    fn backoff(&self, attempt: u32) -> Duration {
        let initial = self.config.retry_initial_backoff_ms.max(1);
        let cap = initial
            .saturating_mul(1u64 << attempt.min(20))
            .min(self.config.retry_max_backoff_ms.max(initial));
        let half = cap / 2;
        Duration::from_millis(half + self.next_random() % (cap - half + 1))
    }

    /// xorshift64*: statistically fine for jitter, no dependency needed.
    fn next_random(&self) -> u64 {
        let mut x = self.jitter.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.jitter.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Why a whole bulk request failed.
enum BulkFailure {
    /// Send its documents again later.
    Retry(String),
    /// Give up the write.
    Fatal(IndexError),
}

#[async_trait]
impl LogIndex for ElasticsearchIndex {
    async fn legacy_learned_types(
        &self,
    ) -> IndexResult<std::collections::HashMap<PoolId, crate::metadata::LearnedTypes>> {
        self.read_legacy_types().await
    }

    async fn retire_legacy_learned_types(&self) -> IndexResult<()> {
        self.delete_legacy_types().await
    }

    async fn ensure_pool(&self, pool: &PoolRoute) -> IndexResult<()> {
        self.put_template(pool).await
    }

    async fn prepare_day(&self, pool: &PoolRoute, day: time::Date) -> IndexResult<()> {
        self.create_index_for_day(pool, day).await
    }

    async fn write(
        &self,
        pool: &PoolRoute,
        docs: Vec<IndexDoc>,
        _replace_existing: bool,
    ) -> IndexResult<WriteReport> {
        let mut report = WriteReport::default();
        if docs.is_empty() {
            return Ok(report);
        }
        self.ensure_template_once(pool).await?;
        // loghub fixed the type of every field of these records before the write.
        let typed_pool = typed_pool(pool);
        let pool = &typed_pool;
        let mut lines = Vec::with_capacity(docs.len());
        let mut refused_here: BTreeMap<usize, String> = BTreeMap::new();
        for (doc_index, doc) in docs.iter().enumerate() {
            let line = mapping::document(doc, pool).and_then(|source| {
                BulkLine::create(
                    doc_index,
                    index_name(&self.config.index_prefix, pool, day_of(doc.record.time_ns)),
                    &doc.identity.doc_id(),
                    &source,
                )
            });
            match line {
                Ok(line) => lines.push(line),
                Err(reason) => {
                    refused_here.insert(doc_index, reason);
                }
            }
        }
        let rejected_lines = self.bulk_write(pool, &lines).await?;
        for (line, reason) in rejected_lines {
            refused_here.insert(lines[line].doc_index, reason);
        }
        let mut docs: Vec<Option<IndexDoc>> = docs.into_iter().map(Some).collect();
        for (doc_index, reason) in refused_here {
            if let Some(doc) = docs.get_mut(doc_index).and_then(Option::take) {
                report.rejected.push(RejectedDoc { doc, reason });
            }
        }
        Ok(report)
    }

    async fn commit(&self) -> IndexResult<()> {
        let names: Vec<String> = {
            let mut dirty = lock(&self.dirty_indices);
            let mut names: Vec<String> = dirty.drain().collect();
            names.sort();
            names
        };
        for group in url_groups(&names) {
            let result = self
                .call(
                    Method::Post,
                    &format!("{group}/_refresh"),
                    &[("ignore_unavailable", "true"), ("allow_no_indices", "true")],
                    None,
                )
                .await
                .and_then(|response| {
                    if response.is_success() || response.status == 404 {
                        Ok(())
                    } else {
                        Err(response.into_error("refresh written indices"))
                    }
                });
            if let Err(error) = result {
                // Keep them for the next commit: the documents are still unsearchable.
                lock(&self.dirty_indices).extend(names);
                return Err(error);
            }
        }
        Ok(())
    }

    async fn search(&self, pool: &PoolRoute, request: &SearchRequest) -> IndexResult<SearchPage> {
        check_page_size(request.limit)?;
        let query = self.compile_in_range(
            &request.query,
            &pool.field_types(),
            request.from_ns,
            request.to_ns,
        )?;
        let target = self.search_target(pool, request.from_ns, request.to_ns);
        let page = PageRequest {
            limit: request.limit,
            after: request.after,
            order: request.order,
            memory: request.memory.clone(),
        };
        self.search_page(&target, &query, &page).await
    }

    async fn plan_search(
        &self,
        pool: &PoolRoute,
        query: &logpool_core::query::Query,
        from_ns: i64,
        to_ns: i64,
    ) -> IndexResult<SearchPlan> {
        self.plan_of(pool, query, from_ns, to_ns).await
    }

    async fn search_partitions(
        &self,
        plan: &SearchPlan,
        partitions: &[PlannedPartition],
        page: &PageRequest,
    ) -> IndexResult<SearchPage> {
        self.search_planned(plan, partitions, page).await
    }

    async fn histogram(
        &self,
        pool: &PoolRoute,
        request: &HistogramRequest,
    ) -> IndexResult<Vec<HistogramBucket>> {
        if request.interval_ns <= 0 {
            return Err(IndexError::InvalidQuery(
                "histogram interval must be positive".to_string(),
            ));
        }
        let query = self.compile_in_range(
            &request.query,
            &pool.field_types(),
            request.from_ns,
            request.to_ns,
        )?;
        // Whole milliseconds bucket exactly on the millisecond field (bucket edges are
        // then millisecond edges); finer intervals fall back to the ns field, where the
        // cluster computes in doubles (edges exact to ~256 ns at today's timestamps).
        let (field, unit_ns, interval) = if request.interval_ns % mapping::NS_PER_MS == 0 {
            (
                TIME_MS,
                mapping::NS_PER_MS,
                request.interval_ns / mapping::NS_PER_MS,
            )
        } else {
            (TIME, 1, request.interval_ns)
        };
        let body = json!({
            "size": 0,
            "track_total_hits": false,
            "query": query,
            "aggs": {"lp_histogram": {"histogram": {
                "field": field,
                "interval": interval,
                "min_doc_count": 1
            }}}
        });
        let target = self.search_target(pool, request.from_ns, request.to_ns);
        let Some(response) = self.run_search(&target, body).await? else {
            return Ok(Vec::new());
        };
        parse_histogram(&response, unit_ns, request.interval_ns)
    }

    async fn context(
        &self,
        pool: &PoolRoute,
        request: &ContextRequest,
    ) -> IndexResult<ContextPage> {
        self.context_of(&typed_pool(pool), request).await
    }

    async fn time_partitions(
        &self,
        pool: &PoolRoute,
        from_ns: i64,
        to_ns: i64,
    ) -> IndexResult<Vec<TimePartition>> {
        self.partitions_of(pool, from_ns, to_ns).await
    }

    async fn aggregate(
        &self,
        pool: &PoolRoute,
        request: &super::AggregateRequest,
    ) -> IndexResult<Vec<logpool_core::sql::plan::AggregateGroup>> {
        self.aggregate_groups(&typed_pool(pool), request).await
    }

    async fn drop_pool(&self, pool_id: PoolId) -> IndexResult<()> {
        let names = self.list_pool_indices(pool_id).await?;
        self.delete_indices(&names).await?;
        let template = naming::template_name(&self.config.index_prefix, pool_id);
        let response = self
            .call(
                Method::Delete,
                &format!("_index_template/{template}"),
                &[],
                None,
            )
            .await?;
        if !response.is_success() && response.status != 404 {
            return Err(response.into_error(&format!("delete index template `{template}`")));
        }
        lock(&self.ensured_pools).remove(&pool_id);
        let prefix = naming::pool_name_prefix(&self.config.index_prefix, pool_id);
        lock(&self.created_indices).retain(|name| !name.starts_with(&prefix));
        lock(&self.dirty_indices).retain(|name| !name.starts_with(&prefix));
        Ok(())
    }

    async fn storage_bytes(&self, pool: &PoolRoute) -> IndexResult<u64> {
        let pattern = naming::pool_index_pattern(&self.config.index_prefix, pool.pool_id);
        let response = self
            .call(
                Method::Get,
                &format!("_cat/indices/{pattern}"),
                &[
                    ("format", "json"),
                    ("h", "index,store.size"),
                    ("bytes", "b"),
                    ("expand_wildcards", "all"),
                ],
                None,
            )
            .await?;
        if response.status == 404 {
            return Ok(0);
        }
        if !response.is_success() {
            return Err(response.into_error(&format!("index sizes `{pattern}`")));
        }
        let rows = response.json()?;
        let mut total = 0u64;
        for row in rows.as_array().map(Vec::as_slice).unwrap_or_default() {
            let Some(name) = row["index"].as_str() else {
                continue;
            };
            // A wildcard also matches the alias; count only the pool's daily indices.
            if naming::parse_index_day(&self.config.index_prefix, pool.pool_id, name).is_none() {
                continue;
            }
            // `_cat` answers sizes as strings; an index still opening has none yet.
            let size = match &row["store.size"] {
                serde_json::Value::String(text) => text.parse::<u64>().ok(),
                value => value.as_u64(),
            };
            total = total.saturating_add(size.unwrap_or(0));
        }
        Ok(total)
    }

    async fn drop_expired(&self, pool: &PoolRoute, now_ns: i64) -> IndexResult<usize> {
        let retention_ns = i64::from(pool.retention_days).saturating_mul(DAY_NS);
        let cutoff_ns = now_ns.saturating_sub(retention_ns);
        let expired: Vec<String> = self
            .list_pool_indices(pool.pool_id)
            .await?
            .into_iter()
            .filter(|name| {
                naming::parse_index_day(&self.config.index_prefix, pool.pool_id, name)
                    .is_some_and(|day| (day + 1).saturating_mul(DAY_NS) <= cutoff_ns)
            })
            .collect();
        self.delete_indices(&expired).await?;
        Ok(expired.len())
    }

    async fn check_health(&self) -> IndexResult<()> {
        let response = self.call(Method::Get, "_cluster/health", &[], None).await?;
        if !response.is_success() {
            return Err(IndexError::Unavailable(format!(
                "cluster health: {}",
                response.describe()
            )));
        }
        match response.json()?["status"].as_str() {
            Some("green") | Some("yellow") => Ok(()),
            other => Err(IndexError::Unavailable(format!(
                "cluster health is {}",
                other.unwrap_or("unknown")
            ))),
        }
    }

    async fn shutdown(&self) -> IndexResult<()> {
        self.commit().await
    }
}

/// The hits of a search answer, and its hit count when it was asked to track it.
fn parse_search_hits(response: &Value) -> IndexResult<(Vec<SearchHit>, Option<u64>)> {
    let hits_json = &response["hits"];
    // `hits.total` is an object since Elasticsearch 7, a number before.
    let total = hits_json["total"]["value"]
        .as_u64()
        .or_else(|| hits_json["total"].as_u64());
    let mut hits = Vec::new();
    for hit in hits_json["hits"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        hits.push(parse_hit(hit)?);
    }
    Ok((hits, total))
}

fn parse_hit(hit: &Value) -> IndexResult<SearchHit> {
    let corrupted = |what: &str| IndexError::Corrupted(format!("hit {}: {what}", hit["_id"]));
    let id = hit["_id"]
        .as_str()
        .ok_or_else(|| corrupted("no _id"))?
        .to_string();
    let source = &hit["_source"];
    let time_ns = source[TIME].as_i64().ok_or_else(|| corrupted("no time"))?;
    let shard = source[SHARD]
        .as_u64()
        .and_then(|s| u32::try_from(s).ok())
        .ok_or_else(|| corrupted("no shard"))?;
    let tiebreak = source[TIEBREAK]
        .as_str()
        .and_then(|text| u64::from_str_radix(text, 16).ok())
        .ok_or_else(|| corrupted("no tiebreak"))?;
    let record_text = source[RECORD]
        .as_str()
        .ok_or_else(|| corrupted("no record"))?;
    let fields: serde_json::Map<String, Value> =
        serde_json::from_str(record_text).map_err(|e| corrupted(&format!("record: {e}")))?;
    Ok(SearchHit {
        id,
        time_ns,
        shard,
        sort_key: SortKey { time_ns, tiebreak },
        fields,
    })
}

/// Reads histogram buckets; keys come back as (possibly fractional) numbers in
/// `unit_ns` units and are snapped to the nearest multiple of the interval.
fn parse_histogram(
    response: &Value,
    unit_ns: i64,
    interval_ns: i64,
) -> IndexResult<Vec<HistogramBucket>> {
    let buckets = response["aggregations"]["lp_histogram"]["buckets"]
        .as_array()
        .ok_or_else(|| IndexError::Internal("histogram answer has no buckets".to_string()))?;
    let mut merged: BTreeMap<i64, u64> = BTreeMap::new();
    for bucket in buckets {
        let (Some(key), Some(count)) = (bucket["key"].as_f64(), bucket["doc_count"].as_u64())
        else {
            return Err(IndexError::Internal(format!(
                "histogram bucket is not readable: {bucket}"
            )));
        };
        if count == 0 {
            continue;
        }
        let index = (key * unit_ns as f64 / interval_ns as f64).round() as i64;
        let time_ns = index.saturating_mul(interval_ns);
        *merged.entry(time_ns).or_insert(0) += count;
    }
    Ok(merged
        .into_iter()
        .map(|(time_ns, count)| HistogramBucket { time_ns, count })
        .collect())
}

/// Refuses a page larger than Elasticsearch returns.
fn check_page_size(limit: usize) -> IndexResult<()> {
    if limit > MAX_SEARCH_SIZE {
        return Err(IndexError::LimitExceeded(format!(
            "at most {MAX_SEARCH_SIZE} hits per page, asked for {limit}"
        )));
    }
    Ok(())
}

/// Joins index names with `,` in groups short enough for a URL.
fn url_groups(names: &[String]) -> Vec<String> {
    let mut groups = Vec::new();
    let mut current = String::new();
    for name in names {
        if !current.is_empty() && current.len() + name.len() + 1 > MAX_URL_NAMES_BYTES {
            groups.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(',');
        }
        current.push_str(name);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// Locks a std mutex, recovering the data if a panicking thread poisoned it: the
/// guarded sets stay valid across a panic.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The pool with its effective types (learned, overlaid by the hints) as its hints:
/// the document mapping and the context and aggregation builders type values by the
/// hints alone.
fn typed_pool(pool: &PoolRoute) -> PoolRoute {
    PoolRoute {
        field_hints: pool.field_types(),
        ..pool.clone()
    }
}

#[cfg(test)]
mod tests;
