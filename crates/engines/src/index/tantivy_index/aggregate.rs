//! Pipe-SQL aggregation on the embedded index: one collector over fast fields.
//!
//! Group keys and aggregated fields are read from the columns of the `fields` JSON
//! fast field (and of `kw` and `ts` for fields typed keyword, ip or timestamp), which keeps every value at its path with its JSON type (strings
//! untokenised). A path may have a column per type (`status` is 500 in one record
//! and `"n/a"` in the next); a record's value is in exactly one of them.
//!
//! Inside a segment a string key is its term ordinal, so grouping never touches
//! text until the segment's groups are harvested. Every group is returned (up to
//! the request's cap), so the final stage can order by any aggregate exactly.
//!
//! Memory: the group table is charged to the request's memory budget as it grows
//! (a new group, a new distinct value, a kept percentile value; key texts when a
//! segment's groups are resolved), and re-estimated after each partition is merged,
//! so groups seen in many segments are not counted many times. A table over budget
//! stops growing and the request fails with [`IndexError::OverMemoryBudget`].
//!
//! Precision: counts, sums, min and max are exact. `count(DISTINCT f)` is exact
//! up to 64-bit hash collisions. `percentile` is exact (linear interpolation between
//! the closest ranks) while a group holds at most [`EXACT_PERCENTILE_VALUES`] values,
//! then a DDSketch with 1% relative accuracy.

use logpool_core::pool_id::PoolId;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use logpool_core::memory::{OverBudget, RequestMemory};
use logpool_core::sql::plan::{AggregateFn, AggregateGroup, AggregateValue, GroupKey, KeyValue};
use sketches_ddsketch::{Config as SketchConfig, DDSketch};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, DynamicColumn, StrColumn};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use super::schema::{FIELDS, KEYWORDS, NUMBERS, TIME, TIMESTAMPS};
use super::{tantivy_error, PartitionKey, TantivyIndex};
use crate::index::{AggregateRequest, IndexError, IndexResult};

/// Values kept exactly per group before a percentile switches to a sketch.
pub(crate) const EXACT_PERCENTILE_VALUES: usize = 10_000;

/// Estimated bytes of one group beyond its keys' text and its accumulators' values:
/// the map entry, the key and accumulator vectors.
const GROUP_BYTES: usize = 96;
/// Estimated bytes of one key or accumulator slot of a group.
const SLOT_BYTES: usize = 48;
/// Estimated bytes of one distinct value kept (a hash set entry).
const DISTINCT_VALUE_BYTES: usize = 24;
/// Estimated bytes of one percentile sketch.
const SKETCH_BYTES: usize = 4096;
/// A segment collector charges the budget in steps of this many bytes, so the
/// per-document path only adds to a local counter.
const CHARGE_STEP_BYTES: usize = 64 * 1024;

/// Charges a request's memory budget in steps, and remembers a refusal.
struct Meter {
    memory: RequestMemory,
    pending: usize,
    charged: usize,
    refused: Option<OverBudget>,
}

impl Meter {
    fn new(memory: RequestMemory) -> Meter {
        Meter {
            memory,
            pending: 0,
            charged: 0,
            refused: None,
        }
    }

    /// Counts `bytes` more; false once the budget has refused.
    #[inline]
    fn add(&mut self, bytes: usize) -> bool {
        self.pending += bytes;
        if self.pending >= CHARGE_STEP_BYTES {
            self.flush();
        }
        self.refused.is_none()
    }

    fn flush(&mut self) {
        if self.refused.is_some() || self.pending == 0 {
            return;
        }
        match self.memory.try_charge(self.pending) {
            Ok(()) => self.charged += self.pending,
            Err(refused) => self.refused = Some(refused),
        }
        self.pending = 0;
    }
}

