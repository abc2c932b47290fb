//! Plans a statement for the expression evaluator ([`crate::sql::eval`]): the
//! `WHERE` conditions the query language can express still go to the engine; the
//! rest of the statement is compiled into expressions over records and groups.

use sqlparser::ast::{
    BinaryOperator, CastKind, DuplicateTreatment, Expr as SqlExpr, Function, FunctionArg,
    FunctionArgExpr, FunctionArguments, GroupByExpr, OrderByExpr, OrderByKind, Query as SqlQuery,
    SetExpr, UnaryOperator, Value, WindowType,
};

use super::{column_name, function_name, join, literal, Join, Planner, SelectEntry, NS_PER_MS};
use crate::query::{is_time_field, Query};
use crate::sql::eval::aggregate::{AggCall, AggKind};
use crate::sql::eval::expr::{ArithOp, CastType, Expr};
use crate::sql::eval::functions::{lookup, Func, JsonPath};
use crate::sql::eval::value::Val;
use crate::sql::eval::window::{WindowCall, WindowKind};
use crate::sql::eval::{EvalGroups, EvalPlan, EvalRows, EvalShape, RowOutput, SortItem};
use crate::sql::extract::{compile_regex, Stage};
use crate::sql::plan::CompareOp;
use crate::sql::SqlError;
use crate::timeexpr::parse_duration_ns;

/// Aggregate function names the evaluator knows.
pub(crate) const EVAL_AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "percentile",
    "count_if",
    "approx_distinct",
    "approx_percentile",
    "arbitrary",
    "any_value",
    "max_by",
    "min_by",
];

/// Window function names (besides the aggregates, which are windows with OVER).
const WINDOW_ONLY: &[&str] = &["row_number", "rank", "dense_rank", "lag", "lead"];

/// The group being planned: its keys (by their SQL text), aggregates and windows.
#[derive(Default)]
struct GroupScope {
    key_texts: Vec<String>,
    aggregates: Vec<AggCall>,
    windows: Vec<WindowCall>,
    /// SELECT aliases usable in HAVING and ORDER BY, compiled over the group.
    aliases: Vec<(String, Expr)>,
}

/// Where an expression is evaluated.
enum Context<'g> {
    /// Over one record.
    Record {
        /// SELECT aliases (ORDER BY of rows may name them).
        aliases: &'g [(String, Expr)],
    },
    /// Over one group.
    Group(&'g mut GroupScope),
}

