//! The search planner: long ranges without timeouts.
//!
//! A search asks the index once for a plan: the time partitions (days) of the range
//! that hold data and the compiled query. It then searches those partitions in the
//! search's order (newest first, or oldest first for `order=asc`),
//! `partitions_per_step` at a time, handing each step its partitions, so no step
//! lists partitions or compiles the query again. Hits come in the same order, so the
//! pages of successive steps simply follow each other. Once the page is full no
//! more hits are fetched: with `track_total` (the default) the remaining partitions
//! are only counted, step by step, so `total` stays exact; without it the search stops
//! right there. When the time budget is spent the planner answers with what it has
//! and `partial: true`. The budget is checked between steps: a step that is running is
//! never abandoned halfway.
//!
//! `total` counts the matches in the partitions scanned so far: it is exact when
//! `progress.scanned == progress.total`, and a lower bound otherwise.
//!
//! The page also ends when its records reach the request's memory budget (the engine
//! stops loading them, see [`SearchRequest::memory`]): the page is then `truncated`,
//! counts as full, and the cursor continues after its last hit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use logpool_core::routing::PoolRoute;
use logpool_engines::config::SearchConfig;
use logpool_engines::index::{
    IndexResult, LogIndex, PageRequest, PlannedPartition, SearchHit, SearchPage, SearchPlan,
    SearchRequest, SortOrder,
};

pub use logpool_wire::search::Progress;

/// A search in progress over one pool.
#[derive(Debug)]
pub struct PlannedSearch {
    index: Arc<dyn LogIndex>,
    request: SearchRequest,
    plan: SearchPlan,
    partitions_per_step: usize,
    scanned: usize,
    track_total: bool,
    started: Instant,
    budget: Duration,
    /// Hits so far, in the search's order.
    pub hits: Vec<SearchHit>,
    /// Matches in the scanned partitions.
    pub total: u64,
    /// Whether the budget ran out before the search was complete.
    pub partial: bool,
    /// Whether the page ended before `limit` hits at its memory budget.
    pub truncated: bool,
}

impl PlannedSearch {
    /// Plans the search (lists the partitions of the range, compiles the query);
    /// nothing is searched yet. With `track_total`, partitions past a full page are
    /// still counted.
    ///
    /// # Errors
    /// When the index cannot list its partitions or refuses the query.
    pub async fn start(
        index: Arc<dyn LogIndex>,
        route: PoolRoute,
        request: SearchRequest,
        track_total: bool,
        config: &SearchConfig,
    ) -> IndexResult<PlannedSearch> {
        let started = Instant::now();
        let plan = index
            .plan_search(&route, &request.query, request.from_ns, request.to_ns)
            .await?;
        Ok(PlannedSearch {
            index,
            request,
            plan,
            partitions_per_step: config.partitions_per_step.max(1),
            scanned: 0,
            track_total,
            started,
            budget: Duration::from_millis(config.time_budget_ms),
            hits: Vec::new(),
            total: 0,
            partial: false,
            truncated: false,
        })
    }

    /// The progress so far.
    pub fn progress(&self) -> Progress {
        Progress {
            scanned: self.scanned,
            total: self.plan.partitions().len(),
        }
    }

    /// Whether no further step will run.
    pub fn is_done(&self) -> bool {
        self.partial
            || self.scanned >= self.plan.partitions().len()
            || (self.page_is_full() && !self.track_total)
    }

    /// Whether the page takes no more hits: it has `limit`, or reached its budget.
    fn page_is_full(&self) -> bool {
        self.hits.len() >= self.request.limit || self.truncated
    }

    /// Searches the next group of partitions and returns the hits it added (newest
    /// first), or `None` when the search is done.
    ///
    /// # Errors
    /// When the index fails; the search can not continue then.
    pub async fn step(&mut self) -> IndexResult<Option<Vec<SearchHit>>> {
        let Some(added) = self.advance().await? else {
            return Ok(None);
        };
        Ok(Some(self.hits[self.hits.len() - added..].to_vec()))
    }

