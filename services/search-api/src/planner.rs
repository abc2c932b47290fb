//! The search planner: long ranges without timeouts.
//!
//! A search asks the index once for a plan: the time partitions (days) of the range
//! that hold data and the compiled query. It then searches those partitions newest
//! first, `partitions_per_step` at a time, handing each step its partitions, so no
//! step lists partitions or compiles the query again. Hits come newest first,
//! so the pages of successive steps simply follow each other. Once the page is full no
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
    IndexResult, LogIndex, PageRequest, SearchHit, SearchPage, SearchPlan, SearchRequest,
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
    /// Hits so far, newest first.
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
        let partitions = self.plan.partitions();
        let group_end = (self.scanned + self.partitions_per_step).min(partitions.len());
        let page = PageRequest {
            // 0 once the page is full: the step only counts.
            limit: if self.page_is_full() {
                0
            } else {
                self.request.limit - self.hits.len()
            },
            after: self.request.after,
            memory: self.request.memory.clone(),
        };
        let page: SearchPage = self
            .index
            .search_partitions(&self.plan, &partitions[self.scanned..group_end], &page)
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
}