impl Planner<'_> {
    /// Plans the statement for the evaluator. Returns the engine's filter and the
    /// plan.
    pub(super) fn plan_evaluated(
        &self,
        sql_query: &SqlQuery,
        condition: Option<&SqlExpr>,
        query: Query,
        stages: Vec<Stage>,
    ) -> Result<(Query, EvalPlan), SqlError> {
        self.refuse_query_clauses(sql_query)?;
        let select = match sql_query.body.as_ref() {
            SetExpr::Select(select) => select.as_ref(),
            other => return Err(self.error("only a plain SELECT is supported after `|`", other)),
        };
        self.refuse_select_clauses(select)?;
        self.check_from(select)?;
        let (filter, residual) = self.split_where(condition, query, !stages.is_empty())?;
        let entries = self.select_entries(select)?;
        let group_exprs = match &select.group_by {
            GroupByExpr::Expressions(exprs, modifiers) => {
                if let Some(modifier) = modifiers.first() {
                    return Err(SqlError::new(format!(
                        "GROUP BY {modifier} is not supported"
                    )));
                }
                exprs.as_slice()
            }
            GroupByExpr::All(_) => return Err(SqlError::new("GROUP BY ALL is not supported")),
        };
        let (offset, limit) = self.limit_and_offset(sql_query)?;
        let order_by: &[OrderByExpr] = match &sql_query.order_by {
            None => &[],
            Some(order_by) => match &order_by.kind {
                OrderByKind::Expressions(exprs) => exprs.as_slice(),
                OrderByKind::All(_) => return Err(SqlError::new("ORDER BY ALL is not supported")),
            },
        };
        let is_aggregate = !group_exprs.is_empty()
            || select.having.is_some()
            || entries
                .iter()
                .filter_map(|entry| entry.expr)
                .any(|expr| self.has_aggregate(expr));
        let shape = if is_aggregate {
            EvalShape::Groups(self.eval_groups(
                &entries,
                group_exprs,
                select.having.as_ref(),
                order_by,
                offset,
                limit,
            )?)
        } else {
            EvalShape::Rows(self.eval_rows(&entries, order_by, offset, limit)?)
        };
        Ok((
            filter,
            EvalPlan {
                stages,
                residual,
                shape,
            },
        ))
    }

    /// Splits WHERE into what the engine filters (conditions on stored fields the
    /// query language can express) and the residual the evaluator checks. With
    /// extraction stages every condition is residual, since any field may be an
    /// extracted one.
    fn split_where(
        &self,
        condition: Option<&SqlExpr>,
        query: Query,
        all_residual: bool,
    ) -> Result<(Query, Option<Expr>), SqlError> {
        let Some(condition) = condition else {
            return Ok((query, None));
        };
        // The top-level AND chain, taken apart without recursion.
        let mut conjuncts = Vec::new();
        let mut stack = vec![condition];
        while let Some(expr) = stack.pop() {
            match expr {
                SqlExpr::BinaryOp {
                    left,
                    op: BinaryOperator::And,
                    right,
                } => {
                    stack.push(right);
                    stack.push(left);
                }
                SqlExpr::Nested(inner) if is_and(inner) => stack.push(inner),
                other => conjuncts.push(other),
            }
        }
        let mut pushed = vec![query];
        let mut residual = Vec::new();
        for conjunct in conjuncts {
            let as_query = if all_residual {
                None
            } else {
                self.where_query(conjunct).ok()
            };
            match as_query {
                Some(part) => pushed.push(part),
                None => {
                    residual.push(self.compile(conjunct, &mut Context::Record { aliases: &[] })?)
                }
            }
        }
        pushed.retain(|part| *part != Query::All);
        let filter = match pushed.len() {
            0 => Query::All,
            _ => join(Join::And, pushed),
        };
        let residual = match residual.len() {
            0 => None,
            1 => residual.pop(),
            _ => Some(Expr::And(residual)),
        };
        Ok((filter, residual))
    }

    fn eval_rows(
        &self,
        entries: &[SelectEntry<'_>],
        order_by: &[OrderByExpr],
        offset: usize,
        limit: Option<usize>,
    ) -> Result<EvalRows, SqlError> {
        let mut columns = Vec::with_capacity(entries.len());
        let mut aliases = Vec::new();
        for entry in entries {
            match entry.expr {
                None => columns.push(RowOutput::All),
                Some(expr) => {
                    let compiled = self.compile(expr, &mut Context::Record { aliases: &[] })?;
                    if let Some(alias) = &entry.alias {
                        aliases.push((alias.clone(), compiled.clone()));
                    }
                    columns.push(RowOutput::Expr {
                        name: entry.name.clone(),
                        expr: compiled,
                    });
                }
            }
        }
        let mut sort = Vec::with_capacity(order_by.len());
        for item in order_by {
            let expr = match position_of(&item.expr) {
                Some(n) => match columns.get(n.wrapping_sub(1)) {
                    Some(RowOutput::Expr { expr, .. }) => expr.clone(),
                    _ => {
                        return Err(self
                            .error(format!("ORDER BY position {n} is not a column"), &item.expr))
                    }
                },
                None => self.compile(&item.expr, &mut Context::Record { aliases: &aliases })?,
            };
            sort.push(SortItem {
                expr,
                descending: matches!(item.options.sort, Some(sqlparser::ast::OrderBySort::Desc)),
                nulls_first: item.options.nulls_first,
            });
        }
        Ok(EvalRows {
            columns,
            order_by: sort,
            offset,
            limit,
        })
    }

    fn eval_groups(
        &self,
        entries: &[SelectEntry<'_>],
        group_exprs: &[SqlExpr],
        having: Option<&SqlExpr>,
        order_by: &[OrderByExpr],
        offset: usize,
        limit: Option<usize>,
    ) -> Result<EvalGroups, SqlError> {
        let mut scope = GroupScope::default();
        let mut keys = Vec::new();
        for expr in group_exprs {
            let resolved = self.group_by_target(expr, entries)?;
            if self.has_aggregate(resolved) {
                return Err(self.error("GROUP BY cannot contain aggregate functions", resolved));
            }
            let text = resolved.to_string();
            if scope.key_texts.contains(&text) {
                continue;
            }
            keys.push(self.compile(resolved, &mut Context::Record { aliases: &[] })?);
            scope.key_texts.push(text);
        }
        let mut columns = Vec::with_capacity(entries.len());
        for entry in entries {
            let Some(expr) = entry.expr else {
                return Err(SqlError::new(
                    "SELECT * cannot be combined with GROUP BY or aggregates",
                ));
            };
            let compiled = self.compile(expr, &mut Context::Group(&mut scope))?;
            columns.push((entry.name.clone(), compiled));
        }
        scope.aliases = entries
            .iter()
            .zip(&columns)
            .filter_map(|(entry, (_, expr))| Some((entry.alias.clone()?, expr.clone())))
            .collect();
        let having = having
            .map(|expr| self.compile(expr, &mut Context::Group(&mut scope)))
            .transpose()?;
        let mut sort = Vec::with_capacity(order_by.len());
        for item in order_by {
            if item.with_fill.is_some() {
                return Err(self.error("WITH FILL is not supported", &item.expr));
            }
            let expr = match position_of(&item.expr) {
                Some(n) => columns
                    .get(n.wrapping_sub(1))
                    .map(|(_, expr)| expr.clone())
                    .ok_or_else(|| {
                        self.error(
                            format!(
                                "ORDER BY position {n} is not a column (1 to {})",
                                columns.len()
                            ),
                            &item.expr,
                        )
                    })?,
                None => self.compile(&item.expr, &mut Context::Group(&mut scope))?,
            };
            sort.push(SortItem {
                expr,
                descending: matches!(item.options.sort, Some(sqlparser::ast::OrderBySort::Desc)),
                nulls_first: item.options.nulls_first,
            });
        }
        Ok(EvalGroups {
            keys,
            aggregates: scope.aggregates,
            columns,
            having,
            windows: scope.windows,
            order_by: sort,
            offset,
            limit,
        })
    }

    /// Whether `expr` calls an aggregate outside a window.
    fn has_aggregate(&self, expr: &SqlExpr) -> bool {
        let mut found = false;
        walk(expr, &mut |node| {
            if let SqlExpr::Function(function) = node {
                if function.over.is_none()
                    && EVAL_AGGREGATES.contains(&function_name(function).as_str())
                {
                    found = true;
                }
            }
        });
        found
    }

    /// Compiles one SQL expression.
    fn compile(&self, expr: &SqlExpr, context: &mut Context<'_>) -> Result<Expr, SqlError> {
        if let Context::Group(scope) = context {
            let text = expr.to_string();
            if let Some(index) = scope.key_texts.iter().position(|key| *key == text) {
                return Ok(Expr::Key(index));
            }
        }
        let boxed = |planner: &Self, inner: &SqlExpr, context: &mut Context<'_>| {
            planner.compile(inner, context).map(Box::new)
        };
        Ok(match expr {
            SqlExpr::Identifier(_)
            | SqlExpr::CompoundIdentifier(_)
            | SqlExpr::CompoundFieldAccess { .. }
                if super::field_name(expr).is_some() =>
            {
                let name = column_name(expr);
                let alias = match context {
                    Context::Record { aliases } => aliases.iter().find(|(a, _)| *a == name),
                    Context::Group(scope) => scope.aliases.iter().find(|(a, _)| *a == name),
                };
                if let Some((_, compiled)) = alias {
                    return Ok(compiled.clone());
                }
                match context {
                    Context::Record { .. } if is_time_field(&name) => Expr::Time,
                    Context::Record { .. } => Expr::Field(name),
                    Context::Group(_) => {
                        return Err(self.error(
                            format!(
                                "`{name}` must appear in GROUP BY or inside an aggregate function"
                            ),
                            expr,
                        ))
                    }
                }
            }
            SqlExpr::Value(_) => match literal(expr) {
                Some(_) => Expr::Lit(literal_val(expr)),
                None => return Err(self.error(format!("`{expr}` is not supported"), expr)),
            },
            SqlExpr::TypedString(typed) => {
                let text = typed.value.value.clone().into_string().unwrap_or_default();
                let to = self.cast_type(&typed.data_type.to_string(), expr)?;
                match crate::sql::eval::functions::cast(&Val::Str(text.clone()), to) {
                    Some(value) => Expr::Lit(value),
                    None => {
                        return Err(self
                            .error(format!("`{text}` is not a valid {}", typed.data_type), expr))
                    }
                }
            }
            SqlExpr::Nested(inner) => self.compile(inner, context)?,
            SqlExpr::UnaryOp { op, expr: inner } => match op {
                UnaryOperator::Minus => Expr::Neg(boxed(self, inner, context)?),
                UnaryOperator::Plus => self.compile(inner, context)?,
                UnaryOperator::Not => Expr::Not(boxed(self, inner, context)?),
                other => return Err(self.error(format!("operator {other} is not supported"), expr)),
            },
            SqlExpr::BinaryOp { left, op, right } => match op {
                BinaryOperator::And | BinaryOperator::Or => {
                    // A chain of one operator becomes one n-ary node, without
                    // recursion along the chain.
                    let mut parts = Vec::new();
                    let mut stack = vec![expr];
                    while let Some(node) = stack.pop() {
                        match node {
                            SqlExpr::BinaryOp {
                                left,
                                op: inner_op,
                                right,
                            } if inner_op == op => {
                                stack.push(right);
                                stack.push(left);
                            }
                            other => parts.push(self.compile(other, context)?),
                        }
                    }
                    if *op == BinaryOperator::And {
                        Expr::And(parts)
                    } else {
                        Expr::Or(parts)
                    }
                }
                BinaryOperator::StringConcat => {
                    Expr::Concat(boxed(self, left, context)?, boxed(self, right, context)?)
                }
                op => {
                    let arith = match op {
                        BinaryOperator::Plus => Some(ArithOp::Add),
                        BinaryOperator::Minus => Some(ArithOp::Sub),
                        BinaryOperator::Multiply => Some(ArithOp::Mul),
                        BinaryOperator::Divide => Some(ArithOp::Div),
                        BinaryOperator::Modulo => Some(ArithOp::Rem),
                        _ => None,
                    };
                    let compare = super::compare_op(op);
                    let (a, b) = (boxed(self, left, context)?, boxed(self, right, context)?);
                    match (arith, compare) {
                        (Some(arith), _) => Expr::Arith(arith, a, b),
                        (None, Some(compare)) => Expr::Compare(compare, a, b),
                        _ => {
                            return Err(self.error(format!("operator {op} is not supported"), expr))
                        }
                    }
                }
            },
            SqlExpr::IsNull(inner) => Expr::IsNull(boxed(self, inner, context)?, false),
            SqlExpr::IsNotNull(inner) => Expr::IsNull(boxed(self, inner, context)?, true),
            SqlExpr::IsTrue(inner) => Expr::Compare(
                CompareOp::Eq,
                boxed(self, inner, context)?,
                Box::new(Expr::Lit(Val::Bool(true))),
            ),
            SqlExpr::IsFalse(inner) => Expr::Compare(
                CompareOp::Eq,
                boxed(self, inner, context)?,
                Box::new(Expr::Lit(Val::Bool(false))),
            ),
            SqlExpr::InList {
                expr: inner,
                list,
                negated,
            } => Expr::InList(
                boxed(self, inner, context)?,
                list.iter()
                    .map(|item| self.compile(item, context))
                    .collect::<Result<_, _>>()?,
                *negated,
            ),
            SqlExpr::Between {
                expr: inner,
                negated,
                low,
                high,
            } => Expr::Between(
                boxed(self, inner, context)?,
                boxed(self, low, context)?,
                boxed(self, high, context)?,
                *negated,
            ),
            SqlExpr::Like {
                negated,
                any,
                expr: inner,
                pattern,
                escape_char,
            }
            | SqlExpr::ILike {
                negated,
                any,
                expr: inner,
                pattern,
                escape_char,
            } => {
                if *any || escape_char.is_some() {
                    return Err(self.error("LIKE ANY and LIKE ... ESCAPE are not supported", expr));
                }
                let text = super::string_literal(pattern)
                    .ok_or_else(|| self.error("LIKE needs a quoted pattern", pattern.as_ref()))?;
                let insensitive = matches!(expr, SqlExpr::ILike { .. });
                let regex = like_regex(&text, insensitive);
                let regex = compile_regex(&regex, self.offset_of(pattern.as_ref()))?;
                Expr::Like(boxed(self, inner, context)?, Box::new(regex), *negated)
            }
            SqlExpr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => Expr::Case {
                operand: operand
                    .as_ref()
                    .map(|operand| boxed(self, operand, context))
                    .transpose()?,
                whens: conditions
                    .iter()
                    .map(|when| {
                        Ok((
                            self.compile(&when.condition, context)?,
                            self.compile(&when.result, context)?,
                        ))
                    })
                    .collect::<Result<_, SqlError>>()?,
                otherwise: else_result
                    .as_ref()
                    .map(|other| boxed(self, other, context))
                    .transpose()?,
            },
            SqlExpr::Cast {
                kind,
                expr: inner,
                data_type,
                format,
            } => {
                if format.is_some() {
                    return Err(self.error("CAST ... FORMAT is not supported", expr));
                }
                let to = self.cast_type(&data_type.to_string(), expr)?;
                let try_cast = matches!(kind, CastKind::TryCast | CastKind::SafeCast);
                Expr::Cast(boxed(self, inner, context)?, to, try_cast)
            }
            SqlExpr::Position { expr: needle, r#in } => Expr::Call(
                Func::Position,
                vec![self.compile(r#in, context)?, self.compile(needle, context)?],
            ),
            SqlExpr::Substring {
                expr: inner,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.compile(inner, context)?];
                args.push(match substring_from {
                    Some(from) => self.compile(from, context)?,
                    None => Expr::Lit(Val::Int(1)),
                });
                if let Some(length) = substring_for {
                    args.push(self.compile(length, context)?);
                }
                Expr::Call(Func::Substr, args)
            }
            SqlExpr::Trim {
                trim_where,
                trim_what,
                expr: inner,
                trim_characters,
            } => {
                if trim_what.is_some() || trim_characters.is_some() {
                    return Err(self.error(
                        "trim of given characters is not supported; use regexp_replace",
                        expr,
                    ));
                }
                let func = match trim_where {
                    Some(sqlparser::ast::TrimWhereField::Leading) => Func::Ltrim,
                    Some(sqlparser::ast::TrimWhereField::Trailing) => Func::Rtrim,
                    _ => Func::Trim,
                };
                Expr::Call(func, vec![self.compile(inner, context)?])
            }
            // `floor(x)` and `ceil(x)` are forms of their own in the parser.
            SqlExpr::Floor { expr: inner, .. } => {
                Expr::Call(Func::Floor, vec![self.compile(inner, context)?])
            }
            SqlExpr::Ceil { expr: inner, .. } => {
                Expr::Call(Func::Ceil, vec![self.compile(inner, context)?])
            }
            SqlExpr::Function(function) => self.compile_function(function, expr, context)?,
            other => {
                return Err(self.error(format!("`{other}` is not supported"), other));
            }
        })
    }

    fn offset_of(&self, node: &SqlExpr) -> usize {
        use sqlparser::ast::Spanned;
        // The pattern's text starts after its opening quote.
        super::position(self.sql, node.span()).map_or(0, |p| p + 1)
    }

    fn cast_type(&self, name: &str, node: &SqlExpr) -> Result<CastType, SqlError> {
        let upper = name.to_ascii_uppercase();
        let base = upper.split('(').next().unwrap_or_default().trim();
        Ok(match base {
            "BIGINT" | "INT" | "INTEGER" | "SMALLINT" | "TINYINT" | "INT64" | "INT8" | "INT4"
            | "LONG" | "HUGEINT" | "UBIGINT" => CastType::Int,
            "DOUBLE" | "DOUBLE PRECISION" | "FLOAT" | "REAL" | "DECIMAL" | "NUMERIC"
            | "FLOAT64" | "FLOAT8" | "FLOAT4" => CastType::Float,
            "VARCHAR" | "TEXT" | "STRING" | "CHAR" | "CHARACTER VARYING" => CastType::Str,
            "BOOLEAN" | "BOOL" => CastType::Bool,
            "TIMESTAMP" | "TIMESTAMPTZ" | "DATETIME" | "DATE" => CastType::Time,
            _ => {
                return Err(self.error(
                    format!("CAST to {name} is not supported; use BIGINT, DOUBLE, VARCHAR, BOOLEAN or TIMESTAMP"),
                    node,
                ))
            }
        })
    }

    fn function_args<'f>(
        &self,
        function: &'f Function,
        name: &str,
    ) -> Result<(Vec<&'f FunctionArgExpr>, bool), SqlError> {
        if function.filter.is_some() {
            return Err(self.error(
                format!("FILTER on {name} is not supported; use count_if or CASE"),
                function,
            ));
        }
        if !function.within_group.is_empty() {
            return Err(self.error(format!("WITHIN GROUP on {name} is not supported"), function));
        }
        if !matches!(function.parameters, FunctionArguments::None) {
            return Err(self.error(
                format!("parametric {name}(...)(...) is not supported"),
                function,
            ));
        }
        match &function.args {
            FunctionArguments::None => Ok((Vec::new(), false)),
            FunctionArguments::Subquery(_) => {
                Err(self.error("subqueries are not supported", function))
            }
            FunctionArguments::List(list) => {
                if !list.clauses.is_empty() {
                    return Err(self.error(
                        format!("clauses inside {name}(...) are not supported"),
                        function,
                    ));
                }
                let distinct =
                    matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
                let args = list
                    .args
                    .iter()
                    .map(|arg| match arg {
                        FunctionArg::Unnamed(arg) => Ok(arg),
                        _ => Err(self.error(
                            format!("named arguments of {name} are not supported"),
                            function,
                        )),
                    })
                    .collect::<Result<_, _>>()?;
                Ok((args, distinct))
            }
        }
    }

    fn compile_function(
        &self,
        function: &Function,
        expr: &SqlExpr,
        context: &mut Context<'_>,
    ) -> Result<Expr, SqlError> {
        let name = function_name(function);
        let (args, distinct) = self.function_args(function, &name)?;
        if function.over.is_some() {
            return self.compile_window(function, &name, &args, context);
        }
        if WINDOW_ONLY.contains(&name.as_str()) {
            return Err(self.error(format!("{name} needs OVER (...)"), expr));
        }
        if EVAL_AGGREGATES.contains(&name.as_str()) {
            return self.compile_aggregate(function, expr, &name, &args, distinct, context);
        }
        if distinct {
            return Err(self.error(format!("DISTINCT is not supported in {name}"), expr));
        }
        // Niladic names that are also field names (`user`) stay fields.
        if matches!(function.args, FunctionArguments::None) && lookup(&name).is_none() {
            return self.compile(
                &SqlExpr::Identifier(sqlparser::ast::Ident::new(name)),
                context,
            );
        }
        let Some((func, min, max)) = lookup(&name) else {
            return Err(self.error(
                format!("function {name} is not supported; see the functions reference"),
                expr,
            ));
        };
        if args.len() < min || args.len() > max {
            let expected = if min == max {
                format!("{min}")
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(self.error(
                format!("{name} takes {expected} arguments, found {}", args.len()),
                expr,
            ));
        }
        let arg_exprs: Vec<&SqlExpr> = args
            .iter()
            .map(|arg| match arg {
                FunctionArgExpr::Expr(expr) => Ok(expr),
                other => Err(self.error(format!("unsupported argument `{other}` of {name}"), expr)),
            })
            .collect::<Result<_, _>>()?;
        let func = match func {
            Some(func) => func,
            None => self.compiled_function(&name, &arg_exprs)?,
        };
        if let (Func::DateTrunc, Some(unit)) = (
            &func,
            arg_exprs.first().and_then(|e| super::string_literal(e)),
        ) {
            if crate::sql::eval::functions::truncate(0, &unit).is_none() {
                return Err(self.error(
                    format!("date_trunc unit `{unit}` is not one of millisecond, second, minute, hour, day, week, month, quarter, year"),
                    arg_exprs[0],
                ));
            }
        }
        let compiled = arg_exprs
            .iter()
            .map(|arg| self.compile(arg, context))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Expr::Call(func, compiled))
    }

    /// Functions whose constant argument is compiled once: regular expressions,
    /// JSON paths and bucket intervals.
    fn compiled_function(&self, name: &str, args: &[&SqlExpr]) -> Result<Func, SqlError> {
        let constant = |index: usize, what: &str| -> Result<String, SqlError> {
            let arg = args[index];
            super::string_literal(arg).ok_or_else(|| {
                self.error(
                    format!("the {what} of {name} must be a quoted constant"),
                    arg,
                )
            })
        };
        Ok(match name {
            "regexp_like" | "regexp_extract" | "regexp_replace" => {
                let pattern = constant(1, "pattern")?;
                let regex = Box::new(compile_regex(&pattern, self.offset_of(args[1]))?);
                match name {
                    "regexp_like" => Func::RegexpLike(regex),
                    "regexp_extract" => Func::RegexpExtract(regex),
                    _ => Func::RegexpReplace(regex),
                }
            }
            "json_extract" | "json_extract_scalar" => {
                let path = JsonPath::parse(&constant(1, "path")?)
                    .map_err(|message| self.error(message, args[1]))?;
                if name == "json_extract" {
                    Func::JsonExtract(path)
                } else {
                    Func::JsonExtractScalar(path)
                }
            }
            "time_bucket" => {
                let text = constant(0, "interval")?;
                let interval = parse_duration_ns(&text)
                    .filter(|ns| *ns >= NS_PER_MS && ns % NS_PER_MS == 0)
                    .ok_or_else(|| {
                        self.error(
                            format!("time_bucket interval `{text}` must be a whole number of milliseconds like `30s`, `5m` or `1h`"),
                            args[0],
                        )
                    })?;
                Func::TimeBucket(interval)
            }
            other => {
                return Err(SqlError::new(format!("function {other} is not supported")));
            }
        })
    }

    fn compile_aggregate(
        &self,
        function: &Function,
        expr: &SqlExpr,
        name: &str,
        args: &[&FunctionArgExpr],
        distinct: bool,
        context: &mut Context<'_>,
    ) -> Result<Expr, SqlError> {
        let Context::Group(scope) = context else {
            return Err(self.error(
                format!("aggregate function {name} is not allowed here (WHERE, GROUP BY or inside another aggregate); use HAVING"),
                expr,
            ));
        };
        if distinct && name != "count" {
            return Err(self.error(
                format!("DISTINCT is supported in count only, not in {name}"),
                function,
            ));
        }
        let text = expr.to_string();
        if let Some(index) = scope.aggregates.iter().position(|call| call.text == text) {
            return Ok(Expr::Aggregate(index));
        }
        let exprs: Vec<Option<&SqlExpr>> = args
            .iter()
            .map(|arg| match arg {
                FunctionArgExpr::Expr(expr) => Some(expr),
                _ => None,
            })
            .collect();
        let arity = |n: usize| -> Result<(), SqlError> {
            if exprs.len() != n || exprs.iter().any(Option::is_none) {
                return Err(self.error(format!("{name} takes {n} argument(s)"), expr));
            }
            Ok(())
        };
        let fraction = |arg: &SqlExpr, scale: f64| -> Result<f64, SqlError> {
            super::number_literal(arg)
                .map(|p| p / scale)
                .filter(|q| (0.0..=1.0).contains(q))
                .ok_or_else(|| {
                    self.error(
                        if scale == 100.0 {
                            "the percent of percentile must be a number from 0 to 100"
                        } else {
                            "the fraction of approx_percentile must be a number from 0 to 1"
                        },
                        arg,
                    )
                })
        };
        let (kind, value_args): (AggKind, Vec<&SqlExpr>) = match name {
            "count" => match (args, distinct) {
                ([FunctionArgExpr::Wildcard], false) => (AggKind::CountStar, Vec::new()),
                ([FunctionArgExpr::Expr(SqlExpr::Value(value))], false)
                    if matches!(value.value, Value::Number(..)) =>
                {
                    (AggKind::CountStar, Vec::new())
                }
                ([FunctionArgExpr::Expr(arg)], true) => (AggKind::CountDistinct, vec![arg]),
                ([FunctionArgExpr::Expr(arg)], false) => (AggKind::Count, vec![arg]),
                _ => return Err(self.error("count takes `*` or one expression", expr)),
            },
            "percentile" | "approx_percentile" => {
                arity(2)?;
                let scale = if name == "percentile" { 100.0 } else { 1.0 };
                let (value, percent) = (exprs[0], exprs[1]);
                let (Some(value), Some(percent)) = (value, percent) else {
                    return Err(self.error(format!("{name} takes 2 arguments"), expr));
                };
                (AggKind::Percentile(fraction(percent, scale)?), vec![value])
            }
            "max_by" | "min_by" => {
                arity(2)?;
                let kind = if name == "max_by" {
                    AggKind::MaxBy
                } else {
                    AggKind::MinBy
                };
                (kind, exprs.iter().flatten().copied().collect())
            }
            _ => {
                arity(1)?;
                let kind = match name {
                    "sum" => AggKind::Sum,
                    "avg" => AggKind::Avg,
                    "min" => AggKind::Min,
                    "max" => AggKind::Max,
                    "count_if" => AggKind::CountIf,
                    "approx_distinct" => AggKind::ApproxDistinct,
                    _ => AggKind::Arbitrary,
                };
                (kind, exprs.iter().flatten().copied().collect())
            }
        };
        let args = value_args
            .into_iter()
            .map(|arg| self.compile(arg, &mut Context::Record { aliases: &[] }))
            .collect::<Result<Vec<_>, _>>()?;
        scope.aggregates.push(AggCall { kind, args, text });
        Ok(Expr::Aggregate(scope.aggregates.len() - 1))
    }

    fn compile_window(
        &self,
        function: &Function,
        name: &str,
        args: &[&FunctionArgExpr],
        context: &mut Context<'_>,
    ) -> Result<Expr, SqlError> {
        if !matches!(context, Context::Group(_)) {
            return Err(self.error(
                "window functions run over the groups of a GROUP BY statement",
                function,
            ));
        }
        let Some(WindowType::WindowSpec(spec)) = &function.over else {
            return Err(self.error("named windows are not supported", function));
        };
        if spec.window_frame.is_some() {
            return Err(self.error(
                "window frames are not supported; running aggregates use the default frame",
                function,
            ));
        }
        let mut values = Vec::new();
        for arg in args {
            match arg {
                FunctionArgExpr::Expr(arg) => values.push(self.compile(arg, context)?),
                FunctionArgExpr::Wildcard if name == "count" => {}
                other => {
                    return Err(self.error(
                        format!("unsupported argument `{other}` of {name}"),
                        function,
                    ))
                }
            }
        }
        let offset_arg = |values: &mut Vec<Expr>| -> Result<usize, SqlError> {
            if values.len() < 2 {
                return Ok(1);
            }
            let offset = match values.remove(1) {
                Expr::Lit(Val::Int(n)) if n >= 0 => n as usize,
                _ => {
                    return Err(self.error(
                        format!("the offset of {name} must be a non-negative integer"),
                        function,
                    ))
                }
            };
            Ok(offset)
        };
        let kind = match name {
            "row_number" => WindowKind::RowNumber,
            "rank" => WindowKind::Rank,
            "dense_rank" => WindowKind::DenseRank,
            "lag" | "lead" => {
                if values.is_empty() || values.len() > 3 {
                    return Err(self.error(format!("{name} takes 1 to 3 arguments"), function));
                }
                let offset = offset_arg(&mut values)?;
                if name == "lag" {
                    WindowKind::Lag(offset)
                } else {
                    WindowKind::Lead(offset)
                }
            }
            "sum" => WindowKind::Sum,
            "avg" => WindowKind::Avg,
            "count" => WindowKind::Count,
            "min" => WindowKind::Min,
            "max" => WindowKind::Max,
            other => {
                return Err(self.error(
                    format!("{other} is not a window function; use lag, lead, rank, dense_rank, row_number, sum, avg, count, min or max"),
                    function,
                ))
            }
        };
        let partition_by = spec
            .partition_by
            .iter()
            .map(|expr| self.compile(expr, context))
            .collect::<Result<Vec<_>, _>>()?;
        let order_by = spec
            .order_by
            .iter()
            .map(|item| {
                Ok(SortItem {
                    expr: self.compile(&item.expr, context)?,
                    descending: matches!(
                        item.options.sort,
                        Some(sqlparser::ast::OrderBySort::Desc)
                    ),
                    nulls_first: item.options.nulls_first,
                })
            })
            .collect::<Result<Vec<_>, SqlError>>()?;
        let Context::Group(scope) = context else {
            return Err(self.error("window functions need GROUP BY", function));
        };
        scope.windows.push(WindowCall {
            kind,
            args: values,
            partition_by,
            order_by,
        });
        Ok(Expr::Window(scope.windows.len() - 1))
    }
}

