//! Bounds the shape of the SQL after the pipe from its tokens, before it is parsed.
//!
//! `sqlparser` limits how deeply its parser recurses, but it builds a run of one
//! operator (`a + b + c …`, `x AND y AND …`) in a loop, as a left-deep tree as deep
//! as the run is long. Walking, printing or dropping such a tree recurses once per
//! level, so a long run overflows the stack. This scan measures, from the tokens
//! alone, an upper bound of the depth of every expression the parser can build:
//!
//! - each bracketed group (`(…)`, `[…]`, `{…}`) is one level deeper than the
//!   tokens around it;
//! - a comma ends a sibling (function arguments, list items, select items), as do the
//!   clause keywords at the top level;
//! - within one sibling every token may add a level (every node of the tree takes at
//!   least one token of its own), so the bound of a sibling is its token count plus
//!   its deepest group.
//!
//! The conditions that `WHERE` joins with AND / OR are the exception: the planner
//! flattens that chain without recursion (and takes the tree apart the same way), so
//! there an AND / OR ends a sibling instead of deepening it. This holds only where the
//! chain is the top of the condition: at the top level of `WHERE` and inside plain
//! parentheses opened right after WHERE, AND, OR, NOT or `(`, outside CASE … END,
//! subqueries and the AND of `BETWEEN x AND y`. Those chains are still bounded by
//! [`QueryLimits::max_terms`](crate::limits::QueryLimits), which also bounds what an
//! ordinary drop of a tree that fails to parse has to recurse through.

use sqlparser::dialect::Dialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::SqlError;
use crate::limits::QueryLimits;

/// The measured shape of a SQL text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SqlShape {
    /// Tokens, without whitespace and comments.
    pub tokens: usize,
    /// Upper bound of the depth of any expression tree built from the text.
    pub depth: usize,
    /// AND / OR joining `WHERE` conditions, which the planner flattens.
    pub flattened_joins: usize,
}

/// One bracketed group (or the whole text) being scanned.
#[derive(Debug, Default)]
struct Group {
    /// AND / OR here join `WHERE` conditions that are flattened.
    flattens: bool,
    /// Tokens of the current sibling.
    tokens: usize,
    /// Depth of the deepest group inside the current sibling.
    deepest_child: usize,
    /// Depth bound of the siblings already ended.
    deepest_sibling: usize,
    /// Open CASE … END inside this group: their AND / OR are not flattened.
    open_cases: usize,
    /// BETWEEN whose AND is still to come.
    open_betweens: usize,
    /// AND / OR taken as flattened joins here and in the groups inside.
    flat_joins: usize,
    /// A comma inside: a flattened group is then a list, not a condition.
    has_comma: bool,
    /// The group just closed inside this one (its depth and flattened joins), until
    /// the next token shows whether it stands alone as a condition.
    just_closed: Option<(usize, usize)>,
}

impl Group {
    fn end_sibling(&mut self) {
        self.deepest_sibling = self.deepest_sibling.max(self.tokens + self.deepest_child);
        self.tokens = 0;
        self.deepest_child = 0;
    }

    fn depth(mut self) -> usize {
        self.end_sibling();
        self.deepest_sibling
    }

    /// Settles the group closed just before the current token: if the token ends
    /// the condition (a flattened AND / OR, a closing bracket, a clause keyword or the
    /// end), its joins stay flat; otherwise (`(a AND b) = 1`, `(a OR b) IS NULL`)
    /// the group is an operand and its joins count as depth after all.
    fn settle_closed(&mut self, ends_condition: bool) {
        if let Some((depth, joins)) = self.just_closed.take() {
            if ends_condition {
                self.flat_joins += joins;
            } else {
                self.deepest_child = self.deepest_child.max(depth + joins);
            }
        }
    }

    /// Closes this group: its depth bound, one level for the group itself, and the
    /// joins it flattened. A flattened group holding a comma is a tuple, whose
    /// members are not flattened.
    fn close(mut self) -> (usize, usize) {
        self.settle_closed(true);
        let joins = self.flat_joins;
        let has_comma = self.has_comma;
        let depth = self.depth() + 1;
        if has_comma {
            (depth + joins, 0)
        } else {
            (depth, joins)
        }
    }
}