    /// Like [`PlannedSearch::step`], returning only how many hits were added (no copy).
    async fn advance(&mut self) -> IndexResult<Option<usize>> {
        if self.is_done() {
            return Ok(None);
        }
        let group_end = (self.scanned + self.partitions_per_step).min(self.plan.partitions().len());
        let page = PageRequest {
            // 0 once the page is full: the step only counts.
            limit: if self.page_is_full() {
                0
            } else {
                self.request.limit - self.hits.len()
            },
            after: self.request.after,
            order: self.request.order,
            memory: self.request.memory.clone(),
        };
        let group = self.group(self.scanned, group_end);
        let page: SearchPage = self
            .index
            .search_partitions(&self.plan, group, &page)
            .await?;
        self.scanned = group_end;
        self.total += page.total;
        self.truncated |= page.truncated;
        let added = page.hits.len();
        self.hits.extend(page.hits);
        if !self.is_done() && self.started.elapsed() >= self.budget {
            self.partial = true;
        }
        Ok(Some(added))
    }

    /// The partitions from the `start`th to before the `end`th in the search's order.
    /// The plan lists them newest first; oldest first takes them from its end (the
    /// order inside a group does not matter: the engine merges the group's hits).
    fn group(&self, start: usize, end: usize) -> &[PlannedPartition] {
        let partitions = self.plan.partitions();
        match self.request.order {
            SortOrder::Desc => &partitions[start..end],
            SortOrder::Asc => &partitions[partitions.len() - end..partitions.len() - start],
        }
    }

    /// Runs every remaining step.
    ///
    /// # Errors
    /// When the index fails.
    pub async fn run(&mut self) -> IndexResult<()> {
        while self.advance().await?.is_some() {}
        Ok(())
    }

    /// The memory budget of the page.
    pub fn memory(&self) -> &logpool_core::memory::RequestMemory {
        &self.request.memory
    }

    /// The page size asked for.
    pub fn limit(&self) -> usize {
        self.request.limit
    }

    /// The order of the hits.
    pub fn order(&self) -> SortOrder {
        self.request.order
    }
}

#[cfg(test)]
mod tests {
    use logpool_core::pool_id::PoolId;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use logpool_core::doc_id::DocIdentity;
    use logpool_core::memory::RequestMemory;
    use logpool_core::query::{parse_query, DefaultOperator, Query};
    use logpool_core::record::{FieldValue, Record};
    use logpool_core::sql::plan::AggregateGroup;
    use logpool_engines::index::{
        AggregateRequest, ContextPage, ContextRequest, HistogramBucket, HistogramRequest, IndexDoc,
        PlannedPartition, SearchPage, TantivyIndex, TantivyIndexConfig, TimePartition, WriteReport,
    };

    use super::*;

    const DAY_NS: i64 = 86_400_000_000_000;
    /// 2023-11-14T00:00:00Z, a day boundary.
    const DAY0: i64 = 1_699_920_000_000_000_000;

    /// The engine's calls a search makes, counted; everything else is passed on.
    #[derive(Debug)]
    struct CountingIndex {
        inner: TantivyIndex,
        plans: AtomicUsize,
        partition_searches: AtomicUsize,
        range_searches: AtomicUsize,
        listings: AtomicUsize,
    }

    impl CountingIndex {
        fn counts(&self) -> [usize; 4] {
            [
                self.plans.load(Ordering::Relaxed),
                self.partition_searches.load(Ordering::Relaxed),
                self.range_searches.load(Ordering::Relaxed),
                self.listings.load(Ordering::Relaxed),
            ]
        }
    }

