//! Pipe SQL: `<query> | SELECT ...`, as in Aliyun SLS.
//!
//! The part before the first top-level `|` is the search query ([`crate::query`]);
//! the part after it is one SQL `SELECT` statement, parsed with the `sqlparser`
//! crate and planned into a [`plan::SqlPlan`]:
//!
//! - the search query AND the statement's `WHERE` become one [`crate::query::Query`]
//!   that the engine filters with, so `WHERE` never costs a scan of its own;
//! - group keys ([`plan::GroupKey`]: fields, `date_trunc`, `time_bucket`) and
//!   aggregates ([`plan::AggregateFn`]) are computed by the engine over every group;
//! - `HAVING`, `ORDER BY`, `OFFSET`/`LIMIT` and the projection run in memory over the
//!   engine's groups ([`finish`]). The engine returns *all* groups (up to a cap), so
//!   a top-N by an aggregate is exact, never a top-N of per-shard top-Ns.
//!
//! A statement without aggregates or `GROUP BY` returns records, newest first.
//! Anything else is refused with an [`SqlError`] naming the construct.

pub mod eval;
pub mod extract;
pub mod finish;
pub mod plan;
mod planner;
pub mod shape;

pub use extract::{split_pipeline, Pipeline};
pub use finish::{finish_aggregate, SqlColumn, SqlTable};
pub use plan::SqlPlan;
pub use planner::{plan_pipeline, plan_sql, Planned};

/// Why a statement cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SqlError {
    /// What is wrong, naming the construct.
    pub message: String,
    /// 0-based character offset in the SQL text, when known.
    pub position: Option<usize>,
    /// The limit of [`crate::limits::QueryLimits`] the statement exceeds, when that is
    /// the problem.
    pub limit: Option<&'static str>,
}

impl SqlError {
    pub(crate) fn new(message: impl Into<String>) -> SqlError {
        SqlError {
            message: message.into(),
            position: None,
            limit: None,
        }
    }

    pub(crate) fn over_limit(message: impl Into<String>, limit: &'static str) -> SqlError {
        SqlError {
            message: message.into(),
            position: None,
            limit: Some(limit),
        }
    }

    pub(crate) fn at(message: impl Into<String>, position: Option<usize>) -> SqlError {
        SqlError {
            message: message.into(),
            position,
            limit: None,
        }
    }

    /// Returns the error with its position moved by `offset` characters (the SQL
    /// text's place in the whole request).
    pub fn shifted(mut self, offset: usize) -> SqlError {
        self.position = self.position.map(|position| position + offset);
        self
    }
}

/// A request split at its pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeSplit<'a> {
    /// The search query before the pipe.
    pub query: &'a str,
    /// The SQL after the pipe.
    pub sql: &'a str,
    /// Character offset of `sql` in the whole text.
    pub sql_offset: usize,
}

/// Splits `text` at its first top-level `|`: not inside a quoted phrase, not
/// escaped, and not part of the query language's `||` operator. Returns `None`
/// when there is no such pipe.
pub fn split_pipe(text: &str) -> Option<PipeSplit<'_>> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut in_quotes = false;
    let mut index = 0;
    while index < chars.len() {
        let (byte, c) = chars[index];
        match c {
            '\\' => index += 1,
            '"' => in_quotes = !in_quotes,
            '|' if !in_quotes => {
                if chars.get(index + 1).is_some_and(|(_, next)| *next == '|') {
                    index += 1;
                } else {
                    return Some(PipeSplit {
                        query: &text[..byte],
                        sql: &text[byte + 1..],
                        sql_offset: index + 1,
                    });
                }
            }
            _ => {}
        }
        index += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_split_pipe_finds_the_top_level_pipe() {
        let split = split_pipe("status:500 | SELECT count(*)").expect("pipe");
        assert_eq!(split.query, "status:500 ");
        assert_eq!(split.sql, " SELECT count(*)");
        assert_eq!(split.sql_offset, 12);
    }

    #[test]
    fn test_split_pipe_skips_or_operator_quotes_and_escapes() {
        let text = r#"a || "x | y" || b\|c | SELECT 1"#;
        let split = split_pipe(text).expect("pipe");
        assert_eq!(split.query, r#"a || "x | y" || b\|c "#);
        assert_eq!(split.sql, " SELECT 1");
        assert!(split_pipe("a || b").is_none());
        assert!(split_pipe(r#""a | b""#).is_none());
    }

    #[test]
    fn test_split_pipe_counts_characters() {
        let split = split_pipe("é | SELECT 1").expect("pipe");
        assert_eq!(split.sql_offset, 3);
    }
}