/// Keywords that start a clause of the statement.
const CLAUSES: [Keyword; 10] = [
    Keyword::SELECT,
    Keyword::FROM,
    Keyword::WHERE,
    Keyword::GROUP,
    Keyword::HAVING,
    Keyword::ORDER,
    Keyword::LIMIT,
    Keyword::OFFSET,
    Keyword::QUALIFY,
    Keyword::WINDOW,
];

/// Measures `sql`. Text that does not tokenise measures as empty: the parser then
/// reports the error, having built nothing.
pub fn measure_sql(sql: &str, dialect: &dyn Dialect) -> SqlShape {
    let Ok(tokens) = Tokenizer::new(dialect, sql).tokenize() else {
        return SqlShape::default();
    };
    let mut shape = SqlShape::default();
    let mut stack = vec![Group::default()];
    // Whether the previous token lets a `(` open a flattened group.
    let mut opens_flattened = false;
    for token in tokens {
        if matches!(token, Token::Whitespace(_) | Token::EOF) {
            continue;
        }
        shape.tokens += 1;
        let keyword = match &token {
            Token::Word(word) => Some(word.keyword),
            _ => None,
        };
        let top_level = stack.len() == 1;
        let nested = stack.len() > 1;
        let Some(group) = stack.last_mut() else {
            break;
        };
        let mut next_opens_flattened = false;
        let is_flat_join = matches!(keyword, Some(Keyword::AND | Keyword::OR))
            && group.flattens
            && group.open_cases == 0
            && !(keyword == Some(Keyword::AND) && group.open_betweens > 0);
        let is_clause = top_level && keyword.is_some_and(|keyword| CLAUSES.contains(&keyword));
        let is_closer = nested && matches!(token, Token::RParen | Token::RBracket | Token::RBrace);
        group.settle_closed(is_flat_join || is_clause || is_closer);
        match (&token, keyword) {
            (Token::LParen | Token::LBracket | Token::LBrace, _) => {
                group.tokens += 1;
                let flattens = group.flattens
                    && group.open_cases == 0
                    && opens_flattened
                    && token == Token::LParen;
                stack.push(Group {
                    flattens,
                    ..Group::default()
                });
                next_opens_flattened = true;
            }
            (Token::RParen | Token::RBracket | Token::RBrace, _) if is_closer => {
                let (closed, joins) = stack.pop().map_or((0, 0), Group::close);
                if let Some(parent) = stack.last_mut() {
                    parent.tokens += 1;
                    parent.deepest_child = parent.deepest_child.max(closed);
                    parent.just_closed = Some((closed, joins));
                }
            }
            (Token::Comma, _) => {
                group.has_comma = true;
                group.end_sibling();
            }
            (_, Some(keyword)) if is_clause => {
                group.end_sibling();
                group.flattens = keyword == Keyword::WHERE;
                next_opens_flattened = true;
            }
            (_, Some(Keyword::SELECT | Keyword::WITH | Keyword::VALUES)) => {
                // A subquery: its conditions are not the planner's to flatten.
                group.flattens = false;
                group.tokens += 1;
            }
            (_, Some(Keyword::CASE)) => {
                group.open_cases += 1;
                group.tokens += 1;
            }
            (_, Some(Keyword::END)) => {
                group.open_cases = group.open_cases.saturating_sub(1);
                group.tokens += 1;
            }
            (_, Some(Keyword::BETWEEN)) => {
                group.open_betweens += 1;
                group.tokens += 1;
            }
            (_, Some(Keyword::AND)) if group.open_betweens > 0 => {
                group.open_betweens -= 1;
                group.tokens += 1;
            }
            _ if is_flat_join => {
                shape.flattened_joins += 1;
                group.flat_joins += 1;
                group.end_sibling();
                next_opens_flattened = true;
            }
            (_, Some(Keyword::NOT)) => {
                group.tokens += 1;
                next_opens_flattened = true;
            }
            _ => group.tokens += 1,
        }
        opens_flattened = next_opens_flattened;
    }
    while stack.len() > 1 {
        let (closed, joins) = stack.pop().map_or((0, 0), Group::close);
        if let Some(parent) = stack.last_mut() {
            parent.deepest_child = parent.deepest_child.max(closed);
            parent.just_closed = Some((closed, joins));
        }
    }
    shape.depth = stack.pop().map_or(0, |mut root| {
        root.settle_closed(true);
        root.depth()
    });
    shape
}