    #[async_trait]
    impl LogIndex for CountingIndex {
        async fn ensure_pool(&self, pool: &PoolRoute) -> IndexResult<()> {
            self.inner.ensure_pool(pool).await
        }
        async fn write(
            &self,
            pool: &PoolRoute,
            docs: Vec<IndexDoc>,
            replace_existing: bool,
        ) -> IndexResult<WriteReport> {
            self.inner.write(pool, docs, replace_existing).await
        }
        async fn commit(&self) -> IndexResult<()> {
            self.inner.commit().await
        }
        async fn search(
            &self,
            pool: &PoolRoute,
            request: &SearchRequest,
        ) -> IndexResult<SearchPage> {
            self.range_searches.fetch_add(1, Ordering::Relaxed);
            self.inner.search(pool, request).await
        }
        async fn plan_search(
            &self,
            pool: &PoolRoute,
            query: &Query,
            from_ns: i64,
            to_ns: i64,
        ) -> IndexResult<SearchPlan> {
            self.plans.fetch_add(1, Ordering::Relaxed);
            self.inner.plan_search(pool, query, from_ns, to_ns).await
        }
        async fn search_partitions(
            &self,
            plan: &SearchPlan,
            partitions: &[PlannedPartition],
            page: &PageRequest,
        ) -> IndexResult<SearchPage> {
            self.partition_searches.fetch_add(1, Ordering::Relaxed);
            self.inner.search_partitions(plan, partitions, page).await
        }
        async fn histogram(
            &self,
            pool: &PoolRoute,
            request: &HistogramRequest,
        ) -> IndexResult<Vec<HistogramBucket>> {
            self.inner.histogram(pool, request).await
        }
        async fn prepare_day(&self, pool: &PoolRoute, day: time::Date) -> IndexResult<()> {
            self.inner.prepare_day(pool, day).await
        }
        async fn context(
            &self,
            pool: &PoolRoute,
            request: &ContextRequest,
        ) -> IndexResult<ContextPage> {
            self.inner.context(pool, request).await
        }
        async fn time_partitions(
            &self,
            pool: &PoolRoute,
            from_ns: i64,
            to_ns: i64,
        ) -> IndexResult<Vec<TimePartition>> {
            self.listings.fetch_add(1, Ordering::Relaxed);
            self.inner.time_partitions(pool, from_ns, to_ns).await
        }
        async fn aggregate(
            &self,
            pool: &PoolRoute,
            request: &AggregateRequest,
        ) -> IndexResult<Vec<AggregateGroup>> {
            self.inner.aggregate(pool, request).await
        }
        async fn drop_pool(&self, pool_id: PoolId) -> IndexResult<()> {
            self.inner.drop_pool(pool_id).await
        }
        async fn storage_bytes(&self, pool: &PoolRoute) -> IndexResult<u64> {
            self.inner.storage_bytes(pool).await
        }
        async fn drop_expired(&self, pool: &PoolRoute, now_ns: i64) -> IndexResult<usize> {
            self.inner.drop_expired(pool, now_ns).await
        }
        async fn check_health(&self) -> IndexResult<()> {
            self.inner.check_health().await
        }
        async fn shutdown(&self) -> IndexResult<()> {
            self.inner.shutdown().await
        }
    }

    fn route() -> PoolRoute {
        PoolRoute {
            pool_id: PoolId::new(1),
            tenant: "default".into(),
            project: "p".into(),
            name: "web".into(),
            partitions: vec![0],
            retention_days: 30,
            field_hints: BTreeMap::new(),
            event_window: Default::default(),
            learned_types: Default::default(),
        }
    }

    /// An index holding three `tick` records on each of five days.
    async fn five_days(dir: &std::path::Path) -> Arc<CountingIndex> {
        let inner = TantivyIndex::open(TantivyIndexConfig {
            dir: dir.to_path_buf(),
            writer_memory_bytes: 15_000_000,
            writer_threads: 1,
            writer_merge_threads: 1,
            max_open_writers: 2,
        })
        .expect("open index");
        let docs = (0..5i64)
            .flat_map(|day| {
                (1..=3u32).map(move |quarter| IndexDoc {
                    identity: DocIdentity {
                        pool_id: PoolId::new(1),
                        partition: 0,
                        position: day as u64,
                        index_in_batch: quarter,
                    },
                    shard: 0,
                    record: Record {
                        time_ns: DAY0 + day * DAY_NS + i64::from(quarter) * (DAY_NS / 4),
                        fields: [("message".to_string(), FieldValue::Str("tick".into()))]
                            .into_iter()
                            .collect(),
                    },
                })
            })
            .collect();
        inner.write(&route(), docs, false).await.expect("write");
        inner.commit().await.expect("commit");
        Arc::new(CountingIndex {
            inner,
            plans: AtomicUsize::new(0),
            partition_searches: AtomicUsize::new(0),
            range_searches: AtomicUsize::new(0),
            listings: AtomicUsize::new(0),
        })
    }

