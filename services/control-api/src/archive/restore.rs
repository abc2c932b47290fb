//! Restores: archived records of a time range are produced back into a pool through
//! the queue, so loghub indexes them like any other batch.
//!
//! # Idempotency
//! A restore's id is a hash of its parameters (project, pool, range as sent,
//! target), so asking again for the same restore returns the running or finished job instead of
//! starting a second one. Progress is kept in the object store, in the tenant's area
//! ([`archive::restore_state_key`]; progress saved before tenant areas existed is
//! still read from its legacy key), so a restore interrupted by a control-api
//! restart resumes when it is asked for again. Before producing an
//! object's records the job saves, per object, the target shard and its end
//! position; on resume it reads that shard from there and skips every batch whose
//! payload is already in the queue, so an object is never produced twice.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use logpool_api::Principal;
use logpool_api::{ApiError, AppJson};
use logpool_core::archive::{self, ArchiveSettings};
use logpool_core::batch::{encode_batch, BATCH_FORMAT_VERSION};
use logpool_core::record::{format_time_ns, Record};
use logpool_core::routing::{PoolRoute, ShardAddr};
use logpool_core::stable_hash::Fnv1a;
use logpool_engines::metadata::PoolRef;
use logpool_engines::object_store::{ObjectStore, ObjectStoreError};
use logpool_engines::queue::{BatchProperties, Queue, ReadStart};
use logpool_wire::archive as wire;
use logpool_wire::TimeParam;
use serde::{Deserialize, Serialize};

use super::listing::{
    describe_store_error, objects_in_range, store_error, time_bound, PoolPrefixes,
};
use super::{object_store, settings_of};
use crate::{check_name, ControlState};

/// Records per produced queue message.
const RECORDS_PER_BATCH: usize = 1000;
/// Messages read per call while looking for already produced batches.
const SCAN_MESSAGES: usize = 500;
/// Length of a restore id: 64 bits in lowercase hex ([`stable_id`]).
const RESTORE_ID_LEN: usize = 16;

/// Restores started or resumed by this process, by id.
#[derive(Debug, Clone, Default)]
pub struct Restores {
    jobs: Arc<Mutex<HashMap<String, Arc<Mutex<RestoreState>>>>>,
}

/// Progress of one restore, as answered by the status endpoint and saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RestoreState {
    id: String,
    pool: String,
    into_pool: String,
    from: Option<String>,
    to: Option<String>,
    /// `running`, `done` or `failed`.
    status: String,
    objects_total: u64,
    objects_done: u64,
    records_restored: u64,
    error: Option<String>,
    /// Keys of objects whose records are all in the queue.
    done_keys: Vec<String>,
    /// Per object being produced: target partition and its end position before.
    pending: HashMap<String, (u32, u64)>,
}

impl RestoreState {
    fn to_wire(&self) -> wire::Restore {
        wire::Restore {
            error: self.error.clone(),
            from: self.from.clone(),
            id: self.id.clone(),
            into_pool: self.into_pool.clone(),
            objects_done: self.objects_done,
            objects_total: self.objects_total,
            pool: self.pool.clone(),
            records_restored: self.records_restored,
            status: self.status.clone(),
            to: self.to.clone(),
        }
    }
}

/// A stable hash, so the same request maps to the same id in every process.
fn stable_id(parts: &[&str]) -> String {
    let mut hash = Fnv1a::default();
    for part in parts {
        hash.write(part.as_bytes());
        hash.write(&[0]);
    }
    format!("{:016x}", hash.finish())
}

/// Checks a restore id from a path before it goes near a key: exactly what
/// [`stable_id`] makes, so no `/`, `..` or NUL reaches the object store.
fn check_restore_id(id: &str) -> Result<(), ApiError> {
    let well_formed = id.len() == RESTORE_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if well_formed {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "path parameter `id` must be a restore id of {RESTORE_ID_LEN} lowercase hex digits, got `{}`",
        id.escape_debug().to_string().chars().take(64).collect::<String>()
    ))
    .with_detail("parameter", "id"))
}

fn state_key(settings: &ArchiveSettings, tenant: &str, project: &str, id: &str) -> String {
    archive::restore_state_key(&settings.prefix, tenant, project, id)
}

/// The saved progress of a restore: from its key in the tenant's area, or else from
/// where it was kept before tenant areas existed.
async fn load_saved(
    store: &dyn ObjectStore,
    settings: &ArchiveSettings,
    tenant: &str,
    project: &str,
    id: &str,
) -> Result<Option<RestoreState>, ApiError> {
    let legacy = archive::legacy_restore_state_key(&settings.prefix, tenant, project, id);
    for key in [state_key(settings, tenant, project, id), legacy] {
        match store.get(&key).await {
            Ok(bytes) => return Ok(serde_json::from_slice(&bytes).ok()),
            Err(ObjectStoreError::NotFound(_)) => {}
            Err(error) => return Err(store_error(error)),
        }
    }
    Ok(None)
}

