//! Compiled expressions and their row-at-a-time evaluation.
//!
//! An [`Expr`] is built once per statement by the compiler (names resolved, regular
//! expressions compiled, argument counts checked) and then evaluated for every
//! record or group. Its depth is bounded by the statement's checked shape, except
//! AND / OR chains, which are n-ary nodes evaluated in a loop.

use std::cmp::Ordering;

use regex::Regex;
use serde_json::{Map, Value as Json};

use super::functions::{cast, Func};
use super::value::{sql_compare, Val};
use super::EvalError;
use crate::query::is_time_field;
use crate::sql::plan::CompareOp;

/// Where an expression reads its columns from.
pub enum Scope<'a> {
    /// One record: its time and fields (stored and extracted).
    Record {
        /// Event time in nanoseconds.
        time_ns: i64,
        /// Fields.
        fields: &'a Map<String, Json>,
    },
    /// One group after aggregation.
    Group {
        /// Group key values.
        keys: &'a [Val],
        /// Aggregate values.
        aggregates: &'a [Val],
        /// Window function values (empty until they are computed).
        windows: &'a [Val],
    },
}

/// What evaluation may need besides the row.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext {
    /// `now()`, fixed for the whole statement.
    pub now_ns: i64,
    /// The largest string a function may produce.
    pub max_value_bytes: usize,
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (always a double, as in DuckDB)
    Div,
    /// `%`
    Rem,
}

/// A type named in CAST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CastType {
    /// BIGINT, INTEGER, ...
    Int,
    /// DOUBLE, REAL, DECIMAL, ...
    Float,
    /// VARCHAR, TEXT, ...
    Str,
    /// BOOLEAN
    Bool,
    /// TIMESTAMP
    Time,
}

/// A compiled expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A record field (NULL when absent).
    Field(String),
    /// The record's event time.
    Time,
    /// A constant.
    Lit(Val),
    /// The n-th group key (after aggregation).
    Key(usize),
    /// The n-th aggregate (after aggregation).
    Aggregate(usize),
    /// The n-th window function (after aggregation).
    Window(usize),
    /// `-x`
    Neg(Box<Expr>),
    /// `NOT x`
    Not(Box<Expr>),
    /// `a op b`
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    /// `a || b`
    Concat(Box<Expr>, Box<Expr>),
    /// `a op b`
    Compare(CompareOp, Box<Expr>, Box<Expr>),
    /// Every part holds (three-valued).
    And(Vec<Expr>),
    /// Any part holds (three-valued).
    Or(Vec<Expr>),
    /// `x IS [NOT] NULL`
    IsNull(Box<Expr>, bool),
    /// `x [NOT] IN (...)`
    InList(Box<Expr>, Vec<Expr>, bool),
    /// `x [NOT] BETWEEN a AND b`
    Between(Box<Expr>, Box<Expr>, Box<Expr>, bool),
    /// `x [NOT] LIKE pattern`, compiled to a regular expression.
    Like(Box<Expr>, Box<Regex>, bool),
    /// `CASE [operand] WHEN ... THEN ... ELSE ... END`
    Case {
        /// `CASE x WHEN v ...` compares `x` with each `v`.
        operand: Option<Box<Expr>>,
        /// Conditions (or values) and results.
        whens: Vec<(Expr, Expr)>,
        /// ELSE.
        otherwise: Option<Box<Expr>>,
    },
    /// `CAST(x AS t)`; `TRY_CAST` gives NULL instead of an error.
    Cast(Box<Expr>, CastType, bool),
    /// A scalar function.
    Call(Func, Vec<Expr>),
}

