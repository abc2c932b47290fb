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
pub mod limits;
pub mod numeric;
pub mod parser;

pub use ast::{Query, RangeBound};
pub use limits::{check_query, QueryLimitError};
pub use parser::{parse_query, parse_query_with_limits, DefaultOperator, QueryParseError};

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
    raw_tokens(text).map(str::to_lowercase).collect()
}

/// The tokens of [`tokenize`] before lowercasing, as slices of `text`.
fn raw_tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|token| !token.is_empty() && token.len() <= MAX_TOKEN_BYTES)
}

/// Returns whether the tokens of `text` include `words` (lowercase tokens, non-empty) as
/// a run: a phrase matches text this way. Compares in place, without allocating a
/// token per word (live tail, alerts and the index's phrase check on the raw line run
/// it record by record).
pub fn text_contains_words(text: &str, words: &[String]) -> bool {
    let tokens: Vec<&str> = raw_tokens(text).collect();
    tokens.windows(words.len()).any(|window| {
        window
            .iter()
            .zip(words)
            .all(|(token, word)| same_word(token, word))
    })
}

/// Whether `token` lowercases to `word`.
fn same_word(token: &str, word: &str) -> bool {
    if token.is_ascii() {
        token.len() == word.len() && token.eq_ignore_ascii_case(word)
    } else {
        token.to_lowercase() == word
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain definition of a phrase match, for comparison.
    fn contains_sequence(haystack: &[String], needle: &[String]) -> bool {
        haystack
            .windows(needle.len())
            .any(|window| window == needle)
    }

    #[test]
    fn test_tokenize() {
        assert_eq!(
            tokenize("GET /api/v1?x=Héllo"),
            ["get", "api", "v1", "x", "héllo"]
        );
        assert_eq!(tokenize("  "), Vec::<String>::new());
        assert!(tokenize(&"a".repeat(41)).is_empty());
    }

    #[test]
    fn test_text_contains_words_agrees_with_tokens() {
        let long = "x".repeat(41);
        let texts = [
            "RAS KERNEL INFO instruction cache parity error corrected".to_string(),
            "ras-kernel: Héllo WORLD".to_string(),
            format!("ras {long} kernel"),
            "kernel ras".to_string(),
            "".to_string(),
        ];
        let phrases = [
            "ras kernel",
            "kernel info",
            "héllo world",
            "cache",
            "kernel ras",
        ];
        for text in &texts {
            for phrase in phrases {
                let words = tokenize(phrase);
                assert_eq!(
                    text_contains_words(text, &words),
                    contains_sequence(&tokenize(text), &words),
                    "{text:?} / {phrase:?}"
                );
            }
        }
        assert!(text_contains_words(
            "RAS KERNEL INFO",
            &tokenize("ras kernel")
        ));
        assert!(!text_contains_words(
            "RAS INFO KERNEL",
            &tokenize("ras kernel")
        ));
        assert!(text_contains_words("Héllo-World", &tokenize("héllo world")));
    }
}