async fn save(
    store: &dyn ObjectStore,
    key: &str,
    state: &Mutex<RestoreState>,
) -> Result<(), ObjectStoreError> {
    let bytes = {
        let state = state.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::to_vec(&*state).unwrap_or_default()
    };
    store.put(key, Bytes::from(bytes)).await
}

pub(crate) async fn start_restore(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, pool)): Path<(String, String)>,
    AppJson(body): AppJson<wire::RestoreRequest>,
) -> Result<(StatusCode, Json<wire::Restore>), ApiError> {
    check_name("into_pool", &body.into_pool)?;
    if body.into_pool == pool {
        return Err(ApiError::bad_request(
            "`into_pool` must be another pool than the archived one (restored records would be archived twice)",
        )
        .with_detail("field", "into_pool"));
    }
    let from_text = body.from.as_ref().map(TimeParam::as_text);
    let to_text = body.to.as_ref().map(TimeParam::as_text);
    let from_ns = time_bound("from", from_text.as_deref())?;
    let to_ns = time_bound("to", to_text.as_deref())?;
    if let (Some(from), Some(to)) = (from_ns, to_ns) {
        if from >= to {
            return Err(
                ApiError::bad_request("`from` must be before `to`").with_detail("field", "from")
            );
        }
    }
    let source = state
        .metadata
        .get_pool(&PoolRef::new(&principal.tenant, &project, &pool))
        .await?;
    let target = state
        .metadata
        .get_pool(&PoolRef::new(&principal.tenant, &project, &body.into_pool))
        .await?;
    let settings = settings_of(&state, &principal.tenant, &project, &pool).await?;
    let store = object_store(&state)?;
    // The bounds as sent, not as resolved: a retried request with a relative bound
    // (`now`, `-1h`) is the same restore.
    let id = stable_id(&[
        &project,
        &pool,
        &source.id.to_string(),
        from_text.as_deref().unwrap_or(""),
        to_text.as_deref().unwrap_or(""),
        &body.into_pool,
        &target.id.to_string(),
    ]);
    // Jobs are known by their state key, which names the tenant and project, so a
    // status lookup can never find another tenant's restore by its id.
    let key = state_key(&settings, &principal.tenant, &project, &id);
    if let Some(job) = state.restores.job(&key) {
        let snapshot = job.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if snapshot.status != "failed" {
            return Ok((StatusCode::OK, Json(snapshot.to_wire())));
        }
    }
    let mut job_state = load_saved(store.as_ref(), &settings, &principal.tenant, &project, &id)
        .await?
        .unwrap_or(RestoreState {
            id: id.clone(),
            pool: pool.clone(),
            into_pool: body.into_pool.clone(),
            from: from_ns.map(format_time_ns),
            to: to_ns.map(format_time_ns),
            status: "running".to_string(),
            objects_total: 0,
            objects_done: 0,
            records_restored: 0,
            error: None,
            done_keys: Vec::new(),
            pending: HashMap::new(),
        });
    if job_state.status == "done" {
        return Ok((StatusCode::OK, Json(job_state.to_wire())));
    }
    job_state.status = "running".to_string();
    job_state.error = None;
    let job = Arc::new(Mutex::new(job_state));
    state.restores.insert(&key, job.clone());
    let answer = job.lock().unwrap_or_else(|p| p.into_inner()).to_wire();
    let prefixes = PoolPrefixes::new(&settings.prefix, &principal.tenant, &project, &pool);
    let queue = state.queue.clone();
    let route = target.route();
    tokio::spawn(async move {
        let work = Work {
            store: store.as_ref(),
            queue: queue.as_ref(),
            target: &route,
            job: &job,
            state_key: &key,
        };
        let result = work.run(&prefixes, from_ns, to_ns).await;
        {
            let mut state = job.lock().unwrap_or_else(|p| p.into_inner());
            match result {
                Ok(()) => state.status = "done".to_string(),
                Err(error) => {
                    tracing::warn!(%error, id = state.id, "restore failed");
                    state.status = "failed".to_string();
                    state.error = Some(error);
                }
            }
        }
        if let Err(error) = save(store.as_ref(), &key, &job).await {
            tracing::warn!(%error, "failed to save the final restore state");
        }
    });
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

pub(crate) async fn restore_status(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, pool, id)): Path<(String, String, String)>,
) -> Result<Json<wire::Restore>, ApiError> {
    check_restore_id(&id)?;
    let settings = settings_of(&state, &principal.tenant, &project, &pool).await?;
    let key = state_key(&settings, &principal.tenant, &project, &id);
    if let Some(job) = state.restores.job(&key) {
        let snapshot = job.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if snapshot.pool == pool {
            return Ok(Json(snapshot.to_wire()));
        }
    }
    let store = object_store(&state)?;
    match load_saved(store.as_ref(), &settings, &principal.tenant, &project, &id).await? {
        Some(saved) => Ok(Json(saved.to_wire())),
        None => Err(ApiError::not_found(format!("restore `{id}` not found"))),
    }
}

