//! The embedded index: tantivy, one index per pool and UTC day.
//!
//! Layout: `{dir}/{tenant}/{pool_id}/{yyyy-mm-dd}/` holds one tantivy index. Every
//! day's documents and queries follow the pool's field types, which come with its
//! route ([`PoolRoute::field_types`]): the index keeps no schema of its own. Retention
//! deletes whole day directories, and a search opens only the days that overlap its
//! time range. Writers are opened on first write, and never more than
//! `max_open_writers` at once, across all pools and days: each one holds its own
//! memory budget and `writer_threads + 1 + writer_merge_threads` threads. A write
//! that needs a writer beyond the bound first commits and closes the least recently
//! written one (see [`TantivyIndex::open_writer_within_bound`]), so even one batch
//! that spans many days holds at most the bound. Committing a writer early only makes
//! documents durable sooner: messages are still acked after LogHub's own commit.
//!
//! Idempotency: every document carries the key of its queue message; a replacing
//! write deletes the keys of its messages before adding their records again, and
//! tantivy applies a delete only to documents added before it, so the new copies
//! survive and the old ones (committed or not) are gone. A queue message is immutable,
//! so its redelivery carries the same records.

mod aggregate;
#[cfg(feature = "bench-baseline")]
mod bare;
mod collectors;
mod compile;
mod context;
mod legacy_types;
mod line_phrase;
mod schema;
mod staging;
mod storage;
mod stream_order;

use logpool_core::pool_id::PoolId;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use logpool_core::routing::PoolRoute;
use serde::{Deserialize, Serialize};
use tantivy::directory::MmapDirectory;
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term,
};

#[cfg(feature = "bench-baseline")]
pub use self::bare::{space_by_field, BareIndexReader, BareIndexWriter, BarePage, FieldSpace};
use self::collectors::{FirstInOrder, TimeHistogram};
use self::schema::{LogSchema, StoredSource};
use self::staging::stage;
use super::plan::{CompiledQuery, PartitionHandle, PlanningWork};
use super::{
    ContextPage, ContextRequest, HistogramBucket, HistogramRequest, IndexDoc, IndexError,
    IndexResult, LogIndex, PageRequest, PlannedPartition, SearchHit, SearchPage, SearchPlan,
    SearchRequest, SortKey, TimePartition, WriteReport,
};

const DAY_NS: i64 = 86_400_000_000_000;
/// Bytes charged per search hit beyond its stored text (id, sort key, map nodes).
const HIT_OVERHEAD_BYTES: usize = 128;

/// Settings of the embedded index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TantivyIndexConfig {
    /// Root directory of all pool indexes.
    pub dir: PathBuf,
    /// Memory budget of one partition writer, shared by its indexing threads
    /// (tantivy needs at least 15 MB per thread).
    pub writer_memory_bytes: usize,
    /// Indexing threads of one partition writer.
    pub writer_threads: usize,
    /// Merge threads of one partition writer (tantivy's own default is 4).
    pub writer_merge_threads: usize,
    /// Writers open at once, across all pools and days; before another one opens,
    /// the least recently written is committed and closed.
    pub max_open_writers: usize,
}

impl TantivyIndexConfig {
    /// Indexing threads and the memory budget shared by them, raised to tantivy's
    /// minimum of 15 MB per thread.
    pub(crate) fn writer_budget(&self) -> (usize, usize) {
        let threads = self.writer_threads.max(1);
        (threads, self.writer_memory_bytes.max(threads * 15_000_000))
    }

    /// The options of one partition writer.
    fn writer_options(&self) -> tantivy::indexer::IndexWriterOptions {
        let (threads, memory) = self.writer_budget();
        tantivy::indexer::IndexWriterOptions::builder()
            .num_worker_threads(threads)
            .memory_budget_per_thread(memory / threads)
            .num_merge_threads(self.writer_merge_threads.max(1))
            .build()
    }

    /// Threads of one open writer: its indexing threads, tantivy's segment updater
    /// and its merge threads.
    pub fn threads_per_writer(&self) -> usize {
        self.writer_threads.max(1) + 1 + self.writer_merge_threads.max(1)
    }
}

