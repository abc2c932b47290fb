//! The query parser: Lucene / Elasticsearch `query_string` text to a [`Query`].
//!
//! # Grammar
//!
//! ```text
//! query      = ws* [ sequence ] ws* EOF           (empty input → All)
//! sequence   = clause { [ AND | OR ] clause }      (no operator → the default operator)
//! AND        = "AND" | "&&"          OR = "OR" | "||"          NOT = "NOT" | "!"
//! clause     = [ "+" | "-" | NOT ] unary
//! unary      = { NOT } primary
//! primary    = ( group | phrase | range | comparison | field_expr | word ) [ boost ]
//! group      = "(" sequence ")"
//! field_expr = field ":" ws* value  |  "_exists_:" field  |  "*:" value
//! value      = group | phrase | range | comparison | value_word
//! range      = ( "[" | "{" ) bound "TO" bound ( "]" | "}" )      bound = "*" | "\"…\"" | goop
//! comparison = ( ">" | ">=" | "<" | "<=" ) ( phrase | value_word )
//! field      = ( letter | digit | "_" | "." | "-" | "@" )+
//! boost      = "^" number                          (accepted and ignored: no scoring)
//! ```
//!
//! Operator words are case-sensitive (`and`, `or`, `not` are plain terms) and must stand
//! alone: `ANDROID` and `AND:x` are a term and a field. Precedence is NOT > AND > OR, and
//! adjacent clauses are joined with the default operator at that operator's precedence,
//! so with the default AND `a b OR c` is `(a AND b) OR c`.
//!
//! # Choices on points where Lucene is ambiguous or odd
//!
//! - `AND`, `OR` and `NOT` are plain boolean logic: `a OR NOT b` is `a OR (NOT b)`.
//! - `+x` and `-x` are Lucene's required / prohibited markers. Wherever clauses are
//!   joined by AND (explicitly or through the default AND) that is the same as `x` and
//!   `NOT x`. In a run of clauses joined only by the default OR (no explicit `OR`), the
//!   Lucene meaning applies, as Elasticsearch documents for `quick brown +fox -news`:
//!   prohibited clauses (`-x`, or `NOT x` written without an operator before it) exclude,
//!   required clauses must all match, and the remaining optional clauses only need to
//!   match when nothing is required (they only affect scoring otherwise, so they are
//!   dropped from the AST). With an explicit `OR` in the run, plain logic applies again:
//!   `a OR -b` is `a OR (NOT b)`.
//! - Pure negative queries are valid: `-foo` and `NOT foo` produce `Not(foo)`, which means
//!   "every record except those matching foo" (every back end treats `Not` as a
//!   complement). `Not(Not(x))` is simplified to `x`.
//! - And/Or nodes are flattened, single-element groups are unwrapped, `All` is dropped
//!   from an `And` and absorbs an `Or`.
//! - `field:*` is `Exists(field)`; `*` and `*:*` are `All`; `*:value` is the default field.
//! - After `field:` the value may start with `-` or `+` (`temp:-5`) and may contain `:`
//!   (`time:>2024-01-01T00:00:00Z`, `host:db:5432`); whitespace after the colon is
//!   skipped, as in Lucene. Operators are not values: `level:AND` is an error.
//! - `-` and `+` inside a word are part of it (`foo-bar`), as are `/`, `=`, `!`, `&`, `|`,
//!   `>` and `<` (regular expressions are not supported). A bare word may not start with
//!   `>` or `<`, because that is almost always a comparison missing its field.
//! - Ranges and comparisons need a field, either written (`status:[1 TO 5]`) or from an
//!   enclosing field group (`status:([500 TO 599] OR 404)`).
//! - Wildcard patterns are lowercased; an escaped `*`, `?` or `\` stays escaped (`\*`,
//!   `\?`, `\\`) so the pattern stays unambiguous. Term values and phrases resolve escapes.
//! - Boosts (`^2`) are accepted and ignored. Fuzzy and proximity (`~`) are rejected, since
//!   the AST cannot express them and ignoring them would change what matches.
//! - Groups nest at most [`MAX_GROUP_DEPTH`] deep so that hostile input cannot exhaust
//!   the stack of the parser or of a back end, and the parsed query is checked against
//!   [`QueryLimits`] (nesting, terms, wildcards): counting stops as soon as a limit is
//!   passed, so an oversized query costs no more than the limit's worth of parsing.

use serde::{Deserialize, Serialize};

use super::ast::{Query, RangeBound};
use super::limits::{check_query, QueryLimitError};
use crate::limits::QueryLimits;

/// Parentheses may nest at most this deep.
pub const MAX_GROUP_DEPTH: usize = 64;

/// How clauses written side by side without an operator are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultOperator {
    /// `a b` means `a AND b` (the default, as in most log search tools).
    #[default]
    #[serde(alias = "AND")]
    And,
    /// `a b` means `a OR b` (Lucene's and Elasticsearch's default).
    #[serde(alias = "OR")]
    Or,
}

/// Why a query string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: expected {expected}, found {found}")]
pub struct QueryParseError {
    /// 0-based offset, in characters, where the problem was found.
    pub position: usize,
    /// What the parser expected there.
    pub expected: String,
    /// What it found instead, e.g. `")"` or `end of query`.
    pub found: String,
    /// The limit of [`QueryLimits`] the query exceeds, when that is the problem.
    pub limit: Option<QueryLimitError>,
}

