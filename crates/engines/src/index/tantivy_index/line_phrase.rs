//! Phrases over the raw line: word pairs from the index, the rest checked against
//! the stored record.
//!
//! The raw line (`message`) is indexed without positions, the way Elasticsearch's
//! own log templates map it (`match_only_text`): positions were 0.11 of the raw
//! bytes on disk and a position write per word on the indexing thread (BENCHMARKS.md).
//! Instead, every two adjacent words of the line that hold no digit are one more
//! term, `"{first} {second}"`, of a field of their own ([`LINE_PAIRS`]): the words
//! of log templates pair up into few distinct terms, while ids, numbers and
//! addresses, which would make a new term per record, are left out.
//!
//! A two-word phrase whose words hold no digit is then its pair's postings: exact,
//! with no stored line read. Any other phrase over the line first finds the records
//! that hold all of its words and all of its indexed pairs, from the postings, then
//! reads each candidate's stored line and keeps the records whose words include the
//! phrase's as a run.
//!
//! [`LINE_PAIRS`]: super::schema::LINE_PAIRS

use std::sync::Arc;

use logpool_core::query::text_contains_words;
use tantivy::query::{
    BooleanQuery, EnableScoring, Explanation, Occur, PhraseQuery, Query, Scorer, TermQuery, Weight,
};
use tantivy::schema::document::Value;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::store::StoreReader;
use tantivy::{DocId, DocSet, Score, SegmentReader, TantivyDocument, Term, TERMINATED};

use super::schema::{LogSchema, DOCSTORE_CACHE_BLOCKS, MESSAGE};

/// Whether a pair of words with `word` in it is indexed: a word with a digit is
/// mostly a number or an id, and pairs with it would be new terms in nearly every
/// record.
fn pairs_with(word: &str) -> bool {
    !word.bytes().any(|byte| byte.is_ascii_digit())
}

/// The indexed text of two adjacent words (lowercase tokens; a token never holds a
/// space).
fn pair_text(first: &str, second: &str) -> String {
    let mut text = String::with_capacity(first.len() + 1 + second.len());
    text.push_str(first);
    text.push(' ');
    text.push_str(second);
    text
}

/// The word pairs of `line` that are indexed (see the module's comment), as
/// [`tokenize`] splits it, so that a pair is indexed exactly when the phrase check
/// on the stored line would find its two words as a run.
///
/// [`tokenize`]: logpool_core::query::tokenize
pub(crate) fn line_pairs(line: &str) -> impl Iterator<Item = String> {
    let words = logpool_core::query::tokenize(line);
    (1..words.len()).filter_map(move |second| {
        let (a, b) = (&words[second - 1], &words[second]);
        (pairs_with(a) && pairs_with(b)).then(|| pair_text(a, b))
    })
}

/// Records whose raw line holds `words` as a run of its words.
#[derive(Debug, Clone)]
struct LinePhraseQuery {
    /// One term per word, under the line's path.
    terms: Vec<Term>,
    /// The indexed pairs of adjacent words.
    pairs: Vec<Term>,
    /// The phrase's words, as `logpool_core::query::tokenize` splits them.
    words: Arc<[String]>,
    /// The stored-source field.
    source: Field,
}

/// The phrase `words` (one term each in `terms`) under JSON path `path`: tantivy's
/// phrase query on positions, or on the raw line, which has none, the check on the
/// stored line. Every phrase under a path is built here, by the engine and by the
/// benchmark's raw side alike.
pub(crate) fn phrase_under_path(
    schema: &LogSchema,
    path: &str,
    terms: Vec<Term>,
    words: &[String],
) -> Box<dyn Query> {
    if path == MESSAGE {
        let pairs: Vec<Term> = words
            .windows(2)
            .filter(|pair| pairs_with(&pair[0]) && pairs_with(&pair[1]))
            .map(|pair| Term::from_field_text(schema.line_pairs, &pair_text(&pair[0], &pair[1])))
            .collect();
        match (words, pairs.as_slice()) {
            // The pair's postings are the phrase's records.
            ([_, _], [pair]) => Box::new(TermQuery::new(pair.clone(), IndexRecordOption::Basic)),
            _ => Box::new(LinePhraseQuery {
                terms,
                pairs,
                words: words.into(),
                source: schema.source,
            }),
        }
    } else {
        Box::new(PhraseQuery::new(terms))
    }
}