impl Default for TantivyIndexConfig {
    fn default() -> Self {
        TantivyIndexConfig {
            dir: PathBuf::from("index"),
            writer_memory_bytes: 32 * 1024 * 1024,
            writer_threads: 1,
            writer_merge_threads: 2,
            max_open_writers: 8,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct PartitionKey {
    pool_id: PoolId,
    /// Days since the Unix epoch (UTC).
    day: i64,
}

struct Partition {
    index: Index,
    reader: IndexReader,
    writer: Mutex<Option<IndexWriter>>,
    dirty: std::sync::atomic::AtomicBool,
    last_write: Mutex<Instant>,
}

/// The tantivy implementation of [`LogIndex`].
pub struct TantivyIndex {
    config: TantivyIndexConfig,
    schema: LogSchema,
    partitions: Mutex<HashMap<PartitionKey, Arc<Partition>>>,
    /// Serialises commits so that a commit never races a writer being closed.
    commit_lock: tokio::sync::Mutex<()>,
    /// Held while a writer is opened, so that two writes cannot both see room for
    /// one more and go past `max_open_writers`.
    writer_gate: Mutex<()>,
    /// The most writers ever open at once (for tests of the bound).
    peak_open_writers: std::sync::atomic::AtomicUsize,
    /// `{dir}/{tenant}/{pool_id}` of each pool met through the trait (every call but
    /// `drop_pool` names the pool's tenant), so that code keyed by pool id finds the
    /// directory: every stored thing names its tenant.
    pool_dirs: Mutex<HashMap<PoolId, PathBuf>>,
    /// Partition listings and query compilations of reads (what a search plan saves).
    work: PlanningWork,
}

impl std::fmt::Debug for TantivyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TantivyIndex")
            .field("dir", &self.config.dir)
            .finish()
    }
}

impl TantivyIndex {
    /// Opens (or creates) the index root.
    ///
    /// # Errors
    /// Fails when the directory cannot be created.
    pub fn open(config: TantivyIndexConfig) -> IndexResult<TantivyIndex> {
        std::fs::create_dir_all(&config.dir)?;
        Ok(TantivyIndex {
            config,
            schema: LogSchema::new(),
            partitions: Mutex::new(HashMap::new()),
            commit_lock: tokio::sync::Mutex::new(()),
            writer_gate: Mutex::new(()),
            peak_open_writers: std::sync::atomic::AtomicUsize::new(0),
            pool_dirs: Mutex::new(HashMap::new()),
            work: PlanningWork::default(),
        })
    }

    /// Records where `pool` lives; called by every trait method that names a pool.
    fn remember(&self, pool: &PoolRoute) {
        lock(&self.pool_dirs)
            .entry(pool.pool_id)
            .or_insert_with(|| {
                self.config
                    .dir
                    .join(&pool.tenant)
                    .join(pool.pool_id.to_string())
            });
    }

    fn pool_dir(&self, pool_id: PoolId) -> PathBuf {
        if let Some(dir) = lock(&self.pool_dirs).get(&pool_id) {
            return dir.clone();
        }
        // Only `drop_pool` gets here with a pool not met since start: find its tenant
        // directory. A pool with nothing on disk gets a path that does not exist.
        let id = pool_id.to_string();
        std::fs::read_dir(&self.config.dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|tenant| tenant.path().join(&id))
            .find(|dir| dir.is_dir())
            .unwrap_or_else(|| self.config.dir.join("_unknown_tenant").join(id))
    }

    fn partition_dir(&self, key: PartitionKey) -> PathBuf {
        self.pool_dir(key.pool_id).join(day_name(key.day))
    }

    fn cached(&self, key: PartitionKey) -> Option<Arc<Partition>> {
        lock(&self.partitions).get(&key).cloned()
    }

