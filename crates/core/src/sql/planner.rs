//! Turns one SQL `SELECT` (parsed by `sqlparser`) into a [`SqlPlan`].
//!
//! Every construct the plan cannot express is refused by name, with its position
//! when the parser knows it: a statement that runs always means what it says.

use sqlparser::ast::{
    BinaryOperator, DuplicateTreatment, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArguments, GroupByExpr, Ident, LimitClause, ObjectName, OrderByExpr, OrderByKind,
    OrderBySort, Query as SqlQuery, Select, SelectItem, SetExpr, Spanned, Statement, TableFactor,
    UnaryOperator, Value,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Span;

use super::eval::EvalPlan;
use super::extract::Stage;
use super::plan::{
    AggregateColumn, AggregateFn, AggregatePlan, CompareOp, GroupKey, Literal, Operand, OrderItem,
    PlanShape, Predicate, RowColumn, RowsPlan, SqlPlan,
};
use super::shape::check_sql_shape;
use super::SqlError;
use crate::limits::QueryLimits;
use crate::query::{check_query, is_time_field, Query, RangeBound};
use crate::record::MESSAGE_FIELD;
use crate::timeexpr::parse_duration_ns;

mod evaluated;

/// A planned pipe request: pushed down to the engine whole, or evaluated here over
/// the records the engine's filter selects.
#[derive(Debug)]
pub enum Planned {
    /// The engine computes it ([`SqlPlan`]).
    Pushed(SqlPlan),
    /// The evaluator computes it over the records matching `filter`.
    Evaluated {
        /// The search AND the WHERE conditions the engine can filter with.
        filter: Query,
        /// What the evaluator does with every matching record.
        plan: EvalPlan,
    },
}

/// Plans a pipe request: `sql` after the extraction `stages`, over pool `pool`,
/// filtered by `query`. A statement the engine can compute by itself (fields and
/// time buckets grouped, plain aggregates of fields, no stages) is pushed down as
/// before; anything else goes to the evaluator.
///
/// # Errors
/// As [`plan_sql`].
pub fn plan_pipeline(
    sql: &str,
    pool: &str,
    query: Query,
    stages: Vec<Stage>,
    limits: &QueryLimits,
) -> Result<Planned, SqlError> {
    let dialect = GenericDialect {};
    check_sql_shape(sql, &dialect, limits)?;
    let mut statements = Parser::new(&dialect)
        .with_recursion_limit(MAX_SQL_DEPTH)
        .try_with_sql(sql)
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|error| parser_error(sql, error))?;
    let conditions = TakenConditions::take(&mut statements);
    let sql_query = single_query(sql, &statements)?;
    let planner = Planner { sql, pool };
    if stages.is_empty() {
        match planner.plan_query(sql_query, conditions.first(), query.clone()) {
            Ok(plan) => {
                check_query(&plan.filter, limits)
                    .map_err(|error| SqlError::over_limit(error.to_string(), error.limit))?;
                return Ok(Planned::Pushed(plan));
            }
            Err(error) if error.limit.is_some() => return Err(error),
            Err(_) => {}
        }
    }
    let (filter, plan) = planner.plan_evaluated(sql_query, conditions.first(), query, stages)?;
    check_query(&filter, limits)
        .map_err(|error| SqlError::over_limit(error.to_string(), error.limit))?;
    Ok(Planned::Evaluated { filter, plan })
}

/// Nesting depth the SQL parser accepts, so hostile input cannot overflow the stack.
const MAX_SQL_DEPTH: usize = 50;

const NS_PER_MS: i64 = 1_000_000;
const NS_PER_SECOND: i64 = 1_000_000_000;

/// Why `message` cannot be grouped or aggregated: engines index it as full text only.
const FULL_TEXT_ONLY: &str = "message is the raw line, indexed for full-text search only: \
it cannot be grouped or aggregated; filter on it in the query (`message:...`, \
`_exists_:message`) and group by a parsed field";

/// Plans `sql` (the text after the pipe) over pool `pool`, filtered by `query` (the
/// search before the pipe), within the default [`QueryLimits`].
///
/// # Errors
/// An [`SqlError`] naming the unsupported construct, the syntax error or the limit
/// exceeded, with its character position in `sql` when known.
pub fn plan_sql(sql: &str, pool: &str, query: Query) -> Result<SqlPlan, SqlError> {
    plan_sql_with_limits(sql, pool, query, &QueryLimits::default())
}

/// [`plan_sql`] within the given limits: the SQL's size and expression depth are
/// checked from its tokens before it is parsed, and the planned filter (search and
/// `WHERE` together) against every query limit.
///
/// # Errors
/// As [`plan_sql`].
pub fn plan_sql_with_limits(
    sql: &str,
    pool: &str,
    query: Query,
    limits: &QueryLimits,
) -> Result<SqlPlan, SqlError> {
    let dialect = GenericDialect {};
    check_sql_shape(sql, &dialect, limits)?;
    let mut statements = Parser::new(&dialect)
        .with_recursion_limit(MAX_SQL_DEPTH)
        .try_with_sql(sql)
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|error| parser_error(sql, error))?;
    // The WHERE conditions may be a left-deep chain as long as `max_terms`: taken out
    // here so that they are planned and dropped without recursion on every path.
    let conditions = TakenConditions::take(&mut statements);
    let plan = plan_statements(sql, pool, query, &statements, &conditions)?;
    check_query(&plan.filter, limits)
        .map_err(|error| SqlError::over_limit(error.to_string(), error.limit))?;
    Ok(plan)
}

/// The `WHERE` condition of each statement, taken out of it, and dropped without
/// recursion.
struct TakenConditions(Vec<Option<Expr>>);