impl Expr {
    /// Evaluates the expression in `scope`.
    ///
    /// # Errors
    /// A CAST that cannot convert, or a value larger than the context allows.
    pub fn eval(&self, scope: &Scope<'_>, ctx: &EvalContext) -> Result<Val, EvalError> {
        Ok(match self {
            Expr::Field(name) => match scope {
                Scope::Record { fields, time_ns } => match fields.get(name) {
                    Some(value) => Val::from_json(value),
                    None if is_time_field(name) => Val::Time(*time_ns),
                    None => Val::Null,
                },
                Scope::Group { .. } => Val::Null,
            },
            Expr::Time => match scope {
                Scope::Record { time_ns, .. } => Val::Time(*time_ns),
                Scope::Group { .. } => Val::Null,
            },
            Expr::Lit(value) => value.clone(),
            Expr::Key(n) => read_group(scope, |keys, _, _| keys.get(*n)),
            Expr::Aggregate(n) => read_group(scope, |_, aggregates, _| aggregates.get(*n)),
            Expr::Window(n) => read_group(scope, |_, _, windows| windows.get(*n)),
            Expr::Neg(inner) => match inner.eval(scope, ctx)? {
                Val::Int(i) => i.checked_neg().map(Val::Int).unwrap_or(Val::Null),
                other => other.as_f64().map(|x| Val::Float(-x)).unwrap_or(Val::Null),
            },
            Expr::Not(inner) => match truth(&inner.eval(scope, ctx)?) {
                Some(b) => Val::Bool(!b),
                None => Val::Null,
            },
            Expr::Arith(op, a, b) => arith(*op, &a.eval(scope, ctx)?, &b.eval(scope, ctx)?),
            Expr::Concat(a, b) => {
                let (a, b) = (a.eval(scope, ctx)?, b.eval(scope, ctx)?);
                match (a.as_text(), b.as_text()) {
                    (Some(x), Some(y)) => {
                        check_size(x.len() + y.len(), "||", ctx)?;
                        Val::Str(format!("{x}{y}"))
                    }
                    _ => Val::Null,
                }
            }
            Expr::Compare(op, a, b) => {
                match sql_compare(&a.eval(scope, ctx)?, &b.eval(scope, ctx)?) {
                    Some(ordering) => Val::Bool(compare_holds(*op, ordering)),
                    None => Val::Null,
                }
            }
            Expr::And(parts) => {
                let mut unknown = false;
                for part in parts {
                    match truth(&part.eval(scope, ctx)?) {
                        Some(false) => return Ok(Val::Bool(false)),
                        None => unknown = true,
                        Some(true) => {}
                    }
                }
                if unknown {
                    Val::Null
                } else {
                    Val::Bool(true)
                }
            }
            Expr::Or(parts) => {
                let mut unknown = false;
                for part in parts {
                    match truth(&part.eval(scope, ctx)?) {
                        Some(true) => return Ok(Val::Bool(true)),
                        None => unknown = true,
                        Some(false) => {}
                    }
                }
                if unknown {
                    Val::Null
                } else {
                    Val::Bool(false)
                }
            }
            Expr::IsNull(inner, negated) => {
                Val::Bool(inner.eval(scope, ctx)?.is_null() != *negated)
            }
            Expr::InList(inner, list, negated) => {
                let value = inner.eval(scope, ctx)?;
                if value.is_null() {
                    return Ok(Val::Null);
                }
                let mut unknown = false;
                for item in list {
                    match sql_compare(&value, &item.eval(scope, ctx)?) {
                        Some(Ordering::Equal) => return Ok(Val::Bool(!negated)),
                        None => unknown = true,
                        Some(_) => {}
                    }
                }
                if unknown {
                    Val::Null
                } else {
                    Val::Bool(*negated)
                }
            }
            Expr::Between(inner, low, high, negated) => {
                let value = inner.eval(scope, ctx)?;
                let above = sql_compare(&value, &low.eval(scope, ctx)?).map(|o| o.is_ge());
                let below = sql_compare(&value, &high.eval(scope, ctx)?).map(|o| o.is_le());
                match (above, below) {
                    (Some(false), _) | (_, Some(false)) => Val::Bool(*negated),
                    (Some(true), Some(true)) => Val::Bool(!negated),
                    _ => Val::Null,
                }
            }
            Expr::Like(inner, regex, negated) => match inner.eval(scope, ctx)?.as_text() {
                Some(text) => Val::Bool(regex.is_match(&text) != *negated),
                None => Val::Null,
            },
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                let subject = match operand {
                    Some(operand) => Some(operand.eval(scope, ctx)?),
                    None => None,
                };
                for (condition, result) in whens {
                    let value = condition.eval(scope, ctx)?;
                    let holds = match &subject {
                        Some(subject) => sql_compare(subject, &value) == Some(Ordering::Equal),
                        None => truth(&value) == Some(true),
                    };
                    if holds {
                        return result.eval(scope, ctx);
                    }
                }
                match otherwise {
                    Some(otherwise) => otherwise.eval(scope, ctx)?,
                    None => Val::Null,
                }
            }
            Expr::Cast(inner, to, try_cast) => {
                let value = inner.eval(scope, ctx)?;
                match cast(&value, *to) {
                    Some(cast) => cast,
                    None if *try_cast || value.is_null() => Val::Null,
                    None => {
                        return Err(EvalError::Cast {
                            value: value
                                .as_text()
                                .unwrap_or_default()
                                .chars()
                                .take(64)
                                .collect(),
                            to: format!("{to:?}").to_uppercase(),
                        })
                    }
                }
            }
            Expr::Call(func, args) => {
                let values = args
                    .iter()
                    .map(|arg| arg.eval(scope, ctx))
                    .collect::<Result<Vec<_>, _>>()?;
                func.call(&values, ctx)?
            }
        })
    }

    /// Whether the expression reads the record (fields or time) rather than only
    /// constants.
    pub fn is_constant(&self) -> bool {
        match self {
            Expr::Lit(_) => true,
            Expr::Neg(inner) | Expr::Not(inner) => inner.is_constant(),
            Expr::Arith(_, a, b) | Expr::Concat(a, b) | Expr::Compare(_, a, b) => {
                a.is_constant() && b.is_constant()
            }
            _ => false,
        }
    }
}

