//! The expression evaluator: statements the engines cannot compute by themselves
//! (expressions, functions, aggregates over expressions, windows, fields extracted
//! at query time) run here over the records the engine's filter selects.
//!
//! The engine still does what it is fast at: the search before the pipe and every
//! `WHERE` condition that compares a stored field with a constant filter in the
//! index; only the records that match are read, page by page, and fed to an
//! [`Evaluator`] one at a time. Statements that need nothing of this (plain
//! group-bys over fields and time buckets) never come here.
//!
//! Limits: the group table and the rows kept for ORDER BY are charged to the
//! request's memory budget, groups are capped, and every string a function builds
//! is bounded by [`EvalContext::max_value_bytes`].

pub mod aggregate;
pub mod expr;
pub mod functions;
pub mod value;
pub mod window;

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value as Json};

use self::aggregate::{Acc, AggCall, ACC_BYTES};
use self::expr::{truth, EvalContext, Expr, Scope};
use self::value::{sort_compare, Val};
use self::window::{WindowCall, WindowRow};
use super::extract::Stage;
use super::finish::{SqlColumn, SqlTable};
use crate::memory::{json_map_bytes, OverBudget, RequestMemory};
use crate::record::format_time_ns;

/// Why an evaluated statement stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// `CAST` of a value that does not convert.
    #[error("cannot CAST `{value}` to {to}; use TRY_CAST for NULL instead")]
    Cast {
        /// The value (shortened).
        value: String,
        /// The target type.
        to: String,
    },
    /// A function would build a string over the limit.
    #[error("{function} would build a value of more than {limit} bytes (`max_sql_value_bytes`)")]
    ValueTooLarge {
        /// The function.
        function: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// More groups than allowed.
    #[error("the statement makes more than {limit} groups (`max_groups`); group by fewer or coarser keys, or narrow the search")]
    TooManyGroups {
        /// The limit.
        limit: usize,
    },
    /// Over the memory budget.
    #[error("the statement's groups and rows hold more than the query's memory budget ({budget}); group by fewer keys or narrow the search")]
    OverBudget {
        /// Which budget.
        budget: OverBudget,
    },
}

/// One ORDER BY item.
#[derive(Debug, Clone)]
pub struct SortItem {
    /// What to order by.
    pub expr: Expr,
    /// DESC.
    pub descending: bool,
    /// NULLS FIRST (`Some(true)`) / LAST; by default NULLs come first ascending
    /// and last descending (they order below every value).
    pub nulls_first: Option<bool>,
}