impl QueryParseError {
    fn over_limit(position: usize, error: QueryLimitError) -> QueryParseError {
        QueryParseError {
            position,
            expected: format!("at most {} {} (`{}`)", error.max, error.what, error.limit),
            found: format!("{}", error.found),
            limit: Some(error),
        }
    }
}

/// Parses a Lucene / Elasticsearch `query_string` query within the default
/// [`QueryLimits`].
///
/// Empty or whitespace-only input is [`Query::All`]. See the module documentation for
/// the grammar and the choices made where Lucene is ambiguous.
///
/// # Errors
/// Returns a [`QueryParseError`] with the character position and what was expected
/// for unbalanced parentheses, quotes or brackets, dangling operators, missing field
/// values, ranges without `TO`, invalid field names, unsupported syntax (`~`) and
/// queries over a limit (then [`QueryParseError::limit`] names it).
pub fn parse_query(
    input: &str,
    default_operator: DefaultOperator,
) -> Result<Query, QueryParseError> {
    parse_query_with_limits(input, default_operator, &QueryLimits::default())
}

/// [`parse_query`] within the given limits.
///
/// # Errors
/// As [`parse_query`].
pub fn parse_query_with_limits(
    input: &str,
    default_operator: DefaultOperator,
    limits: &QueryLimits,
) -> Result<Query, QueryParseError> {
    let mut parser = Parser {
        chars: input.chars().collect(),
        pos: 0,
        depth: 0,
        default_operator,
        limits,
        num_clauses: 0,
        num_wildcards: 0,
    };
    let query = parser.parse_sequence(&None, None)?;
    check_query(&query, limits).map_err(|error| QueryParseError::over_limit(0, error))?;
    Ok(query)
}

const EXPECTED_CLAUSE: &str = "a term or \"(\"";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    And,
    Or,
    Not,
}

/// How a clause was joined to the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Connector {
    First,
    Implicit,
    And,
    Or,
}

/// Lucene's occurrence marker of a clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Occur {
    Should,
    Must,
    MustNot,
}

/// A clause before the boolean structure around it is known. For `MustNot`, `query`
/// is the positive query being excluded.
#[derive(Debug)]
struct Clause {
    occur: Occur,
    query: Query,
}

impl Clause {
    fn into_logical(self) -> Query {
        match self.occur {
            Occur::MustNot => negate(self.query),
            Occur::Should | Occur::Must => self.query,
        }
    }
}

/// One character of a word, remembering whether it was escaped (escaped `*` is literal).
#[derive(Debug, Clone, Copy)]
struct WordChar {
    c: char,
    escaped: bool,
    position: usize,
}

#[derive(Debug)]
struct Word {
    chars: Vec<WordChar>,
}

impl Word {
    fn is_bare(&self, text: &str) -> bool {
        self.chars.len() == text.chars().count()
            && self
                .chars
                .iter()
                .zip(text.chars())
                .all(|(wc, c)| !wc.escaped && wc.c == c)
    }

    fn has_wildcard(&self) -> bool {
        self.chars
            .iter()
            .any(|wc| !wc.escaped && matches!(wc.c, '*' | '?'))
    }

    fn resolved(&self) -> String {
        self.chars.iter().map(|wc| wc.c).collect()
    }

    fn wildcard_pattern(&self) -> String {
        let mut pattern = String::new();
        for wc in &self.chars {
            if wc.escaped && matches!(wc.c, '*' | '?' | '\\') {
                pattern.push('\\');
                pattern.push(wc.c);
            } else {
                pattern.extend(wc.c.to_lowercase());
            }
        }
        pattern
    }
}

/// One bound of a `[a TO b]` range as written.
struct RangeToken {
    text: String,
    /// Unquoted and unescaped: `*` means unbounded and `TO` is the keyword.
    bare: bool,
    position: usize,
}

struct Parser<'l> {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
    default_operator: DefaultOperator,
    limits: &'l QueryLimits,
    /// Leaf clauses parsed so far, to stop early at [`QueryLimits::max_terms`].
    num_clauses: usize,
    /// Wildcard clauses parsed so far, to stop early at [`QueryLimits::max_wildcards`].
    num_wildcards: usize,
}

/// Characters that end a word (`:` ends a field name but not a value).
fn is_word_stop(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '{' | '}' | '"' | ':' | '^' | '~')
}

fn is_range_stop(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '{' | '}' | '"')
}

fn is_field_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '@')
}

fn negate(query: Query) -> Query {
    match query {
        Query::Not(inner) => *inner,
        other => Query::Not(Box::new(other)),
    }
}

fn and_of(queries: Vec<Query>) -> Query {
    let mut flat = Vec::with_capacity(queries.len());
    for query in queries {
        match query {
            Query::And(inner) => flat.extend(inner),
            Query::All => {}
            other => flat.push(other),
        }
    }
    match flat.len() {
        0 => Query::All,
        1 => flat.pop().unwrap_or(Query::All),
        _ => Query::And(flat),
    }
}

fn or_of(queries: Vec<Query>) -> Query {
    let mut flat = Vec::with_capacity(queries.len());
    for query in queries {
        match query {
            Query::Or(inner) => flat.extend(inner),
            Query::All => return Query::All,
            other => flat.push(other),
        }
    }
    match flat.len() {
        0 => Query::All,
        1 => flat.pop().unwrap_or(Query::All),
        _ => Query::Or(flat),
    }
}

