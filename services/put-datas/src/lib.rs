//! put-datas: the ingest API.
//!
//! `POST /v1/projects/{project}/pools/{pool}/logs` takes JSON or NDJSON (optionally
//! gzip or zstd encoded), validates it under the configured limits, splits it into one
//! batch per shard, and answers 200 only after every batch is durable in the queue.
//! A full or failing queue gives 503 with `Retry-After`, never a 2xx.
//!
//! A request with an `Idempotency-Key` is stored at most once however often it is
//! retried ([`idempotency`]).
//!
//! Modules: [`body`] (content type and decompression), [`sharding`] (which records go
//! to which shard), [`idempotency`] (request keys), [`es_bulk`] (the Elasticsearch
//! bulk API on the same path). Shipper protocols convert their bodies into records
//! and store them through the same path ([`protocol`]): OTLP logs over HTTP
//! ([`otlp`], `POST /v1/logs`) and Loki push ([`loki`], `POST /loki/api/v1/push`).
//! The syslog listeners ([`syslog`]) store what they receive the same way.

pub mod body;
pub mod es_bulk;
#[cfg(test)]
mod handling_cost;
pub mod idempotency;
pub mod loki;
pub mod otlp;
pub mod protocol;
pub mod service;
pub mod sharding;
pub mod syslog;

use logpool_core::pool_id::PoolId;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::{Json, Router};
use bytes::Bytes;
use futures::StreamExt;
use logpool_api::quota::{Draw, RateQuotas};
use logpool_api::{time::now_ns, ApiError, AppQuery, ErrorCode, Principal, Routes, RoutingView};
use logpool_core::access::{AccessTable, Permission};
use logpool_core::batch::EncodedRecords;
use logpool_core::ingest::window::{EventTimeWindow, Refusals};
use logpool_core::ingest::{encode_json_body_in_window, encode_ndjson_body_in_window, IngestError};
use logpool_core::limits::IngestLimits;
use logpool_core::routing::{PoolRoute, RoutingSnapshot};
use logpool_core::stable_hash::fnv1a;
use logpool_core::write_token::{WriteToken, WrittenBatch};
use logpool_engines::idempotency::memory::MemoryLedger;
use logpool_engines::idempotency::{IdempotencyConfig, IdempotencyLedger};
use logpool_engines::queue::Queue;
use logpool_wire::ingest::{PutAnswer, RefusedRecord, ShardReceipt};
use serde::Deserialize;

use crate::body::{read_body, BodyFormat};
use crate::idempotency::{digest, Idempotency, KeyedPut, PlannedPart, ProduceFaults, RequestKey};

/// What the ingest handlers need.
#[derive(Debug, Clone)]
pub struct PutDatasState {
    /// The queue batches go to.
    pub queue: Arc<dyn Queue>,
    /// Pool routes.
    pub routing: RoutingView,
    /// Request limits.
    pub limits: IngestLimits,
    /// Rotates the first shard of unkeyed requests so load spreads over shards.
    next_shard: Arc<AtomicUsize>,
    /// Counters.
    pub stats: Arc<PutDatasStats>,
    /// Ingest rate quotas of tenants and projects.
    quotas: Arc<RateQuotas>,
    /// What was done for each request key.
    idempotency: Idempotency,
    /// Test-only produce faults (none in production).
    faults: Arc<ProduceFaults>,
}

/// Counters of accepted and refused input, so that loss or refusals are visible.
#[derive(Debug, Default)]
pub struct PutDatasStats {
    /// Requests answered 2xx.
    pub requests_accepted: AtomicU64,
    /// Records in those requests (durable in the queue).
    pub records_accepted: AtomicU64,
    /// Records refused for an event time outside their pool's window.
    pub records_refused: AtomicU64,
    /// Requests refused for bad input (4xx).
    pub requests_rejected: AtomicU64,
    /// Requests the queue could not take (5xx).
    pub requests_failed: AtomicU64,
    /// Requests with an `Idempotency-Key` stored without the key's protection
    /// because the idempotency ledger could not be reached.
    pub requests_without_ledger: AtomicU64,
}