/// Estimated bytes of a merged group.
fn group_bytes(key: &[MergedKey], accumulators: &[Accumulator]) -> usize {
    let key_text: usize = key
        .iter()
        .map(|value| match value {
            MergedKey::Str(text) => text.len(),
            _ => 0,
        })
        .sum();
    let values: usize = accumulators
        .iter()
        .map(|accumulator| match accumulator {
            Accumulator::Distinct(set) => set.len() * DISTINCT_VALUE_BYTES,
            Accumulator::Percentile(percentile) => {
                percentile.exact.len() * 8 + percentile.sketch.as_ref().map_or(0, |_| SKETCH_BYTES)
            }
            _ => 0,
        })
        .sum();
    GROUP_BYTES + (key.len() + accumulators.len()) * SLOT_BYTES + key_text + values
}

/// A group key as merged across segments and partitions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum MergedKey {
    Null,
    Bool(bool),
    Long(i64),
    /// The bits of an `f64`.
    Double(u64),
    Str(String),
    Time(i64),
}

impl MergedKey {
    fn into_key_value(self) -> KeyValue {
        match self {
            MergedKey::Null => KeyValue::Null,
            MergedKey::Bool(b) => KeyValue::Bool(b),
            MergedKey::Long(n) => KeyValue::Long(n),
            MergedKey::Double(bits) => KeyValue::Double(f64::from_bits(bits)),
            MergedKey::Str(s) => KeyValue::Str(s),
            MergedKey::Time(t) => KeyValue::Time(t),
        }
    }
}

/// One column of a JSON path.
enum TypedColumn {
    Str(StrColumn),
    I64(Column<i64>),
    U64(Column<u64>),
    F64(Column<f64>),
    Bool(Column<bool>),
}

/// A value inside one segment: a string is its term ordinal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SegmentValue {
    Null,
    StrOrd(u64),
    I64(i64),
    U64(u64),
    F64(u64),
    Bool(bool),
    Time(i64),
}

impl TypedColumn {
    fn value(&self, doc: DocId) -> Option<SegmentValue> {
        match self {
            TypedColumn::Str(column) => column.ords().first(doc).map(SegmentValue::StrOrd),
            TypedColumn::I64(column) => column.first(doc).map(SegmentValue::I64),
            TypedColumn::U64(column) => column.first(doc).map(SegmentValue::U64),
            TypedColumn::F64(column) => column.first(doc).map(|x| SegmentValue::F64(x.to_bits())),
            TypedColumn::Bool(column) => column.first(doc).map(SegmentValue::Bool),
        }
    }

    fn number(&self, doc: DocId) -> Option<f64> {
        match self {
            TypedColumn::I64(column) => column.first(doc).map(|n| n as f64),
            TypedColumn::U64(column) => column.first(doc).map(|n| n as f64),
            TypedColumn::F64(column) => column.first(doc),
            TypedColumn::Str(_) | TypedColumn::Bool(_) => None,
        }
    }
}

/// The columns of one record field in one segment.
struct PathColumns {
    columns: Vec<TypedColumn>,
}

impl PathColumns {
    fn open(segment: &SegmentReader, field: &str) -> tantivy::Result<PathColumns> {
        let mut handles = Vec::new();
        // Numbers, values of a field typed `keyword` (or `ip`, grouped by its text)
        // and of one typed `timestamp` are in JSON fields of their own; a record's
        // value is in one of them.
        for json_field in [FIELDS, NUMBERS, KEYWORDS, TIMESTAMPS] {
            handles.extend(
                segment
                    .fast_fields()
                    .dynamic_column_handles(&format!("{json_field}.{field}"))?,
            );
        }
        let mut columns = Vec::new();
        for handle in handles {
            // Dates, IPs and bytes never come from a record's JSON value.
            match handle.open()? {
                DynamicColumn::Str(column) => columns.push(TypedColumn::Str(column)),
                DynamicColumn::I64(column) => columns.push(TypedColumn::I64(column)),
                DynamicColumn::U64(column) => columns.push(TypedColumn::U64(column)),
                DynamicColumn::F64(column) => columns.push(TypedColumn::F64(column)),
                DynamicColumn::Bool(column) => columns.push(TypedColumn::Bool(column)),
                _ => {}
            }
        }
        Ok(PathColumns { columns })
    }

