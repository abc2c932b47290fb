//! Records around a record in its shard's queue order, and the partition list the
//! search planner scans.
//!
//! The tiebreak fast field holds (partition, position, index in batch) in that bit
//! order, so one shard's records are a contiguous tiebreak range and sorting by
//! tiebreak is queue order, across every day partition.

use logpool_core::pool_id::PoolId;
use std::ops::Bound;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query as TantivyQuery, RangeQuery};
use tantivy::{DocAddress, Order, Searcher, TantivyDocument, Term};

use super::{compile, tantivy_error, PartitionKey, TantivyIndex};
use crate::index::{ContextPage, ContextRequest, IndexResult, SearchHit, SortKey, TimePartition};

/// Bits of the tiebreak below the partition byte.
const SHARD_BITS: u32 = 56;

/// Records fetched to find the anchor among those sharing its tiebreak.
const ANCHOR_CANDIDATES: usize = 4;

impl TantivyIndex {
    pub(super) fn context_blocking(
        &self,
        pool_id: PoolId,
        types: &compile::FieldTypes,
        request: &ContextRequest,
    ) -> IndexResult<ContextPage> {
        if request.anchor.pool_id != pool_id {
            return Ok(ContextPage::default());
        }
        let anchor_tiebreak = request.anchor.tiebreak();
        let shard_first = u64::from(request.anchor.partition & 0xff) << SHARD_BITS;
        let shard_last = shard_first | ((1u64 << SHARD_BITS) - 1);
        self.work.compiled();
        let filter = compile::compile(&self.schema, types, &request.filter)?;
        let anchor_id = request.anchor.doc_id();
        let anchor_query = compile::record_query(&self.schema, &request.anchor);
        let before_query = self.tiebreak_range(
            filter.box_clone(),
            Bound::Included(shard_first),
            Bound::Excluded(anchor_tiebreak),
        );
        let after_query = self.tiebreak_range(
            filter,
            Bound::Excluded(anchor_tiebreak),
            Bound::Included(shard_last),
        );
        let mut anchor = None;
        let mut before: Vec<(u64, SearchHit)> = Vec::new();
        let mut after: Vec<(u64, SearchHit)> = Vec::new();
        for day in self.days_on_disk(pool_id, i64::MIN, i64::MAX)? {
            let Some(partition) = self.open_partition(PartitionKey { pool_id, day }, false)? else {
                continue;
            };
            let searcher = partition.reader.searcher();
            if anchor.is_none() {
                // Records whose index in batch is past the tiebreak's 16 bits can share
                // a tiebreak; their stored ids tell them apart.
                let found = self.top_by_tiebreak(
                    pool_id,
                    &searcher,
                    anchor_query.as_ref(),
                    ANCHOR_CANDIDATES,
                    Order::Desc,
                )?;
                anchor = found
                    .into_iter()
                    .map(|(_, hit)| hit)
                    .find(|hit| hit.id == anchor_id);
            }
            before.extend(self.top_by_tiebreak(
                pool_id,
                &searcher,
                before_query.as_ref(),
                request.before,
                Order::Desc,
            )?);
            after.extend(self.top_by_tiebreak(
                pool_id,
                &searcher,
                after_query.as_ref(),
                request.after,
                Order::Asc,
            )?);
        }
        // Each day gave its own nearest records; keep the nearest overall.
        before.sort_by_key(|(tiebreak, _)| std::cmp::Reverse(*tiebreak));
        before.truncate(request.before);
        before.reverse();
        after.sort_by_key(|(tiebreak, _)| *tiebreak);
        after.truncate(request.after);
        Ok(ContextPage {
            anchor,
            before: before.into_iter().map(|(_, hit)| hit).collect(),
            after: after.into_iter().map(|(_, hit)| hit).collect(),
        })
    }

    pub(super) fn time_partitions_blocking(
        &self,
        pool_id: PoolId,
        from_ns: i64,
        to_ns: i64,
    ) -> IndexResult<Vec<TimePartition>> {
        Ok(self
            .days_on_disk(pool_id, from_ns, to_ns)?
            .into_iter()
            .map(super::day_range)
            .collect())
    }

    fn tiebreak_range(
        &self,
        filter: Box<dyn TantivyQuery>,
        lower: Bound<u64>,
        upper: Bound<u64>,
    ) -> Box<dyn TantivyQuery> {
        let term = |value: u64| Term::from_field_u64(self.schema.tiebreak, value);
        let range = RangeQuery::new(lower.map(term), upper.map(term));
        Box::new(BooleanQuery::new(vec![
            (Occur::Must, Box::new(range) as Box<dyn TantivyQuery>),
            (Occur::Must, filter),
        ]))
    }

    /// The `limit` matching records nearest in tiebreak order, with their tiebreaks.
    fn top_by_tiebreak(
        &self,
        pool_id: PoolId,
        searcher: &Searcher,
        query: &dyn TantivyQuery,
        limit: usize,
        order: Order,
    ) -> IndexResult<Vec<(u64, SearchHit)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let collector =
            TopDocs::with_limit(limit).order_by_u64_field(super::schema::TIEBREAK, order);
        let found: Vec<(Option<u64>, DocAddress)> =
            searcher.search(query, &collector).map_err(tantivy_error)?;
        // Each segment's time column, opened once for all the hits in it.
        let times = searcher
            .segment_readers()
            .iter()
            .map(|segment| segment.fast_fields().i64(super::schema::TIME))
            .collect::<Result<Vec<_>, _>>()
            .map_err(tantivy_error)?;
        let mut hits = Vec::with_capacity(found.len());
        for (tiebreak, address) in found {
            let time_ns = times
                .get(address.segment_ord as usize)
                .and_then(|time| time.first(address.doc_id));
            let sort_key = SortKey {
                time_ns: time_ns.unwrap_or(i64::MIN),
                tiebreak: tiebreak.unwrap_or(0),
            };
            let document: TantivyDocument = searcher.doc(address).map_err(tantivy_error)?;
            let hit = self.hit_from_document(pool_id, &document, sort_key)?;
            hits.push((sort_key.tiebreak, hit));
        }
        Ok(hits)
    }
}
