//! Collectors for pages in time order (newest or oldest first) and time histograms.
//!
//! Both read the `_time` and `_tiebreak` fast fields and never score, which keeps
//! log searches cheap: relevance ranking is not what log users sort by.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use super::schema::{TIEBREAK, TIME};
use crate::index::{SortKey, SortOrder};

/// Counts all matches and keeps the `limit` first in `order` that come strictly
/// after `after`.
pub(crate) struct FirstInOrder {
    pub(crate) limit: usize,
    pub(crate) after: Option<SortKey>,
    pub(crate) order: SortOrder,
}

/// Matches counted and the first hits found, in the collector's order.
pub(crate) type OrderedFruit = (u64, Vec<(SortKey, DocAddress)>);

/// Keeps the segment's best hits by their rank ([`SortOrder::rank`]: larger comes
/// first), so one heap serves both orders.
pub(crate) struct FirstInOrderSegment {
    segment_ord: SegmentOrdinal,
    time: Column<i64>,
    tiebreak: Column<u64>,
    limit: usize,
    /// The rank of the cursor: only smaller ranks are kept.
    after_rank: Option<SortKey>,
    order: SortOrder,
    count: u64,
    heap: BinaryHeap<Reverse<(SortKey, DocAddress)>>,
}

impl Collector for FirstInOrder {
    type Fruit = OrderedFruit;
    type Child = FirstInOrderSegment;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<FirstInOrderSegment> {
        Ok(FirstInOrderSegment {
            segment_ord,
            time: segment.fast_fields().i64(TIME)?,
            tiebreak: segment.fast_fields().u64(TIEBREAK)?,
            limit: self.limit,
            after_rank: self.after.map(|after| self.order.rank(after)),
            order: self.order,
            count: 0,
            heap: BinaryHeap::with_capacity(self.limit.min(4096) + 1),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<OrderedFruit>) -> tantivy::Result<OrderedFruit> {
        Ok(merge_in_order(fruits, self.limit, self.order))
    }
}

impl SegmentCollector for FirstInOrderSegment {
    type Fruit = OrderedFruit;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.count += 1;
        if self.limit == 0 {
            return;
        }
        let rank = self.order.rank(SortKey {
            time_ns: self.time.first(doc).unwrap_or(i64::MIN),
            tiebreak: self.tiebreak.first(doc).unwrap_or(0),
        });
        if self.after_rank.is_some_and(|after| rank >= after) {
            return;
        }
        let entry = Reverse((rank, DocAddress::new(self.segment_ord, doc)));
        if self.heap.len() < self.limit {
            self.heap.push(entry);
        } else if let Some(Reverse((smallest, _))) = self.heap.peek() {
            if rank > *smallest {
                self.heap.pop();
                self.heap.push(entry);
            }
        }
    }

    fn harvest(self) -> OrderedFruit {
        let mut ranked: Vec<(SortKey, DocAddress)> =
            self.heap.into_iter().map(|Reverse(entry)| entry).collect();
        ranked.sort_by_key(|hit| std::cmp::Reverse(hit.0));
        // The rank of a rank is the key.
        let hits = ranked
            .into_iter()
            .map(|(rank, address)| (self.order.rank(rank), address))
            .collect();
        (self.count, hits)
    }
}

/// Merges per-segment (or per-partition) results into one list in `order`.
pub(crate) fn merge_in_order(
    fruits: Vec<OrderedFruit>,
    limit: usize,
    order: SortOrder,
) -> OrderedFruit {
    let mut total = 0;
    let mut all = Vec::new();
    for (count, hits) in fruits {
        total += count;
        all.extend(hits);
    }
    all.sort_by_key(|hit| std::cmp::Reverse(order.rank(hit.0)));
    all.truncate(limit);
    (total, all)
}

/// Counts matches per time bucket of `interval_ns`, aligned to the epoch.
pub(crate) struct TimeHistogram {
    pub(crate) interval_ns: i64,
}

pub(crate) struct TimeHistogramSegment {
    time: Column<i64>,
    interval_ns: i64,
    buckets: BTreeMap<i64, u64>,
    /// The bucket of the last document, counted apart: a segment's documents come
    /// mostly in time order, so nearly all fall into the bucket of the one before
    /// and skip the division and the map lookup (most of the cost per document).
    open: Option<OpenBucket>,
    /// Reused buffer of one block's times.
    times: Vec<Option<i64>>,
}

struct OpenBucket {
    start: i64,
    end: i64,
    count: u64,
}

impl TimeHistogramSegment {
    #[inline]
    fn count(&mut self, time_ns: i64) {
        if let Some(open) = &mut self.open {
            if time_ns >= open.start && time_ns < open.end {
                open.count += 1;
                return;
            }
        }
        self.close_open_bucket();
        let start = time_ns.div_euclid(self.interval_ns) * self.interval_ns;
        self.open = Some(OpenBucket {
            start,
            end: start.saturating_add(self.interval_ns),
            count: 1,
        });
    }

    fn close_open_bucket(&mut self) {
        if let Some(open) = self.open.take() {
            *self.buckets.entry(open.start).or_insert(0) += open.count;
        }
    }
}

impl Collector for TimeHistogram {
    type Fruit = BTreeMap<i64, u64>;
    type Child = TimeHistogramSegment;

    fn for_segment(
        &self,
        _segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<TimeHistogramSegment> {
        Ok(TimeHistogramSegment {
            time: segment.fast_fields().i64(TIME)?,
            interval_ns: self.interval_ns.max(1),
            buckets: BTreeMap::new(),
            open: None,
            times: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<BTreeMap<i64, u64>>) -> tantivy::Result<BTreeMap<i64, u64>> {
        let mut merged = BTreeMap::new();
        for fruit in fruits {
            for (bucket, count) in fruit {
                *merged.entry(bucket).or_insert(0) += count;
            }
        }
        Ok(merged)
    }
}

impl SegmentCollector for TimeHistogramSegment {
    type Fruit = BTreeMap<i64, u64>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let Some(time_ns) = self.time.first(doc) {
            self.count(time_ns);
        }
    }

    /// A block of matches at once (queries that do not score): their times are
    /// read from the column in one call.
    fn collect_block(&mut self, docs: &[DocId]) {
        let mut times = std::mem::take(&mut self.times);
        times.clear();
        times.resize(docs.len(), None);
        self.time.first_vals(docs, &mut times);
        for time_ns in times.iter().flatten() {
            self.count(*time_ns);
        }
        self.times = times;
    }

    fn harvest(mut self) -> BTreeMap<i64, u64> {
        self.close_open_bucket();
        self.buckets
    }
}
