//! Elasticsearch bulk ingest under `/es`: what Filebeat, Fluent Bit, Vector,
//! Logstash, syslog-ng's `elasticsearch-http()` and the Elasticsearch clients send.
//!
//! `POST /es/_bulk` and `POST /es/{index}/_bulk` take NDJSON action/document pairs
//! (optionally gzip or zstd encoded, under the PutDatas body limit). Each action's
//! index names its pool as `{project}.{pool}` ([`index_name`]); `@timestamp`
//! becomes the record time ([`document`]). The items of each pool are stored through
//! PutDatas' own durable path ([`crate::store_records`]: quotas, shards, queue), and
//! the answer, Elasticsearch's (`took`, `errors`, one status per item), is given only
//! once they are durable, so a shipper retries just the items that failed. When no
//! item could be stored because the queue or a rate quota refused, the whole request
//! gets that 503 or 429 with `Retry-After`, as PutDatas would.
//!
//! Modules: [`request`] (the body's lines), [`index_name`] (index to pool),
//! [`document`] (document to record), [`discovery`] (the calls made before sending).

pub mod answer;
pub mod discovery;
pub mod document;
pub mod index_name;
pub mod request;

use std::collections::HashMap;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use logpool_api::error::status_of;
use logpool_api::time::now_ns;
use logpool_api::{ApiError, Principal, Routes};
use logpool_core::access::Permission;
use logpool_core::batch::EncodedRecords;
use logpool_core::ingest::window::EventTimeWindow;
use logpool_core::routing::{PoolRoute, RoutingSnapshot};

use crate::body::read_body;
use crate::{storage_quota_error, store_records, PutDatasState, StoreTarget};
use request::{parse_items, Action};

/// The path prefix of every Elasticsearch-compatible route.
pub const PREFIX: &str = "/es";

/// The Elasticsearch-compatible routes of put-datas with their permissions.
pub fn routes() -> Routes<PutDatasState> {
    Routes::new()
        .get("/es", Permission::Authenticated, discovery::info)
        .get("/es/", Permission::Authenticated, discovery::info)
        .get(
            "/es/_license",
            Permission::Authenticated,
            discovery::license,
        )
        .get("/es/_xpack", Permission::Authenticated, discovery::xpack)
        .get(
            "/es/_cluster/health",
            Permission::Authenticated,
            discovery::cluster_health,
        )
        .get(
            "/es/_template/{name}",
            Permission::Authenticated,
            discovery::template,
        )
        .put(
            "/es/_template/{name}",
            Permission::Ingest,
            discovery::put_template,
        )
        .get(
            "/es/_index_template/{name}",
            Permission::Authenticated,
            discovery::template,
        )
        .put(
            "/es/_index_template/{name}",
            Permission::Ingest,
            discovery::put_template,
        )
        .get("/es/{index}", Permission::Ingest, discovery::index_exists)
        .post("/es/_bulk", Permission::Ingest, bulk)
        .post("/es/{index}/_bulk", Permission::Ingest, bulk_into_index)
}

async fn bulk(
    State(state): State<PutDatasState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    counted(
        &state,
        bulk_counted(&state, &principal, None, &headers, body).await,
    )
}

async fn bulk_into_index(
    State(state): State<PutDatasState>,
    principal: Principal,
    Path(index): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let result = bulk_counted(&state, &principal, Some(index), &headers, body).await;
    counted(&state, result)
}

/// A bulk request's answer: its JSON and how many items were stored.
struct BulkReply {
    body: Vec<u8>,
    stored: usize,
}

/// Counts a bulk request in PutDatas' counters.
fn counted(
    state: &PutDatasState,
    result: Result<BulkReply, ApiError>,
) -> Result<Response, ApiError> {
    state.stats.count(result.as_ref().map(|reply| reply.stored));
    result.map(|reply| answer::response(reply.body))
}

/// The documents of one pool in a request, where they are in the body.
struct PoolBatch<'r> {
    project: String,
    route: PoolRoute,
    /// The staged documents, in request order.
    staged: Vec<StagedDocument<'r>>,
    /// Their bytes, each with its newline (as PutDatas counts an NDJSON body).
    bytes: usize,
}

/// A staged document: its item, its line in the body, and its text.
struct StagedDocument<'r> {
    item: usize,
    line: usize,
    document: &'r [u8],
}