fn term_query(field: &Option<String>, word: &Word) -> Query {
    if word.is_bare("*") {
        return match field {
            None => Query::All,
            Some(field) => Query::Exists {
                field: field.clone(),
            },
        };
    }
    if word.has_wildcard() {
        Query::Wildcard {
            field: field.clone(),
            pattern: word.wildcard_pattern(),
        }
    } else {
        Query::Term {
            field: field.clone(),
            value: word.resolved(),
        }
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, position: usize) -> Option<char> {
        self.chars.get(position).copied()
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn error(&self, position: usize, expected: impl Into<String>) -> QueryParseError {
        QueryParseError {
            position,
            expected: expected.into(),
            found: self.describe(position),
            limit: None,
        }
    }

    /// Counts the leaf clause `query` (a clause holding a group was counted clause by
    /// clause inside it) and stops parsing once a count passes its limit.
    fn count_clause(&mut self, query: &Query, position: usize) -> Result<(), QueryParseError> {
        let leaf = match query {
            Query::Not(inner) => inner.as_ref(),
            other => other,
        };
        match leaf {
            Query::All | Query::And(_) | Query::Or(_) | Query::Not(_) => return Ok(()),
            Query::Wildcard { .. } => self.num_wildcards += 1,
            _ => {}
        }
        self.num_clauses += 1;
        let over = if self.num_wildcards > self.limits.max_wildcards {
            Some(QueryLimitError::new(
                "max_wildcards",
                self.limits.max_wildcards,
                "wildcard patterns",
                self.num_wildcards,
            ))
        } else if self.num_clauses > self.limits.max_terms {
            Some(QueryLimitError::new(
                "max_terms",
                self.limits.max_terms,
                "terms",
                self.num_clauses,
            ))
        } else {
            None
        };
        match over {
            Some(error) => Err(QueryParseError::over_limit(position, error)),
            None => Ok(()),
        }
    }

    /// Describes what stands at `position` for an error message.
    fn describe(&self, position: usize) -> String {
        let Some(c) = self.peek_at(position) else {
            return "end of query".to_string();
        };
        if let Some((_, len)) = self.operator_at(position) {
            let text: String = self.chars[position..position + len].iter().collect();
            return format!("\"{text}\"");
        }
        if c.is_whitespace() {
            return "whitespace".to_string();
        }
        if is_word_stop(c) || matches!(c, '+' | '-' | '\\' | '>' | '<') {
            return format!("\"{c}\"");
        }
        let word: String = self.chars[position..]
            .iter()
            .take_while(|c| !is_word_stop(**c))
            .take(20)
            .collect();
        format!("\"{word}\"")
    }

    /// Returns the operator starting at `position` and its length in characters.
    fn operator_at(&self, position: usize) -> Option<(Operator, usize)> {
        let rest = self.chars.get(position..)?;
        match rest {
            ['&', '&', ..] => return Some((Operator::And, 2)),
            ['|', '|', ..] => return Some((Operator::Or, 2)),
            ['!', ..] => return Some((Operator::Not, 1)),
            _ => {}
        }
        for (keyword, operator) in [
            ("AND", Operator::And),
            ("OR", Operator::Or),
            ("NOT", Operator::Not),
        ] {
            let len = keyword.len();
            let is_keyword = rest.len() >= len
                && rest[..len].iter().copied().eq(keyword.chars())
                // A keyword must stand alone; `AND:x` names a field called AND.
                && rest.get(len).is_none_or(|c| is_word_stop(*c) && *c != ':');
            if is_keyword {
                return Some((operator, len));
            }
        }
        None
    }

    /// Parses clauses up to the end of input or, inside a group, up to (not past) `)`.
    fn parse_sequence(
        &mut self,
        field: &Option<String>,
        open_paren: Option<usize>,
    ) -> Result<Query, QueryParseError> {
        let mut items: Vec<(Connector, Clause)> = Vec::new();
        loop {
            self.skip_whitespace();
            match self.peek() {
                None => {
                    if let Some(open) = open_paren {
                        return Err(self.error(
                            self.pos,
                            format!("\")\" to close the \"(\" at position {open}"),
                        ));
                    }
                    break;
                }
                Some(')') => {
                    if open_paren.is_some() {
                        break;
                    }
                    return Err(self.error(
                        self.pos,
                        "a term, an operator or end of query (this \")\" has no matching \"(\")",
                    ));
                }
                Some(_) => {}
            }
            let connector = if items.is_empty() {
                Connector::First
            } else {
                match self.operator_at(self.pos) {
                    Some((Operator::And, len)) => {
                        self.pos += len;
                        Connector::And
                    }
                    Some((Operator::Or, len)) => {
                        self.pos += len;
                        Connector::Or
                    }
                    Some((Operator::Not, _)) | None => Connector::Implicit,
                }
            };
            let start = self.pos;
            let clause = self.parse_clause(field)?;
            self.count_clause(&clause.query, start)?;
            items.push((connector, clause));
        }
        if items.is_empty() {
            return match open_paren {
                // `()`: the position is that of `)`.
                Some(_) => Err(self.error(self.pos, EXPECTED_CLAUSE)),
                None => Ok(Query::All),
            };
        }
        Ok(self.combine(items))
    }

    /// Builds the boolean structure of one sequence: AND binds tighter than OR, and
    /// adjacency binds like the default operator.
    fn combine(&self, items: Vec<(Connector, Clause)>) -> Query {
        let default_is_and = self.default_operator == DefaultOperator::And;
        let mut groups: Vec<(Connector, Vec<Clause>)> = Vec::new();
        for (connector, clause) in items {
            let joins_previous = match connector {
                Connector::And => true,
                Connector::Implicit => default_is_and,
                Connector::First | Connector::Or => false,
            };
            match groups.last_mut() {
                Some((_, clauses)) if joins_previous => clauses.push(clause),
                _ => groups.push((connector, vec![clause])),
            }
        }
        let has_explicit_or = groups
            .iter()
            .any(|(connector, _)| *connector == Connector::Or);
        let mut members: Vec<Clause> = groups
            .into_iter()
            .map(|(_, mut clauses)| {
                if clauses.len() == 1 {
                    clauses.pop().unwrap_or(Clause {
                        occur: Occur::Should,
                        query: Query::All,
                    })
                } else {
                    Clause {
                        occur: Occur::Should,
                        query: and_of(clauses.into_iter().map(Clause::into_logical).collect()),
                    }
                }
            })
            .collect();
        if members.len() == 1 {
            return members.pop().map_or(Query::All, Clause::into_logical);
        }
        if has_explicit_or {
            return or_of(members.into_iter().map(Clause::into_logical).collect());
        }
        // Only the default OR joins these members: Lucene's occurrence rules apply.
        let mut required = Vec::new();
        let mut optional = Vec::new();
        let mut prohibited = Vec::new();
        for member in members {
            match member.occur {
                Occur::Must => required.push(member.query),
                Occur::Should => optional.push(member.query),
                Occur::MustNot => prohibited.push(negate(member.query)),
            }
        }
        let mut conjuncts = required;
        if conjuncts.is_empty() && !optional.is_empty() {
            conjuncts.push(or_of(optional));
        }
        conjuncts.extend(prohibited);
        and_of(conjuncts)
    }

    fn parse_clause(&mut self, field: &Option<String>) -> Result<Clause, QueryParseError> {
        self.skip_whitespace();
        let occur = match self.peek() {
            Some('+') => {
                self.pos += 1;
                Occur::Must
            }
            Some('-') => {
                self.pos += 1;
                Occur::MustNot
            }
            _ => match self.operator_at(self.pos) {
                Some((Operator::Not, len)) => {
                    self.pos += len;
                    Occur::MustNot
                }
                _ => Occur::Should,
            },
        };
        let query = self.parse_unary(field)?;
        Ok(Clause { occur, query })
    }

    fn parse_unary(&mut self, field: &Option<String>) -> Result<Query, QueryParseError> {
        // Counted rather than recursed so that a long run of NOTs cannot overflow the stack.
        let mut num_negations = 0usize;
        loop {
            self.skip_whitespace();
            match self.operator_at(self.pos) {
                Some((Operator::Not, len)) => {
                    self.pos += len;
                    num_negations += 1;
                }
                _ => break,
            }
        }
        let query = self.parse_primary(field)?;
        Ok(if num_negations % 2 == 1 {
            negate(query)
        } else {
            query
        })
    }

    fn parse_primary(&mut self, field: &Option<String>) -> Result<Query, QueryParseError> {
        self.skip_whitespace();
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Err(self.error(start, EXPECTED_CLAUSE));
        };
        if self.operator_at(start).is_some() {
            return Err(self.error(start, EXPECTED_CLAUSE));
        }
        match c {
            '(' => self.parse_group(field),
            '"' => {
                let text = self.parse_quoted()?;
                self.skip_boost()?;
                Ok(Query::Phrase {
                    field: field.clone(),
                    text,
                })
            }
            '[' | '{' => match field {
                Some(field) => self.parse_range(field),
                None => Err(self.error(
                    start,
                    "a field name before the range, as in status:[500 TO 599]",
                )),
            },
            '>' | '<' => match field {
                Some(field) => self.parse_comparison(field),
                None => Err(self.error(
                    start,
                    "a field name before the comparison, as in latency:>250",
                )),
            },
            '~' => Err(self.error(
                start,
                "a term or \"(\" (fuzzy and proximity searches with \"~\" are not supported)",
            )),
            ')' | ']' | '}' | ':' | '^' | '+' | '-' => Err(self.error(start, EXPECTED_CLAUSE)),
            _ => {
                let word = self.read_word(false)?;
                if self.peek() == Some(':') {
                    return self.parse_field_expr(&word);
                }
                self.skip_boost()?;
                Ok(term_query(field, &word))
            }
        }
    }

    /// Parses `(…)`; the field applies to the clauses inside that name none.
    fn parse_group(&mut self, field: &Option<String>) -> Result<Query, QueryParseError> {
        let open = self.pos;
        if self.depth >= MAX_GROUP_DEPTH {
            return Err(self.error(open, format!("at most {MAX_GROUP_DEPTH} nested groups")));
        }
        self.pos += 1;
        self.depth += 1;
        let inner = self.parse_sequence(field, Some(open))?;
        self.depth -= 1;
        // parse_sequence only returns Ok inside a group when it stands on `)`.
        debug_assert_eq!(self.peek(), Some(')'));
        self.pos += 1;
        self.skip_boost()?;
        Ok(inner)
    }

    /// Parses what follows `word:`; the parser stands on the colon.
    fn parse_field_expr(&mut self, word: &Word) -> Result<Query, QueryParseError> {
        self.pos += 1;
        if word.is_bare("*") {
            return self.parse_field_value(&None, "*");
        }
        let name = self.field_name(word)?;
        if name == "_exists_" {
            self.skip_whitespace();
            let start = self.pos;
            let target = self.read_word(false)?;
            if target.chars.is_empty() {
                return Err(self.error(start, "a field name after \"_exists_:\""));
            }
            let field = self.field_name(&target)?;
            self.skip_boost()?;
            return Ok(Query::Exists { field });
        }
        self.parse_field_value(&Some(name.clone()), &name)
    }

    fn field_name(&self, word: &Word) -> Result<String, QueryParseError> {
        for wc in &word.chars {
            if wc.escaped || !is_field_char(wc.c) {
                let found = if wc.escaped {
                    format!("escaped \"{}\"", wc.c)
                } else {
                    format!("\"{}\"", wc.c)
                };
                return Err(QueryParseError {
                    position: wc.position,
                    expected: "a field name made of letters, digits, \"_\", \".\", \"-\" or \"@\""
                        .to_string(),
                    found,
                    limit: None,
                });
            }
        }
        Ok(word.resolved())
    }

    fn parse_field_value(
        &mut self,
        field: &Option<String>,
        field_label: &str,
    ) -> Result<Query, QueryParseError> {
        self.skip_whitespace();
        let start = self.pos;
        let expected = format!("a value after \"{field_label}:\"");
        let Some(c) = self.peek() else {
            return Err(self.error(start, expected));
        };
        if self.operator_at(start).is_some() {
            return Err(self.error(start, expected));
        }
        match c {
            '(' => self.parse_group(field),
            '"' => {
                let text = self.parse_quoted()?;
                self.skip_boost()?;
                Ok(Query::Phrase {
                    field: field.clone(),
                    text,
                })
            }
            '[' | '{' | '>' | '<' => match field {
                Some(name) if c == '[' || c == '{' => self.parse_range(name),
                Some(name) => self.parse_comparison(name),
                None => Err(self.error(start, "a field name instead of \"*\" before a range")),
            },
            ')' | ']' | '}' | ':' | '^' | '~' => Err(self.error(start, expected)),
            _ => {
                let word = self.read_word(true)?;
                self.skip_boost()?;
                Ok(term_query(field, &word))
            }
        }
    }

    /// Reads a run of word characters, resolving `\` escapes. A value word may contain `:`.
    fn read_word(&mut self, is_value: bool) -> Result<Word, QueryParseError> {
        let mut chars = Vec::new();
        while let Some(c) = self.peek() {
            if c == '\\' {
                let Some(escaped) = self.peek_at(self.pos + 1) else {
                    return Err(self.error(self.pos + 1, "a character after \"\\\""));
                };
                chars.push(WordChar {
                    c: escaped,
                    escaped: true,
                    position: self.pos,
                });
                self.pos += 2;
                continue;
            }
            if is_word_stop(c) && !(is_value && c == ':') {
                break;
            }
            chars.push(WordChar {
                c,
                escaped: false,
                position: self.pos,
            });
            self.pos += 1;
        }
        Ok(Word { chars })
    }

    /// Reads `"…"`, resolving escapes; the parser stands on the opening quote.
    fn parse_quoted(&mut self) -> Result<String, QueryParseError> {
        let open = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.error(
                        self.pos,
                        format!("a closing quote for the phrase opened at position {open}"),
                    ))
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(text);
                }
                Some('\\') => {
                    let Some(escaped) = self.peek_at(self.pos + 1) else {
                        return Err(self.error(self.pos + 1, "a character after \"\\\""));
                    };
                    text.push(escaped);
                    self.pos += 2;
                }
                Some(c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// Skips a `^2.5` boost: logpool does not score, so a boost changes nothing.
    fn skip_boost(&mut self) -> Result<(), QueryParseError> {
        if self.peek() != Some('^') {
            return Ok(());
        }
        self.pos += 1;
        let digits_start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '.') {
            self.pos += 1;
        }
        if self.pos == digits_start {
            return Err(self.error(self.pos, "a boost number after \"^\""));
        }
        Ok(())
    }

    /// Parses `[a TO b]`, `{a TO b}` or a mix; the parser stands on the opening bracket.
    fn parse_range(&mut self, field: &str) -> Result<Query, QueryParseError> {
        let open = self.pos;
        let lower_inclusive = self.peek() == Some('[');
        self.pos += 1;
        self.skip_whitespace();
        let lower = self.read_range_bound("a lower bound or \"*\"")?;
        if lower.bare && lower.text == "TO" {
            return Err(self.error(lower.position, "a lower bound or \"*\""));
        }
        self.skip_whitespace();
        let to_start = self.pos;
        let to = self.read_range_bound("\"TO\"")?;
        if !(to.bare && to.text == "TO") {
            return Err(self.error(to_start, "\"TO\""));
        }
        self.skip_whitespace();
        let upper = self.read_range_bound("an upper bound or \"*\"")?;
        self.skip_whitespace();
        let upper_inclusive = match self.peek() {
            Some(']') => true,
            Some('}') => false,
            _ => {
                return Err(self.error(
                    self.pos,
                    format!("\"]\" or \"}}\" to close the range opened at position {open}"),
                ))
            }
        };
        self.pos += 1;
        self.skip_boost()?;
        Ok(Query::Range {
            field: field.to_string(),
            lower: range_bound(lower, lower_inclusive),
            upper: range_bound(upper, upper_inclusive),
        })
    }

    fn read_range_bound(&mut self, expected: &str) -> Result<RangeToken, QueryParseError> {
        let start = self.pos;
        match self.peek() {
            Some('"') => Ok(RangeToken {
                text: self.parse_quoted()?,
                bare: false,
                position: start,
            }),
            Some(c) if !is_range_stop(c) => {
                let mut text = String::new();
                let mut bare = true;
                while let Some(c) = self.peek() {
                    if is_range_stop(c) {
                        break;
                    }
                    if c == '\\' {
                        let Some(escaped) = self.peek_at(self.pos + 1) else {
                            return Err(self.error(self.pos + 1, "a character after \"\\\""));
                        };
                        text.push(escaped);
                        bare = false;
                        self.pos += 2;
                    } else {
                        text.push(c);
                        self.pos += 1;
                    }
                }
                Ok(RangeToken {
                    text,
                    bare,
                    position: start,
                })
            }
            _ => Err(self.error(start, expected)),
        }
    }

    /// Parses `>v`, `>=v`, `<v` or `<=v`; the parser stands on `>` or `<`.
    fn parse_comparison(&mut self, field: &str) -> Result<Query, QueryParseError> {
        let is_greater = self.peek() == Some('>');
        self.pos += 1;
        let is_inclusive = self.peek() == Some('=');
        if is_inclusive {
            self.pos += 1;
        }
        let operator = match (is_greater, is_inclusive) {
            (true, false) => ">",
            (true, true) => ">=",
            (false, false) => "<",
            (false, true) => "<=",
        };
        let start = self.pos;
        let bound = match self.peek() {
            Some('"') => bound_of(self.parse_quoted()?, is_inclusive),
            Some(c) if !is_word_stop(c) || c == ':' => {
                let word = self.read_word(true)?;
                if word.is_bare("*") {
                    RangeBound::Unbounded
                } else {
                    bound_of(word.resolved(), is_inclusive)
                }
            }
            _ => return Err(self.error(start, format!("a value right after \"{operator}\""))),
        };
        self.skip_boost()?;
        let (lower, upper) = if is_greater {
            (bound, RangeBound::Unbounded)
        } else {
            (RangeBound::Unbounded, bound)
        };
        Ok(Query::Range {
            field: field.to_string(),
            lower,
            upper,
        })
    }
}