impl PutDatasState {
    /// Creates the state. Request keys are remembered in this process's memory only
    /// until [`PutDatasState::with_idempotency`] gives it the durable ledger.
    pub fn new(queue: Arc<dyn Queue>, routing: RoutingView, limits: IngestLimits) -> PutDatasState {
        let config = IdempotencyConfig::default();
        PutDatasState {
            queue,
            routing,
            limits,
            next_shard: Arc::new(AtomicUsize::new(0)),
            stats: Arc::new(PutDatasStats::default()),
            quotas: Arc::new(RateQuotas::default()),
            idempotency: Idempotency::new(Arc::new(MemoryLedger::new()), &config),
            faults: Arc::new(ProduceFaults::default()),
        }
    }

    /// Remembers request keys in `ledger`, with `config`'s claim time and test faults.
    pub fn with_idempotency(
        mut self,
        ledger: Arc<dyn IdempotencyLedger>,
        config: &IdempotencyConfig,
    ) -> PutDatasState {
        self.idempotency = Idempotency::new(ledger, config);
        self.faults = Arc::new(ProduceFaults::from_config(config));
        self
    }
}

impl logpool_api::metrics::CounterSource for PutDatasStats {
    fn counters(&self) -> Vec<logpool_api::metrics::CounterReading> {
        vec![
            (
                "logpool_put_requests_accepted_total",
                "PutDatas requests answered 2xx.",
                self.requests_accepted.load(Ordering::Relaxed),
            ),
            (
                "logpool_put_records_accepted_total",
                "Records durable in the queue.",
                self.records_accepted.load(Ordering::Relaxed),
            ),
            (
                "logpool_put_records_refused_total",
                "Records refused for an event time outside their pool's window.",
                self.records_refused.load(Ordering::Relaxed),
            ),
            (
                "logpool_put_requests_rejected_total",
                "PutDatas requests refused for bad input.",
                self.requests_rejected.load(Ordering::Relaxed),
            ),
            (
                "logpool_put_requests_failed_total",
                "PutDatas requests the queue could not take.",
                self.requests_failed.load(Ordering::Relaxed),
            ),
            (
                "logpool_put_requests_without_idempotency_ledger_total",
                "PutDatas requests with an Idempotency-Key stored without it: the ledger was unreachable.",
                self.requests_without_ledger.load(Ordering::Relaxed),
            ),
        ]
    }
}

/// The put-datas routes with their permissions: PutDatas, and the Elasticsearch
/// bulk API under `/es` ([`es_bulk`]).
pub fn routes() -> Routes<PutDatasState> {
    Routes::new()
        .post(
            "/v1/projects/{project}/pools/{pool}/logs",
            Permission::Ingest,
            put_logs,
        )
        .post(otlp::PATH, Permission::Ingest, otlp::export_logs)
        .post(loki::PATH, Permission::Ingest, loki::push)
        .merge(es_bulk::routes())
}

/// Builds the put-datas router.
pub fn router(state: PutDatasState) -> Router {
    let access = state.routing.clone();
    logpool_api::layers::with_common_layers(routes().into_router(access).with_state(state))
}

/// Query parameters of PutDatas.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutParams {
    /// Pins the whole request to one shard (per-key ordering).
    pub hash_key: Option<String>,
}

