//! Phrases over the raw line, checked against the stored record.
//!
//! The raw line (`message`) is indexed without positions, the way Elasticsearch's
//! own log templates map it (`match_only_text`): positions were 0.11 of the raw
//! bytes on disk and a position write per word on the indexing thread (BENCHMARKS.md).
//! A phrase over the line first finds the records that hold all of its words, from
//! the postings, then reads each candidate's stored line and keeps the records
//! whose words include the phrase's as a run. Selective phrases cost about what
//! they did; a phrase of common words reads many stored records and is slower.

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

/// Records whose raw line holds `words` as a run of its words.
#[derive(Debug, Clone)]
struct LinePhraseQuery {
    /// One term per word, under the line's path.
    terms: Vec<Term>,
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
        Box::new(LinePhraseQuery {
            terms,
            words: words.into(),
            source: schema.source,
        })
    } else {
        Box::new(PhraseQuery::new(terms))
    }
}

impl Query for LinePhraseQuery {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let all_words = BooleanQuery::new(
            self.terms
                .iter()
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
        for term in &self.terms {
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