impl SortItem {
    /// Compares two values of this item.
    pub fn compare(&self, a: &Val, b: &Val) -> Ordering {
        if let Some(nulls_first) = self.nulls_first {
            match (a.is_null(), b.is_null()) {
                (true, true) => return Ordering::Equal,
                (true, false) => {
                    return if nulls_first {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                }
                (false, true) => {
                    return if nulls_first {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                }
                (false, false) => {}
            }
        }
        let ordering = sort_compare(a, b);
        if self.descending {
            ordering.reverse()
        } else {
            ordering
        }
    }
}

/// One output column of a statement without aggregates.
#[derive(Debug, Clone)]
pub enum RowOutput {
    /// `*`: `time` and every field.
    All,
    /// One expression.
    Expr {
        /// Column name.
        name: String,
        /// Value.
        expr: Expr,
    },
}

/// Records as rows.
#[derive(Debug, Clone)]
pub struct EvalRows {
    /// Output columns.
    pub columns: Vec<RowOutput>,
    /// ORDER BY over the record (empty: newest first, as scanned).
    pub order_by: Vec<SortItem>,
    /// OFFSET.
    pub offset: usize,
    /// LIMIT (`None`: the service's default).
    pub limit: Option<usize>,
}

/// Groups and aggregates.
#[derive(Debug, Clone)]
pub struct EvalGroups {
    /// Group keys over the record.
    pub keys: Vec<Expr>,
    /// Aggregates per group.
    pub aggregates: Vec<AggCall>,
    /// Output columns over the group.
    pub columns: Vec<(String, Expr)>,
    /// HAVING over the group.
    pub having: Option<Expr>,
    /// Window functions over the groups that pass HAVING.
    pub windows: Vec<WindowCall>,
    /// ORDER BY over the group (empty: by the keys).
    pub order_by: Vec<SortItem>,
    /// OFFSET.
    pub offset: usize,
    /// LIMIT.
    pub limit: Option<usize>,
}

/// What an evaluated statement returns.
#[derive(Debug, Clone)]
pub enum EvalShape {
    /// Records.
    Rows(EvalRows),
    /// Groups.
    Groups(EvalGroups),
}

/// An evaluated statement: what happens to every record the engine's filter
/// selects.
#[derive(Debug, Clone)]
pub struct EvalPlan {
    /// Extraction stages, applied to each record first.
    pub stages: Vec<Stage>,
    /// The part of WHERE the engine could not filter with.
    pub residual: Option<Expr>,
    /// What to compute.
    pub shape: EvalShape,
}

impl EvalPlan {
    /// Whether the scan may stop after `n` matching records (rows without ORDER
    /// BY come newest first, in the scan's order).
    pub fn rows_needed(&self, default_limit: usize) -> Option<usize> {
        match &self.shape {
            EvalShape::Rows(rows) if rows.order_by.is_empty() => {
                Some(rows.offset + rows.limit.unwrap_or(default_limit))
            }
            _ => None,
        }
    }
}

/// A kept row: its ORDER BY values and its output.
struct KeptRow {
    sort: Vec<Val>,
    time_ns: i64,
    values: Vec<Val>,
    fields: Option<Map<String, Json>>,
    bytes: usize,
}

struct Group {
    keys: Vec<Val>,
    accs: Vec<Acc>,
}

/// Runs an [`EvalPlan`] over records pushed one at a time.
pub struct Evaluator<'p> {
    plan: &'p EvalPlan,
    ctx: EvalContext,
    memory: RequestMemory,
    max_groups: usize,
    limit: usize,
    index: HashMap<Vec<Val>, usize>,
    groups: Vec<Group>,
    rows: Vec<KeptRow>,
    charged: usize,
}

impl<'p> Evaluator<'p> {
    /// An evaluator charging `memory`, with at most `max_groups` groups; rows
    /// without LIMIT get `default_limit`.
    pub fn new(
        plan: &'p EvalPlan,
        ctx: EvalContext,
        memory: RequestMemory,
        max_groups: usize,
        default_limit: usize,
    ) -> Evaluator<'p> {
        let limit = match &plan.shape {
            EvalShape::Rows(rows) => rows.offset + rows.limit.unwrap_or(default_limit),
            EvalShape::Groups(_) => usize::MAX,
        };
        Evaluator {
            plan,
            ctx,
            memory,
            max_groups,
            limit,
            index: HashMap::new(),
            groups: Vec::new(),
            rows: Vec::new(),
            charged: 0,
        }
    }

    fn charge(&mut self, bytes: usize) -> Result<(), EvalError> {
        self.memory
            .try_charge(bytes)
            .map_err(|budget| EvalError::OverBudget { budget })?;
        self.charged += bytes;
        Ok(())
    }

    fn release(&mut self, bytes: usize) {
        let bytes = bytes.min(self.charged);
        self.memory.release(bytes);
        self.charged -= bytes;
    }

