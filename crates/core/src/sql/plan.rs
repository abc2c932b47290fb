//! The plan of a pipe-SQL statement: what the engine computes (group keys and
//! aggregates over the records matching a filter) and what the final in-memory
//! stage does with the groups (HAVING, ORDER BY, LIMIT, projection).

use serde::Serialize;

use crate::query::Query;

/// One group key computed by the engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum GroupKey {
    /// The value of a record field; records without it form the `null` group.
    Field(String),
    /// The event time truncated to a multiple of `interval_ns` since the epoch.
    TimeBucket {
        /// Bucket width in nanoseconds (a whole number of milliseconds).
        interval_ns: i64,
    },
}

/// One aggregate computed by the engine for every group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum AggregateFn {
    /// `count(*)`: records in the group.
    Count,
    /// `count(f)`: records in the group that have field `f`.
    CountField(String),
    /// `count(DISTINCT f)`: distinct values of `f` (approximate on some engines).
    CountDistinct(String),
    /// `sum(f)` over numeric values.
    Sum(String),
    /// `avg(f)` over numeric values.
    Avg(String),
    /// `min(f)` over numeric values.
    Min(String),
    /// `max(f)` over numeric values.
    Max(String),
    /// `percentile(f, p)` over numeric values, `p` in `[0, 100]` (approximate).
    Percentile {
        /// Field name.
        field: String,
        /// Percent in `[0, 100]`.
        percent: f64,
    },
}

impl AggregateFn {
    /// Returns the field the aggregate reads, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            AggregateFn::Count => None,
            AggregateFn::CountField(field)
            | AggregateFn::CountDistinct(field)
            | AggregateFn::Sum(field)
            | AggregateFn::Avg(field)
            | AggregateFn::Min(field)
            | AggregateFn::Max(field)
            | AggregateFn::Percentile { field, .. } => Some(field),
        }
    }

    /// Returns whether the value is a count (an integer, never null).
    pub fn is_count(&self) -> bool {
        matches!(
            self,
            AggregateFn::Count | AggregateFn::CountField(_) | AggregateFn::CountDistinct(_)
        )
    }
}

/// The value of a group key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum KeyValue {
    /// The record has no such field.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Long(i64),
    /// A floating point number.
    Double(f64),
    /// A string.
    Str(String),
    /// A time bucket start in nanoseconds.
    Time(i64),
}

/// The value of one aggregate in one group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum AggregateValue {
    /// A count.
    Count(u64),
    /// A number; `None` when the group has no numeric value to aggregate.
    Number(Option<f64>),
}

/// One group as computed by an engine: key values in the order of the request's
/// group keys, aggregate values in the order of its aggregates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AggregateGroup {
    /// Key values.
    pub keys: Vec<KeyValue>,
    /// Aggregate values.
    pub values: Vec<AggregateValue>,
}

/// A literal in HAVING.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Literal {
    /// `NULL`.
    Null,
    /// A number.
    Number(f64),
    /// A string.
    Str(String),
    /// `TRUE` or `FALSE`.
    Bool(bool),
}

/// Something a HAVING or ORDER BY clause reads from a group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Operand {
    /// The n-th group key.
    Key(usize),
    /// The n-th aggregate.
    Aggregate(usize),
    /// A constant.
    Literal(Literal),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CompareOp {
    /// `=`
    Eq,
    /// `!=` or `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
}

/// A HAVING condition, evaluated with SQL's three-valued logic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Predicate {
    /// `a op b`.
    Compare(Operand, CompareOp, Operand),
    /// `a IS NULL` (`negated`: `IS NOT NULL`).
    IsNull {
        /// The operand.
        operand: Operand,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// Both hold.
    And(Box<Predicate>, Box<Predicate>),
    /// Either holds.
    Or(Box<Predicate>, Box<Predicate>),
    /// Does not hold.
    Not(Box<Predicate>),
}

/// One ORDER BY item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderItem {
    /// What to order by.
    pub operand: Operand,
    /// Descending.
    pub descending: bool,
}

/// One output column of an aggregate statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AggregateColumn {
    /// Alias or the expression as written.
    pub name: String,
    /// Where the value comes from: a key or an aggregate.
    pub operand: Operand,
}

/// A statement with GROUP BY or aggregates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AggregatePlan {
    /// Keys the engine groups by (empty: one group over all records).
    pub group_by: Vec<GroupKey>,
    /// Aggregates the engine computes per group, including those only HAVING or
    /// ORDER BY read.
    pub aggregates: Vec<AggregateFn>,
    /// Output columns.
    pub columns: Vec<AggregateColumn>,
    /// HAVING.
    pub having: Option<Predicate>,
    /// ORDER BY; groups are ordered by their keys when empty.
    pub order_by: Vec<OrderItem>,
    /// OFFSET.
    pub offset: usize,
    /// LIMIT.
    pub limit: Option<usize>,
}

/// One output column of a statement without aggregates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum RowColumn {
    /// Every field of the record (`*`), plus `time`.
    AllFields,
    /// The event time.
    Time {
        /// Column name.
        name: String,
    },
    /// One field.
    Field {
        /// Column name.
        name: String,
        /// Field name.
        field: String,
    },
}

/// A statement without aggregates: rows of records, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowsPlan {
    /// Output columns.
    pub columns: Vec<RowColumn>,
    /// LIMIT, when written.
    pub limit: Option<usize>,
}

/// What the statement returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum PlanShape {
    /// Groups and aggregates.
    Aggregate(AggregatePlan),
    /// Records.
    Rows(RowsPlan),
}

/// A planned pipe-SQL statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SqlPlan {
    /// The search query before the pipe AND the statement's WHERE, for the engine.
    pub filter: Query,
    /// What to compute.
    pub shape: PlanShape,
}
