//! The index role: stores records as searchable documents, per pool.
//!
//! # Contract
//! - [`LogIndex::write`] stages documents; they become durable and searchable only
//!   after [`LogIndex::commit`] returns. Queue messages must be acked only after that.
//! - Document ids come from [`logpool_core::doc_id::DocIdentity`]. With
//!   `replace_existing = true` a write replaces documents with the same ids, so a
//!   redelivered message never doubles its records. Writers pass `true` for every
//!   delivery that may have been seen before; first deliveries can skip the cost.
//! - Documents and queries are typed by the pool's route
//!   ([`PoolRoute::field_types`]): the engines keep no schema. Writers fix the type of
//!   every new field first (loghub stores it in the metadata store); a field the route
//!   has no type for is indexed by its value's own type.
//! - Data is partitioned by event time so that retention drops whole partitions and
//!   searches skip partitions outside their time range.
//! - Searches return the newest records first, ordered by (time, tiebreak) descending,
//!   or, with [`SortOrder::Asc`], the oldest first by (time, tiebreak) ascending; they
//!   page with a [`SortKey`] cursor that is stable while data keeps arriving.

#[cfg(feature = "elasticsearch")]
pub mod elasticsearch;
mod plan;
pub mod tantivy_index;

#[cfg(test)]
pub(crate) mod aggregate_conformance;
#[cfg(test)]
pub(crate) mod conformance;

use logpool_core::pool_id::PoolId;
use std::collections::HashMap;
use std::fmt::Debug;

use async_trait::async_trait;
use logpool_core::doc_id::DocIdentity;
use logpool_core::memory::{OverBudget, RequestMemory};
use logpool_core::query::Query;
use logpool_core::record::Record;
use logpool_core::routing::PoolRoute;

use crate::metadata::LearnedTypes;

pub use plan::{PageRequest, PlannedPartition, SearchPlan};
pub use tantivy_index::{TantivyIndex, TantivyIndexConfig};

/// Parses a time bound written in a query (`time:>2024-01-01T00:00:00Z`), as every
/// back end must.
pub(crate) fn parse_time_bound(text: &str) -> IndexResult<i64> {
    logpool_core::ingest::parse_time_text(text)
        .map_err(|e| IndexError::InvalidQuery(format!("time bound: {e}")))
}

/// The error of a SQL group table that outgrew its memory budget.
pub(crate) fn group_table_over_budget(budget: OverBudget) -> IndexError {
    IndexError::OverMemoryBudget {
        message: "the SQL group table needs more memory than the query may use; \
                  narrow the query, or group by fewer or shorter keys"
            .to_string(),
        budget,
    }
}

/// Result alias for index operations.
pub type IndexResult<T> = Result<T, IndexError>;

/// Errors of the index role.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The query cannot run on this engine (bad field type, unsupported construct).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The request is over a limit.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// The request needs more memory than its budget (or its tenant's) allows.
    #[error("{message} ({budget})")]
    OverMemoryBudget {
        /// What ran out, and what to do about it.
        message: String,
        /// Which budget refused.
        budget: OverBudget,
    },
    /// The engine cannot serve right now.
    #[error("index unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read.
    #[error("index data is corrupted: {0}")]
    Corrupted(String),
    /// A local I/O error.
    #[error("index I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Any other engine error.
    #[error("index error: {0}")]
    Internal(String),
}

/// One record to index, with the identity that makes rewriting it idempotent.
#[derive(Debug, Clone)]
pub struct IndexDoc {
    /// Where the record came from in the queue.
    pub identity: DocIdentity,
    /// Shard index within the pool (0-based), shown in hits.
    pub shard: u32,
    /// The record.
    pub record: Record,
}

/// A document the engine refused for good (e.g. a mapping conflict); it must go to
/// the dead letter, never be dropped silently.
#[derive(Debug, Clone)]
pub struct RejectedDoc {
    /// The refused document.
    pub doc: IndexDoc,
    /// Why the engine refused it.
    pub reason: String,
}

/// The outcome of a write: every document not listed as rejected was staged.
#[derive(Debug, Clone, Default)]
pub struct WriteReport {
    /// Documents refused for good.
    pub rejected: Vec<RejectedDoc>,
}

/// Position in the newest-first order: (time, tiebreak), compared descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SortKey {
    /// Event time in nanoseconds.
    pub time_ns: i64,
    /// [`DocIdentity::tiebreak`].
    pub tiebreak: u64,
}

/// The order of a search's hits by (time, tiebreak).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SortOrder {
    /// Newest first: (time, tiebreak) descending.
    #[default]
    Desc,
    /// Oldest first: (time, tiebreak) ascending, so records of the same time come
    /// in the reverse of their newest-first order.
    Asc,
}