    /// Opens a partition, creating it when `create` is set. Blocking.
    fn open_partition(
        &self,
        key: PartitionKey,
        create: bool,
    ) -> IndexResult<Option<Arc<Partition>>> {
        if let Some(partition) = self.cached(key) {
            return Ok(Some(partition));
        }
        let dir = self.partition_dir(key);
        if !create && !dir.join("meta.json").exists() {
            return Ok(None);
        }
        std::fs::create_dir_all(&dir)?;
        let directory =
            MmapDirectory::open(&dir).map_err(|e| IndexError::Internal(e.to_string()))?;
        let mut index = Index::builder()
            .schema(self.schema.schema.clone())
            .settings(self::schema::index_settings())
            .fast_field_tokenizers(self::schema::fast_field_tokenizers())
            .open_or_create(directory)
            .map_err(tantivy_error)?;
        // Opening an existing index does not carry the builder's fast-field tokenizers.
        index.set_fast_field_tokenizers(self::schema::fast_field_tokenizers());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .doc_store_cache_num_blocks(self::schema::DOCSTORE_CACHE_BLOCKS)
            .try_into()
            .map_err(tantivy_error)?;
        let partition = Arc::new(Partition {
            index,
            reader,
            writer: Mutex::new(None),
            dirty: std::sync::atomic::AtomicBool::new(false),
            last_write: Mutex::new(Instant::now()),
        });
        let mut partitions = lock(&self.partitions);
        Ok(Some(partitions.entry(key).or_insert(partition).clone()))
    }

    /// Lists the days on disk for a pool that overlap `[from_ns, to_ns)`, newest first.
    fn days_on_disk(&self, pool_id: PoolId, from_ns: i64, to_ns: i64) -> IndexResult<Vec<i64>> {
        self.work.listed();
        let first_day = from_ns.div_euclid(DAY_NS);
        let last_day = (to_ns.saturating_sub(1)).div_euclid(DAY_NS);
        let mut days = list_days(&self.pool_dir(pool_id))?;
        days.retain(|day| *day >= first_day && *day <= last_day);
        days.sort_unstable_by(|a, b| b.cmp(a));
        Ok(days)
    }

    fn write_blocking(
        &self,
        pool: &PoolRoute,
        docs: Vec<IndexDoc>,
        replace_existing: bool,
    ) -> IndexResult<()> {
        let pool_id = pool.pool_id;
        // loghub fixed the type of every field of these records before the write.
        let types = pool.field_types();
        // Days in order, one after another: each day's writer is opened (within the
        // bound) only when its documents are staged.
        let mut by_day: std::collections::BTreeMap<i64, Vec<IndexDoc>> =
            std::collections::BTreeMap::new();
        for doc in docs {
            by_day
                .entry(doc.record.time_ns.div_euclid(DAY_NS))
                .or_default()
                .push(doc);
        }
        for (day, docs) in by_day {
            let key = PartitionKey { pool_id, day };
            let partition = self.open_partition(key, true)?.ok_or_else(|| {
                IndexError::Internal("partition vanished while opening".to_string())
            })?;
            let mut writer_slot = loop {
                self.open_writer_within_bound(key, &partition)?;
                let slot = lock(&partition.writer);
                // Another write may have closed it between the two locks: open again.
                if slot.is_some() {
                    break slot;
                }
            };
            let Some(writer) = writer_slot.as_mut() else {
                return Err(IndexError::Internal(
                    "writer slot empty after opening".to_string(),
                ));
            };
            let mut deletes = Vec::new();
            if replace_existing {
                // Deletes are staged before the adds: a delete applies to the documents
                // staged before it (lower opstamps) only, so the new copies survive.
                let keys: std::collections::BTreeSet<String> =
                    docs.iter().map(|doc| doc.identity.message_key()).collect();
                deletes.extend(
                    keys.iter()
                        .map(|key| Term::from_field_text(self.schema.message_key, key)),
                );
            }
            let documents = stream_order::in_stream_order(&docs)
                .map(|doc| self.schema.document_with_types(doc, &types));
            stage(writer, deletes, documents).map_err(tantivy_error)?;
            partition
                .dirty
                .store(true, std::sync::atomic::Ordering::SeqCst);
            *lock(&partition.last_write) = Instant::now();
        }
        Ok(())
    }