impl TakenConditions {
    fn take(statements: &mut [Statement]) -> TakenConditions {
        TakenConditions(
            statements
                .iter_mut()
                .map(|statement| match statement {
                    Statement::Query(query) => match query.body.as_mut() {
                        SetExpr::Select(select) => select.selection.take(),
                        _ => None,
                    },
                    _ => None,
                })
                .collect(),
        )
    }

    fn first(&self) -> Option<&Expr> {
        self.0.first().and_then(Option::as_ref)
    }
}

impl Drop for TakenConditions {
    fn drop(&mut self) {
        let mut stack: Vec<Expr> = self.0.drain(..).flatten().collect();
        while let Some(expr) = stack.pop() {
            match expr {
                Expr::BinaryOp { left, right, .. } => {
                    stack.push(*left);
                    stack.push(*right);
                }
                Expr::UnaryOp { expr, .. } => stack.push(*expr),
                Expr::Nested(inner) => stack.push(*inner),
                other => drop(other),
            }
        }
    }
}

fn plan_statements(
    sql: &str,
    pool: &str,
    query: Query,
    statements: &[Statement],
    conditions: &TakenConditions,
) -> Result<SqlPlan, SqlError> {
    let sql_query = single_query(sql, statements)?;
    Planner { sql, pool }.plan_query(sql_query, conditions.first(), query)
}

/// The one SELECT query of the text.
fn single_query<'s>(sql: &str, statements: &'s [Statement]) -> Result<&'s SqlQuery, SqlError> {
    let statement = match statements {
        [statement] => statement,
        [] => return Err(SqlError::new("expected a SELECT statement after `|`")),
        [_, second, ..] => {
            return Err(SqlError::at(
                "only one statement is supported after `|`",
                position(sql, second.span()),
            ))
        }
    };
    let Statement::Query(sql_query) = statement else {
        let keyword = statement
            .to_string()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_uppercase();
        return Err(SqlError::at(
            format!("{keyword} statements are not supported; only SELECT"),
            position(sql, statement.span()),
        ));
    };
    Ok(sql_query)
}

struct Planner<'a> {
    sql: &'a str,
    pool: &'a str,
}

/// One SELECT item: its output name and expression (`None` for `*`).
struct SelectEntry<'e> {
    name: String,
    alias: Option<String>,
    expr: Option<&'e Expr>,
}