    fn value(&self, doc: DocId) -> SegmentValue {
        self.columns
            .iter()
            .find_map(|column| column.value(doc))
            .unwrap_or(SegmentValue::Null)
    }

    fn number(&self, doc: DocId) -> Option<f64> {
        self.columns.iter().find_map(|column| column.number(doc))
    }

    fn str_column(&self) -> Option<&StrColumn> {
        self.columns.iter().find_map(|column| match column {
            TypedColumn::Str(column) => Some(column),
            _ => None,
        })
    }

    /// Turns a segment value into its merged form (strings looked up by ordinal).
    fn merged(&self, value: SegmentValue) -> MergedKey {
        match value {
            SegmentValue::Null => MergedKey::Null,
            SegmentValue::StrOrd(ord) => {
                let mut text = String::new();
                match self
                    .str_column()
                    .map(|column| column.ord_to_str(ord, &mut text))
                {
                    Some(Ok(true)) => MergedKey::Str(text),
                    _ => MergedKey::Null,
                }
            }
            SegmentValue::I64(n) => MergedKey::Long(n),
            SegmentValue::U64(n) => i64::try_from(n)
                .map(MergedKey::Long)
                .unwrap_or(MergedKey::Double((n as f64).to_bits())),
            SegmentValue::F64(bits) => MergedKey::Double(bits),
            SegmentValue::Bool(b) => MergedKey::Bool(b),
            SegmentValue::Time(t) => MergedKey::Time(t),
        }
    }
}

enum KeyReader {
    Field(PathColumns),
    Time { time: Column<i64>, interval_ns: i64 },
}

/// Running state of one aggregate in one group.
#[derive(Clone)]
enum Accumulator {
    Count(u64),
    /// Segment values while collecting, hashes of merged values after harvest.
    Distinct(HashSet<u64>),
    Sum {
        sum: f64,
        count: u64,
    },
    Min(Option<f64>),
    Max(Option<f64>),
    Percentile(Percentile),
}

#[derive(Clone)]
struct Percentile {
    percent: f64,
    exact: Vec<f64>,
    sketch: Option<DDSketch>,
}

impl Percentile {
    fn add(&mut self, value: f64) {
        match &mut self.sketch {
            Some(sketch) => sketch.add(value),
            None => {
                self.exact.push(value);
                if self.exact.len() > EXACT_PERCENTILE_VALUES {
                    self.switch_to_sketch();
                }
            }
        }
    }

    fn switch_to_sketch(&mut self) {
        let mut sketch = self
            .sketch
            .take()
            .unwrap_or_else(|| DDSketch::new(SketchConfig::defaults()));
        for value in self.exact.drain(..) {
            sketch.add(value);
        }
        self.sketch = Some(sketch);
    }

    fn merge(&mut self, mut other: Percentile) {
        if self.sketch.is_none()
            && other.sketch.is_none()
            && self.exact.len() + other.exact.len() <= EXACT_PERCENTILE_VALUES
        {
            self.exact.append(&mut other.exact);
            return;
        }
        self.switch_to_sketch();
        other.switch_to_sketch();
        if let (Some(mine), Some(theirs)) = (self.sketch.as_mut(), other.sketch.as_ref()) {
            // Both sketches use the default configuration, the only way merge fails.
            let _ = mine.merge(theirs);
        }
    }

    fn value(&self) -> Option<f64> {
        if let Some(sketch) = &self.sketch {
            return sketch.quantile(self.percent / 100.0).ok().flatten();
        }
        exact_percentile(&self.exact, self.percent)
    }
}

/// Linear interpolation between the closest ranks (what most tools call the
/// percentile of a small set).
pub(crate) fn exact_percentile(values: &[f64], percent: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = percent / 100.0 * (sorted.len() - 1) as f64;
    let low = rank.floor() as usize;
    let high = rank.ceil() as usize;
    Some(sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64))
}