/// What became of one item.
#[derive(Debug)]
pub enum Pending {
    /// Waiting for its pool's batch.
    Queued,
    /// Refused: status, Elasticsearch error type, reason.
    Refused(u16, &'static str, String),
}

async fn bulk_counted(
    state: &PutDatasState,
    principal: &Principal,
    path_index: Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<BulkReply, ApiError> {
    let started = Instant::now();
    let raw = read_body(body, headers, &state.limits).await?;
    let items = parse_items(&raw, state.limits.max_records_per_request)?;
    let arrival_ns = now_ns();
    let snapshot = state.routing.snapshot();
    let tenant = principal.tenant.as_str();

    let mut pending = Vec::with_capacity(items.len());
    let mut indices = Vec::with_capacity(items.len());
    let mut pools = PoolBatches::default();
    for (position, item) in items.iter().enumerate() {
        let index = item.index.as_deref().or(path_index.as_deref());
        indices.push(index.unwrap_or_default());
        let outcome = match (item.action, index) {
            (Action::Update | Action::Delete, _) => Pending::Refused(
                400,
                "illegal_argument_exception",
                format!(
                    "the `{}` action is not supported: stored records are not changed; use \
                     `index` or `create`",
                    item.action.name()
                ),
            ),
            (_, None) => Pending::Refused(
                400,
                "action_request_validation_exception",
                "index is missing: name it in the action (`_index`) or the path \
                 (`/es/{project}.{pool}/_bulk`)"
                    .to_string(),
            ),
            (_, Some(index)) => match pools.batch(principal, &snapshot, index) {
                Ok(batch) => stage_into(item, batch, position),
                Err((status, kind, reason)) => Pending::Refused(status, kind, reason),
            },
        };
        pending.push(outcome);
    }

    // Each pool's records go to the queue through PutDatas' path (quotas, shards,
    // durability), pool after pool: a request seldom names more than one.
    let mut stored_items = vec![false; items.len()];
    let mut failures: Vec<(Vec<usize>, ApiError)> = Vec::new();
    for batch in pools.batches {
        let (records, items) = encode_batch(state, &batch, arrival_ns, &mut pending);
        if records.is_empty() {
            continue;
        }
        let target = StoreTarget {
            tenant,
            project: &batch.project,
            route: &batch.route,
        };
        match store_records(
            state,
            &snapshot.access,
            target,
            &records,
            batch.bytes as u64,
            None,
            None,
        )
        .await
        {
            Ok(_) => {
                for item in &items {
                    stored_items[*item] = true;
                }
            }
            Err(error) => failures.push((items, error)),
        }
    }
    // Nothing stored because the queue or a rate quota refused: the request as a
    // whole gets that answer (503 or 429 with `Retry-After`), which every shipper
    // retries, including those that read only the status line.
    if !stored_items.iter().any(|stored| *stored) {
        if let Some(at) = failures
            .iter()
            .position(|(_, error)| retry_can_succeed(error))
        {
            return Err(failures.swap_remove(at).1);
        }
    }
    for (failed_items, error) in failures {
        let status = status_of(error.code).as_u16();
        let kind = if retry_can_succeed(&error) {
            "es_rejected_execution_exception"
        } else {
            "illegal_argument_exception"
        };
        for item in failed_items {
            pending[item] = Pending::Refused(status, kind, error.message.clone());
        }
    }

    // Made-up ids share the request's prefix: written once, not formatted per item.
    let id_prefix = format!("{arrival_ns:x}-");
    let answers: Vec<answer::ItemAnswer<'_>> = items
        .iter()
        .zip(&pending)
        .zip(indices)
        .map(|((item, outcome), index)| answer::ItemAnswer {
            action: item.action,
            id: item.id.as_deref(),
            index,
            outcome,
        })
        .collect();
    let stored = pending
        .iter()
        .filter(|outcome| matches!(outcome, Pending::Queued))
        .count();
    let took = started.elapsed().as_millis() as u64;
    Ok(BulkReply {
        body: answer::to_json(took, &id_prefix, &answers),
        stored,
    })
}

/// Stages an item's document in its pool's batch, or refuses it.
fn stage_into<'r>(
    item: &request::BulkItem<'r>,
    batch: &mut PoolBatch<'r>,
    position: usize,
) -> Pending {
    let Some(document) = item.document else {
        return Pending::Refused(
            400,
            "action_request_validation_exception",
            "the action has no document".to_string(),
        );
    };
    batch.staged.push(StagedDocument {
        item: position,
        line: item.document_line,
        document,
    });
    batch.bytes += document.len() + 1;
    Pending::Queued
}

/// Encodes a pool's staged documents: in one pass when all are stored, else one by
/// one, refusing those PutDatas refuses. Returns the records and their items.
fn encode_batch(
    state: &PutDatasState,
    batch: &PoolBatch<'_>,
    arrival_ns: i64,
    pending: &mut [Pending],
) -> (EncodedRecords, Vec<usize>) {
    let window = EventTimeWindow::for_pool(
        &state.limits,
        &batch.route.event_window,
        batch.route.retention_days,
        arrival_ns,
    );
    let items = batch.staged.iter().map(|staged| staged.item);
    if batch.staged.is_empty() {
        return (EncodedRecords::default(), Vec::new());
    }
    let documents = batch
        .staged
        .iter()
        .map(|staged| (staged.line, staged.document));
    if let Some(records) =
        document::encode_all(documents, batch.bytes, arrival_ns, &state.limits, &window)
    {
        return (records, items.collect());
    }
    let mut records = EncodedRecords::default();
    let mut stored = Vec::with_capacity(batch.staged.len());
    for staged in &batch.staged {
        match document::encode_document(
            staged.document,
            staged.line,
            arrival_ns,
            &state.limits,
            &window,
        ) {
            Ok(one) => {
                records.append(&one);
                stored.push(staged.item);
            }
            Err(refused) => {
                pending[staged.item] =
                    Pending::Refused(refused.status, refused.kind, refused.reason);
            }
        }
    }
    (records, stored)
}

/// A refused item: status, Elasticsearch error type, reason.
type ItemRefusal = (u16, &'static str, String);

/// The pools a request's items go to, in the order they are first named, each
/// opened (or refused) on the first item that names it.
#[derive(Default)]
struct PoolBatches<'r> {
    batches: Vec<PoolBatch<'r>>,
    /// Each index named so far: its batch, or the refusal of every item naming it.
    by_index: HashMap<&'r str, Result<usize, ItemRefusal>>,
    /// The previous item's index and batch: items mostly name the same one, which
    /// is then found without hashing its name.
    last: Option<(&'r str, usize)>,
}

impl<'r> PoolBatches<'r> {
    /// The batch of the pool `index` names, or the item's refusal.
    fn batch(
        &mut self,
        principal: &Principal,
        snapshot: &RoutingSnapshot,
        index: &'r str,
    ) -> Result<&mut PoolBatch<'r>, ItemRefusal> {
        let found = match self.last {
            Some((last, at)) if last == index => at,
            _ => {
                let batches = &mut self.batches;
                let at = self
                    .by_index
                    .entry(index)
                    .or_insert_with(|| {
                        open_batch(principal, snapshot, index).map(|batch| {
                            batches.push(batch);
                            batches.len() - 1
                        })
                    })
                    .clone()?;
                self.last = Some((index, at));
                at
            }
        };
        self.batches.get_mut(found).ok_or_else(|| {
            (
                500,
                "exception",
                "the pool's batch was not opened".to_string(),
            )
        })
    }
}

/// Resolves an index to its pool for this key, or the refusal of every item that
/// names it.
fn open_batch(
    principal: &Principal,
    snapshot: &RoutingSnapshot,
    index: &str,
) -> Result<PoolBatch<'static>, ItemRefusal> {
    let name = index_name::pool_of_index(index)
        .map_err(|reason| (400, "invalid_index_name_exception", reason))?;
    if !principal.may_see_project(&name.project) {
        return Err((
            403,
            "security_exception",
            format!(
                "this key is limited to another project than `{}`",
                name.project
            ),
        ));
    }
    let route = snapshot
        .pool(&principal.tenant, &name.project, &name.pool)
        .cloned()
        .ok_or_else(|| {
            (
                404,
                "index_not_found_exception",
                format!(
                    "no such index [{index}]: pool `{}` not found in project `{}` (an index \
                     is `{{project}}.{{pool}}` of an existing pool; none is created)",
                    name.pool, name.project
                ),
            )
        })?;
    if snapshot
        .access
        .is_over_storage_quota(&principal.tenant, &name.project)
    {
        let error = storage_quota_error(&snapshot.access, &principal.tenant, &name.project);
        return Err((
            status_of(error.code).as_u16(),
            "cluster_block_exception",
            error.message,
        ));
    }
    Ok(PoolBatch {
        project: name.project,
        route,
        staged: Vec::new(),
        bytes: 0,
    })
}

/// Whether a shipper retrying the item later can succeed: the queue was full or
/// down, or a rate quota was spent.
fn retry_can_succeed(error: &ApiError) -> bool {
    let status = status_of(error.code).as_u16();
    status == 429 || status >= 500
}