impl SortOrder {
    /// The key as a rank that is larger the earlier it comes in this order: the key
    /// itself newest first, its bitwise complement (which reverses both parts'
    /// order) oldest first. Applying it twice gives the key back.
    pub fn rank(self, key: SortKey) -> SortKey {
        match self {
            SortOrder::Desc => key,
            SortOrder::Asc => SortKey {
                time_ns: !key.time_ns,
                tiebreak: !key.tiebreak,
            },
        }
    }

    /// Whether `key` comes strictly after `cursor` in this order (belongs on a later
    /// page than the cursor's hit).
    pub fn follows(self, key: SortKey, cursor: SortKey) -> bool {
        self.rank(key) < self.rank(cursor)
    }
}

/// A search over one pool.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// The parsed query.
    pub query: Query,
    /// Inclusive lower time bound in nanoseconds.
    pub from_ns: i64,
    /// Exclusive upper time bound in nanoseconds.
    pub to_ns: i64,
    /// Maximum number of hits.
    pub limit: usize,
    /// Return only hits strictly after this key in `order` (the previous page's last
    /// hit).
    pub after: Option<SortKey>,
    /// Newest first (the default) or oldest first.
    pub order: SortOrder,
    /// The bytes the page's records may take, charged as their stored source is
    /// read. The first hit is always returned; a page that reaches the budget
    /// ends early with [`SearchPage::truncated`].
    pub memory: RequestMemory,
}

/// One hit.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// Document id.
    pub id: String,
    /// Event time in nanoseconds.
    pub time_ns: i64,
    /// Shard index within the pool.
    pub shard: u32,
    /// Sort key, for the next-page cursor.
    pub sort_key: SortKey,
    /// Record fields.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// One page of hits.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    /// Hits, in the request's order.
    pub hits: Vec<SearchHit>,
    /// Number of records matching the query in the time range (all pages).
    pub total: u64,
    /// The page ended before `limit` at the request's memory budget: more hits may
    /// follow the last one.
    pub truncated: bool,
}

/// A count of matching records per time bucket.
#[derive(Debug, Clone)]
pub struct HistogramRequest {
    /// The parsed query.
    pub query: Query,
    /// Inclusive lower bound in nanoseconds; buckets are aligned to multiples of
    /// `interval_ns` since the epoch.
    pub from_ns: i64,
    /// Exclusive upper bound in nanoseconds.
    pub to_ns: i64,
    /// Bucket width in nanoseconds.
    pub interval_ns: i64,
}

/// One histogram bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistogramBucket {
    /// Start of the bucket in nanoseconds.
    pub time_ns: i64,
    /// Matching records in the bucket.
    pub count: u64,
}

/// Records around one record in its shard's queue order (position, then index in
/// the batch), whatever their event times.
#[derive(Debug, Clone)]
pub struct ContextRequest {
    /// The record to look around.
    pub anchor: DocIdentity,
    /// Neighbours must also match this query (`Query::All` for every record).
    pub filter: Query,
    /// How many earlier records of the same shard to return.
    pub before: usize,
    /// How many later records of the same shard to return.
    pub after: usize,
}

/// The answer to a [`ContextRequest`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContextPage {
    /// The anchor record, `None` when it is not in the index.
    pub anchor: Option<SearchHit>,
    /// Earlier records, oldest first (queue order).
    pub before: Vec<SearchHit>,
    /// Later records, in queue order.
    pub after: Vec<SearchHit>,
}

/// One time partition of a pool (a UTC day): the unit the search planner prunes and
/// scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimePartition {
    /// Inclusive start in nanoseconds.
    pub from_ns: i64,
    /// Exclusive end in nanoseconds.
    pub to_ns: i64,
}

/// A pipe-SQL aggregation: group the records matching `query` in `[from_ns, to_ns)`
/// by `group_by` and compute `aggregates` per group.
#[derive(Debug, Clone)]
pub struct AggregateRequest {
    /// The search query AND the statement's WHERE.
    pub query: Query,
    /// Inclusive lower time bound in nanoseconds.
    pub from_ns: i64,
    /// Exclusive upper time bound in nanoseconds.
    pub to_ns: i64,
    /// Group keys; empty means one group over every matching record.
    pub group_by: Vec<logpool_core::sql::plan::GroupKey>,
    /// Aggregates per group.
    pub aggregates: Vec<logpool_core::sql::plan::AggregateFn>,
    /// More groups than this is [`IndexError::LimitExceeded`], never a silent cut.
    pub max_groups: usize,
    /// The bytes the group table may take, charged as groups and their values are
    /// added; more is [`IndexError::OverMemoryBudget`], never a silent cut.
    pub memory: RequestMemory,
}