async fn put_logs(
    State(state): State<PutDatasState>,
    principal: Principal,
    path: Path<(String, String)>,
    params: AppQuery<PutParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<PutAnswer>, ApiError> {
    let stats = state.stats.clone();
    let result = put_logs_counted(State(state), principal, path, params, headers, body).await;
    stats.count(result.as_ref().map(|Json(answer)| answer.accepted));
    result
}

impl PutDatasStats {
    /// Counts one ingest request's outcome: its accepted records, or its error.
    pub(crate) fn count(&self, outcome: Result<usize, &ApiError>) {
        match outcome {
            Ok(accepted) => {
                self.requests_accepted.fetch_add(1, Ordering::Relaxed);
                self.records_accepted
                    .fetch_add(accepted as u64, Ordering::Relaxed);
            }
            Err(error) if error.code.is_client_error() => {
                self.requests_rejected.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.requests_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

async fn put_logs_counted(
    State(state): State<PutDatasState>,
    principal: Principal,
    Path((project, pool)): Path<(String, String)>,
    AppQuery(params): AppQuery<PutParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<PutAnswer>, ApiError> {
    let tenant = principal.tenant.as_str();
    let target = admit(&state, tenant, &project, &pool)?;
    crate::body::check_declared_length(&headers, &state.limits)?;
    // A tenant or project whose rate bucket is already empty is refused before its
    // body is decompressed and parsed, so that a flood of refused requests costs
    // little CPU. The body is still read (and dropped) so the client gets its 429
    // on a connection it can reuse.
    if let Err(refused) = target.check_rate(&state) {
        discard_body(body, &state.limits).await;
        return Err(refused);
    }
    let format = BodyFormat::from_headers(&headers)?;
    let key = RequestKey::from_headers(&headers)?;
    let raw = read_body(body, &headers, &state.limits).await?;
    store(
        &state,
        &target,
        raw,
        format,
        key.as_ref(),
        params.hash_key.as_deref(),
    )
    .await
    .map(Json)
}

/// A pool a request may write to: it exists and its project is under its storage
/// quota.
pub struct Target {
    tenant: String,
    project: String,
    route: PoolRoute,
    snapshot: Arc<RoutingSnapshot>,
}

/// Finds the pool of a write and checks its project's storage quota.
///
/// # Errors
/// 404 for an unknown pool; 403 `quota_exceeded` when the project is over its
/// storage quota.
pub(crate) fn admit(
    state: &PutDatasState,
    tenant: &str,
    project: &str,
    pool: &str,
) -> Result<Target, ApiError> {
    let route = state.routing.pool(tenant, project, pool)?;
    let snapshot = state.routing.snapshot();
    if snapshot.access.is_over_storage_quota(tenant, project) {
        return Err(storage_quota_error(&snapshot.access, tenant, project));
    }
    Ok(Target {
        tenant: tenant.to_string(),
        project: project.to_string(),
        route,
        snapshot,
    })
}

impl Target {
    /// Refuses the request when the tenant's or project's rate bucket is already
    /// empty (before the body is parsed).
    pub(crate) fn check_rate(&self, state: &PutDatasState) -> Result<(), ApiError> {
        let empty = ingest_draws(&self.snapshot.access, &self.tenant, &self.project, 0, 0);
        state.quotas.take(&empty)
    }
}

/// Stores a read and decompressed body of `format` in the target pool: the
/// event-time window here, then [`store_records`] (rate quotas, shard plan, durable
/// produce). Answers only once every batch is durable.
pub(crate) async fn store(
    state: &PutDatasState,
    target: &Target,
    raw: Bytes,
    format: BodyFormat,
    key: Option<&RequestKey>,
    hash_key: Option<&str>,
) -> Result<PutAnswer, ApiError> {
    let route = &target.route;
    let arrival_ns = now_ns();
    let window = EventTimeWindow::for_pool(
        &state.limits,
        &route.event_window,
        route.retention_days,
        arrival_ns,
    );
    // Each record goes straight into batch JSON; no `Record` is built. Records outside
    // the event-time window are left out here, before anything is queued.
    let (records, refusals) = match format {
        BodyFormat::Json => encode_json_body_in_window(&raw, arrival_ns, &state.limits, &window),
        BodyFormat::Ndjson => {
            encode_ndjson_body_in_window(&raw, arrival_ns, &state.limits, &window)
        }
    }
    .map_err(ingest_error)?;
    let keyed = key.map(|key| {
        let body = digest(&[&raw, hash_key.unwrap_or("").as_bytes(), &[format as u8]]);
        (key, body)
    });
    store_encoded(
        state,
        target,
        records,
        refusals,
        raw.len() as u64,
        keyed,
        hash_key,
    )
    .await
}

/// Stores records already read from a request (see [`store`]) and answers as
/// PutDatas does: the records refused for their event time are counted and listed.
pub(crate) async fn store_encoded(
    state: &PutDatasState,
    target: &Target,
    records: EncodedRecords,
    refusals: Refusals,
    body_bytes: u64,
    keyed: Option<(&RequestKey, String)>,
    hash_key: Option<&str>,
) -> Result<PutAnswer, ApiError> {
    state
        .stats
        .records_refused
        .fetch_add(refusals.count as u64, Ordering::Relaxed);
    if records.is_empty() {
        return Err(all_refused_error(refusals));
    }
    let accepted = records.len();
    let route = &target.route;
    let stored = store_records(
        state,
        &target.snapshot.access,
        StoreTarget {
            tenant: &target.tenant,
            project: &target.project,
            route,
        },
        &records,
        body_bytes,
        keyed,
        hash_key,
    )
    .await?;
    Ok(PutAnswer {
        accepted,
        shards: stored.shards,
        refused: refusals.count,
        refused_records: refusals
            .listed
            .into_iter()
            .map(|refused| RefusedRecord {
                path: refused.path,
                limit: refused.limit,
                reason: refused.reason,
            })
            .collect(),
        write_token: stored.write_token.to_string(),
    })
}

/// Where [`store_records`] writes: the caller's tenant, the project and its pool.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoreTarget<'a> {
    pub(crate) tenant: &'a str,
    pub(crate) project: &'a str,
    pub(crate) route: &'a PoolRoute,
}

/// What [`store_records`] made durable.
pub(crate) struct Stored {
    /// One receipt per shard written.
    pub(crate) shards: Vec<ShardReceipt>,
    /// The token a read-your-writes search waits for.
    pub(crate) write_token: WriteToken,
}

/// The durable half of PutDatas, shared by every ingest protocol: draws the rate
/// quotas for `records`, splits them over the pool's shards and answers once every
/// batch is in the queue (under a request key's protection when `keyed` has one).
///
/// # Errors
/// 429 past a rate quota, 503 (with `Retry-After`) when the queue cannot take a batch.
pub(crate) async fn store_records(
    state: &PutDatasState,
    access: &AccessTable,
    target: StoreTarget<'_>,
    records: &EncodedRecords,
    body_bytes: u64,
    keyed: Option<(&RequestKey, String)>,
    hash_key: Option<&str>,
) -> Result<Stored, ApiError> {
    let StoreTarget {
        tenant,
        project,
        route,
    } = target;
    let accepted = records.len();
    state.quotas.take(&ingest_draws(
        access,
        tenant,
        project,
        accepted as u64,
        body_bytes,
    ))?;
    // A keyed request is split the same way on every retry: its key, not a counter,
    // picks the first shard.
    let first_shard = match &keyed {
        Some((key, _)) => fnv1a(key.as_str().as_bytes()) as usize,
        None => state.next_shard.fetch_add(1, Ordering::Relaxed),
    };
    let plan = sharding::plan(accepted, route.partitions.len(), hash_key, first_shard);
    let parts = plan
        .into_iter()
        .map(|(shard_index, run)| {
            let shard = route
                .shard_addr(shard_index)
                .ok_or_else(|| ApiError::internal("shard plan outside the pool"))?;
            let records_in_run = run.len();
            let payload = records.encode_run(run).map_err(ApiError::internal)?;
            Ok(PlannedPart {
                shard_index,
                shard,
                records: records_in_run,
                payload: Bytes::from(payload),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let shards = match keyed {
        Some((key, body)) => {
            let keyed = state
                .idempotency
                .put_once(
                    &state.queue,
                    &state.faults,
                    route.pool_id,
                    key,
                    body,
                    &parts,
                )
                .await?;
            match keyed {
                KeyedPut::Stored(receipts) => receipts
                    .into_iter()
                    .map(|receipt| ShardReceipt {
                        shard: receipt.shard_index,
                        position: receipt.position,
                        records: receipt.records,
                    })
                    .collect(),
                // Ingest goes on while the ledger (etcd) is down, as it does for the
                // routing: the request is stored as if it had no key.
                KeyedPut::LedgerUnavailable => {
                    state
                        .stats
                        .requests_without_ledger
                        .fetch_add(1, Ordering::Relaxed);
                    produce_unkeyed(state, route.pool_id, &parts).await?
                }
            }
        }
        None => produce_unkeyed(state, route.pool_id, &parts).await?,
    };
    let write_token = WriteToken {
        pool_id: route.pool_id,
        batches: shards
            .iter()
            .map(|receipt| {
                let shard = route
                    .shard_addr(receipt.shard)
                    .ok_or_else(|| ApiError::internal("a receipt outside the pool"))?;
                Ok(WrittenBatch {
                    partition: shard.partition,
                    position: receipt.position,
                    records: receipt.records as u32,
                })
            })
            .collect::<Result<_, ApiError>>()?,
    };
    Ok(Stored {
        shards,
        write_token,
    })
}

/// Produces every part of a request without a key (or whose key's ledger is down).
async fn produce_unkeyed(
    state: &PutDatasState,
    pool_id: PoolId,
    parts: &[PlannedPart],
) -> Result<Vec<ShardReceipt>, ApiError> {
    let batches: Vec<&PlannedPart> = parts.iter().collect();
    let outcomes = idempotency::produce_parts(&state.queue, &state.faults, pool_id, &batches).await;
    parts
        .iter()
        .zip(outcomes)
        .map(|(part, outcome)| {
            Ok(ShardReceipt {
                shard: part.shard_index,
                position: outcome?,
                records: part.records,
            })
        })
        .collect()
}

/// The 400 of a request whose every record is outside the event-time window: it
/// names the first record's limit and path, and lists the refused records as a
/// partly accepted request would.
fn all_refused_error(refusals: Refusals) -> ApiError {
    let first = refusals.listed.first();
    let mut error = ApiError::bad_request(format!(
        "all {} records are outside the pool's accepted event-time window{}",
        refusals.count,
        first
            .map(|first| format!("; `{}`: {}", first.path, first.reason))
            .unwrap_or_default()
    ));
    if let Some(first) = first {
        error = error
            .with_detail("limit", first.limit.clone())
            .with_detail("path", first.path.clone());
    }
    error.with_detail("refused", refusals.count).with_detail(
        "refused_records",
        serde_json::to_value(&refusals.listed).unwrap_or_default(),
    )
}

/// Reads and drops a refused request's body, up to the body size limit.
pub(crate) async fn discard_body(body: Body, limits: &IngestLimits) {
    let mut chunks = body.into_data_stream();
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = chunks.next().await {
        seen = seen.saturating_add(chunk.len());
        if seen > limits.max_body_bytes {
            return;
        }
    }
}

/// The token-bucket draws of one request: records and bytes, from the tenant's and
/// the project's buckets when they have a limit.
fn ingest_draws<'a>(
    access: &AccessTable,
    tenant: &str,
    project: &str,
    records: u64,
    bytes: u64,
) -> Vec<Draw<'a>> {
    let tenant_limits = access.tenant_limits.get(tenant);
    let project_limits = access
        .project_limits
        .get(tenant)
        .and_then(|projects| projects.get(project));
    let mut draws = Vec::new();
    for (scope, owner, limits) in [
        (
            format!("tenant/{tenant}"),
            format!("tenant `{tenant}`"),
            tenant_limits,
        ),
        (
            format!("project/{tenant}/{project}"),
            format!("project `{project}`"),
            project_limits,
        ),
    ] {
        let Some(limits) = limits else { continue };
        if let Some(rate) = limits.ingest_records_per_s {
            draws.push(Draw {
                bucket: format!("{scope}/records"),
                rate,
                amount: records,
                limit_name: "ingest_records_per_s",
                owner: owner.clone(),
            });
        }
        if let Some(rate) = limits.ingest_bytes_per_s {
            draws.push(Draw {
                bucket: format!("{scope}/bytes"),
                rate,
                amount: bytes,
                limit_name: "ingest_bytes_per_s",
                owner,
            });
        }
    }
    draws
}

pub(crate) fn storage_quota_error(access: &AccessTable, tenant: &str, project: &str) -> ApiError {
    let quota = access.limits_for(tenant, Some(project)).storage_bytes;
    let mut error = ApiError::new(
        ErrorCode::QuotaExceeded,
        format!(
            "project `{project}` is over its storage quota; writes are refused until \
             retention or a higher quota brings it under"
        ),
    )
    .with_detail("limit", "storage_bytes");
    if let Some(quota) = quota {
        error = error.with_detail("quota", quota);
    }
    error
}

pub(crate) fn ingest_error(error: IngestError) -> ApiError {
    let message = error.to_string();
    match error {
        IngestError::Malformed { location, .. } => {
            let mut api = ApiError::bad_request(message);
            if let Some(location) = location {
                api = api.with_detail("location", location);
            }
            api
        }
        IngestError::Invalid { path, .. } => {
            ApiError::bad_request(message).with_detail("path", path)
        }
        IngestError::LimitExceeded { limit, path, .. } => {
            ApiError::new(logpool_api::ErrorCode::PayloadTooLarge, message)
                .with_detail("limit", limit)
                .with_detail("path", path)
        }
        IngestError::Empty => ApiError::bad_request(message),
    }
}
