//! Records around a record in its shard's queue order, and the partition list the
//! search planner scans.
//!
//! `_lp_tiebreak` is (partition, position, index in batch) as 16 hex digits, so one
//! shard's records are a contiguous keyword range and sorting by it is queue order,
//! across every daily index of the pool.

use logpool_core::routing::PoolRoute;
use serde_json::{json, Value};

use super::mapping::{tiebreak_text, RECORD, SHARD, TIEBREAK, TIME};
use super::naming;
use super::{dsl, parse_hit, ElasticsearchIndex, MAX_SEARCH_SIZE};
use crate::index::{
    ContextPage, ContextRequest, IndexError, IndexResult, SearchHit, TimePartition,
};

/// Bits of the tiebreak below the partition byte.
const SHARD_BITS: u32 = 56;

impl ElasticsearchIndex {
    pub(super) async fn context_of(
        &self,
        pool: &PoolRoute,
        request: &ContextRequest,
    ) -> IndexResult<ContextPage> {
        if request.anchor.pool_id != pool.pool_id {
            return Ok(ContextPage::default());
        }
        if request.before.max(request.after) > MAX_SEARCH_SIZE {
            return Err(IndexError::LimitExceeded(format!(
                "at most {MAX_SEARCH_SIZE} records on each side"
            )));
        }
        let alias = naming::alias_name(&self.config.index_prefix, pool);
        let anchor_tiebreak = request.anchor.tiebreak();
        let shard_first = u64::from(request.anchor.partition & 0xff) << SHARD_BITS;
        let shard_last = shard_first | ((1u64 << SHARD_BITS) - 1);
        let filter = dsl::compile(&request.filter, &pool.field_hints)?;
        let anchor = self
            .hits(
                &alias,
                json!({"ids": {"values": [request.anchor.doc_id()]}}),
                1,
                "desc",
            )
            .await?
            .into_iter()
            .next();
        let mut before = self
            .hits(
                &alias,
                json!({"bool": {"filter": [filter.clone(), {"range": {TIEBREAK: {
                    "gte": tiebreak_text(shard_first), "lt": tiebreak_text(anchor_tiebreak)}}}]}}),
                request.before,
                "desc",
            )
            .await?;
        before.reverse();
        let after = self
            .hits(
                &alias,
                json!({"bool": {"filter": [filter, {"range": {TIEBREAK: {
                    "gt": tiebreak_text(anchor_tiebreak), "lte": tiebreak_text(shard_last)}}}]}}),
                request.after,
                "asc",
            )
            .await?;
        Ok(ContextPage {
            anchor,
            before,
            after,
        })
    }

    pub(super) async fn partitions_of(
        &self,
        pool: &PoolRoute,
        from_ns: i64,
        to_ns: i64,
    ) -> IndexResult<Vec<TimePartition>> {
        Ok(self
            .daily_indices(pool, from_ns, to_ns)
            .await?
            .into_iter()
            .map(|(range, _)| range)
            .collect())
    }

    /// The first `size` hits of `query` in tiebreak order.
    async fn hits(
        &self,
        target: &str,
        query: Value,
        size: usize,
        order: &str,
    ) -> IndexResult<Vec<SearchHit>> {
        if size == 0 {
            return Ok(Vec::new());
        }
        let body = json!({
            "query": query,
            "sort": [{TIEBREAK: {"order": order}}],
            "size": size,
            "_source": [TIME, SHARD, TIEBREAK, RECORD],
        });
        let Some(response) = self.run_search(target, body).await? else {
            return Ok(Vec::new());
        };
        response["hits"]["hits"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(parse_hit)
            .collect()
    }
}