    /// Makes sure `partition` has a writer, first committing and closing the least
    /// recently written writers while `max_open_writers` are open. Blocking.
    fn open_writer_within_bound(
        &self,
        key: PartitionKey,
        partition: &Partition,
    ) -> IndexResult<()> {
        let _gate = lock(&self.writer_gate);
        if lock(&partition.writer).is_some() {
            return Ok(());
        }
        loop {
            let others: Vec<Arc<Partition>> = lock(&self.partitions)
                .iter()
                .filter(|(k, _)| **k != key)
                .map(|(_, p)| p.clone())
                .collect();
            let open: Vec<(Instant, Arc<Partition>)> = others
                .into_iter()
                .filter(|p| lock(&p.writer).is_some())
                .map(|p| {
                    let last_write = *lock(&p.last_write);
                    (last_write, p)
                })
                .collect();
            if open.len() < self.config.max_open_writers.max(1) {
                self.peak_open_writers
                    .fetch_max(open.len() + 1, std::sync::atomic::Ordering::Relaxed);
                break;
            }
            if let Some((_, oldest)) = open.into_iter().min_by_key(|(last_write, _)| *last_write) {
                self.close_writer(&oldest)?;
            }
        }
        let writer = partition
            .index
            .writer_with_options(self.config.writer_options())
            .map_err(tantivy_error)?;
        writer.set_merge_policy(Box::new(schema::merge_policy()));
        *lock(&partition.writer) = Some(writer);
        Ok(())
    }

    /// Commits what `partition`'s writer has staged, then closes it and waits for its
    /// threads to end. Blocking.
    fn close_writer(&self, partition: &Partition) -> IndexResult<()> {
        let mut writer_slot = lock(&partition.writer);
        let Some(writer) = writer_slot.as_mut() else {
            return Ok(());
        };
        if partition.dirty.load(std::sync::atomic::Ordering::SeqCst) {
            writer.commit().map_err(tantivy_error)?;
            partition
                .dirty
                .store(false, std::sync::atomic::Ordering::SeqCst);
            partition.reader.reload().map_err(tantivy_error)?;
        }
        let closed = writer_slot.take();
        drop(writer_slot);
        if let Some(writer) = closed {
            writer.wait_merging_threads().map_err(tantivy_error)?;
        }
        Ok(())
    }

    fn commit_blocking(&self) -> IndexResult<()> {
        let partitions: Vec<(PartitionKey, Arc<Partition>)> = lock(&self.partitions)
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for (_, partition) in &partitions {
            // The flag is read and cleared under the writer's lock, as a write sets it
            // and a closing writer clears it, so no staged document is missed.
            let mut writer_slot = lock(&partition.writer);
            if !partition.dirty.load(std::sync::atomic::Ordering::SeqCst) {
                continue;
            }
            if let Some(writer) = writer_slot.as_mut() {
                writer.commit().map_err(tantivy_error)?;
            }
            partition
                .dirty
                .store(false, std::sync::atomic::Ordering::SeqCst);
            drop(writer_slot);
            partition.reader.reload().map_err(tantivy_error)?;
        }
        Ok(())
    }

    /// Compiles `query` restricted to `[from_ns, to_ns)`, counted as one compilation.
    fn compile_in_range(
        &self,
        types: &compile::FieldTypes,
        query: &logpool_core::query::Query,
        from_ns: i64,
        to_ns: i64,
    ) -> IndexResult<Box<dyn tantivy::query::Query>> {
        self.work.compiled();
        compile::compile_with_time_range(&self.schema, types, query, from_ns, to_ns)
    }

    /// Lists the days of the range and compiles the query: the only listing and
    /// compilation of a search, however many steps scan it. Blocking.
    fn plan_blocking(
        &self,
        pool: &PoolRoute,
        query: &logpool_core::query::Query,
        from_ns: i64,
        to_ns: i64,
    ) -> IndexResult<SearchPlan> {
        let compiled = self.compile_in_range(&pool.field_types(), query, from_ns, to_ns)?;
        let partitions = self
            .days_on_disk(pool.pool_id, from_ns, to_ns)?
            .into_iter()
            .map(|day| PlannedPartition::new(day_range(day), PartitionHandle::Day(day)))
            .collect();
        Ok(SearchPlan::new(
            pool.pool_id,
            partitions,
            CompiledQuery::Tantivy(compiled),
        ))
    }

    fn search_blocking(
        &self,
        pool: &PoolRoute,
        request: &SearchRequest,
    ) -> IndexResult<SearchPage> {
        let plan = self.plan_blocking(pool, &request.query, request.from_ns, request.to_ns)?;
        let page = PageRequest {
            limit: request.limit,
            after: request.after,
            order: request.order,
            memory: request.memory.clone(),
        };
        self.search_partitions_blocking(&plan, plan.partitions(), &page)
    }