fn is_and(expr: &SqlExpr) -> bool {
    matches!(
        expr,
        SqlExpr::BinaryOp {
            op: BinaryOperator::And,
            ..
        }
    )
}

fn position_of(expr: &SqlExpr) -> Option<usize> {
    match expr {
        SqlExpr::Value(value) => match &value.value {
            Value::Number(text, _) => text.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// A literal as a value: integers stay integers.
fn literal_val(expr: &SqlExpr) -> Val {
    if let SqlExpr::Value(value) = expr {
        if let Value::Number(text, _) = &value.value {
            if let Ok(i) = text.parse::<i64>() {
                return Val::Int(i);
            }
        }
    }
    match literal(expr) {
        Some(super::Literal::Number(x)) => Val::Float(x),
        Some(super::Literal::Str(s)) => Val::Str(s),
        Some(super::Literal::Bool(b)) => Val::Bool(b),
        Some(super::Literal::Null) | None => Val::Null,
    }
}

/// `%` any run, `_` one character, everything else literal; anchored.
fn like_regex(pattern: &str, insensitive: bool) -> String {
    let mut regex = String::from(if insensitive { "(?is)^" } else { "(?s)^" });
    let mut literal = String::new();
    for c in pattern.chars() {
        match c {
            '%' | '_' => {
                regex.push_str(&regex::escape(&literal));
                literal.clear();
                regex.push_str(if c == '%' { ".*" } else { "." });
            }
            other => literal.push(other),
        }
    }
    regex.push_str(&regex::escape(&literal));
    regex.push('$');
    regex
}

/// Calls `visit` on `expr` and the expressions inside it that can hold a function
/// call. Its recursion is bounded by the statement's checked depth.
fn walk(expr: &SqlExpr, visit: &mut dyn FnMut(&SqlExpr)) {
    visit(expr);
    match expr {
        SqlExpr::BinaryOp { left, right, .. } => {
            walk(left, visit);
            walk(right, visit);
        }
        SqlExpr::UnaryOp { expr, .. }
        | SqlExpr::Nested(expr)
        | SqlExpr::IsNull(expr)
        | SqlExpr::IsNotNull(expr)
        | SqlExpr::IsTrue(expr)
        | SqlExpr::IsFalse(expr)
        | SqlExpr::Cast { expr, .. } => walk(expr, visit),
        SqlExpr::InList { expr, list, .. } => {
            walk(expr, visit);
            list.iter().for_each(|item| walk(item, visit));
        }
        SqlExpr::Between {
            expr, low, high, ..
        } => {
            walk(expr, visit);
            walk(low, visit);
            walk(high, visit);
        }
        SqlExpr::Like { expr, pattern, .. } | SqlExpr::ILike { expr, pattern, .. } => {
            walk(expr, visit);
            walk(pattern, visit);
        }
        SqlExpr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            if let Some(operand) = operand {
                walk(operand, visit);
            }
            for when in conditions {
                walk(&when.condition, visit);
                walk(&when.result, visit);
            }
            if let Some(other) = else_result {
                walk(other, visit);
            }
        }
        SqlExpr::Position { expr, r#in } => {
            walk(expr, visit);
            walk(r#in, visit);
        }
        SqlExpr::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            walk(expr, visit);
            if let Some(from) = substring_from {
                walk(from, visit);
            }
            if let Some(length) = substring_for {
                walk(length, visit);
            }
        }
        SqlExpr::Trim { expr, .. } => walk(expr, visit),
        SqlExpr::Function(function) => {
            // The arguments of a windowed call are over the groups: an aggregate
            // inside `lag(count(*)) OVER (...)` still makes the statement grouped.
            if let FunctionArguments::List(list) = &function.args {
                for arg in &list.args {
                    if let FunctionArg::Unnamed(FunctionArgExpr::Expr(inner)) = arg {
                        walk(inner, visit);
                    }
                }
            }
        }
        _ => {}
    }
}