impl Planner<'_> {
    fn error(&self, message: impl Into<String>, node: &impl Spanned) -> SqlError {
        SqlError::at(message, position(self.sql, node.span()))
    }

    fn plan_query(
        &self,
        sql_query: &SqlQuery,
        condition: Option<&Expr>,
        query: Query,
    ) -> Result<SqlPlan, SqlError> {
        self.refuse_query_clauses(sql_query)?;
        let select = match sql_query.body.as_ref() {
            SetExpr::Select(select) => select.as_ref(),
            SetExpr::SetOperation { op, .. } => {
                return Err(self.error(
                    format!("{} is not supported", op.to_string().to_uppercase()),
                    sql_query.body.as_ref(),
                ))
            }
            other => return Err(self.error("only a plain SELECT is supported after `|`", other)),
        };
        self.refuse_select_clauses(select)?;
        self.check_from(select)?;
        let filter = match condition {
            None => query,
            Some(condition) => {
                let condition = self.where_query(condition)?;
                match query {
                    Query::All => condition,
                    query => join(Join::And, vec![query, condition]),
                }
            }
        };
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
            Some(order_by) => {
                if order_by.interpolate.is_some() {
                    return Err(SqlError::new("ORDER BY ... INTERPOLATE is not supported"));
                }
                match &order_by.kind {
                    OrderByKind::Expressions(exprs) => exprs.as_slice(),
                    OrderByKind::All(_) => {
                        return Err(SqlError::new("ORDER BY ALL is not supported"))
                    }
                }
            }
        };
        let is_aggregate = !group_exprs.is_empty()
            || select.having.is_some()
            || entries
                .iter()
                .filter_map(|entry| entry.expr)
                .any(contains_aggregate);
        let shape = if is_aggregate {
            PlanShape::Aggregate(self.plan_aggregate(
                &entries,
                group_exprs,
                select.having.as_ref(),
                order_by,
                offset,
                limit,
            )?)
        } else {
            if offset > 0 {
                return Err(SqlError::new(
                    "OFFSET without GROUP BY is not supported; page with the search cursor",
                ));
            }
            PlanShape::Rows(self.plan_rows(&entries, order_by, limit)?)
        };
        Ok(SqlPlan { filter, shape })
    }

    fn refuse_query_clauses(&self, sql_query: &SqlQuery) -> Result<(), SqlError> {
        if let Some(with) = &sql_query.with {
            return Err(self.error("WITH is not supported", with));
        }
        if sql_query.fetch.is_some() {
            return Err(SqlError::new("FETCH is not supported; use LIMIT"));
        }
        if !sql_query.locks.is_empty() {
            return Err(SqlError::new("FOR UPDATE/SHARE is not supported"));
        }
        if sql_query.for_clause.is_some() {
            return Err(SqlError::new("FOR XML/JSON is not supported"));
        }
        if sql_query.settings.is_some() {
            return Err(SqlError::new("SETTINGS is not supported"));
        }
        if sql_query.format_clause.is_some() {
            return Err(SqlError::new("FORMAT is not supported"));
        }
        if !sql_query.pipe_operators.is_empty() {
            return Err(SqlError::new("SQL pipe operators (`|>`) are not supported"));
        }
        Ok(())
    }

    fn refuse_select_clauses(&self, select: &Select) -> Result<(), SqlError> {
        let refused: [(bool, &str); 14] = [
            (
                select.distinct.is_some(),
                "SELECT DISTINCT is not supported; use GROUP BY",
            ),
            (select.top.is_some(), "TOP is not supported; use LIMIT"),
            (select.into.is_some(), "SELECT INTO is not supported"),
            (
                !select.lateral_views.is_empty(),
                "LATERAL VIEW is not supported",
            ),
            (
                select.prewhere.is_some(),
                "PREWHERE is not supported; use WHERE",
            ),
            (!select.connect_by.is_empty(), "CONNECT BY is not supported"),
            (!select.cluster_by.is_empty(), "CLUSTER BY is not supported"),
            (
                !select.distribute_by.is_empty(),
                "DISTRIBUTE BY is not supported",
            ),
            (
                !select.sort_by.is_empty(),
                "SORT BY is not supported; use ORDER BY",
            ),
            (!select.named_window.is_empty(), "WINDOW is not supported"),
            (select.qualify.is_some(), "QUALIFY is not supported"),
            (select.exclude.is_some(), "EXCLUDE is not supported"),
            (
                select.select_modifiers.is_some(),
                "SELECT modifiers are not supported",
            ),
            (
                !select.optimizer_hints.is_empty(),
                "optimizer hints are not supported",
            ),
        ];
        match refused.iter().find(|(present, _)| *present) {
            Some((_, message)) => Err(self.error(*message, select)),
            None => Ok(()),
        }
    }

    /// `FROM` is optional; when present it must name this pool, so it can never
    /// widen what a request may read.
    fn check_from(&self, select: &Select) -> Result<(), SqlError> {
        let tables = match select.from.as_slice() {
            [] => return Ok(()),
            [table] => table,
            [_, second, ..] => {
                return Err(self.error(
                    "selecting from several tables is not supported",
                    &second.relation,
                ))
            }
        };
        if let Some(join) = tables.joins.first() {
            return Err(self.error("JOIN is not supported", &join.relation));
        }
        match &tables.relation {
            TableFactor::Table { name, args, .. } => {
                if args.is_some() {
                    return Err(self.error("table functions are not supported", name));
                }
                let named = object_name_text(name);
                if named != self.pool {
                    return Err(self.error(
                        format!("FROM must name this pool `{}`, found `{named}`", self.pool),
                        name,
                    ));
                }
                Ok(())
            }
            TableFactor::Derived { .. } => {
                Err(self.error("subqueries are not supported", &tables.relation))
            }
            other => Err(self.error("FROM must name this pool", other)),
        }
    }

    fn select_entries<'e>(&self, select: &'e Select) -> Result<Vec<SelectEntry<'e>>, SqlError> {
        select
            .projection
            .iter()
            .map(|item| match item {
                SelectItem::UnnamedExpr(expr) => Ok(SelectEntry {
                    name: column_name(expr),
                    alias: None,
                    expr: Some(expr),
                }),
                SelectItem::ExprWithAlias { expr, alias } => Ok(SelectEntry {
                    name: alias.value.clone(),
                    alias: Some(alias.value.clone()),
                    expr: Some(expr),
                }),
                SelectItem::Wildcard(_) => Ok(SelectEntry {
                    name: "*".to_string(),
                    alias: None,
                    expr: None,
                }),
                SelectItem::QualifiedWildcard(..) => Err(SqlError::new(
                    "qualified wildcards (`t.*`) are not supported; use `*`",
                )),
                SelectItem::ExprWithAliases { expr, .. } => {
                    Err(self.error("several aliases for one column are not supported", expr))
                }
            })
            .collect()
    }

    fn limit_and_offset(&self, sql_query: &SqlQuery) -> Result<(usize, Option<usize>), SqlError> {
        match &sql_query.limit_clause {
            None => Ok((0, None)),
            Some(LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            }) => {
                if let Some(first) = limit_by.first() {
                    return Err(self.error("LIMIT BY is not supported", first));
                }
                let limit = limit
                    .as_ref()
                    .map(|expr| self.count_literal(expr, "LIMIT"))
                    .transpose()?;
                let offset = offset
                    .as_ref()
                    .map(|offset| self.count_literal(&offset.value, "OFFSET"))
                    .transpose()?
                    .unwrap_or(0);
                Ok((offset, limit))
            }
            Some(LimitClause::OffsetCommaLimit { offset, limit }) => Ok((
                self.count_literal(offset, "OFFSET")?,
                Some(self.count_literal(limit, "LIMIT")?),
            )),
        }
    }

    fn count_literal(&self, expr: &Expr, clause: &str) -> Result<usize, SqlError> {
        match expr {
            Expr::Value(value) => match &value.value {
                Value::Number(text, _) => text.parse::<usize>().ok(),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| self.error(format!("{clause} must be a non-negative integer"), expr))
    }

    fn plan_rows(
        &self,
        entries: &[SelectEntry<'_>],
        order_by: &[OrderByExpr],
        limit: Option<usize>,
    ) -> Result<RowsPlan, SqlError> {
        let mut columns = Vec::with_capacity(entries.len());
        for entry in entries {
            let Some(expr) = entry.expr else {
                columns.push(RowColumn::AllFields);
                continue;
            };
            let Some(field) = field_name(expr) else {
                return Err(self.error(
                    format!(
                        "`{expr}` is not supported without GROUP BY; select columns, or group and aggregate"
                    ),
                    expr,
                ));
            };
            columns.push(if is_time_field(&field) {
                RowColumn::Time {
                    name: entry.name.clone(),
                }
            } else {
                RowColumn::Field {
                    name: entry.name.clone(),
                    field,
                }
            });
        }
        for item in order_by {
            let newest_first = field_name(&item.expr).is_some_and(|field| is_time_field(&field))
                && matches!(item.options.sort, Some(OrderBySort::Desc))
                && item.options.nulls_first.is_none();
            if !newest_first {
                return Err(self.error(
                    "ORDER BY without GROUP BY supports only `time DESC` (newest first)",
                    &item.expr,
                ));
            }
        }
        Ok(RowsPlan { columns, limit })
    }

    fn plan_aggregate(
        &self,
        entries: &[SelectEntry<'_>],
        group_exprs: &[Expr],
        having: Option<&Expr>,
        order_by: &[OrderByExpr],
        offset: usize,
        limit: Option<usize>,
    ) -> Result<AggregatePlan, SqlError> {
        let mut plan = AggregatePlan {
            group_by: Vec::new(),
            aggregates: Vec::new(),
            columns: Vec::new(),
            having: None,
            order_by: Vec::new(),
            offset,
            limit,
        };
        for expr in group_exprs {
            let resolved = self.group_by_target(expr, entries)?;
            let key = self.group_key(resolved)?.ok_or_else(|| {
                self.error(
                    format!(
                        "GROUP BY `{resolved}` is not supported; group by fields, date_trunc or time_bucket"
                    ),
                    resolved,
                )
            })?;
            if !plan.group_by.contains(&key) {
                plan.group_by.push(key);
            }
        }
        for entry in entries {
            let Some(expr) = entry.expr else {
                return Err(SqlError::new(
                    "SELECT * cannot be combined with GROUP BY or aggregates",
                ));
            };
            let operand = self.aggregate_operand(expr, &mut plan)?;
            plan.columns.push(AggregateColumn {
                name: entry.name.clone(),
                operand,
            });
        }
        if let Some(having) = having {
            plan.having = Some(self.predicate(having, entries, &mut plan)?);
        }
        for item in order_by {
            if item.options.nulls_first.is_some() {
                return Err(self.error("NULLS FIRST/LAST is not supported", &item.expr));
            }
            if item.with_fill.is_some() {
                return Err(self.error("WITH FILL is not supported", &item.expr));
            }
            let operand = match &item.expr {
                Expr::Value(value) => match &value.value {
                    Value::Number(text, _) => {
                        let column = text
                            .parse::<usize>()
                            .ok()
                            .filter(|n| (1..=plan.columns.len()).contains(n))
                            .ok_or_else(|| {
                                self.error(
                                    format!(
                                        "ORDER BY position {text} is not a column (1 to {})",
                                        plan.columns.len()
                                    ),
                                    &item.expr,
                                )
                            })?;
                        plan.columns[column - 1].operand.clone()
                    }
                    _ => return Err(self.error("ORDER BY a constant is not supported", &item.expr)),
                },
                expr => self.named_operand(expr, entries, &mut plan)?,
            };
            plan.order_by.push(OrderItem {
                operand,
                descending: matches!(item.options.sort, Some(OrderBySort::Desc)),
            });
        }
        Ok(plan)
    }

    /// A GROUP BY item may name a SELECT alias or position instead of repeating it.
    fn group_by_target<'e>(
        &self,
        expr: &'e Expr,
        entries: &[SelectEntry<'e>],
    ) -> Result<&'e Expr, SqlError> {
        if let Expr::Value(value) = expr {
            if let Value::Number(text, _) = &value.value {
                let index = text
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=entries.len()).contains(n))
                    .ok_or_else(|| {
                        self.error(
                            format!(
                                "GROUP BY position {text} is not a column (1 to {})",
                                entries.len()
                            ),
                            expr,
                        )
                    })?;
                return entries[index - 1]
                    .expr
                    .ok_or_else(|| self.error("GROUP BY cannot name `*`", expr));
            }
        }
        if let Expr::Identifier(ident) = expr {
            if let Some(target) = alias_target(&ident.value, entries) {
                if !contains_aggregate(target) {
                    return Ok(target);
                }
            }
        }
        Ok(expr)
    }

    /// Reads a group key expression: a field, `date_trunc(unit, time)` or
    /// `time_bucket(interval, time)`. `None` when `expr` is none of those.
    fn group_key(&self, expr: &Expr) -> Result<Option<GroupKey>, SqlError> {
        if let Some(field) = field_name(expr) {
            if is_time_field(&field) {
                return Err(self.error(
                    "grouping by the raw time is not supported; use date_trunc or time_bucket",
                    expr,
                ));
            }
            if field == MESSAGE_FIELD {
                return Err(self.error(FULL_TEXT_ONLY, expr));
            }
            return Ok(Some(GroupKey::Field(field)));
        }
        let Expr::Function(function) = expr else {
            return Ok(None);
        };
        let name = function_name(function);
        if name != "date_trunc" && name != "time_bucket" {
            return Ok(None);
        }
        let args = self.plain_args(function, &name)?;
        let [first, second] = args.as_slice() else {
            return Err(self.error(format!("{name} takes two arguments"), expr));
        };
        let (text, time_arg) = match (string_literal(first), string_literal(second)) {
            (Some(text), _) => (text, second),
            (None, Some(text)) if name == "date_trunc" => (text, first),
            _ => {
                return Err(self.error(
                    format!("the first argument of {name} must be a quoted string"),
                    *first,
                ))
            }
        };
        if !field_name(time_arg).is_some_and(|field| is_time_field(&field)) {
            return Err(self.error(format!("{name} works on `time` only"), *time_arg));
        }
        let interval_ns = if name == "date_trunc" {
            match text.to_ascii_lowercase().as_str() {
                "second" => NS_PER_SECOND,
                "minute" => 60 * NS_PER_SECOND,
                "hour" => 3_600 * NS_PER_SECOND,
                "day" => 86_400 * NS_PER_SECOND,
                other => {
                    return Err(self.error(
                        format!(
                            "date_trunc unit `{other}` is not supported; use second, minute, hour or day, or time_bucket"
                        ),
                        *first,
                    ))
                }
            }
        } else {
            parse_duration_ns(&text)
                .filter(|ns| *ns >= NS_PER_MS && ns % NS_PER_MS == 0)
                .ok_or_else(|| {
                    self.error(
                        format!(
                            "time_bucket interval `{text}` must be a whole number of milliseconds like `30s`, `5m` or `1h`"
                        ),
                        *first,
                    )
                })?
        };
        Ok(Some(GroupKey::TimeBucket { interval_ns }))
    }

    /// Arguments of a function call without DISTINCT, FILTER, OVER or clauses.
    fn plain_args<'f>(
        &self,
        function: &'f Function,
        name: &str,
    ) -> Result<Vec<&'f Expr>, SqlError> {
        self.refuse_function_clauses(function, name)?;
        let FunctionArguments::List(list) = &function.args else {
            return Err(self.error(format!("{name} needs arguments in parentheses"), function));
        };
        if list.duplicate_treatment.is_some() {
            return Err(self.error(format!("DISTINCT is not supported in {name}"), function));
        }
        list.args
            .iter()
            .map(|arg| match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Ok(expr),
                _ => Err(self.error(format!("unsupported argument `{arg}` of {name}"), function)),
            })
            .collect()
    }

    fn refuse_function_clauses(&self, function: &Function, name: &str) -> Result<(), SqlError> {
        if function.over.is_some() {
            return Err(self.error(
                format!("window functions (`{name}(...) OVER`) are not supported"),
                function,
            ));
        }
        if function.filter.is_some() {
            return Err(self.error(format!("FILTER on {name} is not supported"), function));
        }
        if !function.within_group.is_empty() {
            return Err(self.error(format!("WITHIN GROUP on {name} is not supported"), function));
        }
        if function.null_treatment.is_some() {
            return Err(self.error(
                format!("IGNORE/RESPECT NULLS on {name} is not supported"),
                function,
            ));
        }
        if !matches!(function.parameters, FunctionArguments::None) {
            return Err(self.error(
                format!("parametric {name}(...)(...) is not supported"),
                function,
            ));
        }
        if let FunctionArguments::List(list) = &function.args {
            if !list.clauses.is_empty() {
                return Err(self.error(
                    format!("clauses inside {name}(...) are not supported"),
                    function,
                ));
            }
        }
        Ok(())
    }

    /// Reads an aggregate call; `None` when the function is not an aggregate.
    fn aggregate_fn(&self, function: &Function) -> Result<Option<AggregateFn>, SqlError> {
        let name = function_name(function);
        if !AGGREGATES.contains(&name.as_str()) {
            return Ok(None);
        }
        self.refuse_function_clauses(function, &name)?;
        let FunctionArguments::List(list) = &function.args else {
            return Err(self.error(format!("{name} needs arguments in parentheses"), function));
        };
        let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
        if distinct && name != "count" {
            return Err(self.error(
                format!("DISTINCT is supported in count only, not in {name}"),
                function,
            ));
        }
        let args: Vec<&FunctionArgExpr> = list
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
        let field_of = |arg: &FunctionArgExpr| -> Result<String, SqlError> {
            let field = match arg {
                FunctionArgExpr::Expr(expr) => field_name(expr),
                _ => None,
            }
            .ok_or_else(|| {
                self.error(
                    format!("{name} takes a field name, found `{arg}`"),
                    function,
                )
            })?;
            if is_time_field(&field) {
                return Err(self.error(format!("{name}(time) is not supported"), function));
            }
            if field == MESSAGE_FIELD {
                return Err(self.error(FULL_TEXT_ONLY, function));
            }
            Ok(field)
        };
        let aggregate = match (name.as_str(), args.as_slice()) {
            ("count", [FunctionArgExpr::Wildcard]) if !distinct => AggregateFn::Count,
            ("count", [FunctionArgExpr::Expr(Expr::Value(value))])
                if !distinct && matches!(value.value, Value::Number(..)) =>
            {
                AggregateFn::Count
            }
            ("count", [arg]) if distinct => AggregateFn::CountDistinct(field_of(arg)?),
            ("count", [arg]) => AggregateFn::CountField(field_of(arg)?),
            ("sum", [arg]) => AggregateFn::Sum(field_of(arg)?),
            ("avg", [arg]) => AggregateFn::Avg(field_of(arg)?),
            ("min", [arg]) => AggregateFn::Min(field_of(arg)?),
            ("max", [arg]) => AggregateFn::Max(field_of(arg)?),
            ("percentile", [arg, FunctionArgExpr::Expr(percent)]) => {
                let percent = number_literal(percent)
                    .filter(|p| (0.0..=100.0).contains(p))
                    .ok_or_else(|| {
                        self.error(
                            "the percent of percentile must be a number from 0 to 100",
                            percent,
                        )
                    })?;
                AggregateFn::Percentile {
                    field: field_of(arg)?,
                    percent,
                }
            }
            ("percentile", _) => {
                return Err(self.error(
                    "percentile takes a field and a percent: percentile(f, 95)",
                    function,
                ))
            }
            _ => return Err(self.error(format!("{name} takes one field"), function)),
        };
        Ok(Some(aggregate))
    }

    /// The operand a SELECT item (or a HAVING / ORDER BY expression) reads.
    fn aggregate_operand(
        &self,
        expr: &Expr,
        plan: &mut AggregatePlan,
    ) -> Result<Operand, SqlError> {
        if let Expr::Nested(inner) = expr {
            return self.aggregate_operand(inner, plan);
        }
        if let Expr::Function(function) = expr {
            if let Some(aggregate) = self.aggregate_fn(function)? {
                let index = match plan.aggregates.iter().position(|known| *known == aggregate) {
                    Some(index) => index,
                    None => {
                        plan.aggregates.push(aggregate);
                        plan.aggregates.len() - 1
                    }
                };
                return Ok(Operand::Aggregate(index));
            }
        }
        match self.group_key(expr)? {
            Some(key) => match plan.group_by.iter().position(|known| *known == key) {
                Some(index) => Ok(Operand::Key(index)),
                None => Err(self.error(
                    format!("`{expr}` must appear in GROUP BY or inside an aggregate function"),
                    expr,
                )),
            },
            None => match expr {
                Expr::Function(function) => Err(self.error(
                    format!("function {} is not supported", function_name(function)),
                    expr,
                )),
                _ => Err(self.error(
                    format!("`{expr}` is not supported here; use group keys and aggregates"),
                    expr,
                )),
            },
        }
    }

    /// Like [`Self::aggregate_operand`], but a bare name may also be a SELECT alias.
    fn named_operand(
        &self,
        expr: &Expr,
        entries: &[SelectEntry<'_>],
        plan: &mut AggregatePlan,
    ) -> Result<Operand, SqlError> {
        if let Expr::Identifier(ident) = expr {
            if let Some(index) = entries
                .iter()
                .position(|entry| entry.alias.as_deref() == Some(ident.value.as_str()))
            {
                return Ok(plan.columns[index].operand.clone());
            }
        }
        self.aggregate_operand(expr, plan)
    }

    fn having_operand(
        &self,
        expr: &Expr,
        entries: &[SelectEntry<'_>],
        plan: &mut AggregatePlan,
    ) -> Result<Operand, SqlError> {
        if let Some(literal) = literal(expr) {
            return Ok(Operand::Literal(literal));
        }
        self.named_operand(expr, entries, plan)
    }

    fn predicate(
        &self,
        expr: &Expr,
        entries: &[SelectEntry<'_>],
        plan: &mut AggregatePlan,
    ) -> Result<Predicate, SqlError> {
        Ok(match expr {
            Expr::Nested(inner) => self.predicate(inner, entries, plan)?,
            Expr::UnaryOp {
                op: UnaryOperator::Not,
                expr: inner,
            } => Predicate::Not(Box::new(self.predicate(inner, entries, plan)?)),
            Expr::BinaryOp { left, op, right } => match op {
                BinaryOperator::And => Predicate::And(
                    Box::new(self.predicate(left, entries, plan)?),
                    Box::new(self.predicate(right, entries, plan)?),
                ),
                BinaryOperator::Or => Predicate::Or(
                    Box::new(self.predicate(left, entries, plan)?),
                    Box::new(self.predicate(right, entries, plan)?),
                ),
                op => {
                    let compare = compare_op(op).ok_or_else(|| {
                        self.error(format!("operator {op} is not supported in HAVING"), expr)
                    })?;
                    Predicate::Compare(
                        self.having_operand(left, entries, plan)?,
                        compare,
                        self.having_operand(right, entries, plan)?,
                    )
                }
            },
            Expr::IsNull(inner) => Predicate::IsNull {
                operand: self.having_operand(inner, entries, plan)?,
                negated: false,
            },
            Expr::IsNotNull(inner) => Predicate::IsNull {
                operand: self.having_operand(inner, entries, plan)?,
                negated: true,
            },
            other => return Err(self.error(format!("`{other}` is not supported in HAVING"), other)),
        })
    }

    /// Translates WHERE into the query language's AST, so the engine filters with it.
    /// Comparisons mean what the query language means: `f = v` is `f:v`.
    ///
    /// The AND / OR / NOT / parentheses around the conditions are walked with an
    /// explicit stack and runs of one operator are flattened into one n-ary node, so a
    /// condition list of any length plans in constant stack.
    fn where_query(&self, expr: &Expr) -> Result<Query, SqlError> {
        enum Task<'e> {
            Visit(&'e Expr),
            Join(Join, usize),
            Negate,
        }
        let mut tasks = vec![Task::Visit(expr)];
        let mut done: Vec<Query> = Vec::new();
        while let Some(task) = tasks.pop() {
            match task {
                Task::Visit(Expr::Nested(inner)) => tasks.push(Task::Visit(inner)),
                Task::Visit(Expr::UnaryOp {
                    op: UnaryOperator::Not,
                    expr: inner,
                }) => {
                    tasks.push(Task::Negate);
                    tasks.push(Task::Visit(inner));
                }
                Task::Visit(Expr::BinaryOp {
                    left,
                    op: op @ (BinaryOperator::And | BinaryOperator::Or),
                    right,
                }) => {
                    let kind = if *op == BinaryOperator::And {
                        Join::And
                    } else {
                        Join::Or
                    };
                    // Tasks run last in, first out: the left side is planned first.
                    tasks.push(Task::Join(kind, 2));
                    tasks.push(Task::Visit(right));
                    tasks.push(Task::Visit(left));
                }
                Task::Visit(condition) => done.push(self.where_condition(condition)?),
                Task::Join(kind, count) => {
                    let parts = done.split_off(done.len().saturating_sub(count));
                    done.push(join(kind, parts));
                }
                Task::Negate => {
                    let inner = done.pop().unwrap_or(Query::All);
                    done.push(Query::Not(Box::new(inner)));
                }
            }
        }
        Ok(done.pop().unwrap_or(Query::All))
    }

    /// One condition of WHERE: anything but AND, OR, NOT and parentheses.
    fn where_condition(&self, expr: &Expr) -> Result<Query, SqlError> {
        if let Expr::Function(function) = expr {
            if AGGREGATES.contains(&function_name(function).as_str()) {
                return Err(self.error(
                    "aggregate functions are not allowed in WHERE; use HAVING",
                    expr,
                ));
            }
        }
        if let Expr::BinaryOp { left, right, .. } = expr {
            if contains_aggregate(left) || contains_aggregate(right) {
                return Err(self.error(
                    "aggregate functions are not allowed in WHERE; use HAVING",
                    expr,
                ));
            }
        }
        Ok(match expr {
            Expr::BinaryOp { left, op, right } => {
                let compare = compare_op(op).ok_or_else(|| {
                    self.error(format!("operator {op} is not supported in WHERE"), expr)
                })?;
                let (field, compare, value) = match (field_name(left), field_name(right)) {
                    (Some(field), _) if !contains_aggregate(left) => {
                        (field, compare, self.where_value(right)?)
                    }
                    (None, Some(field)) => (field, flip(compare), self.where_value(left)?),
                    _ => {
                        return Err(self.error(
                            "WHERE compares a field with a constant, e.g. status >= 500",
                            expr,
                        ))
                    }
                };
                comparison_query(field, compare, value)
            }
            Expr::InList {
                expr: inner,
                list,
                negated,
            } => {
                let field = self.where_field(inner)?;
                let terms = list
                    .iter()
                    .map(|item| {
                        Ok(Query::Term {
                            field: Some(field.clone()),
                            value: self.where_value(item)?,
                        })
                    })
                    .collect::<Result<Vec<_>, SqlError>>()?;
                negate_if(Query::Or(terms), *negated)
            }
            Expr::Between {
                expr: inner,
                negated,
                low,
                high,
            } => {
                let range = Query::Range {
                    field: self.where_field(inner)?,
                    lower: RangeBound::Inclusive(self.where_value(low)?),
                    upper: RangeBound::Inclusive(self.where_value(high)?),
                };
                negate_if(range, *negated)
            }
            Expr::IsNull(inner) => Query::Not(Box::new(Query::Exists {
                field: self.where_field(inner)?,
            })),
            Expr::IsNotNull(inner) => Query::Exists {
                field: self.where_field(inner)?,
            },
            Expr::Like {
                negated,
                any,
                expr: inner,
                pattern,
                escape_char,
            }
            | Expr::ILike {
                negated,
                any,
                expr: inner,
                pattern,
                escape_char,
            } => {
                if *any || escape_char.is_some() {
                    return Err(self.error("LIKE ANY and LIKE ... ESCAPE are not supported", expr));
                }
                let field = self.where_field(inner)?;
                let pattern = string_literal(pattern)
                    .ok_or_else(|| self.error("LIKE needs a quoted pattern", pattern.as_ref()))?;
                negate_if(
                    Query::Wildcard {
                        field: Some(field),
                        pattern: like_to_wildcard(&pattern),
                    },
                    *negated,
                )
            }
            other => return Err(self.error(format!("`{other}` is not supported in WHERE"), other)),
        })
    }

    fn where_field(&self, expr: &Expr) -> Result<String, SqlError> {
        field_name(expr)
            .ok_or_else(|| self.error(format!("expected a field name, found `{expr}`"), expr))
    }

    fn where_value(&self, expr: &Expr) -> Result<String, SqlError> {
        match literal(expr) {
            Some(Literal::Str(text)) => Ok(text),
            Some(Literal::Number(_)) | Some(Literal::Bool(_)) => Ok(literal_text(expr)),
            Some(Literal::Null) => Err(self.error("compare with NULL using IS NULL", expr)),
            None => Err(self.error(format!("expected a constant, found `{expr}`"), expr)),
        }
    }
}

const AGGREGATES: [&str; 6] = ["count", "sum", "avg", "min", "max", "percentile"];

/// How [`join`] combines its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    And,
    Or,
}

/// Joins `parts` into one n-ary node, splicing in parts that are already that
/// operator's node (so a left-deep chain becomes one flat list, in order, in linear
/// time).
fn join(kind: Join, parts: Vec<Query>) -> Query {
    let mut flat: Vec<Query> = Vec::new();
    for part in parts {
        match (kind, part) {
            (Join::And, Query::And(children)) | (Join::Or, Query::Or(children)) => {
                if flat.is_empty() {
                    flat = children;
                } else {
                    flat.extend(children);
                }
            }
            (_, part) => flat.push(part),
        }
    }
    if flat.len() == 1 {
        return flat.pop().unwrap_or(Query::All);
    }
    match kind {
        Join::And => Query::And(flat),
        Join::Or => Query::Or(flat),
    }
}

fn comparison_query(field: String, compare: CompareOp, value: String) -> Query {
    let term = |value: String| Query::Term {
        field: Some(field.clone()),
        value,
    };
    let range = |lower: RangeBound, upper: RangeBound| Query::Range {
        field: field.clone(),
        lower,
        upper,
    };
    match compare {
        CompareOp::Eq => term(value),
        CompareOp::NotEq => Query::Not(Box::new(term(value))),
        CompareOp::Lt => range(RangeBound::Unbounded, RangeBound::Exclusive(value)),
        CompareOp::LtEq => range(RangeBound::Unbounded, RangeBound::Inclusive(value)),
        CompareOp::Gt => range(RangeBound::Exclusive(value), RangeBound::Unbounded),
        CompareOp::GtEq => range(RangeBound::Inclusive(value), RangeBound::Unbounded),
    }
}

fn negate_if(query: Query, negated: bool) -> Query {
    if negated {
        Query::Not(Box::new(query))
    } else {
        query
    }
}

/// `%` is any run and `_` one character; the query language's `*` and `?` in the
/// pattern are literal.
fn like_to_wildcard(pattern: &str) -> String {
    let mut wildcard = String::with_capacity(pattern.len());
    for c in pattern.to_lowercase().chars() {
        match c {
            '%' => wildcard.push('*'),
            '_' => wildcard.push('?'),
            '*' | '?' | '\\' => {
                wildcard.push('\\');
                wildcard.push(c);
            }
            other => wildcard.push(other),
        }
    }
    wildcard
}

fn compare_op(op: &BinaryOperator) -> Option<CompareOp> {
    Some(match op {
        BinaryOperator::Eq => CompareOp::Eq,
        BinaryOperator::NotEq => CompareOp::NotEq,
        BinaryOperator::Lt => CompareOp::Lt,
        BinaryOperator::LtEq => CompareOp::LtEq,
        BinaryOperator::Gt => CompareOp::Gt,
        BinaryOperator::GtEq => CompareOp::GtEq,
        _ => return None,
    })
}

/// `5 < x` is `x > 5`.
fn flip(op: CompareOp) -> CompareOp {
    match op {
        CompareOp::Lt => CompareOp::Gt,
        CompareOp::LtEq => CompareOp::GtEq,
        CompareOp::Gt => CompareOp::Lt,
        CompareOp::GtEq => CompareOp::LtEq,
        other => other,
    }
}

fn function_name(function: &Function) -> String {
    object_name_text(&function.name).to_ascii_lowercase()
}

fn object_name_text(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|part| match part.as_ident() {
            Some(ident) => ident.value.clone(),
            None => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A field reference: `host`, `http.status`, `"tags.env"`.
fn field_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(ident) => Some(ident.value.clone()),
        Expr::CompoundIdentifier(parts) => Some(
            parts
                .iter()
                .map(|ident: &Ident| ident.value.as_str())
                .collect::<Vec<_>>()
                .join("."),
        ),
        Expr::Nested(inner) => field_name(inner),
        // `user.id`: `user` is also a niladic function, so the parser reads an access
        // into its value.
        Expr::CompoundFieldAccess { root, access_chain } => {
            let mut name = field_name(root)?;
            for access in access_chain {
                match access {
                    sqlparser::ast::AccessExpr::Dot(Expr::Identifier(ident)) => {
                        name.push('.');
                        name.push_str(&ident.value);
                    }
                    _ => return None,
                }
            }
            Some(name)
        }
        // Some field names (`user`) are also niladic SQL functions (`USER`).
        Expr::Function(function)
            if matches!(function.args, FunctionArguments::None)
                && matches!(function.parameters, FunctionArguments::None)
                && function.over.is_none()
                && function.name.0.len() == 1 =>
        {
            Some(object_name_text(&function.name))
        }
        _ => None,
    }
}

fn column_name(expr: &Expr) -> String {
    field_name(expr).unwrap_or_else(|| expr.to_string())
}

fn alias_target<'e>(name: &str, entries: &[SelectEntry<'e>]) -> Option<&'e Expr> {
    entries
        .iter()
        .find(|entry| entry.alias.as_deref() == Some(name))
        .and_then(|entry| entry.expr)
}