impl Accumulator {
    fn new(aggregate: &AggregateFn) -> Accumulator {
        match aggregate {
            AggregateFn::Count | AggregateFn::CountField(_) => Accumulator::Count(0),
            AggregateFn::CountDistinct(_) => Accumulator::Distinct(HashSet::new()),
            AggregateFn::Sum(_) | AggregateFn::Avg(_) => Accumulator::Sum { sum: 0.0, count: 0 },
            AggregateFn::Min(_) => Accumulator::Min(None),
            AggregateFn::Max(_) => Accumulator::Max(None),
            AggregateFn::Percentile { percent, .. } => Accumulator::Percentile(Percentile {
                percent: *percent,
                exact: Vec::new(),
                sketch: None,
            }),
        }
    }

    fn merge(&mut self, other: Accumulator) {
        match (self, other) {
            (Accumulator::Count(a), Accumulator::Count(b)) => *a += b,
            (Accumulator::Distinct(a), Accumulator::Distinct(b)) => a.extend(b),
            (
                Accumulator::Sum { sum, count },
                Accumulator::Sum {
                    sum: other_sum,
                    count: other_count,
                },
            ) => {
                *sum += other_sum;
                *count += other_count;
            }
            (Accumulator::Min(a), Accumulator::Min(b)) => *a = min_opt(*a, b),
            (Accumulator::Max(a), Accumulator::Max(b)) => *a = max_opt(*a, b),
            (Accumulator::Percentile(a), Accumulator::Percentile(b)) => a.merge(b),
            // Accumulators of one aggregate always have the same kind.
            _ => debug_assert!(false, "merging accumulators of different aggregates"),
        }
    }

    fn value(&self, aggregate: &AggregateFn) -> AggregateValue {
        match self {
            Accumulator::Count(count) => AggregateValue::Count(*count),
            Accumulator::Distinct(set) => AggregateValue::Count(set.len() as u64),
            Accumulator::Sum { sum, count } => AggregateValue::Number(match aggregate {
                AggregateFn::Avg(_) => (*count > 0).then(|| sum / *count as f64),
                _ => (*count > 0).then_some(*sum),
            }),
            Accumulator::Min(value) | Accumulator::Max(value) => AggregateValue::Number(*value),
            Accumulator::Percentile(percentile) => AggregateValue::Number(percentile.value()),
        }
    }
}

fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

fn hash_of(key: &MergedKey) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// Groups merged so far, whether the cap on groups was hit, and the bytes charged
/// for them to the request's memory budget (or its refusal).
#[derive(Default)]
pub(crate) struct Groups {
    groups: HashMap<Vec<MergedKey>, Vec<Accumulator>>,
    overflow: bool,
    charged: usize,
    over_budget: Option<OverBudget>,
}

impl Groups {
    fn merge(&mut self, other: Groups, max_groups: usize) {
        self.overflow |= other.overflow;
        self.charged += other.charged;
        self.over_budget = self.over_budget.or(other.over_budget);
        for (key, accumulators) in other.groups {
            if let Some(known) = self.groups.get_mut(&key) {
                for (mine, theirs) in known.iter_mut().zip(accumulators) {
                    mine.merge(theirs);
                }
            } else if self.groups.len() < max_groups {
                self.groups.insert(key, accumulators);
            } else {
                self.overflow = true;
            }
        }
    }
}

/// Groups matching documents by the request's keys and aggregates them.
pub(crate) struct GroupCollector {
    pub(crate) group_by: Vec<GroupKey>,
    pub(crate) aggregates: Vec<AggregateFn>,
    pub(crate) max_groups: usize,
    pub(crate) memory: RequestMemory,
}