/// The index role. See the module documentation for the contract.
#[async_trait]
pub trait LogIndex: Send + Sync + Debug + 'static {
    /// Prepares storage for a pool (templates, directories). Idempotent.
    async fn ensure_pool(&self, pool: &PoolRoute) -> IndexResult<()>;

    /// Stages documents of one pool. See the contract for `replace_existing`.
    /// Documents the engine refuses for good are returned in the report; an `Err`
    /// means nothing can be assumed staged and the whole write must be retried.
    async fn write(
        &self,
        pool: &PoolRoute,
        docs: Vec<IndexDoc>,
        replace_existing: bool,
    ) -> IndexResult<WriteReport>;

    /// Makes every staged document durable and searchable.
    async fn commit(&self) -> IndexResult<()>;

    /// Searches one pool.
    async fn search(&self, pool: &PoolRoute, request: &SearchRequest) -> IndexResult<SearchPage>;

    /// Plans a search of `query` over `[from_ns, to_ns)`: lists the pool's partitions
    /// that hold data in the range (newest first) and compiles the query, once, so
    /// that a search scanning them a few at a time ([`LogIndex::search_partitions`])
    /// neither lists nor compiles again.
    async fn plan_search(
        &self,
        pool: &PoolRoute,
        query: &Query,
        from_ns: i64,
        to_ns: i64,
    ) -> IndexResult<SearchPlan>;

    /// Searches the chosen `partitions` of `plan` (made by this index): the hits of
    /// those partitions in the plan's range, in the page's order, and their total.
    /// Searching the plan's partitions in groups, first group first in that order
    /// (newest for [`SortOrder::Desc`], oldest for [`SortOrder::Asc`]), and following
    /// each page by the next gives the page of one [`LogIndex::search`] over the
    /// whole range.
    async fn search_partitions(
        &self,
        plan: &SearchPlan,
        partitions: &[PlannedPartition],
        page: &PageRequest,
    ) -> IndexResult<SearchPage>;

    /// Counts matching records per time bucket. Buckets without records are omitted.
    async fn histogram(
        &self,
        pool: &PoolRoute,
        request: &HistogramRequest,
    ) -> IndexResult<Vec<HistogramBucket>>;

    /// Creates the pool's partition for the UTC `day` ahead of time, so that the first
    /// write of the day does not pay for (or, on a busy cluster, wait on) its
    /// creation. Idempotent, and never required: writes create a missing partition.
    async fn prepare_day(&self, pool: &PoolRoute, day: time::Date) -> IndexResult<()>;

    /// Returns the records around `request.anchor` in its shard's queue order. The
    /// anchor itself is returned whether or not it matches the filter.
    async fn context(&self, pool: &PoolRoute, request: &ContextRequest)
        -> IndexResult<ContextPage>;

    /// Lists the pool's time partitions that hold data and overlap `[from_ns, to_ns)`,
    /// newest first. (A search that scans them in groups takes them from
    /// [`LogIndex::plan_search`], with the compiled query.)
    async fn time_partitions(
        &self,
        pool: &PoolRoute,
        from_ns: i64,
        to_ns: i64,
    ) -> IndexResult<Vec<TimePartition>>;

    /// Groups and aggregates matching records for pipe SQL. Returns *every* group
    /// (in no particular order), so that ordering by an aggregate and cutting to a
    /// top-N stays exact; more than `request.max_groups` groups is an error. A
    /// request without group keys returns no group when nothing matches.
    async fn aggregate(
        &self,
        pool: &PoolRoute,
        request: &AggregateRequest,
    ) -> IndexResult<Vec<logpool_core::sql::plan::AggregateGroup>>;

    /// Deletes every document and partition of a pool.
    async fn drop_pool(&self, pool_id: PoolId) -> IndexResult<()>;

    /// Field types that an earlier version of this engine learned and kept in its own
    /// storage (before the metadata store held them), by pool: loghub imports them
    /// once at start, so an upgrade keeps every type the data was indexed with. Empty
    /// when there are none (left).
    async fn legacy_learned_types(&self) -> IndexResult<HashMap<PoolId, LearnedTypes>> {
        Ok(HashMap::new())
    }

    /// Removes what [`LogIndex::legacy_learned_types`] returned, once the metadata
    /// store holds it. Safe to repeat.
    async fn retire_legacy_learned_types(&self) -> IndexResult<()> {
        Ok(())
    }

    /// Bytes the pool's partitions take in the engine's storage, as the engine
    /// reports them: on disk for tantivy, the store size of every copy (primaries and
    /// replicas) for Elasticsearch. 0 for a pool without data.
    async fn storage_bytes(&self, pool: &PoolRoute) -> IndexResult<u64>;

    /// Deletes the pool's partitions that hold only records older than
    /// `retention_days` before `now_ns`. Returns how many were dropped.
    async fn drop_expired(&self, pool: &PoolRoute, now_ns: i64) -> IndexResult<usize>;

    /// Checks that the engine can serve requests (for `/readyz`).
    async fn check_health(&self) -> IndexResult<()>;

    /// Commits staged documents and releases writers.
    async fn shutdown(&self) -> IndexResult<()>;
}
