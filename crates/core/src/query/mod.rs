//! The query language: one parser, one AST, several back ends.
//!
//! The syntax is Lucene / Elasticsearch Query String: bare terms, `"phrases"`,
//! `field:value`, `field:"phrase"`, `field:(a OR b)`, wildcards `foo*` and `f?o`,
//! ranges `status:[500 TO 599]` and `status:{400 TO 500}`, comparisons
//! `latency:>250`, `_exists_:field`, `AND OR NOT && || ! + -`, parentheses and `\`
//! escapes, with a configurable default operator (AND unless told otherwise).
//!
//! Back ends: the index engines compile the [`ast::Query`] to their own queries, and
//! [`eval::matches`] evaluates it against one record in memory (tail and alerts).
//! All of them see text through [`tokenize`], so they agree on what a term matches.

pub mod ast;
pub mod eval;
pub mod highlight;
pub mod numeric;
pub mod parser;

pub use ast::{Query, RangeBound};
pub use parser::{parse_query, DefaultOperator, QueryParseError};

/// Field names that address the record's event time rather than a record field.
pub const TIME_FIELD_NAMES: [&str; 2] = ["time", "@timestamp"];

/// Returns whether `field` addresses the event time.
pub fn is_time_field(field: &str) -> bool {
    TIME_FIELD_NAMES.contains(&field)
}

/// Tokens longer than this many bytes are dropped, as tantivy's default tokenizer does.
pub const MAX_TOKEN_BYTES: usize = 40;

/// Splits text into lowercase tokens the way the index's default tokenizer does:
/// maximal runs of alphanumeric characters, lowercased, tokens longer than
/// [`MAX_TOKEN_BYTES`] bytes dropped.
pub fn tokenize(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|token| !token.is_empty() && token.len() <= MAX_TOKEN_BYTES)
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_tokenize() {
        assert_eq!(
            tokenize("GET /api/v1?x=Héllo"),
            ["get", "api", "v1", "x", "héllo"]
        );
        assert_eq!(tokenize("  "), Vec::<String>::new());
        assert!(tokenize(&"a".repeat(41)).is_empty());
    }
}
