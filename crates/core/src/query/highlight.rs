//! Marks the words of a record that a query matched, as `<em>` fragments.
//!
//! Highlighting works on the hit's fields, not inside an engine, so both index
//! engines mark exactly the same words, and the rules are those of
//! [`super::eval`]: a word is marked when a positive term, phrase or wildcard of the
//! query (one not under a `NOT`) matches it through [`super::tokenize`], in the field
//! the query names or, for a bare term, in any field. A phrase marks its whole run.
//! Only string fields are highlighted; numbers, bools and time are exact values.
//!
//! The text is HTML-escaped before the marks are added, so a fragment is safe to show
//! as HTML. A value longer than [`WHOLE_VALUE_CHARS`] is cut into fragments of about
//! [`FRAGMENT_CONTEXT_CHARS`] characters around each mark, at most
//! [`MAX_FRAGMENTS`] per field.

use std::collections::BTreeMap;
use std::ops::Range;

use super::ast::Query;
use super::eval::{compile_pattern, wildcard_matches, PatternPart};
use super::{is_time_field, MAX_TOKEN_BYTES};

/// Values up to this many characters are returned whole.
pub const WHOLE_VALUE_CHARS: usize = 300;
/// Characters kept on each side of a mark in a long value.
pub const FRAGMENT_CONTEXT_CHARS: usize = 60;
/// Fragments per field at most.
pub const MAX_FRAGMENTS: usize = 5;

/// What a positive clause of the query looks for.
#[derive(Debug)]
enum Needle {
    /// Consecutive tokens (a term is a phrase of one token).
    Tokens(Vec<String>),
    /// One token matching a wildcard pattern.
    Pattern(Vec<PatternPart>),
}

/// The positive text clauses of a query, ready to mark any number of hits.
#[derive(Debug, Default)]
pub struct Highlighter {
    /// (field or `None` for every field, needle)
    needles: Vec<(Option<String>, Needle)>,
}

impl Highlighter {
    /// Collects the positive terms, phrases and wildcards of `query`.
    pub fn new(query: &Query) -> Highlighter {
        let mut highlighter = Highlighter::default();
        highlighter.collect(query, true);
        highlighter
    }

    fn collect(&mut self, query: &Query, positive: bool) {
        match query {
            Query::Term { field, value } | Query::Phrase { field, text: value } => {
                let tokens = super::tokenize(value);
                if positive && !tokens.is_empty() && !field.as_deref().is_some_and(is_time_field) {
                    self.needles.push((field.clone(), Needle::Tokens(tokens)));
                }
            }
            Query::Wildcard { field, pattern } => {
                if positive && !field.as_deref().is_some_and(is_time_field) {
                    self.needles
                        .push((field.clone(), Needle::Pattern(compile_pattern(pattern))));
                }
            }
            Query::And(children) | Query::Or(children) => {
                for child in children {
                    self.collect(child, positive);
                }
            }
            Query::Not(inner) => self.collect(inner, !positive),
            Query::All | Query::Range { .. } | Query::Exists { .. } => {}
        }
    }

