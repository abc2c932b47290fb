//! Aggregates over expressions, with the memory each accumulator holds counted so
//! the group table stays within the request's budget.

use std::collections::HashSet;

use super::expr::{truth, Expr};
use super::value::{sort_compare, Val};

/// Which aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum AggKind {
    /// `count(*)`
    CountStar,
    /// `count(x)`: non-null values
    Count,
    /// `count(DISTINCT x)`
    CountDistinct,
    /// `count_if(cond)`
    CountIf,
    /// `sum(x)`
    Sum,
    /// `avg(x)`
    Avg,
    /// `min(x)`
    Min,
    /// `max(x)`
    Max,
    /// `percentile(x, p)` (p in percent) and `approx_percentile(x, q)` (q a
    /// fraction), both as the fraction; exact, interpolated between neighbours
    Percentile(f64),
    /// `approx_distinct(x)` (exact here)
    ApproxDistinct,
    /// `arbitrary(x)`: the first non-null value met
    Arbitrary,
    /// `max_by(x, y)`: `x` of the row with the largest `y`
    MaxBy,
    /// `min_by(x, y)`: `x` of the row with the smallest `y`
    MinBy,
}

/// One aggregate call with its compiled arguments.
#[derive(Debug, Clone)]
pub struct AggCall {
    /// Which aggregate.
    pub kind: AggKind,
    /// Its value arguments (constants like the percent are in `kind`).
    pub args: Vec<Expr>,
    /// The call as written, to find repeats of it.
    pub text: String,
}

/// The running state of one aggregate in one group.
#[derive(Debug, Clone)]
pub enum Acc {
    /// Counts.
    Count(u64),
    /// A sum: exact while every value is an integer.
    Sum {
        /// Integer sum while `exact`.
        int: i64,
        /// Double sum.
        float: f64,
        /// Every value so far was an integer and the sum did not overflow.
        exact: bool,
        /// Values added.
        count: u64,
    },
    /// The best value so far (min, max, arbitrary).
    Best(Val),
    /// The value at the best key so far (max_by, min_by).
    By(Val, Val),
    /// Distinct values.
    Distinct(HashSet<Val>),
    /// Every value, for a percentile.
    Values(Vec<f64>),
}

impl AggKind {
    /// A fresh accumulator.
    pub fn start(&self) -> Acc {
        match self {
            AggKind::CountStar | AggKind::Count | AggKind::CountIf => Acc::Count(0),
            AggKind::Sum | AggKind::Avg => Acc::Sum {
                int: 0,
                float: 0.0,
                exact: true,
                count: 0,
            },
            AggKind::Min | AggKind::Max | AggKind::Arbitrary => Acc::Best(Val::Null),
            AggKind::MaxBy | AggKind::MinBy => Acc::By(Val::Null, Val::Null),
            AggKind::CountDistinct | AggKind::ApproxDistinct => Acc::Distinct(HashSet::new()),
            AggKind::Percentile(_) => Acc::Values(Vec::new()),
        }
    }
}

impl Acc {
    /// Adds one row's argument values; returns the bytes the accumulator grew by.
    pub fn add(&mut self, kind: &AggKind, args: &[Val]) -> usize {
        let first = args.first().unwrap_or(&Val::Null);
        match self {
            Acc::Count(count) => {
                let counts = match kind {
                    AggKind::CountStar => true,
                    AggKind::CountIf => truth(first) == Some(true),
                    _ => !first.is_null(),
                };
                *count += u64::from(counts);
                0
            }
            Acc::Sum {
                int,
                float,
                exact,
                count,
            } => {
                let number = match first {
                    Val::Int(i) => Some((Some(*i), *i as f64)),
                    Val::Float(x) => Some((None, *x)),
                    Val::Str(s) => match s.trim().parse::<i64>() {
                        Ok(i) => Some((Some(i), i as f64)),
                        Err(_) => s.trim().parse::<f64>().ok().map(|x| (None, x)),
                    },
                    _ => None,
                };
                if let Some((whole, x)) = number {
                    *count += 1;
                    *float += x;
                    match (whole, *exact) {
                        (Some(i), true) => match int.checked_add(i) {
                            Some(sum) => *int = sum,
                            None => *exact = false,
                        },
                        _ => *exact = false,
                    }
                }
                0
            }
            Acc::Best(best) => {
                if first.is_null() {
                    return 0;
                }
                let replace = match kind {
                    AggKind::Arbitrary => best.is_null(),
                    AggKind::Min => best.is_null() || sort_compare(first, best).is_lt(),
                    _ => best.is_null() || sort_compare(first, best).is_gt(),
                };
                if replace {
                    let grown = first.size().saturating_sub(best.size());
                    *best = first.clone();
                    return grown;
                }
                0
            }
            Acc::By(value, key) => {
                let candidate = args.get(1).unwrap_or(&Val::Null);
                if candidate.is_null() {
                    return 0;
                }
                let replace = key.is_null()
                    || match kind {
                        AggKind::MinBy => sort_compare(candidate, key).is_lt(),
                        _ => sort_compare(candidate, key).is_gt(),
                    };
                if replace {
                    let grown =
                        (first.size() + candidate.size()).saturating_sub(value.size() + key.size());
                    *value = first.clone();
                    *key = candidate.clone();
                    return grown;
                }
                0
            }
            Acc::Distinct(seen) => {
                if first.is_null() || seen.contains(first) {
                    return 0;
                }
                seen.insert(first.clone());
                first.size() + 16
            }
            Acc::Values(values) => match first.as_f64() {
                Some(x) if !matches!(first, Val::Bool(_)) => {
                    values.push(x);
                    8
                }
                _ => 0,
            },
        }
    }

    /// The aggregate's value.
    pub fn finish(self, kind: &AggKind) -> Val {
        match self {
            Acc::Count(count) => Val::Int(count as i64),
            Acc::Sum {
                int,
                float,
                exact,
                count,
            } => match (kind, count) {
                (_, 0) => Val::Null,
                (AggKind::Avg, _) => Val::Float(float / count as f64),
                (_, _) if exact => Val::Int(int),
                _ => Val::Float(float),
            },
            Acc::Best(best) => best,
            Acc::By(value, _) => value,
            Acc::Distinct(seen) => Val::Int(seen.len() as i64),
            Acc::Values(mut values) => {
                let AggKind::Percentile(fraction) = kind else {
                    return Val::Null;
                };
                if values.is_empty() {
                    return Val::Null;
                }
                values.sort_by(f64::total_cmp);
                let rank = fraction * (values.len() - 1) as f64;
                let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
                let (a, b) = (values[low], values[high.min(values.len() - 1)]);
                Val::Float(a + (b - a) * (rank - low as f64))
            }
        }
    }
}

/// Bytes a fresh accumulator takes.
pub const ACC_BYTES: usize = std::mem::size_of::<Acc>();