fn contains_aggregate(expr: &Expr) -> bool {
    match expr {
        Expr::Function(function) => AGGREGATES.contains(&function_name(function).as_str()),
        Expr::Nested(inner) => contains_aggregate(inner),
        Expr::BinaryOp { left, right, .. } => contains_aggregate(left) || contains_aggregate(right),
        Expr::UnaryOp { expr, .. } => contains_aggregate(expr),
        _ => false,
    }
}

fn literal(expr: &Expr) -> Option<Literal> {
    match expr {
        Expr::Value(value) => match &value.value {
            Value::Number(text, _) => text.parse().ok().map(Literal::Number),
            Value::SingleQuotedString(text) => Some(Literal::Str(text.clone())),
            Value::Boolean(b) => Some(Literal::Bool(*b)),
            Value::Null => Some(Literal::Null),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match literal(expr)? {
            Literal::Number(n) => Some(Literal::Number(-n)),
            _ => None,
        },
        Expr::Nested(inner) => literal(inner),
        _ => None,
    }
}

/// A numeric or boolean literal as written (keeps `500` from becoming `500.0`).
fn literal_text(expr: &Expr) -> String {
    match expr {
        Expr::Value(value) => match &value.value {
            Value::Number(text, _) => text.clone(),
            Value::Boolean(b) => b.to_string(),
            other => other.to_string(),
        },
        Expr::UnaryOp { expr, .. } => format!("-{}", literal_text(expr)),
        Expr::Nested(inner) => literal_text(inner),
        other => other.to_string(),
    }
}

fn number_literal(expr: &Expr) -> Option<f64> {
    match literal(expr)? {
        Literal::Number(n) => Some(n),
        _ => None,
    }
}

fn string_literal(expr: &Expr) -> Option<String> {
    match literal(expr)? {
        Literal::Str(text) => Some(text),
        _ => None,
    }
}

/// The 0-based character offset of a span's start, when the parser recorded one.
fn position(sql: &str, span: Span) -> Option<usize> {
    line_column_offset(sql, span.start.line, span.start.column)
}

fn line_column_offset(sql: &str, line: u64, column: u64) -> Option<usize> {
    if line == 0 || column == 0 {
        return None;
    }
    let mut offset = 0usize;
    for (index, text) in sql.split('\n').enumerate() {
        if index as u64 + 1 == line {
            return Some(offset + (column as usize - 1).min(text.chars().count()));
        }
        offset += text.chars().count() + 1;
    }
    None
}

/// Turns a parser error into an [`SqlError`], lifting "Line: l, Column: c" into a
/// position.
fn parser_error(sql: &str, error: ParserError) -> SqlError {
    let text = match error {
        ParserError::TokenizerError(text) | ParserError::ParserError(text) => text,
        ParserError::RecursionLimitExceeded => {
            return SqlError::over_limit(
                format!(
                "SQL is nested more than {MAX_SQL_DEPTH} levels deep (`max_sql_expression_depth`)"
            ),
                "max_sql_expression_depth",
            )
        }
    };
    let (message, position) = match text.find(" at Line: ") {
        Some(at) => {
            let location = &text[at + " at Line: ".len()..];
            let mut numbers = location
                .split(|c: char| !c.is_ascii_digit())
                .filter(|part| !part.is_empty())
                .filter_map(|part| part.parse::<u64>().ok());
            let line = numbers.next().unwrap_or(0);
            let column = numbers.next().unwrap_or(0);
            (
                text[..at].to_string(),
                line_column_offset(sql, line, column),
            )
        }
        // The parser gives no location for a statement that ends too early.
        None if text.ends_with("found: EOF") => (text, Some(sql.chars().count())),
        None => (text, None),
    };
    SqlError::at(format!("invalid SQL: {message}"), position)
}

#[cfg(test)]
mod tests;
