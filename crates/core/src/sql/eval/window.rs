//! Window functions over the grouped result: `lag`, `lead`, `row_number`, `rank`,
//! `dense_rank` and running aggregates (`sum(x) OVER (ORDER BY t)`).
//!
//! With ORDER BY the frame of a running aggregate is every row up to the current
//! one and its peers (rows with equal ordering values), as SQL's default
//! `RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW`; without it, the partition.

use std::cmp::Ordering;

use super::expr::{EvalContext, Expr, Scope};
use super::value::{sort_compare, Val};
use super::{EvalError, SortItem};

/// Which window function.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowKind {
    /// `row_number()`
    RowNumber,
    /// `rank()`
    Rank,
    /// `dense_rank()`
    DenseRank,
    /// `lag(x[, offset[, default]])`
    Lag(usize),
    /// `lead(x[, offset[, default]])`
    Lead(usize),
    /// `sum(x) OVER ...`
    Sum,
    /// `avg(x) OVER ...`
    Avg,
    /// `count(x) OVER ...` (`count(*)`: no argument)
    Count,
    /// `min(x) OVER ...`
    Min,
    /// `max(x) OVER ...`
    Max,
}

/// One window function call.
#[derive(Debug, Clone)]
pub struct WindowCall {
    /// Which function.
    pub kind: WindowKind,
    /// The value and, for lag / lead, the default (group expressions).
    pub args: Vec<Expr>,
    /// PARTITION BY.
    pub partition_by: Vec<Expr>,
    /// ORDER BY.
    pub order_by: Vec<SortItem>,
}

/// One group as windows see it.
pub struct WindowRow<'a> {
    /// Key values.
    pub keys: &'a [Val],
    /// Aggregate values.
    pub aggregates: &'a [Val],
}

/// Computes `call` for every row; the answer is in the rows' order.
///
/// # Errors
/// As [`Expr::eval`].
pub fn compute(
    call: &WindowCall,
    rows: &[WindowRow<'_>],
    ctx: &EvalContext,
) -> Result<Vec<Val>, EvalError> {
    let eval_all = |exprs: &[Expr], row: &WindowRow<'_>| -> Result<Vec<Val>, EvalError> {
        let scope = Scope::Group {
            keys: row.keys,
            aggregates: row.aggregates,
            windows: &[],
        };
        exprs.iter().map(|expr| expr.eval(&scope, ctx)).collect()
    };
    let order_exprs: Vec<Expr> = call.order_by.iter().map(|item| item.expr.clone()).collect();
    let mut prepared = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        prepared.push((
            index,
            eval_all(&call.partition_by, row)?,
            eval_all(&order_exprs, row)?,
            eval_all(&call.args, row)?,
        ));
    }
    let compare_order = |a: &[Val], b: &[Val]| -> Ordering {
        for ((x, y), item) in a.iter().zip(b).zip(&call.order_by) {
            let ordering = item.compare(x, y);
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        Ordering::Equal
    };
    prepared.sort_by(|a, b| {
        a.1.iter()
            .zip(&b.1)
            .map(|(x, y)| sort_compare(x, y))
            .find(|ordering| *ordering != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
            .then_with(|| compare_order(&a.2, &b.2))
            .then(a.0.cmp(&b.0))
    });
    let mut out = vec![Val::Null; rows.len()];
    let mut start = 0;
    while start < prepared.len() {
        let mut end = start + 1;
        while end < prepared.len() && prepared[end].1 == prepared[start].1 {
            end += 1;
        }
        let partition = &prepared[start..end];
        let value_of = |n: usize| partition[n].3.first().cloned().unwrap_or(Val::Null);
        let peers_end = |n: usize| {
            let mut last = n;
            while last + 1 < partition.len()
                && compare_order(&partition[last + 1].2, &partition[n].2) == Ordering::Equal
            {
                last += 1;
            }
            last
        };
        let mut rank = 0;
        let mut dense = 0;
        for n in 0..partition.len() {
            let new_peer_group =
                n == 0 || compare_order(&partition[n - 1].2, &partition[n].2) != Ordering::Equal;
            if new_peer_group {
                rank = n + 1;
                dense += 1;
            }
            let value = match &call.kind {
                WindowKind::RowNumber => Val::Int(n as i64 + 1),
                WindowKind::Rank => Val::Int(rank as i64),
                WindowKind::DenseRank => Val::Int(dense as i64),
                WindowKind::Lag(offset) | WindowKind::Lead(offset) => {
                    let target = if matches!(call.kind, WindowKind::Lag(_)) {
                        n.checked_sub(*offset)
                    } else {
                        Some(n + offset).filter(|t| *t < partition.len())
                    };
                    match target {
                        Some(t) => value_of(t),
                        None => partition[n].3.get(1).cloned().unwrap_or(Val::Null),
                    }
                }
                kind => {
                    let last = if call.order_by.is_empty() {
                        partition.len() - 1
                    } else {
                        peers_end(n)
                    };
                    frame_aggregate(kind, (0..=last).map(value_of), call.args.is_empty())
                }
            };
            out[partition[n].0] = value;
        }
        start = end;
    }
    Ok(out)
}

fn frame_aggregate(kind: &WindowKind, values: impl Iterator<Item = Val>, count_all: bool) -> Val {
    let mut count = 0i64;
    let mut int_sum: Option<i64> = Some(0);
    let mut sum = 0.0;
    let mut best: Option<Val> = None;
    for value in values {
        if count_all {
            count += 1;
            continue;
        }
        if value.is_null() {
            continue;
        }
        count += 1;
        match kind {
            WindowKind::Min | WindowKind::Max => {
                let better = match &best {
                    None => true,
                    Some(known) => {
                        let ordering = sort_compare(&value, known);
                        (matches!(kind, WindowKind::Min) && ordering.is_lt())
                            || (matches!(kind, WindowKind::Max) && ordering.is_gt())
                    }
                };
                if better {
                    best = Some(value);
                }
            }
            _ => {
                if let Some(x) = value.as_f64() {
                    sum += x;
                }
                int_sum = match (int_sum, &value) {
                    (Some(total), Val::Int(i)) => total.checked_add(*i),
                    _ => None,
                };
            }
        }
    }
    match kind {
        WindowKind::Count => Val::Int(count),
        WindowKind::Min | WindowKind::Max => best.unwrap_or(Val::Null),
        _ if count == 0 => Val::Null,
        WindowKind::Avg => Val::Float(sum / count as f64),
        _ => match int_sum {
            Some(total) => Val::Int(total),
            None => Val::Float(sum),
        },
    }
}