    async fn start(index: Arc<CountingIndex>, limit: usize, track_total: bool) -> PlannedSearch {
        start_in(index, limit, track_total, None, SortOrder::Desc).await
    }

    async fn start_in(
        index: Arc<CountingIndex>,
        limit: usize,
        track_total: bool,
        after: Option<logpool_engines::index::SortKey>,
        order: SortOrder,
    ) -> PlannedSearch {
        let config = SearchConfig {
            partitions_per_step: 1,
            time_budget_ms: 60_000,
            ..SearchConfig::default()
        };
        let request = SearchRequest {
            query: parse_query("tick", DefaultOperator::And).expect("query"),
            from_ns: DAY0,
            to_ns: DAY0 + 5 * DAY_NS,
            limit,
            after,
            order,
            memory: RequestMemory::unlimited(),
        };
        PlannedSearch::start(index, route(), request, track_total, &config)
            .await
            .expect("start")
    }

    /// Five steps over five days are one plan and five searches of its partitions:
    /// no step asks for a time range again.
    #[tokio::test(flavor = "multi_thread")]
    async fn test_five_steps_plan_once_and_search_the_planned_partitions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = five_days(dir.path()).await;
        let mut planned = start(index.clone(), 100, true).await;
        assert_eq!(planned.progress().total, 5);
        let mut steps = Vec::new();
        while let Some(hits) = planned.step().await.expect("step") {
            steps.push(hits.len());
        }
        assert_eq!(steps, [3, 3, 3, 3, 3]);
        assert_eq!(planned.total, 15);
        assert!(!planned.partial);
        let times: Vec<i64> = planned.hits.iter().map(|hit| hit.time_ns).collect();
        assert!(times.windows(2).all(|w| w[0] > w[1]), "newest first");
        // [plans, partition searches, range searches, partition listings]
        assert_eq!(index.counts(), [1, 5, 0, 0]);

        // A full page without `track_total` stops after the step that filled it.
        let mut first_page = start(index.clone(), 2, false).await;
        first_page.run().await.expect("run");
        assert_eq!(first_page.hits.len(), 2);
        assert_eq!(first_page.progress().scanned, 1);
        assert_eq!(index.counts(), [2, 6, 0, 0]);
    }

    /// Oldest first scans the oldest day first: a page of 2 is the day's first two
    /// records, and paging on from it continues in time order over the days.
    #[tokio::test(flavor = "multi_thread")]
    async fn test_oldest_first_scans_the_oldest_partition_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = five_days(dir.path()).await;
        let mut first_page = start_in(index.clone(), 2, false, None, SortOrder::Asc).await;
        first_page.run().await.expect("run");
        let times: Vec<i64> = first_page.hits.iter().map(|hit| hit.time_ns).collect();
        assert_eq!(times, [DAY0 + DAY_NS / 4, DAY0 + DAY_NS / 2]);
        assert_eq!(first_page.progress().scanned, 1);
        let after = first_page.hits.last().map(|hit| hit.sort_key);
        let mut rest = start_in(index, 100, true, after, SortOrder::Asc).await;
        rest.run().await.expect("run");
        assert_eq!(rest.hits.len(), 13);
        assert_eq!(rest.total, 15);
        let times: Vec<i64> = rest.hits.iter().map(|hit| hit.time_ns).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "oldest first");
        assert_eq!(times[0], DAY0 + 3 * DAY_NS / 4);
    }
}