    fn search_partitions_blocking(
        &self,
        plan: &SearchPlan,
        partitions: &[PlannedPartition],
        page: &PageRequest,
    ) -> IndexResult<SearchPage> {
        let pool_id = plan.pool_id();
        let query = plan.compiled().tantivy()?;
        let mut searchers: Vec<Searcher> = Vec::new();
        let mut total = 0;
        // (sort key, which partition's searcher, address inside it)
        let mut candidates: Vec<(SortKey, usize, DocAddress)> = Vec::new();
        for planned in partitions {
            let day = planned.handle().day()?;
            // A day dropped by retention since the plan was made has nothing to find.
            let Some(partition) = self.open_partition(PartitionKey { pool_id, day }, false)? else {
                continue;
            };
            let searcher = partition.reader.searcher();
            let collector = FirstInOrder {
                limit: page.limit,
                after: page.after,
                order: page.order,
            };
            let (count, hits) = searcher.search(query, &collector).map_err(tantivy_error)?;
            total += count;
            let searcher_index = searchers.len();
            candidates.extend(
                hits.into_iter()
                    .map(|(key, address)| (key, searcher_index, address)),
            );
            searchers.push(searcher);
        }
        candidates.sort_by_key(|candidate| std::cmp::Reverse(page.order.rank(candidate.0)));
        candidates.truncate(page.limit);
        let mut page_hits = Vec::with_capacity(candidates.len());
        let mut truncated = false;
        for (sort_key, searcher_index, address) in candidates {
            let document: TantivyDocument = searchers[searcher_index]
                .doc(address)
                .map_err(tantivy_error)?;
            let source_bytes = stored_source(&self.schema, &document)?.len();
            // The parsed hit holds about as much as its stored text; the first one
            // is always taken so that paging can go on.
            let charge = source_bytes + HIT_OVERHEAD_BYTES;
            if page_hits.is_empty() {
                page.memory.charge_anyway(charge);
            } else if page.memory.try_charge(charge).is_err() {
                truncated = true;
                break;
            }
            page_hits.push(self.hit_from_document(pool_id, &document, sort_key)?);
        }
        Ok(SearchPage {
            hits: page_hits,
            total,
            truncated,
        })
    }

    /// Builds a hit from its stored source and its sort key, read from the columns
    /// by the collector that found it.
    fn hit_from_document(
        &self,
        pool_id: PoolId,
        document: &TantivyDocument,
        sort_key: SortKey,
    ) -> IndexResult<SearchHit> {
        let source_text = stored_source(&self.schema, document)?;
        let source: StoredSource = serde_json::from_str(source_text)
            .map_err(|e| IndexError::Corrupted(format!("stored source is not valid: {e}")))?;
        Ok(SearchHit {
            id: source.doc_id(pool_id, sort_key.tiebreak),
            time_ns: sort_key.time_ns,
            shard: source.shard,
            sort_key,
            fields: source.fields,
        })
    }

    fn histogram_blocking(
        &self,
        pool: &PoolRoute,
        request: &HistogramRequest,
    ) -> IndexResult<Vec<HistogramBucket>> {
        let pool_id = pool.pool_id;
        let query = self.compile_in_range(
            &pool.field_types(),
            &request.query,
            request.from_ns,
            request.to_ns,
        )?;
        let mut merged = std::collections::BTreeMap::new();
        for day in self.days_on_disk(pool_id, request.from_ns, request.to_ns)? {
            let Some(partition) = self.open_partition(PartitionKey { pool_id, day }, false)? else {
                continue;
            };
            let collector = TimeHistogram {
                interval_ns: request.interval_ns,
            };
            let buckets = partition
                .reader
                .searcher()
                .search(query.as_ref(), &collector)
                .map_err(tantivy_error)?;
            for (time_ns, count) in buckets {
                *merged.entry(time_ns).or_insert(0) += count;
            }
        }
        Ok(merged
            .into_iter()
            .map(|(time_ns, count)| HistogramBucket { time_ns, count })
            .collect())
    }