pub(crate) struct GroupSegment {
    /// Set for the most common shape (one text key, only `count(*)`): counts per
    /// term ordinal instead of a hash lookup per document.
    ordinal_counts: Option<OrdinalCounts>,
    keys: Vec<KeyReader>,
    /// Per aggregate: the columns of its field (`None` for `count(*)`).
    inputs: Vec<Option<PathColumns>>,
    aggregates: Vec<AggregateFn>,
    max_groups: usize,
    groups: HashMap<Vec<SegmentValue>, Vec<SegmentAccumulator>, FxBuildHasher>,
    overflow: bool,
    scratch: Vec<SegmentValue>,
    /// The group table's bytes against the request's budget.
    meter: Meter,
}

/// `GROUP BY text_field` with only `count(*)`: one counter per term ordinal of the
/// segment's column, filled a block of documents at a time. Several times faster than
/// the general path, which hashes every document's key.
struct OrdinalCounts {
    column: StrColumn,
    ordinals: Column<u64>,
    counts: Vec<u64>,
    /// Documents without a value (the `NULL` group).
    missing: u64,
    /// Reused buffer for a block's ordinals.
    block: Vec<Option<u64>>,
}

impl OrdinalCounts {
    /// The fast path applies when the only key is a field with a single text column
    /// in this segment and every aggregate is `count(*)`.
    fn for_shape(keys: &[KeyReader], aggregates: &[AggregateFn]) -> Option<OrdinalCounts> {
        if !aggregates
            .iter()
            .all(|aggregate| *aggregate == AggregateFn::Count)
        {
            return None;
        }
        let [KeyReader::Field(columns)] = keys else {
            return None;
        };
        let [TypedColumn::Str(column)] = columns.columns.as_slice() else {
            return None;
        };
        let terms = column.num_terms();
        Some(OrdinalCounts {
            column: column.clone(),
            ordinals: column.ords().clone(),
            counts: vec![0; terms],
            missing: 0,
            block: Vec::new(),
        })
    }

    /// The segment's groups, each key resolved to its text in one pass over the
    /// dictionary: looking ordinals up one by one decompresses a dictionary block
    /// again for each (half of a group-by's time before this).
    fn into_groups(self, aggregates: usize, max_groups: usize, mut meter: Meter) -> Groups {
        let used: Vec<u64> = (0u64..)
            .zip(&self.counts)
            .filter(|(_, count)| **count > 0)
            .map(|(ordinal, _)| ordinal)
            .collect();
        let count_all = |count: u64| vec![Accumulator::Count(count); aggregates];
        let mut texts: Vec<String> = Vec::with_capacity(used.len());
        let resolved = self
            .column
            .dictionary()
            .sorted_ords_to_term_cb(&used, |bytes| {
                texts.push(String::from_utf8_lossy(bytes).into_owned());
            });
        if !matches!(resolved, Ok(true)) || texts.len() != used.len() {
            // Not expected; fall back to one lookup per ordinal rather than drop groups.
            texts.clear();
            for ordinal in &used {
                let mut text = String::new();
                if !matches!(self.column.ord_to_str(*ordinal, &mut text), Ok(true)) {
                    text.clear();
                }
                texts.push(text);
            }
        }
        let mut groups = Groups::default();
        let entries = used
            .iter()
            .zip(texts)
            .map(|(ordinal, text)| (MergedKey::Str(text), self.counts[*ordinal as usize]))
            .chain((self.missing > 0).then_some((MergedKey::Null, self.missing)));
        // The counters of every term were charged when the segment began; the
        // groups replace them.
        meter.memory.release(self.counts.len() * 8);
        for (key, count) in entries {
            if groups.groups.len() >= max_groups {
                groups.overflow = true;
                break;
            }
            let accumulators = count_all(count);
            if !meter.add(group_bytes(std::slice::from_ref(&key), &accumulators)) {
                break;
            }
            groups.groups.insert(vec![key], accumulators);
        }
        meter.flush();
        groups.charged = meter.charged;
        groups.over_budget = meter.refused;
        groups
    }

