//! A search planned once: the partitions of its range, listed once, and its query,
//! compiled once, which the search planner then scans a few partitions at a time.
//!
//! Without a plan, every step of a progressive search would name a time range that
//! the engine turns into partitions again (a directory listing on tantivy, index
//! names on Elasticsearch) and compile the same query again. A [`SearchPlan`] holds
//! both results; the steps pass the [`PlannedPartition`]s they scan. What a handle or
//! a compiled query is stays inside the engine that made the plan: callers see only
//! time ranges.

use logpool_core::pool_id::PoolId;
use std::sync::atomic::{AtomicU64, Ordering};

use logpool_core::memory::RequestMemory;

use super::{IndexError, SortKey, SortOrder, TimePartition};

/// A search of one pool's time range, planned by [`LogIndex::plan_search`]: the
/// partitions that hold data in the range, newest first, and the engine's compiled
/// query (the query restricted to the range).
///
/// [`LogIndex::plan_search`]: super::LogIndex::plan_search
#[derive(Debug)]
pub struct SearchPlan {
    pool_id: PoolId,
    partitions: Vec<PlannedPartition>,
    compiled: CompiledQuery,
}

impl SearchPlan {
    /// A plan over `partitions` (sorted here, newest first).
    pub(crate) fn new(
        pool_id: PoolId,
        mut partitions: Vec<PlannedPartition>,
        compiled: CompiledQuery,
    ) -> SearchPlan {
        partitions.sort_by_key(|partition| std::cmp::Reverse(partition.range));
        SearchPlan {
            pool_id,
            partitions,
            compiled,
        }
    }

    /// The partitions of the range that hold data, newest first.
    pub fn partitions(&self) -> &[PlannedPartition] {
        &self.partitions
    }

    /// The pool the plan searches.
    pub(crate) fn pool_id(&self) -> PoolId {
        self.pool_id
    }

    /// The compiled query, for the engine that made the plan.
    pub(crate) fn compiled(&self) -> &CompiledQuery {
        &self.compiled
    }
}

/// One partition of a [`SearchPlan`]: its time range and the engine's handle to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPartition {
    range: TimePartition,
    handle: PartitionHandle,
}

impl PlannedPartition {
    pub(crate) fn new(range: TimePartition, handle: PartitionHandle) -> PlannedPartition {
        PlannedPartition { range, handle }
    }

    /// The time the partition covers.
    pub fn range(&self) -> TimePartition {
        self.range
    }

    pub(crate) fn handle(&self) -> &PartitionHandle {
        &self.handle
    }
}

/// How an engine finds a partition again without listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PartitionHandle {
    /// A tantivy day partition: days since the Unix epoch (UTC).
    Day(i64),
    /// The Elasticsearch indices of one day: every listed name of the pool that
    /// names that day, so none is missed whatever its readable part.
    #[cfg(feature = "elasticsearch")]
    Indices(Vec<String>),
}

impl PartitionHandle {
    /// The tantivy day, or an error for another engine's handle.
    pub(crate) fn day(&self) -> Result<i64, IndexError> {
        match self {
            PartitionHandle::Day(day) => Ok(*day),
            #[cfg(feature = "elasticsearch")]
            PartitionHandle::Indices(_) => Err(foreign_plan()),
        }
    }

    /// The Elasticsearch index names, or an error for another engine's handle.
    #[cfg(feature = "elasticsearch")]
    pub(crate) fn indices(&self) -> Result<&[String], IndexError> {
        match self {
            PartitionHandle::Indices(names) => Ok(names),
            PartitionHandle::Day(_) => Err(foreign_plan()),
        }
    }
}

/// A query compiled by the engine that planned it, restricted to the plan's range.
#[derive(Debug)]
pub(crate) enum CompiledQuery {
    /// A tantivy query.
    Tantivy(Box<dyn tantivy::query::Query>),
    /// An Elasticsearch query DSL object, and the pool's read alias (the target when
    /// the chosen indices do not fit in a URL).
    #[cfg(feature = "elasticsearch")]
    Elasticsearch {
        /// The `query` of a search body.
        query: serde_json::Value,
        /// The pool's read alias.
        alias: String,
    },
}

impl CompiledQuery {
    /// The tantivy query, or an error for another engine's plan.
    pub(crate) fn tantivy(&self) -> Result<&dyn tantivy::query::Query, IndexError> {
        match self {
            CompiledQuery::Tantivy(query) => Ok(query.as_ref()),
            #[cfg(feature = "elasticsearch")]
            CompiledQuery::Elasticsearch { .. } => Err(foreign_plan()),
        }
    }

    /// The Elasticsearch query and the pool's read alias, or an error for another
    /// engine's plan.
    #[cfg(feature = "elasticsearch")]
    pub(crate) fn elasticsearch(&self) -> Result<(&serde_json::Value, &str), IndexError> {
        match self {
            CompiledQuery::Elasticsearch { query, alias } => Ok((query, alias)),
            CompiledQuery::Tantivy(_) => Err(foreign_plan()),
        }
    }
}

/// The error of a plan handed to an engine that did not make it.
#[cfg(feature = "elasticsearch")]
pub(crate) fn foreign_plan() -> IndexError {
    IndexError::Internal("the search plan was made by another index engine".to_string())
}

/// One page of a planned search: the time range and query are the plan's.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// Maximum number of hits; 0 only counts the matches.
    pub limit: usize,
    /// Return only hits strictly after this key in `order` (the previous page's last
    /// hit).
    pub after: Option<SortKey>,
    /// Newest first (the default) or oldest first.
    pub order: SortOrder,
    /// The bytes the page's records may take (see [`super::SearchRequest::memory`]).
    pub memory: RequestMemory,
}

/// How often an engine listed partitions and compiled queries for reads: what a plan
/// saves. Relaxed counters, cheap enough to keep always on.
#[derive(Debug, Default)]
pub(crate) struct PlanningWork {
    listings: AtomicU64,
    compilations: AtomicU64,
}

impl PlanningWork {
    /// Counts one listing of a pool's partitions.
    pub(crate) fn listed(&self) {
        self.listings.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one compilation of a query.
    pub(crate) fn compiled(&self) {
        self.compilations.fetch_add(1, Ordering::Relaxed);
    }

    /// (listings, compilations) so far.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.listings.load(Ordering::Relaxed),
            self.compilations.load(Ordering::Relaxed),
        )
    }
}