/// The phrase `words` on the raw line the way it was answered before word pairs
/// were indexed: every record with all the words, checked on its stored line. The
/// benchmark times it beside [`phrase_under_path`] on the same index.
#[cfg(feature = "bench-baseline")]
pub(crate) fn line_phrase_by_stored_lines(
    schema: &LogSchema,
    terms: Vec<Term>,
    words: &[String],
) -> Box<dyn Query> {
    Box::new(LinePhraseQuery {
        terms,
        pairs: Vec::new(),
        words: words.into(),
        source: schema.source,
    })
}

impl Query for LinePhraseQuery {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let all_words = BooleanQuery::new(
            self.terms
                .iter()
                .chain(&self.pairs)
                .map(|term| {
                    let query: Box<dyn Query> =
                        Box::new(TermQuery::new(term.clone(), IndexRecordOption::Basic));
                    (Occur::Must, query)
                })
                .collect(),
        );
        Ok(Box::new(LinePhraseWeight {
            candidates: all_words.weight(enable_scoring)?,
            words: self.words.clone(),
            source: self.source,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for term in self.terms.iter().chain(&self.pairs) {
            visitor(term, false);
        }
    }
}

struct LinePhraseWeight {
    candidates: Box<dyn Weight>,
    words: Arc<[String]>,
    source: Field,
}

impl Weight for LinePhraseWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut scorer = LinePhraseScorer {
            candidates: self.candidates.scorer(reader, boost)?,
            store: reader.get_store_reader(DOCSTORE_CACHE_BLOCKS)?,
            words: self.words.clone(),
            source: self.source,
        };
        scorer.skip_to_match();
        Ok(Box::new(scorer))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} does not match the phrase"
            )));
        }
        Ok(Explanation::new(
            "all words in the postings, the phrase in the stored line",
            scorer.score(),
        ))
    }
}

/// The candidates (records with every word) that the stored line confirms.
struct LinePhraseScorer {
    candidates: Box<dyn Scorer>,
    store: StoreReader,
    words: Arc<[String]>,
    source: Field,
}

impl LinePhraseScorer {
    /// Moves past candidates whose line does not hold the phrase; returns the doc.
    fn skip_to_match(&mut self) -> DocId {
        loop {
            let doc = self.candidates.doc();
            if doc == TERMINATED || self.line_has_phrase(doc) {
                return doc;
            }
            self.candidates.advance();
        }
    }

    fn line_has_phrase(&self, doc: DocId) -> bool {
        let document = match self.store.get::<TantivyDocument>(doc) {
            Ok(document) => document,
            Err(error) => {
                // A scorer cannot fail; a record that cannot be read is left out, as
                // it would be from the hits.
                tracing::warn!(%error, doc, "cannot read a stored record to check a phrase");
                return false;
            }
        };
        let Some(source) = document
            .get_first(self.source)
            .and_then(|value| value.as_str())
        else {
            return false;
        };
        // A line that is not text has no words under the line's path, so it is never
        // a candidate; failing to read it as text is a non-match.
        match serde_json::from_str::<StoredLine<'_>>(source) {
            Ok(StoredLine {
                fields: LineField {
                    message: Some(line),
                },
            }) => text_contains_words(&line, &self.words),
            _ => false,
        }
    }
}

/// The part of the stored source a phrase check reads; the rest is skipped.
#[derive(serde::Deserialize)]
struct StoredLine<'a> {
    #[serde(borrow)]
    fields: LineField<'a>,
}

/// The record field of the raw line ([`MESSAGE`]), borrowed from the
/// stored JSON unless it has escapes.
#[derive(serde::Deserialize)]
struct LineField<'a> {
    #[serde(borrow, default)]
    message: Option<std::borrow::Cow<'a, str>>,
}

impl DocSet for LinePhraseScorer {
    fn advance(&mut self) -> DocId {
        self.candidates.advance();
        self.skip_to_match()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.candidates.doc() >= target {
            return self.candidates.doc();
        }
        self.candidates.seek(target);
        self.skip_to_match()
    }

    fn doc(&self) -> DocId {
        self.candidates.doc()
    }

    fn size_hint(&self) -> u32 {
        self.candidates.size_hint()
    }
}

impl Scorer for LinePhraseScorer {
    fn score(&mut self) -> Score {
        self.candidates.score()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_pairs_are_adjacent_tokens_without_digits() {
        let pairs: Vec<String> = line_pairs("GET /api/v1 Connection-Reset by 42 peer").collect();
        assert_eq!(pairs, ["get api", "connection reset", "reset by"]);
        assert_eq!(line_pairs("one").count(), 0);
    }
}