    /// Feeds one record (its fields may be extended by the extraction stages).
    /// Returns `false` once no further record can change the answer.
    ///
    /// # Errors
    /// An [`EvalError`]; the statement must stop.
    pub fn push(
        &mut self,
        time_ns: i64,
        fields: &mut Map<String, Json>,
    ) -> Result<bool, EvalError> {
        for stage in &self.plan.stages {
            stage.apply(fields);
        }
        let scope = Scope::Record {
            time_ns,
            fields: &*fields,
        };
        if let Some(residual) = &self.plan.residual {
            if truth(&residual.eval(&scope, &self.ctx)?) != Some(true) {
                return Ok(true);
            }
        }
        match &self.plan.shape {
            EvalShape::Groups(groups) => {
                let keys = groups
                    .keys
                    .iter()
                    .map(|key| key.eval(&scope, &self.ctx))
                    .collect::<Result<Vec<_>, _>>()?;
                let slot = match self.index.get(&keys) {
                    Some(slot) => *slot,
                    None => {
                        if self.groups.len() >= self.max_groups {
                            return Err(EvalError::TooManyGroups {
                                limit: self.max_groups,
                            });
                        }
                        let bytes = keys.iter().map(Val::size).sum::<usize>() * 2
                            + groups.aggregates.len() * ACC_BYTES
                            + 64;
                        self.charge(bytes)?;
                        self.index.insert(keys.clone(), self.groups.len());
                        self.groups.push(Group {
                            keys,
                            accs: groups.aggregates.iter().map(|a| a.kind.start()).collect(),
                        });
                        self.groups.len() - 1
                    }
                };
                let mut grown = 0;
                for (n, call) in groups.aggregates.iter().enumerate() {
                    let args = call
                        .args
                        .iter()
                        .map(|arg| arg.eval(&scope, &self.ctx))
                        .collect::<Result<Vec<_>, _>>()?;
                    grown += self.groups[slot].accs[n].add(&call.kind, &args);
                }
                if grown > 0 {
                    self.charge(grown)?;
                }
                Ok(true)
            }
            EvalShape::Rows(rows) => {
                let sort = rows
                    .order_by
                    .iter()
                    .map(|item| item.expr.eval(&scope, &self.ctx))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut values = Vec::new();
                let mut all = false;
                for column in &rows.columns {
                    match column {
                        RowOutput::All => all = true,
                        RowOutput::Expr { expr, .. } => values.push(expr.eval(&scope, &self.ctx)?),
                    }
                }
                let fields = all.then(|| fields.clone());
                let bytes = sort.iter().chain(&values).map(Val::size).sum::<usize>()
                    + fields.as_ref().map(json_map_bytes).unwrap_or(0)
                    + 64;
                self.charge(bytes)?;
                self.rows.push(KeptRow {
                    sort,
                    time_ns,
                    values,
                    fields,
                    bytes,
                });
                if rows.order_by.is_empty() {
                    return Ok(self.rows.len() < self.limit);
                }
                // Keep the best `limit` rows: sort and cut whenever twice as many
                // are held.
                if self.rows.len() >= self.limit.saturating_mul(2).max(1024) {
                    self.cut_rows(rows);
                }
                Ok(true)
            }
        }
    }

    fn cut_rows(&mut self, rows: &EvalRows) {
        let order = &rows.order_by;
        self.rows
            .sort_by(|a, b| compare_rows(order, &a.sort, &b.sort));
        if self.rows.len() > self.limit {
            let dropped: usize = self.rows[self.limit..].iter().map(|row| row.bytes).sum();
            self.rows.truncate(self.limit);
            self.release(dropped);
        }
    }

    /// The answer.
    ///
    /// # Errors
    /// An [`EvalError`] from HAVING, windows or the projection.
    pub fn finish(mut self) -> Result<SqlTable, EvalError> {
        let table = match &self.plan.shape {
            EvalShape::Rows(rows) => {
                if !rows.order_by.is_empty() {
                    self.cut_rows(rows);
                }
                rows_table(rows, std::mem::take(&mut self.rows))
            }
            EvalShape::Groups(groups) => self.finish_groups(groups)?,
        };
        let charged = self.charged;
        self.release(charged);
        Ok(table)
    }

    fn finish_groups(&mut self, plan: &EvalGroups) -> Result<SqlTable, EvalError> {
        if plan.keys.is_empty() && self.groups.is_empty() {
            self.groups.push(Group {
                keys: Vec::new(),
                accs: plan.aggregates.iter().map(|a| a.kind.start()).collect(),
            });
        }
        let mut finished: Vec<(Vec<Val>, Vec<Val>)> = std::mem::take(&mut self.groups)
            .into_iter()
            .map(|group| {
                let values = group
                    .accs
                    .into_iter()
                    .zip(&plan.aggregates)
                    .map(|(acc, call)| acc.finish(&call.kind))
                    .collect();
                (group.keys, values)
            })
            .collect();
        if let Some(having) = &plan.having {
            let mut kept = Vec::with_capacity(finished.len());
            for (keys, aggregates) in finished {
                let scope = Scope::Group {
                    keys: &keys,
                    aggregates: &aggregates,
                    windows: &[],
                };
                if truth(&having.eval(&scope, &self.ctx)?) == Some(true) {
                    kept.push((keys, aggregates));
                }
            }
            finished = kept;
        }
        let mut windows: Vec<Vec<Val>> = vec![Vec::new(); finished.len()];
        if !plan.windows.is_empty() {
            let view: Vec<WindowRow<'_>> = finished
                .iter()
                .map(|(keys, aggregates)| WindowRow { keys, aggregates })
                .collect();
            for call in &plan.windows {
                let values = window::compute(call, &view, &self.ctx)?;
                for (row, value) in windows.iter_mut().zip(values) {
                    row.push(value);
                }
            }
        }
        let mut sortable = Vec::with_capacity(finished.len());
        for ((keys, aggregates), windows) in finished.into_iter().zip(windows) {
            let scope = Scope::Group {
                keys: &keys,
                aggregates: &aggregates,
                windows: &windows,
            };
            let sort = plan
                .order_by
                .iter()
                .map(|item| item.expr.eval(&scope, &self.ctx))
                .collect::<Result<Vec<_>, _>>()?;
            let values = plan
                .columns
                .iter()
                .map(|(_, expr)| expr.eval(&scope, &self.ctx))
                .collect::<Result<Vec<_>, _>>()?;
            sortable.push((sort, keys, values));
        }
        sortable.sort_by(|a, b| {
            compare_rows(&plan.order_by, &a.0, &b.0).then_with(|| {
                a.1.iter()
                    .zip(&b.1)
                    .map(|(x, y)| sort_compare(x, y))
                    .find(|ordering| *ordering != Ordering::Equal)
                    .unwrap_or(Ordering::Equal)
            })
        });
        let rows: Vec<Vec<Val>> = sortable
            .into_iter()
            .skip(plan.offset)
            .take(plan.limit.unwrap_or(usize::MAX))
            .map(|(_, _, values)| values)
            .collect();
        let names: Vec<String> = plan.columns.iter().map(|(name, _)| name.clone()).collect();
        Ok(table(names, rows))
    }
}