    fn drop_partitions_blocking(&self, pool_id: PoolId, days: &[i64]) -> IndexResult<usize> {
        let mut dropped = 0;
        for day in days {
            let key = PartitionKey { pool_id, day: *day };
            let removed = lock(&self.partitions).remove(&key);
            if let Some(partition) = removed {
                if let Some(writer) = lock(&partition.writer).take() {
                    // Dropping without commit discards staged documents of an expired day.
                    drop(writer);
                }
            }
            let dir = self.partition_dir(key);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
                dropped += 1;
            }
        }
        Ok(dropped)
    }
}

#[async_trait]
impl LogIndex for TantivyIndex {
    async fn ensure_pool(&self, pool: &PoolRoute) -> IndexResult<()> {
        self.remember(pool);
        std::fs::create_dir_all(self.pool_dir(pool.pool_id))?;
        Ok(())
    }

    async fn write(
        &self,
        pool: &PoolRoute,
        docs: Vec<IndexDoc>,
        replace_existing: bool,
    ) -> IndexResult<WriteReport> {
        self.remember(pool);
        // tantivy's JSON field takes any flat record, and a value that conflicts with
        // its field's declared type is kept as text, so nothing is rejected here.
        tokio::task::block_in_place(|| self.write_blocking(pool, docs, replace_existing))?;
        Ok(WriteReport::default())
    }

    async fn prepare_day(&self, _pool: &PoolRoute, _day: time::Date) -> IndexResult<()> {
        // Nothing to do ahead of time: a day's tantivy index is a local directory that
        // the first write creates in milliseconds, with no cluster to coordinate. An
        // empty directory made now would only be something retention has to clean up.
        Ok(())
    }

    async fn commit(&self) -> IndexResult<()> {
        let _guard = self.commit_lock.lock().await;
        tokio::task::block_in_place(|| self.commit_blocking())
    }

    async fn search(&self, pool: &PoolRoute, request: &SearchRequest) -> IndexResult<SearchPage> {
        self.remember(pool);
        tokio::task::block_in_place(|| self.search_blocking(pool, request))
    }

    async fn plan_search(
        &self,
        pool: &PoolRoute,
        query: &logpool_core::query::Query,
        from_ns: i64,
        to_ns: i64,
    ) -> IndexResult<SearchPlan> {
        self.remember(pool);
        tokio::task::block_in_place(|| self.plan_blocking(pool, query, from_ns, to_ns))
    }

    async fn search_partitions(
        &self,
        plan: &SearchPlan,
        partitions: &[PlannedPartition],
        page: &PageRequest,
    ) -> IndexResult<SearchPage> {
        if partitions.is_empty() {
            return Ok(SearchPage {
                hits: Vec::new(),
                total: 0,
                truncated: false,
            });
        }
        tokio::task::block_in_place(|| self.search_partitions_blocking(plan, partitions, page))
    }

    async fn histogram(
        &self,
        pool: &PoolRoute,
        request: &HistogramRequest,
    ) -> IndexResult<Vec<HistogramBucket>> {
        self.remember(pool);
        if request.interval_ns <= 0 {
            return Err(IndexError::InvalidQuery(
                "histogram interval must be positive".to_string(),
            ));
        }
        tokio::task::block_in_place(|| self.histogram_blocking(pool, request))
    }

    async fn context(
        &self,
        pool: &PoolRoute,
        request: &ContextRequest,
    ) -> IndexResult<ContextPage> {
        self.remember(pool);
        tokio::task::block_in_place(|| {
            self.context_blocking(pool.pool_id, &pool.field_types(), request)
        })
    }

    async fn time_partitions(
        &self,
        pool: &PoolRoute,
        from_ns: i64,
        to_ns: i64,
    ) -> IndexResult<Vec<TimePartition>> {
        self.remember(pool);
        tokio::task::block_in_place(|| self.time_partitions_blocking(pool.pool_id, from_ns, to_ns))
    }

    async fn aggregate(
        &self,
        pool: &PoolRoute,
        request: &super::AggregateRequest,
    ) -> IndexResult<Vec<logpool_core::sql::plan::AggregateGroup>> {
        self.remember(pool);
        tokio::task::block_in_place(|| {
            self.aggregate_blocking(pool.pool_id, &pool.field_types(), request)
        })
    }