    fn add(&mut self, ordinal: Option<u64>) {
        match ordinal.and_then(|ordinal| self.counts.get_mut(ordinal as usize)) {
            Some(count) => *count += 1,
            None => self.missing += 1,
        }
    }
}

/// The per-document group lookup hashes with rustc's Fx hash: keys are term ordinals
/// and numbers from the index, not input an attacker picks, and SipHash would be most
/// of the cost of grouping.
type FxBuildHasher = rustc_hash::FxBuildHasher;

/// Like [`Accumulator`], but distinct values are kept as segment values.
enum SegmentAccumulator {
    Plain(Accumulator),
    Distinct(HashSet<SegmentValue, FxBuildHasher>),
}

impl Collector for GroupCollector {
    type Fruit = Groups;
    type Child = GroupSegment;

    fn for_segment(
        &self,
        _segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<GroupSegment> {
        let mut keys = Vec::with_capacity(self.group_by.len());
        for key in &self.group_by {
            keys.push(match key {
                GroupKey::Field(field) => KeyReader::Field(PathColumns::open(segment, field)?),
                GroupKey::TimeBucket { interval_ns } => KeyReader::Time {
                    time: segment.fast_fields().i64(TIME)?,
                    interval_ns: (*interval_ns).max(1),
                },
            });
        }
        let mut inputs = Vec::with_capacity(self.aggregates.len());
        for aggregate in &self.aggregates {
            inputs.push(match aggregate.field() {
                Some(field) => Some(PathColumns::open(segment, field)?),
                None => None,
            });
        }
        // The fast path's counters (one per term of the segment) are charged up
        // front; when they do not fit, the general path charges group by group.
        let ordinal_counts = OrdinalCounts::for_shape(&keys, &self.aggregates)
            .filter(|fast| self.memory.try_charge(fast.counts.len() * 8).is_ok());
        Ok(GroupSegment {
            ordinal_counts,
            keys,
            inputs,
            aggregates: self.aggregates.clone(),
            max_groups: self.max_groups,
            groups: HashMap::default(),
            overflow: false,
            scratch: Vec::with_capacity(self.group_by.len()),
            meter: Meter::new(self.memory.clone()),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Groups>) -> tantivy::Result<Groups> {
        let mut merged = Groups::default();
        for fruit in fruits {
            merged.merge(fruit, self.max_groups);
        }
        Ok(merged)
    }
}

impl SegmentCollector for GroupSegment {
    type Fruit = Groups;

    fn collect_block(&mut self, docs: &[DocId]) {
        let Some(fast) = self.ordinal_counts.as_mut() else {
            for doc in docs {
                self.collect(*doc, 0.0);
            }
            return;
        };
        let mut block = std::mem::take(&mut fast.block);
        block.clear();
        block.resize(docs.len(), None);
        fast.ordinals.first_vals(docs, &mut block);
        for ordinal in &block {
            fast.add(*ordinal);
        }
        fast.block = block;
    }

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let Some(fast) = self.ordinal_counts.as_mut() {
            let ordinal = fast.ordinals.first(doc);
            fast.add(ordinal);
            return;
        }
        if self.meter.refused.is_some() {
            // The request fails at harvest; nothing may grow until then.
            return;
        }
        self.scratch.clear();
        for key in &self.keys {
            self.scratch.push(match key {
                KeyReader::Field(columns) => columns.value(doc),
                KeyReader::Time { time, interval_ns } => match time.first(doc) {
                    Some(t) => SegmentValue::Time(t.div_euclid(*interval_ns) * interval_ns),
                    None => SegmentValue::Null,
                },
            });
        }
        if !self.groups.contains_key(self.scratch.as_slice()) {
            if self.groups.len() >= self.max_groups {
                self.overflow = true;
                return;
            }
            let slots = self.keys.len() + self.aggregates.len();
            if !self.meter.add(GROUP_BYTES + slots * SLOT_BYTES) {
                return;
            }
            let accumulators = self
                .aggregates
                .iter()
                .map(|aggregate| match aggregate {
                    AggregateFn::CountDistinct(_) => {
                        SegmentAccumulator::Distinct(HashSet::default())
                    }
                    other => SegmentAccumulator::Plain(Accumulator::new(other)),
                })
                .collect();
            self.groups.insert(self.scratch.clone(), accumulators);
        }
        let Some(accumulators) = self.groups.get_mut(self.scratch.as_slice()) else {
            return;
        };
        for ((accumulator, input), aggregate) in accumulators
            .iter_mut()
            .zip(&self.inputs)
            .zip(&self.aggregates)
        {
            match (accumulator, input) {
                (SegmentAccumulator::Distinct(set), Some(columns)) => {
                    let value = columns.value(doc);
                    if value != SegmentValue::Null && set.insert(value) {
                        self.meter.add(DISTINCT_VALUE_BYTES);
                    }
                }
                (SegmentAccumulator::Plain(Accumulator::Count(count)), None) => *count += 1,
                (SegmentAccumulator::Plain(Accumulator::Count(count)), Some(columns)) => {
                    if columns.value(doc) != SegmentValue::Null {
                        *count += 1;
                    }
                }
                (SegmentAccumulator::Plain(plain), Some(columns)) => {
                    if let Some(value) = columns.number(doc) {
                        if add_number(plain, value) {
                            self.meter.add(8);
                        }
                    }
                }
                _ => debug_assert!(false, "aggregate {aggregate:?} without its input"),
            }
        }
    }

    fn harvest(mut self) -> Groups {
        if let Some(fast) = self.ordinal_counts {
            return fast.into_groups(self.aggregates.len(), self.max_groups, self.meter);
        }
        let mut groups = HashMap::with_capacity(self.groups.len());
        for (segment_key, accumulators) in self.groups {
            let key: Vec<MergedKey> = segment_key
                .iter()
                .zip(&self.keys)
                .map(|(value, reader)| match reader {
                    KeyReader::Field(columns) => columns.merged(*value),
                    KeyReader::Time { .. } => match value {
                        SegmentValue::Time(t) => MergedKey::Time(*t),
                        _ => MergedKey::Null,
                    },
                })
                .collect();
            let accumulators = accumulators
                .into_iter()
                .zip(&self.inputs)
                .map(|(accumulator, input)| match (accumulator, input) {
                    (SegmentAccumulator::Distinct(values), Some(columns)) => Accumulator::Distinct(
                        values
                            .into_iter()
                            .map(|value| hash_of(&columns.merged(value)))
                            .collect(),
                    ),
                    (SegmentAccumulator::Distinct(_), None) => {
                        Accumulator::Distinct(HashSet::new())
                    }
                    (SegmentAccumulator::Plain(plain), _) => plain,
                })
                .collect();
            let key_text: usize = key
                .iter()
                .map(|value| match value {
                    MergedKey::Str(text) => text.len(),
                    _ => 0,
                })
                .sum();
            groups.insert(key, accumulators);
            if !self.meter.add(key_text) {
                break;
            }
        }
        self.meter.flush();
        Groups {
            groups,
            overflow: self.overflow,
            charged: self.meter.charged,
            over_budget: self.meter.refused,
        }
    }
}

/// Adds a value to a numeric aggregate; true when the value itself is kept (an
/// exact percentile), so the caller charges its bytes.
fn add_number(accumulator: &mut Accumulator, value: f64) -> bool {
    match accumulator {
        Accumulator::Sum { sum, count } => {
            *sum += value;
            *count += 1;
        }
        Accumulator::Min(min) => *min = min_opt(*min, Some(value)),
        Accumulator::Max(max) => *max = max_opt(*max, Some(value)),
        Accumulator::Percentile(percentile) => {
            let kept = percentile.sketch.is_none();
            percentile.add(value);
            return kept;
        }
        Accumulator::Count(_) | Accumulator::Distinct(_) => {}
    }
    false
}

impl TantivyIndex {
    /// Runs an aggregation over every partition of the range. Blocking.
    pub(super) fn aggregate_blocking(
        &self,
        pool_id: PoolId,
        types: &super::compile::FieldTypes,
        request: &AggregateRequest,
    ) -> IndexResult<Vec<AggregateGroup>> {
        let query = self.compile_in_range(types, &request.query, request.from_ns, request.to_ns)?;
        let collector = GroupCollector {
            group_by: request.group_by.clone(),
            aggregates: request.aggregates.clone(),
            max_groups: request.max_groups,
            memory: request.memory.clone(),
        };
        let mut merged = Groups::default();
        for day in self.days_on_disk(pool_id, request.from_ns, request.to_ns)? {
            let Some(partition) = self.open_partition(PartitionKey { pool_id, day }, false)? else {
                continue;
            };
            let groups = partition
                .reader
                .searcher()
                .search(query.as_ref(), &collector)
                .map_err(tantivy_error)?;
            merged.merge(groups, request.max_groups);
            if merged.overflow || merged.over_budget.is_some() {
                break;
            }
            // Groups found in several segments were charged once per segment; what
            // the merged table holds is less.
            let held: usize = merged
                .groups
                .iter()
                .map(|(key, accumulators)| group_bytes(key, accumulators))
                .sum();
            if merged.charged > held {
                request.memory.release(merged.charged - held);
                merged.charged = held;
            }
        }
        if let Some(budget) = merged.over_budget {
            return Err(crate::index::group_table_over_budget(budget));
        }
        if merged.overflow {
            return Err(IndexError::LimitExceeded(format!(
                "the query has more than {} groups; narrow the query or group by fewer keys",
                request.max_groups
            )));
        }
        Ok(merged
            .groups
            .into_iter()
            .map(|(key, accumulators)| AggregateGroup {
                keys: key.into_iter().map(MergedKey::into_key_value).collect(),
                values: accumulators
                    .iter()
                    .zip(&request.aggregates)
                    .map(|(accumulator, aggregate)| accumulator.value(aggregate))
                    .collect(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use logpool_core::routing::PoolRoute;

    use super::*;
    use crate::index::TantivyIndexConfig;

    #[tokio::test(flavor = "multi_thread")]
    async fn test_aggregate_conformance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = TantivyIndex::open(TantivyIndexConfig {
            dir: dir.path().to_path_buf(),
            writer_memory_bytes: 15_000_000,
            writer_threads: 1,
            writer_merge_threads: 1,
            max_open_writers: 4,
        })
        .expect("open index");
        let pool = PoolRoute {
            pool_id: PoolId::new(7),
            tenant: "default".into(),
            project: "p".into(),
            name: "web".into(),
            partitions: vec![0],
            retention_days: 7,
            field_hints: BTreeMap::new(),
            event_window: Default::default(),
            learned_types: Default::default(),
        };
        crate::index::aggregate_conformance::check_aggregations(&index, &pool).await;
    }

    #[test]
    fn test_exact_percentile_interpolates_between_ranks() {
        assert_eq!(exact_percentile(&[], 50.0), None);
        assert_eq!(exact_percentile(&[3.0, 1.0, 2.0, 4.0], 50.0), Some(2.5));
        assert_eq!(exact_percentile(&[5.0], 99.0), Some(5.0));
        assert_eq!(exact_percentile(&[1.0, 2.0], 100.0), Some(2.0));
    }

    #[test]
    fn test_percentile_switches_to_a_sketch_and_stays_close() {
        let mut percentile = Percentile {
            percent: 50.0,
            exact: Vec::new(),
            sketch: None,
        };
        for value in 1..=(EXACT_PERCENTILE_VALUES as i64 * 2) {
            percentile.add(value as f64);
        }
        assert!(percentile.sketch.is_some());
        let median = percentile.value().expect("a median");
        let exact = EXACT_PERCENTILE_VALUES as f64;
        assert!((median - exact).abs() <= exact * 0.02, "{median}");
    }
}
