//! Checks a parsed query against [`QueryLimits`] before any engine sees it.
//!
//! Every walk here uses an explicit stack, so it is safe on a tree of any shape; once
//! a query has passed [`check_query`], the recursive back ends (index compilers, the
//! in-memory evaluator, highlighting) recurse at most `max_depth` levels.

use super::ast::Query;
use super::tokenize;
use crate::limits::QueryLimits;

/// Which limit a query exceeds, with the limit's value and what the query has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the query has {found} {what}, more than the limit of {max} (`{limit}`)")]
pub struct QueryLimitError {
    /// The setting's name in [`QueryLimits`], e.g. `max_terms`.
    pub limit: &'static str,
    /// The limit's value.
    pub max: usize,
    /// What was counted, e.g. `terms`.
    pub what: &'static str,
    /// How many the query has (at least; counting may stop early).
    pub found: usize,
}

impl QueryLimitError {
    pub(crate) fn new(limit: &'static str, max: usize, what: &'static str, found: usize) -> Self {
        QueryLimitError {
            limit,
            max,
            what,
            found,
        }
    }
}

/// The measured size and shape of a query.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryShape {
    /// Deepest nesting of AND / OR / NOT (0 for a single term).
    pub depth: usize,
    /// Every node, leaves and operators.
    pub nodes: usize,
    /// Leaf clauses; a term or phrase counts each of its words (at least one).
    pub terms: usize,
    /// Wildcard patterns.
    pub wildcards: usize,
    /// Characters of the longest wildcard pattern.
    pub longest_wildcard: usize,
}

/// Measures `query` without recursion.
pub fn measure(query: &Query) -> QueryShape {
    let mut shape = QueryShape::default();
    let mut stack: Vec<(&Query, usize)> = vec![(query, 0)];
    while let Some((node, depth)) = stack.pop() {
        shape.nodes += 1;
        shape.depth = shape.depth.max(depth);
        match node {
            Query::All => {}
            Query::Term { value: text, .. } | Query::Phrase { text, .. } => {
                shape.terms += tokenize(text).len().max(1);
            }
            Query::Wildcard { pattern, .. } => {
                shape.terms += 1;
                shape.wildcards += 1;
                shape.longest_wildcard = shape.longest_wildcard.max(pattern.chars().count());
            }
            Query::Range { .. } | Query::Exists { .. } => shape.terms += 1,
            Query::And(children) | Query::Or(children) => {
                stack.extend(children.iter().map(|child| (child, depth + 1)));
            }
            Query::Not(inner) => stack.push((inner, depth + 1)),
        }
    }
    shape
}

/// Checks `query` against every limit.
///
/// # Errors
/// The first limit exceeded, by name.
pub fn check_query(query: &Query, limits: &QueryLimits) -> Result<(), QueryLimitError> {
    check_shape(&measure(query), limits)
}

/// Checks a measured shape against every limit.
///
/// # Errors
/// The first limit exceeded, by name.
pub fn check_shape(shape: &QueryShape, limits: &QueryLimits) -> Result<(), QueryLimitError> {
    let checks = [
        (
            shape.wildcards,
            limits.max_wildcards,
            "max_wildcards",
            "wildcard patterns",
        ),
        (
            shape.longest_wildcard,
            limits.max_wildcard_chars,
            "max_wildcard_chars",
            "characters in one wildcard pattern",
        ),
        (
            shape.depth,
            limits.max_depth,
            "max_depth",
            "levels of AND / OR / NOT nesting",
        ),
        (shape.terms, limits.max_terms, "max_terms", "terms"),
        (shape.nodes, limits.max_nodes, "max_nodes", "query nodes"),
    ];
    for (found, max, limit, what) in checks {
        if found > max {
            return Err(QueryLimitError::new(limit, max, what, found));
        }
    }
    Ok(())
}

/// Drops a query without recursion, so that dropping a tree of any depth cannot
/// exhaust the stack (the derived drop recurses once per level).
pub fn drop_iteratively(query: Query) {
    let mut stack = vec![query];
    while let Some(node) = stack.pop() {
        match node {
            Query::And(children) | Query::Or(children) => stack.extend(children),
            Query::Not(inner) => stack.push(*inner),
            leaf => drop(leaf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(value: &str) -> Query {
        Query::Term {
            field: None,
            value: value.to_string(),
        }
    }

    #[test]
    fn test_measure_counts_depth_nodes_terms_and_wildcards() {
        let query = Query::And(vec![
            term("a"),
            Query::Not(Box::new(Query::Or(vec![
                Query::Phrase {
                    field: None,
                    text: "disk full now".to_string(),
                },
                Query::Wildcard {
                    field: None,
                    pattern: "err*".to_string(),
                },
            ]))),
        ]);
        assert_eq!(
            measure(&query),
            QueryShape {
                depth: 3,
                nodes: 6,
                terms: 5,
                wildcards: 1,
                longest_wildcard: 4,
            }
        );
    }

    #[test]
    fn test_check_names_the_limit_exceeded() {
        let limits = QueryLimits {
            max_terms: 2,
            ..QueryLimits::default()
        };
        let error = check_query(&Query::Or(vec![term("a"), term("b"), term("c")]), &limits)
            .expect_err("three terms");
        assert_eq!(error.limit, "max_terms");
        assert_eq!(error.max, 2);
        assert_eq!(error.found, 3);
        assert_eq!(
            error.to_string(),
            "the query has 3 terms, more than the limit of 2 (`max_terms`)"
        );
        assert!(check_query(&Query::Or(vec![term("a"), term("b")]), &limits).is_ok());
    }

    #[test]
    fn test_measure_and_drop_survive_a_degenerate_tree_on_a_small_stack() {
        // A million nested NOTs, as no parser here builds; measuring and dropping it
        // must not recurse.
        let handle = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(|| {
                let mut query = term("x");
                for _ in 0..1_000_000 {
                    query = Query::Not(Box::new(query));
                }
                let shape = measure(&query);
                drop_iteratively(query);
                shape.depth
            })
            .expect("thread");
        assert_eq!(handle.join().expect("no overflow"), 1_000_000);
    }
}
