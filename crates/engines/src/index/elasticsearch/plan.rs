//! Planned searches: the pool's daily indices of a range, listed once, and the query
//! DSL, built once; each step then names the indices of the days it scans.

use std::collections::BTreeMap;

use logpool_core::query::Query;
use logpool_core::routing::PoolRoute;
use serde_json::{json, Value};

use super::naming::{self, DAY_NS};
use super::{check_page_size, ElasticsearchIndex, MAX_URL_NAMES_BYTES};
use crate::index::plan::{CompiledQuery, PartitionHandle};
use crate::index::{
    IndexResult, PageRequest, PlannedPartition, SearchPage, SearchPlan, TimePartition,
};

impl ElasticsearchIndex {
    /// The pool's daily indices overlapping `[from_ns, to_ns)`, grouped by day, newest
    /// day first: one listing.
    pub(super) async fn daily_indices(
        &self,
        pool: &PoolRoute,
        from_ns: i64,
        to_ns: i64,
    ) -> IndexResult<Vec<(TimePartition, Vec<String>)>> {
        self.work.listed();
        let mut by_day: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for name in self.list_pool_indices(pool.pool_id).await? {
            if let Some(day) =
                naming::parse_index_day(&self.config.index_prefix, pool.pool_id, &name)
            {
                by_day.entry(day).or_default().push(name);
            }
        }
        Ok(by_day
            .into_iter()
            .rev()
            .map(|(day, names)| {
                let range = TimePartition {
                    from_ns: day.saturating_mul(DAY_NS),
                    to_ns: day.saturating_add(1).saturating_mul(DAY_NS),
                };
                (range, names)
            })
            .filter(|(range, _)| range.to_ns > from_ns && range.from_ns < to_ns)
            .collect())
    }

    /// Lists the range's indices and builds the query DSL with the pool's types.
    pub(super) async fn plan_of(
        &self,
        pool: &PoolRoute,
        query: &Query,
        from_ns: i64,
        to_ns: i64,
    ) -> IndexResult<SearchPlan> {
        let query = self.compile_in_range(query, &pool.field_types(), from_ns, to_ns)?;
        let partitions = self
            .daily_indices(pool, from_ns, to_ns)
            .await?
            .into_iter()
            .map(|(range, names)| PlannedPartition::new(range, PartitionHandle::Indices(names)))
            .collect();
        let alias = naming::alias_name(&self.config.index_prefix, pool);
        Ok(SearchPlan::new(
            pool.pool_id,
            partitions,
            CompiledQuery::Elasticsearch { query, alias },
        ))
    }

    /// One page over the chosen partitions of a plan: their indices are named in the
    /// URL, or, when that would be too long, the alias is searched with a filter on
    /// the index names, so that exactly those indices are searched either way.
    pub(super) async fn search_planned(
        &self,
        plan: &SearchPlan,
        partitions: &[PlannedPartition],
        page: &PageRequest,
    ) -> IndexResult<SearchPage> {
        check_page_size(page.limit)?;
        let (query, alias) = plan.compiled().elasticsearch()?;
        let mut names: Vec<&str> = Vec::new();
        for partition in partitions {
            names.extend(partition.handle().indices()?.iter().map(String::as_str));
        }
        if names.is_empty() {
            return Ok(SearchPage {
                hits: Vec::new(),
                total: 0,
                truncated: false,
            });
        }
        let (target, query) = planned_target(&names, alias, query, MAX_URL_NAMES_BYTES);
        self.search_page(&target, &query, page).await
    }
}

/// Where a search of exactly the indices `names` goes, and with which query: the names
/// themselves when they fit in `max_url_bytes`, otherwise the pool's alias with a
/// filter on the index names (Elasticsearch's request line is limited to 4 KB).
pub(super) fn planned_target(
    names: &[&str],
    alias: &str,
    query: &Value,
    max_url_bytes: usize,
) -> (String, Value) {
    let joined = names.join(",");
    if joined.len() <= max_url_bytes {
        return (joined, query.clone());
    }
    let only_chosen = json!({"bool": {"filter": [
        query,
        {"terms": {"_index": names}},
    ]}});
    (alias.to_string(), only_chosen)
}