fn compare_rows(order: &[SortItem], a: &[Val], b: &[Val]) -> Ordering {
    order
        .iter()
        .zip(a.iter().zip(b))
        .map(|(item, (x, y))| item.compare(x, y))
        .find(|ordering| *ordering != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

fn rows_table(plan: &EvalRows, kept: Vec<KeptRow>) -> SqlTable {
    let all_fields: Vec<String> = if plan.columns.iter().any(|c| matches!(c, RowOutput::All)) {
        let names: BTreeSet<&String> = kept
            .iter()
            .filter_map(|row| row.fields.as_ref())
            .flat_map(|fields| fields.keys())
            .collect();
        names.into_iter().cloned().collect()
    } else {
        Vec::new()
    };
    let mut names = Vec::new();
    for column in &plan.columns {
        match column {
            RowOutput::All => {
                names.push("time".to_string());
                names.extend(all_fields.iter().cloned());
            }
            RowOutput::Expr { name, .. } => names.push(name.clone()),
        }
    }
    let rows = kept
        .into_iter()
        .skip(plan.offset)
        .take(plan.limit.unwrap_or(usize::MAX))
        .map(|row| {
            let mut values = row.values.into_iter();
            let mut out = Vec::with_capacity(names.len());
            for column in &plan.columns {
                match column {
                    RowOutput::All => {
                        out.push(Val::Time(row.time_ns));
                        for name in &all_fields {
                            out.push(
                                row.fields
                                    .as_ref()
                                    .and_then(|fields| fields.get(name))
                                    .map(Val::from_json)
                                    .unwrap_or(Val::Null),
                            );
                        }
                    }
                    RowOutput::Expr { .. } => out.push(values.next().unwrap_or(Val::Null)),
                }
            }
            out
        })
        .collect();
    table(names, rows)
}

/// Builds the result table; a column's type is its values' type (`double` for a
/// mix of integers and doubles, `mixed` for other mixes, `null` for none).
fn table(names: Vec<String>, rows: Vec<Vec<Val>>) -> SqlTable {
    let columns = names
        .into_iter()
        .enumerate()
        .map(|(index, name)| {
            let mut found: Option<&'static str> = None;
            for row in &rows {
                let this = match row.get(index) {
                    Some(Val::Null) | None => continue,
                    Some(value) => value.type_name(),
                };
                found = match found {
                    None => Some(this),
                    Some(known) if known == this => Some(known),
                    Some("long" | "double") if this == "long" || this == "double" => Some("double"),
                    Some(_) => Some("mixed"),
                };
            }
            SqlColumn {
                name,
                column_type: found.unwrap_or("null").to_string(),
            }
        })
        .collect();
    let rows = rows
        .into_iter()
        .map(|row| row.iter().map(Val::to_json).collect())
        .collect();
    SqlTable { columns, rows }
}

/// Formats a time for messages.
pub fn time_text(time_ns: i64) -> String {
    format_time_ns(time_ns)
}

#[cfg(test)]
mod tests;