    /// Returns whether the query has anything to mark.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Returns the marked fragments of every string field with a match, by field name.
    pub fn highlight(
        &self,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> BTreeMap<String, Vec<String>> {
        let mut marked = BTreeMap::new();
        if self.is_empty() {
            return marked;
        }
        for (name, value) in fields {
            let Some(text) = value.as_str() else {
                continue;
            };
            let ranges = self.marks(name, text);
            if !ranges.is_empty() {
                marked.insert(name.clone(), fragments(text, &ranges));
            }
        }
        marked
    }

    /// Byte ranges of `text` to mark, sorted and merged.
    fn marks(&self, field: &str, text: &str) -> Vec<Range<usize>> {
        let tokens = tokens_with_offsets(text);
        let mut ranges: Vec<Range<usize>> = Vec::new();
        for (needle_field, needle) in &self.needles {
            if needle_field
                .as_deref()
                .is_some_and(|wanted| wanted != field)
            {
                continue;
            }
            match needle {
                Needle::Tokens(words) => {
                    for (start, window) in tokens.windows(words.len()).enumerate() {
                        if window
                            .iter()
                            .zip(words)
                            .all(|((_, token), word)| token == word)
                        {
                            let first = &tokens[start].0;
                            let last = &tokens[start + words.len() - 1].0;
                            ranges.push(first.start..last.end);
                        }
                    }
                }
                Needle::Pattern(pattern) => ranges.extend(
                    tokens
                        .iter()
                        .filter(|(_, token)| wildcard_matches(pattern, token))
                        .map(|(range, _)| range.clone()),
                ),
            }
        }
        ranges.sort_by_key(|range| (range.start, range.end));
        let mut merged: Vec<Range<usize>> = Vec::new();
        for range in ranges {
            match merged.last_mut() {
                Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
                _ => merged.push(range),
            }
        }
        merged
    }
}

/// The tokens of [`super::tokenize`] with their byte ranges in `text`.
fn tokens_with_offsets(text: &str) -> Vec<(Range<usize>, String)> {
    let mut tokens = Vec::new();
    let mut start: Option<usize> = None;
    let push = |range: Range<usize>, tokens: &mut Vec<(Range<usize>, String)>| {
        let token = &text[range.clone()];
        if token.len() <= MAX_TOKEN_BYTES {
            tokens.push((range, token.to_lowercase()));
        }
    };
    for (index, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(index),
            (false, Some(first)) => {
                push(first..index, &mut tokens);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(first) = start {
        push(first..text.len(), &mut tokens);
    }
    tokens
}

/// The marked text, whole when short, else fragments around the marks.
fn fragments(text: &str, marks: &[Range<usize>]) -> Vec<String> {
    if text.chars().count() <= WHOLE_VALUE_CHARS {
        return vec![mark(text, 0..text.len(), marks)];
    }
    let mut windows: Vec<Range<usize>> = Vec::new();
    for range in marks {
        let start = back_chars(text, range.start, FRAGMENT_CONTEXT_CHARS);
        let end = forward_chars(text, range.end, FRAGMENT_CONTEXT_CHARS);
        match windows.last_mut() {
            Some(last) if start <= last.end => last.end = last.end.max(end),
            _ => windows.push(start..end),
        }
    }
    windows
        .into_iter()
        .take(MAX_FRAGMENTS)
        .map(|window| mark(text, window, marks))
        .collect()
}

/// `text[window]`, HTML-escaped, with the marks inside the window wrapped in `<em>`.
fn mark(text: &str, window: Range<usize>, marks: &[Range<usize>]) -> String {
    let mut out = String::new();
    let mut at = window.start;
    for range in marks
        .iter()
        .filter(|range| range.start >= window.start && range.end <= window.end)
    {
        escape_into(&mut out, &text[at..range.start]);
        out.push_str("<em>");
        escape_into(&mut out, &text[range.clone()]);
        out.push_str("</em>");
        at = range.end;
    }
    escape_into(&mut out, &text[at..window.end]);
    out
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            other => out.push(other),
        }
    }
}

fn back_chars(text: &str, from: usize, count: usize) -> usize {
    text[..from]
        .char_indices()
        .rev()
        .nth(count.saturating_sub(1))
        .map_or(0, |(index, _)| index)
}

fn forward_chars(text: &str, from: usize, count: usize) -> usize {
    text[from..]
        .char_indices()
        .nth(count)
        .map_or(text.len(), |(index, _)| from + index)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::query::{parse_query, DefaultOperator};

    fn highlight(query: &str, fields: serde_json::Value) -> BTreeMap<String, Vec<String>> {
        let query = parse_query(query, DefaultOperator::And).expect(query);
        let fields = fields.as_object().cloned().expect("object");
        Highlighter::new(&query).highlight(&fields)
    }

    #[test]
    fn test_highlight_marks_terms_phrases_and_wildcards() {
        let fields =
            json!({"message": "Connection reset by peer <x>", "level": "ERROR", "status": 500});
        let marked = highlight("\"reset by\" AND level:err* AND status:500", fields.clone());
        assert_eq!(
            marked["message"],
            ["Connection <em>reset by</em> peer &lt;x&gt;"]
        );
        assert_eq!(marked["level"], ["<em>ERROR</em>"]);
        assert!(!marked.contains_key("status"));
        // A named field limits the marks; a negated clause marks nothing.
        let marked = highlight("message:error AND NOT peer", fields.clone());
        assert!(marked.is_empty(), "{marked:?}");
        assert!(highlight("status:[1 TO 600]", fields).is_empty());
    }

    #[test]
    fn test_highlight_cuts_long_values_into_fragments() {
        let text = format!("{} needle {}", "a ".repeat(200), "b ".repeat(200));
        let marked = highlight("needle", json!({ "message": text }));
        let fragments = &marked["message"];
        assert_eq!(fragments.len(), 1);
        assert!(fragments[0].contains("<em>needle</em>"));
        assert!(fragments[0].chars().count() < 2 * FRAGMENT_CONTEXT_CHARS + 20);
    }
}