    async fn legacy_learned_types(
        &self,
    ) -> IndexResult<HashMap<PoolId, crate::metadata::LearnedTypes>> {
        tokio::task::block_in_place(|| legacy_types::read(&self.config.dir))
    }

    async fn retire_legacy_learned_types(&self) -> IndexResult<()> {
        tokio::task::block_in_place(|| legacy_types::remove(&self.config.dir))
    }

    async fn drop_pool(&self, pool_id: PoolId) -> IndexResult<()> {
        let _guard = self.commit_lock.lock().await;
        tokio::task::block_in_place(|| {
            let days = list_days(&self.pool_dir(pool_id))?;
            self.drop_partitions_blocking(pool_id, &days)?;
            lock(&self.partitions).retain(|key, _| key.pool_id != pool_id);
            let dir = self.pool_dir(pool_id);
            if dir.exists() {
                std::fs::remove_dir_all(dir)?;
            }
            lock(&self.pool_dirs).remove(&pool_id);
            Ok(())
        })
    }

    async fn storage_bytes(&self, pool: &PoolRoute) -> IndexResult<u64> {
        self.remember(pool);
        let dir = self.pool_dir(pool.pool_id);
        Ok(tokio::task::block_in_place(|| storage::dir_bytes(&dir))?)
    }

    async fn drop_expired(&self, pool: &PoolRoute, now_ns: i64) -> IndexResult<usize> {
        self.remember(pool);
        let retention_ns = i64::from(pool.retention_days).saturating_mul(DAY_NS);
        let cutoff_ns = now_ns.saturating_sub(retention_ns);
        let _guard = self.commit_lock.lock().await;
        tokio::task::block_in_place(|| {
            let expired: Vec<i64> = list_days(&self.pool_dir(pool.pool_id))?
                .into_iter()
                .filter(|day| (day + 1).saturating_mul(DAY_NS) <= cutoff_ns)
                .collect();
            self.drop_partitions_blocking(pool.pool_id, &expired)
        })
    }

    async fn check_health(&self) -> IndexResult<()> {
        if self.config.dir.is_dir() {
            Ok(())
        } else {
            Err(IndexError::Unavailable(format!(
                "index directory {} is missing",
                self.config.dir.display()
            )))
        }
    }

    async fn shutdown(&self) -> IndexResult<()> {
        self.commit().await?;
        let partitions: Vec<Arc<Partition>> = lock(&self.partitions).values().cloned().collect();
        tokio::task::block_in_place(|| {
            for partition in partitions {
                if let Some(writer) = lock(&partition.writer).take() {
                    writer.wait_merging_threads().map_err(tantivy_error)?;
                }
            }
            Ok(())
        })
    }
}

/// The time a day partition covers.
fn day_range(day: i64) -> TimePartition {
    TimePartition {
        from_ns: day.saturating_mul(DAY_NS),
        to_ns: day.saturating_add(1).saturating_mul(DAY_NS),
    }
}

fn day_name(day: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(day.saturating_mul(86_400))
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_else(|_| format!("day{day}"))
}

fn parse_day_name(name: &str) -> Option<i64> {
    if let Some(raw) = name.strip_prefix("day") {
        return raw.parse().ok();
    }
    let mut parts = name.splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    Some(
        date.midnight()
            .assume_utc()
            .unix_timestamp()
            .div_euclid(86_400),
    )
}

fn list_days(pool_dir: &Path) -> IndexResult<Vec<i64>> {
    let entries = match std::fs::read_dir(pool_dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error.into()),
    };
    let mut days = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(day) = entry.file_name().to_str().and_then(parse_day_name) {
            days.push(day);
        }
    }
    Ok(days)
}

/// The stored source text of a document.
fn stored_source<'a>(schema: &LogSchema, document: &'a TantivyDocument) -> IndexResult<&'a str> {
    use tantivy::schema::document::Value;
    document
        .get_first(schema.source)
        .and_then(|value| value.as_str())
        .ok_or_else(|| IndexError::Corrupted("document without stored source".to_string()))
}

fn tantivy_error(error: tantivy::TantivyError) -> IndexError {
    IndexError::Internal(error.to_string())
}

/// Locks a std mutex, recovering the data if a panicking thread poisoned it: the
/// guarded values (writers, maps) stay structurally valid across a panic.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
