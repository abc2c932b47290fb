//! The query AST shared by every back end.

use serde::Serialize;

/// One end of a range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum RangeBound {
    /// No bound (`*`).
    Unbounded,
    /// Bound that includes the value (`[`, `]`, `>=`, `<=`).
    Inclusive(String),
    /// Bound that excludes the value (`{`, `}`, `>`, `<`).
    Exclusive(String),
}

/// A parsed query. `field: None` means the default field: every text of the record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Query {
    /// Matches every record (empty query or `*`).
    All,
    /// A single word or value, e.g. `error` or `status:500`. A value that tokenises
    /// into several tokens matches them as a phrase.
    Term {
        /// Field name, or `None` for the default field.
        field: Option<String>,
        /// The value as written, with escapes resolved.
        value: String,
    },
    /// A quoted phrase, e.g. `"connection reset"` or `message:"disk full"`.
    Phrase {
        /// Field name, or `None` for the default field.
        field: Option<String>,
        /// The phrase text, with escapes resolved.
        text: String,
    },
    /// A term with `*` (any run of characters) or `?` (one character), e.g. `err*`.
    Wildcard {
        /// Field name, or `None` for the default field.
        field: Option<String>,
        /// The pattern, lowercased, with escapes resolved (escaped `*`/`?` are literal
        /// and kept as `\*`/`\?`).
        pattern: String,
    },
    /// A range over a field, e.g. `status:[500 TO 599]` or `latency:>250`.
    Range {
        /// Field name.
        field: String,
        /// Lower bound.
        lower: RangeBound,
        /// Upper bound.
        upper: RangeBound,
    },
    /// `_exists_:field`: the record has the field.
    Exists {
        /// Field name.
        field: String,
    },
    /// All sub-queries match.
    And(Vec<Query>),
    /// At least one sub-query matches.
    Or(Vec<Query>),
    /// The sub-query does not match.
    Not(Box<Query>),
}