impl Restores {
    fn job(&self, id: &str) -> Option<Arc<Mutex<RestoreState>>> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    fn insert(&self, id: &str, job: Arc<Mutex<RestoreState>>) {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), job);
    }
}

/// One running restore.
struct Work<'a> {
    store: &'a dyn ObjectStore,
    queue: &'a dyn Queue,
    target: &'a PoolRoute,
    job: &'a Mutex<RestoreState>,
    state_key: &'a str,
}

impl Work<'_> {
    fn update(&self, change: impl FnOnce(&mut RestoreState)) {
        change(&mut self.job.lock().unwrap_or_else(|p| p.into_inner()));
    }

    async fn save(&self) -> Result<(), String> {
        save(self.store, self.state_key, self.job)
            .await
            .map_err(|e| format!("saving progress: {}", describe_store_error(&e).1))
    }

    async fn run(
        &self,
        prefixes: &PoolPrefixes,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<(), String> {
        let objects = objects_in_range(self.store, prefixes, from, to)
            .await
            .map_err(|e| e.message)?;
        let done: HashSet<String> = self
            .job
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .done_keys
            .iter()
            .cloned()
            .collect();
        self.update(|s| {
            s.objects_total = objects.len() as u64;
            s.objects_done = objects.iter().filter(|o| done.contains(&o.key)).count() as u64;
        });
        self.save().await?;
        for object in objects.iter().filter(|o| !done.contains(&o.key)) {
            // The saved error is shown to the caller: it names the object by its
            // partition and positions, and logs the key and the store's own words.
            let object_label = format!(
                "archived object {}-{}-{}",
                object.name.partition, object.name.first, object.name.last
            );
            let data = self.store.get(&object.key).await.map_err(|e| {
                tracing::warn!(key = object.key, error = %e, "restore cannot read an object");
                format!("reading {object_label}: {}", describe_store_error(&e).1)
            })?;
            let records: Vec<Record> = archive::decompress(&data, object.name.compression)
                .and_then(|lines| archive::parse_lines(&lines))
                .map_err(|e| format!("{object_label}: {e}"))?
                .into_iter()
                .filter(|r| from.is_none_or(|f| r.time_ns >= f) && to.is_none_or(|t| r.time_ns < t))
                .collect();
            let count = records.len() as u64;
            self.produce_object(&object.key, &records).await?;
            self.update(|s| {
                s.pending.remove(&object.key);
                s.done_keys.push(object.key.clone());
                s.objects_done += 1;
                s.records_restored += count;
            });
            self.save().await?;
        }
        Ok(())
    }

    /// Produces an object's records as batches into one shard of the target, skipping
    /// batches an interrupted run already produced.
    async fn produce_object(&self, key: &str, records: &[Record]) -> Result<(), String> {
        let shards = self.target.shard_addrs();
        if shards.is_empty() {
            return Err(format!("pool `{}` has no shards", self.target.name));
        }
        let pending = self
            .job
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pending
            .get(key)
            .copied();
        let mut already: Vec<Bytes> = Vec::new();
        let shard = match pending {
            Some((partition, start)) => {
                let shard = ShardAddr {
                    tenant: self.target.tenant.clone(),
                    project: self.target.project.clone(),
                    partition,
                };
                already = self.payloads_since(&shard, start).await?;
                shard
            }
            None => {
                let index = (stable_id(&[key]).as_bytes()[15] as usize) % shards.len();
                let shard = shards[index].clone();
                let start = self
                    .queue
                    .end_position(&shard)
                    .await
                    .map_err(|e| e.to_string())?;
                self.update(|s| {
                    s.pending.insert(key.to_string(), (shard.partition, start));
                });
                self.save().await?;
                shard
            }
        };
        for chunk in records.chunks(RECORDS_PER_BATCH) {
            let payload = Bytes::from(encode_batch(chunk).map_err(|e| e.to_string())?);
            if already.contains(&payload) {
                continue;
            }
            let properties = BatchProperties {
                pool_id: self.target.pool_id,
                record_count: chunk.len() as u32,
                format_version: BATCH_FORMAT_VERSION,
            };
            self.queue
                .produce(&shard, properties, payload)
                .await
                .map_err(|e| format!("producing into `{}`: {e}", self.target.name))?;
        }
        Ok(())
    }

    /// Payloads of the target pool in `shard` from `start` to its current end.
    async fn payloads_since(&self, shard: &ShardAddr, start: u64) -> Result<Vec<Bytes>, String> {
        let end = self
            .queue
            .end_position(shard)
            .await
            .map_err(|e| e.to_string())?;
        let mut next = start;
        let mut payloads = Vec::new();
        while next < end {
            let messages = self
                .queue
                .read(shard, ReadStart::Position(next), SCAN_MESSAGES)
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = messages.last() else { break };
            next = last.position + 1;
            payloads.extend(
                messages
                    .into_iter()
                    .filter(|m| m.properties.pool_id == self.target.pool_id)
                    .map(|m| m.payload),
            );
        }
        Ok(payloads)
    }
}