/// Checks `sql` against the SQL limits before it is parsed.
///
/// # Errors
/// An [`SqlError`] naming the limit exceeded.
pub fn check_sql_shape(
    sql: &str,
    dialect: &dyn Dialect,
    limits: &QueryLimits,
) -> Result<(), SqlError> {
    let shape = measure_sql(sql, dialect);
    let checks = [
        (
            shape.flattened_joins,
            limits.max_terms,
            "max_terms",
            "WHERE joins conditions with {found} AND / OR",
        ),
        (
            shape.depth,
            limits.max_sql_expression_depth,
            "max_sql_expression_depth",
            "a SQL expression may be {found} levels deep",
        ),
        (
            shape.tokens,
            limits.max_sql_tokens,
            "max_sql_tokens",
            "the SQL has {found} tokens",
        ),
    ];
    for (found, max, limit, what) in checks {
        if found > max {
            let what = what.replace("{found}", &found.to_string());
            return Err(SqlError::over_limit(
                format!("{what}, more than the limit of {max} (`{limit}`)"),
                limit,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::GenericDialect;

    fn shape(sql: &str) -> SqlShape {
        measure_sql(sql, &GenericDialect {})
    }

    #[test]
    fn test_flattened_where_chain_is_shallow() {
        let sql = format!(
            "SELECT count(*) WHERE {}",
            (0..100)
                .map(|i| format!("a = {i}"))
                .collect::<Vec<_>>()
                .join(" AND ")
        );
        let measured = shape(&sql);
        assert_eq!(measured.flattened_joins, 99);
        // `count(*)` is the deepest sibling: a name, two brackets and a group.
        assert_eq!(measured.depth, 5, "{measured:?}");
    }

    #[test]
    fn test_operator_runs_count_as_deep() {
        let sql = format!("SELECT count(*) WHERE a = 1{}", " + 1".repeat(100));
        assert!(shape(&sql).depth >= 200);
        let in_function = format!(
            "SELECT count(*) WHERE f({}) = 1",
            vec!["a"; 100].join(" AND ")
        );
        let measured = shape(&in_function);
        assert_eq!(measured.flattened_joins, 0);
        assert!(measured.depth >= 100, "{measured:?}");
    }

    #[test]
    fn test_lists_are_wide_not_deep() {
        let sql = format!(
            "SELECT count(*) WHERE a IN ({})",
            (0..1000)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert!(shape(&sql).depth <= 8);
    }

    #[test]
    fn test_between_case_and_subqueries_are_not_flattened() {
        let between = shape("SELECT 1 WHERE a BETWEEN 1 AND 2 AND b = 1");
        assert_eq!(between.flattened_joins, 1);
        let case = shape("SELECT 1 WHERE CASE WHEN a AND b AND c THEN 1 END = 1");
        assert_eq!(case.flattened_joins, 0);
        let subquery = shape("SELECT 1 WHERE (SELECT x WHERE a AND b AND c)");
        assert_eq!(subquery.flattened_joins, 0);
        // A parenthesised chain used as an operand is as deep as it is long.
        let chain = vec!["a = 1"; 100].join(" AND ");
        for operand in [
            format!("SELECT 1 WHERE ({chain}) = 1"),
            format!("SELECT 1 WHERE b = 1 OR NOT ({chain}) IS NULL"),
            format!("SELECT 1 WHERE (({chain}), 1)"),
        ] {
            assert!(shape(&operand).depth >= 100, "{operand}");
        }
        let condition = shape(&format!("SELECT 1 WHERE b = 1 OR NOT ({chain}) GROUP BY c"));
        assert!(condition.depth < 10, "{condition:?}");
        let nested = shape("SELECT 1 WHERE NOT (a = 1 OR (b = 2 AND c = 3))");
        assert_eq!(nested.flattened_joins, 2);
        let having = shape("SELECT 1 GROUP BY a HAVING count(*) > 1 AND max(x) > 2");
        assert_eq!(having.flattened_joins, 0);
    }

    #[test]
    fn test_nesting_adds_up() {
        let sql = format!("SELECT {}a{}", "f(".repeat(30), ")".repeat(30));
        assert!(shape(&sql).depth >= 60);
    }
}