fn read_group<'a>(
    scope: &Scope<'a>,
    pick: impl Fn(&'a [Val], &'a [Val], &'a [Val]) -> Option<&'a Val>,
) -> Val {
    match scope {
        Scope::Group {
            keys,
            aggregates,
            windows,
        } => pick(keys, aggregates, windows)
            .cloned()
            .unwrap_or(Val::Null),
        Scope::Record { .. } => Val::Null,
    }
}

/// A value as a condition: booleans, and numbers (non-zero holds); NULL is unknown.
pub fn truth(value: &Val) -> Option<bool> {
    match value {
        Val::Bool(b) => Some(*b),
        Val::Int(i) => Some(*i != 0),
        Val::Float(x) => Some(*x != 0.0),
        Val::Str(s) => match s.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        Val::Null | Val::Time(_) => None,
    }
}

/// Whether `ordering` satisfies `op`.
pub fn compare_holds(op: CompareOp, ordering: Ordering) -> bool {
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::NotEq => ordering != Ordering::Equal,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::LtEq => ordering != Ordering::Greater,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::GtEq => ordering != Ordering::Less,
    }
}

/// A number for arithmetic: integers stay integers; strings holding numbers count.
fn numeric(value: &Val) -> Option<Val> {
    match value {
        Val::Int(_) | Val::Float(_) => Some(value.clone()),
        Val::Str(s) => match s.trim().parse::<i64>() {
            Ok(i) => Some(Val::Int(i)),
            Err(_) => s.trim().parse::<f64>().ok().map(Val::Float),
        },
        _ => None,
    }
}

fn arith(op: ArithOp, a: &Val, b: &Val) -> Val {
    let (Some(a), Some(b)) = (numeric(a), numeric(b)) else {
        return Val::Null;
    };
    if let (Val::Int(x), Val::Int(y), false) = (&a, &b, op == ArithOp::Div) {
        let result = match op {
            ArithOp::Add => x.checked_add(*y),
            ArithOp::Sub => x.checked_sub(*y),
            ArithOp::Mul => x.checked_mul(*y),
            ArithOp::Rem => x.checked_rem(*y),
            ArithOp::Div => None,
        };
        return result.map(Val::Int).unwrap_or(Val::Null);
    }
    let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
    let result = match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div if y == 0.0 => return Val::Null,
        ArithOp::Div => x / y,
        ArithOp::Rem if y == 0.0 => return Val::Null,
        ArithOp::Rem => x % y,
    };
    if result.is_finite() {
        Val::Float(result)
    } else {
        Val::Null
    }
}

/// Refuses a string result longer than the context allows.
///
/// # Errors
/// [`EvalError::ValueTooLarge`].
pub fn check_size(bytes: usize, function: &str, ctx: &EvalContext) -> Result<(), EvalError> {
    if bytes > ctx.max_value_bytes {
        return Err(EvalError::ValueTooLarge {
            function: function.to_string(),
            limit: ctx.max_value_bytes,
        });
    }
    Ok(())
}
