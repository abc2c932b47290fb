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
use std::sync::atomic::Ordering;
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
use logpool_wire::es::{BulkAnswer, BulkItem, BulkItemError, BulkItemResult, BulkShards};

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

/// Counts a bulk request in PutDatas' counters.
fn counted(
    state: &PutDatasState,
    result: Result<BulkAnswer, ApiError>,
) -> Result<Response, ApiError> {
    let stats = &state.stats;
    match &result {
        Ok(answer) => {
            stats.requests_accepted.fetch_add(1, Ordering::Relaxed);
            let stored = answer
                .items
                .iter()
                .filter_map(result_of)
                .filter(|item| item.status == 201)
                .count();
            stats
                .records_accepted
                .fetch_add(stored as u64, Ordering::Relaxed);
        }
        Err(error) if error.code.is_client_error() => {
            stats.requests_rejected.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => {
            stats.requests_failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    result.map(|answer| answer::response(&answer))
}

fn result_of(item: &BulkItem) -> Option<&BulkItemResult> {
    item.index
        .as_ref()
        .or(item.create.as_ref())
        .or(item.update.as_ref())
        .or(item.delete.as_ref())
}

/// The documents of one pool in a request, staged as PutDatas NDJSON lines.
struct PoolBatch {
    project: String,
    route: PoolRoute,
    /// The staged documents, one per line.
    lines: Vec<u8>,
    /// Per staged document: its item, its line in the body, and where it is in
    /// `lines`.
    staged: Vec<StagedDocument>,
}

/// Where a staged document came from and where it is.
struct StagedDocument {
    item: usize,
    line: usize,
    range: std::ops::Range<usize>,
}

/// What became of one item before anything is stored.
pub(crate) enum Pending {
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
) -> Result<BulkAnswer, ApiError> {
    let started = Instant::now();
    let raw = read_body(body, headers, &state.limits).await?;
    let items = parse_items(&raw, state.limits.max_records_per_request)?;
    let arrival_ns = now_ns();
    let snapshot = state.routing.snapshot();
    let tenant = principal.tenant.as_str();

    let mut pending = Vec::with_capacity(items.len());
    let mut indices = Vec::with_capacity(items.len());
    let mut batches: HashMap<String, PoolBatch> = HashMap::new();
    let mut refused_indices: HashMap<String, ItemRefusal> = HashMap::new();
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
            (_, Some(index)) => {
                match pool_batch(
                    principal,
                    &snapshot,
                    index,
                    &mut batches,
                    &mut refused_indices,
                ) {
                    Ok(batch) => stage_into(item, batch, position),
                    Err((status, kind, reason)) => Pending::Refused(status, kind, reason),
                }
            }
        };
        pending.push(outcome);
    }

    // Each pool's records go to the queue through PutDatas' path (quotas, shards,
    // durability), pool after pool: a request seldom names more than one.
    let mut stored_items = vec![false; items.len()];
    let mut failures: Vec<(Vec<usize>, ApiError)> = Vec::new();
    for batch in batches.into_values() {
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
            batch.lines.len() as u64,
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
    let items = items
        .iter()
        .zip(pending)
        .zip(indices)
        .enumerate()
        .map(|(position, ((item, outcome), index))| {
            let id = item
                .id
                .clone()
                .unwrap_or_else(|| made_up_id(&id_prefix, position));
            keyed_by_action(
                item.action,
                item_result(id, index.to_string(), position, outcome),
            )
        })
        .collect::<Vec<_>>();
    Ok(BulkAnswer {
        took: started.elapsed().as_millis() as u64,
        errors: items
            .iter()
            .filter_map(result_of)
            .any(|result| result.status != 201),
        items,
    })
}

/// The id of an item that named none: the request's prefix and its position.
fn made_up_id(prefix: &str, position: usize) -> String {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(position);
    let mut id = String::with_capacity(prefix.len() + digits.len());
    id.push_str(prefix);
    id.push_str(digits);
    id
}

/// One item's entry in the answer.
pub(crate) fn item_result(
    id: String,
    index: String,
    position: usize,
    outcome: Pending,
) -> BulkItemResult {
    match outcome {
        Pending::Queued => BulkItemResult {
            id,
            index,
            primary_term: Some(1),
            seq_no: Some(position as u64),
            shards: Some(BulkShards {
                failed: 0,
                successful: 1,
                total: 1,
            }),
            doc_type: "_doc".to_string(),
            version: Some(1),
            error: None,
            result: Some("created".to_string()),
            status: 201,
        },
        Pending::Refused(status, kind, reason) => BulkItemResult {
            id,
            index,
            primary_term: None,
            seq_no: None,
            shards: None,
            doc_type: "_doc".to_string(),
            version: None,
            error: Some(BulkItemError {
                reason,
                kind: kind.to_string(),
            }),
            result: None,
            status,
        },
    }
}

/// Stages an item's document in its pool's batch, or refuses it.
fn stage_into(item: &request::BulkItem<'_>, batch: &mut PoolBatch, position: usize) -> Pending {
    let Some(document) = item.document else {
        return Pending::Refused(
            400,
            "action_request_validation_exception",
            "the action has no document".to_string(),
        );
    };
    match document::stage(document, item.document_line) {
        Ok(staged) => {
            let start = batch.lines.len();
            batch.lines.extend_from_slice(&staged);
            batch.staged.push(StagedDocument {
                item: position,
                line: item.document_line,
                range: start..batch.lines.len(),
            });
            batch.lines.push(b'\n');
            Pending::Queued
        }
        Err(refused) => Pending::Refused(refused.status, refused.kind, refused.reason),
    }
}

/// Encodes a pool's staged documents: in one pass when all are stored, else one by
/// one, refusing those PutDatas refuses. Returns the records and their items.
fn encode_batch(
    state: &PutDatasState,
    batch: &PoolBatch,
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
    if let Some(records) = document::encode_all(
        &batch.lines,
        batch.staged.len(),
        arrival_ns,
        &state.limits,
        &window,
    ) {
        return (records, items.collect());
    }
    let mut records = EncodedRecords::default();
    let mut stored = Vec::with_capacity(batch.staged.len());
    for staged in &batch.staged {
        match document::encode_staged(
            &batch.lines[staged.range.clone()],
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

/// The batch of the pool `index` names, opened on its first item; an index refused
/// once is refused the same way for every item that names it.
fn pool_batch<'b>(
    principal: &Principal,
    snapshot: &RoutingSnapshot,
    index: &str,
    batches: &'b mut HashMap<String, PoolBatch>,
    refused_indices: &mut HashMap<String, ItemRefusal>,
) -> Result<&'b mut PoolBatch, ItemRefusal> {
    if let Some(refusal) = refused_indices.get(index) {
        return Err(refusal.clone());
    }
    if !batches.contains_key(index) {
        match open_batch(principal, snapshot, index) {
            Ok(batch) => {
                batches.insert(index.to_string(), batch);
            }
            Err(refusal) => {
                refused_indices.insert(index.to_string(), refusal.clone());
                return Err(refusal);
            }
        }
    }
    batches.get_mut(index).ok_or_else(|| {
        (
            500,
            "exception",
            "the pool's batch was not opened".to_string(),
        )
    })
}

/// Resolves an index to its pool for this key, or the refusal of every item that
/// names it.
fn open_batch(
    principal: &Principal,
    snapshot: &RoutingSnapshot,
    index: &str,
) -> Result<PoolBatch, ItemRefusal> {
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
        lines: Vec::new(),
        staged: Vec::new(),
    })
}

/// Whether a shipper retrying the item later can succeed: the queue was full or
/// down, or a rate quota was spent.
fn retry_can_succeed(error: &ApiError) -> bool {
    let status = status_of(error.code).as_u16();
    status == 429 || status >= 500
}

pub(crate) fn keyed_by_action(action: Action, result: BulkItemResult) -> BulkItem {
    let mut item = BulkItem {
        create: None,
        index: None,
        update: None,
        delete: None,
    };
    match action {
        Action::Index => item.index = Some(result),
        Action::Create => item.create = Some(result),
        Action::Update => item.update = Some(result),
        Action::Delete => item.delete = Some(result),
    }
    item
}