fn range_bound(token: RangeToken, is_inclusive: bool) -> RangeBound {
    if token.bare && token.text == "*" {
        RangeBound::Unbounded
    } else {
        bound_of(token.text, is_inclusive)
    }
}

fn bound_of(value: String, is_inclusive: bool) -> RangeBound {
    if is_inclusive {
        RangeBound::Inclusive(value)
    } else {
        RangeBound::Exclusive(value)
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

    fn field_term(field: &str, value: &str) -> Query {
        Query::Term {
            field: Some(field.to_string()),
            value: value.to_string(),
        }
    }

    fn phrase(text: &str) -> Query {
        Query::Phrase {
            field: None,
            text: text.to_string(),
        }
    }

    fn field_phrase(field: &str, text: &str) -> Query {
        Query::Phrase {
            field: Some(field.to_string()),
            text: text.to_string(),
        }
    }

    fn wildcard(pattern: &str) -> Query {
        Query::Wildcard {
            field: None,
            pattern: pattern.to_string(),
        }
    }

    fn field_wildcard(field: &str, pattern: &str) -> Query {
        Query::Wildcard {
            field: Some(field.to_string()),
            pattern: pattern.to_string(),
        }
    }

    fn range(field: &str, lower: RangeBound, upper: RangeBound) -> Query {
        Query::Range {
            field: field.to_string(),
            lower,
            upper,
        }
    }

    fn inclusive(value: &str) -> RangeBound {
        RangeBound::Inclusive(value.to_string())
    }

    fn exclusive(value: &str) -> RangeBound {
        RangeBound::Exclusive(value.to_string())
    }

    const OPEN: RangeBound = RangeBound::Unbounded;

    fn exists(field: &str) -> Query {
        Query::Exists {
            field: field.to_string(),
        }
    }

    fn and(queries: Vec<Query>) -> Query {
        Query::And(queries)
    }

    fn or(queries: Vec<Query>) -> Query {
        Query::Or(queries)
    }

    fn not(query: Query) -> Query {
        Query::Not(Box::new(query))
    }

    fn parse_and(input: &str) -> Result<Query, QueryParseError> {
        parse_query(input, DefaultOperator::And)
    }

    #[test]
    fn test_parse_query_table_with_default_and() {
        let cases: Vec<(&str, Query)> = vec![
            ("", Query::All),
            ("   \t ", Query::All),
            ("*", Query::All),
            ("*:*", Query::All),
            ("error", term("error")),
            ("Error", term("Error")),
            ("\"connection reset\"", phrase("connection reset")),
            ("message:error", field_term("message", "error")),
            (
                "message:\"disk full\"",
                field_phrase("message", "disk full"),
            ),
            ("http.status:500", field_term("http.status", "500")),
            ("tags.env:prod", field_term("tags.env", "prod")),
            ("état:café", field_term("état", "café")),
            ("AND:x", field_term("AND", "x")),
            ("*:error", term("error")),
            ("status: 500", field_term("status", "500")),
            ("err*", wildcard("err*")),
            ("F?O", wildcard("f?o")),
            ("message:Err*", field_wildcard("message", "err*")),
            ("foo\\*", term("foo*")),
            ("Foo\\*bar*", wildcard("foo\\*bar*")),
            ("F\\?o*", wildcard("f\\?o*")),
            ("name:\\*", field_term("name", "*")),
            ("host:*", exists("host")),
            ("_exists_:user.id", exists("user.id")),
            (
                "status:[500 TO 599]",
                range("status", inclusive("500"), inclusive("599")),
            ),
            (
                "status:{400 TO 500}",
                range("status", exclusive("400"), exclusive("500")),
            ),
            (
                "status:[400 TO 500}",
                range("status", inclusive("400"), exclusive("500")),
            ),
            ("status:[500 TO *]", range("status", inclusive("500"), OPEN)),
            ("status:{* TO 500]", range("status", OPEN, inclusive("500"))),
            (
                "x:[\"a b\" TO \"c\"]",
                range("x", inclusive("a b"), inclusive("c")),
            ),
            (
                "time:[2024-01-01T00:00:00Z TO now]",
                range("time", inclusive("2024-01-01T00:00:00Z"), inclusive("now")),
            ),
            ("latency:>250", range("latency", exclusive("250"), OPEN)),
            ("latency:>=250", range("latency", inclusive("250"), OPEN)),
            ("latency:<10", range("latency", OPEN, exclusive("10"))),
            ("latency:<=10", range("latency", OPEN, inclusive("10"))),
            ("temp:>=-5.5", range("temp", inclusive("-5.5"), OPEN)),
            (
                "@timestamp:>2024-01-01T00:00:00Z",
                range("@timestamp", exclusive("2024-01-01T00:00:00Z"), OPEN),
            ),
            ("a AND b", and(vec![term("a"), term("b")])),
            ("a && b", and(vec![term("a"), term("b")])),
            ("a OR b", or(vec![term("a"), term("b")])),
            ("a || b", or(vec![term("a"), term("b")])),
            ("a b", and(vec![term("a"), term("b")])),
            ("a\tb\nc", and(vec![term("a"), term("b"), term("c")])),
            (
                "a b OR c",
                or(vec![and(vec![term("a"), term("b")]), term("c")]),
            ),
            (
                "a OR b c",
                or(vec![term("a"), and(vec![term("b"), term("c")])]),
            ),
            (
                "a OR b AND c",
                or(vec![term("a"), and(vec![term("b"), term("c")])]),
            ),
            (
                "a || b && c",
                or(vec![term("a"), and(vec![term("b"), term("c")])]),
            ),
            ("NOT a", not(term("a"))),
            ("!a", not(term("a"))),
            ("-a", not(term("a"))),
            ("+a", term("a")),
            ("NOT NOT a", term("a")),
            ("a -b", and(vec![term("a"), not(term("b"))])),
            ("a AND NOT b", and(vec![term("a"), not(term("b"))])),
            ("a NOT b", and(vec![term("a"), not(term("b"))])),
            ("NOT a AND b", and(vec![not(term("a")), term("b")])),
            ("NOT a OR b", or(vec![not(term("a")), term("b")])),
            ("NOT (a OR b)", not(or(vec![term("a"), term("b")]))),
            ("* AND -debug", not(term("debug"))),
            ("-a -b", and(vec![not(term("a")), not(term("b"))])),
            (
                "(a OR b) AND c",
                and(vec![or(vec![term("a"), term("b")]), term("c")]),
            ),
            ("((a))", term("a")),
            (
                "(a AND b) AND (c d)",
                and(vec![term("a"), term("b"), term("c"), term("d")]),
            ),
            ("a OR (b OR c)", or(vec![term("a"), term("b"), term("c")])),
            (
                "a AND (b OR NOT c)",
                and(vec![term("a"), or(vec![term("b"), not(term("c"))])]),
            ),
            (
                "status:(500 OR 503)",
                or(vec![
                    field_term("status", "500"),
                    field_term("status", "503"),
                ]),
            ),
            (
                "level:(error -debug)",
                and(vec![
                    field_term("level", "error"),
                    not(field_term("level", "debug")),
                ]),
            ),
            (
                "status:([500 TO 599] OR >=900 OR 404 OR code:x)",
                or(vec![
                    range("status", inclusive("500"), inclusive("599")),
                    range("status", inclusive("900"), OPEN),
                    field_term("status", "404"),
                    field_term("code", "x"),
                ]),
            ),
            (
                "msg:(\"disk full\" err*)",
                and(vec![
                    field_phrase("msg", "disk full"),
                    field_wildcard("msg", "err*"),
                ]),
            ),
            ("foo-bar", term("foo-bar")),
            ("10.0.0.1", term("10.0.0.1")),
            ("a/b", term("a/b")),
            ("c++", term("c++")),
            (
                "and or not",
                and(vec![term("and"), term("or"), term("not")]),
            ),
            ("ANDROID NOTE", and(vec![term("ANDROID"), term("NOTE")])),
            ("foo\\:bar", term("foo:bar")),
            ("foo\\ bar", term("foo bar")),
            ("\\-foo", term("-foo")),
            ("\"say \\\"hi\\\"\"", phrase("say \"hi\"")),
            ("\"\"", phrase("")),
            ("temp:-5", field_term("temp", "-5")),
            ("host:db:5432", field_term("host", "db:5432")),
            ("url:\"http://x/y\"", field_phrase("url", "http://x/y")),
            ("message:\"a b\"^2", field_phrase("message", "a b")),
            ("a^2 b^0.5", and(vec![term("a"), term("b")])),
            (
                "error -\"health check\"",
                and(vec![term("error"), not(phrase("health check"))]),
            ),
            ("a(b)", and(vec![term("a"), term("b")])),
            (
                "a AND(b OR c)",
                and(vec![term("a"), or(vec![term("b"), term("c")])]),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_and(input), Ok(expected), "input: {input:?}");
        }
    }

    #[test]
    fn test_parse_query_table_with_default_or() {
        let cases: Vec<(&str, Query)> = vec![
            ("a b", or(vec![term("a"), term("b")])),
            (
                "a b AND c",
                or(vec![term("a"), and(vec![term("b"), term("c")])]),
            ),
            (
                "quick brown +fox -news",
                and(vec![term("fox"), not(term("news"))]),
            ),
            (
                "error -healthcheck",
                and(vec![term("error"), not(term("healthcheck"))]),
            ),
            (
                "error NOT healthcheck",
                and(vec![term("error"), not(term("healthcheck"))]),
            ),
            (
                "a b -c",
                and(vec![or(vec![term("a"), term("b")]), not(term("c"))]),
            ),
            ("a +b", term("b")),
            ("-a -b", and(vec![not(term("a")), not(term("b"))])),
            ("-a", not(term("a"))),
            ("a OR NOT b", or(vec![term("a"), not(term("b"))])),
            ("a OR -b", or(vec![term("a"), not(term("b"))])),
            ("a (NOT b)", or(vec![term("a"), not(term("b"))])),
            (
                "status:(500 503)",
                or(vec![
                    field_term("status", "500"),
                    field_term("status", "503"),
                ]),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse_query(input, DefaultOperator::Or),
                Ok(expected),
                "input: {input:?}"
            );
        }
    }

    #[test]
    fn test_parse_query_rejects_bad_input_with_position() {
        let deep = format!("{}a", "(".repeat(MAX_GROUP_DEPTH + 1));
        let cases: Vec<(&str, usize)> = vec![
            ("(", 1),
            ("(a", 2),
            ("a)", 1),
            ("(a))", 3),
            ("()", 1),
            ("\"abc", 4),
            ("a \"b", 4),
            ("a AND", 5),
            ("a AND )", 6),
            ("OR b", 0),
            ("&& b", 0),
            ("a OR OR b", 5),
            ("NOT", 3),
            ("-", 1),
            ("a AND NOT", 9),
            ("status:", 7),
            ("status:   ", 10),
            ("(status:)", 8),
            ("level:AND", 6),
            ("status:[500 599]", 12),
            ("status:[500 TO 599", 18),
            ("status:[500 TO]", 14),
            ("status:{1 TO 2)", 14),
            ("status:[ TO 5]", 9),
            ("status:[500 to 599]", 12),
            ("*:[1 TO 2]", 2),
            ("[1 TO 2]", 0),
            (">5", 0),
            ("latency:>", 9),
            ("latency:> 5", 9),
            ("foo\\", 4),
            ("foo~2", 3),
            ("\"a b\"~2", 5),
            ("a/b:c", 1),
            ("_exists_:", 9),
            ("a ^2", 2),
            ("a^x", 2),
            ("a]", 1),
            (":a", 0),
            (&deep, MAX_GROUP_DEPTH),
        ];
        for (input, position) in cases {
            let error = parse_and(input).expect_err(input);
            assert_eq!(error.position, position, "input: {input:?}, error: {error}");
            assert!(!error.expected.is_empty(), "input: {input:?}");
        }
    }

    #[test]
    fn test_parse_error_message_names_position_expectation_and_finding() {
        let error = parse_and("error OR").expect_err("dangling OR");
        assert_eq!(
            error.to_string(),
            "at position 8: expected a term or \"(\", found end of query"
        );
        let error = parse_and("(a OR b").expect_err("unclosed group");
        assert_eq!(
            error.to_string(),
            "at position 7: expected \")\" to close the \"(\" at position 0, found end of query"
        );
        let error = parse_and("a OR OR b").expect_err("double operator");
        assert_eq!(error.found, "\"OR\"");
        let error = parse_and("status:[500 599]").expect_err("missing TO");
        assert_eq!(error.expected, "\"TO\"");
        assert_eq!(error.found, "\"599\"");
    }

    #[test]
    fn test_default_operator_deserializes_lowercase_and_uppercase() {
        let parsed: DefaultOperator = serde_json::from_str("\"or\"").expect("or");
        assert_eq!(parsed, DefaultOperator::Or);
        let parsed: DefaultOperator = serde_json::from_str("\"AND\"").expect("AND");
        assert_eq!(parsed, DefaultOperator::And);
        assert_eq!(DefaultOperator::default(), DefaultOperator::And);
    }

    #[test]
    fn test_long_not_chains_do_not_recurse() {
        let input = format!("{}a", "NOT ".repeat(10_001));
        assert_eq!(parse_and(&input), Ok(not(term("a"))));
    }
}
