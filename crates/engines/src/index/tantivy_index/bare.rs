//! One tantivy index written with the engine's schema, document mapping and writer
//! settings, without the store around it (no days, no readers, no queue). The
//! benchmark indexes the same records through it as the baseline that shows what
//! the rest of the pipeline costs.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;

use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::{AggContextParams, AggregationCollector, AggregationLimitsGuard};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, Occur, PhraseQuery, Query, RangeQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{Index, IndexWriter, Order, TantivyDocument, Term};

use super::compile::number_term;
use super::line_phrase::phrase_under_path;
use super::schema::{fast_field_tokenizers, index_settings, LogSchema, FIELDS, FULL_TEXT, TIME};
use super::{tantivy_error, TantivyIndexConfig};
use crate::index::{IndexDoc, IndexError, IndexResult};

/// A bare index writer; see the module docs.
pub struct BareIndexWriter {
    schema: LogSchema,
    index: Index,
    writer: IndexWriter,
}

/// Bytes that one part of the index (`terms`, `postings`, `positions`, `fast`,
/// `fieldnorms`, `store`) takes for one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpace {
    /// The part of the index.
    pub part: &'static str,
    /// The field (for the JSON field, as tantivy names its paths).
    pub field: String,
    /// Bytes over all segments.
    pub bytes: u64,
}

impl std::fmt::Debug for BareIndexWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BareIndexWriter").finish_non_exhaustive()
    }
}

impl BareIndexWriter {
    /// Creates an empty index in `dir` with one writer thread and the configured
    /// memory budget, as the engine opens a partition writer.
    ///
    /// # Errors
    /// Fails when the directory cannot hold a new index.
    pub fn create(dir: &Path, config: &TantivyIndexConfig) -> IndexResult<BareIndexWriter> {
        std::fs::create_dir_all(dir)?;
        let schema = LogSchema::new();
        let index = Index::builder()
            .schema(schema.schema.clone())
            .settings(index_settings())
            .fast_field_tokenizers(fast_field_tokenizers())
            .create_in_dir(dir)
            .map_err(tantivy_error)?;
        let (threads, memory) = config.writer_budget();
        let writer = index
            .writer_with_num_threads(threads, memory)
            .map_err(tantivy_error)?;
        writer.set_merge_policy(Box::new(super::schema::merge_policy()));
        Ok(BareIndexWriter {
            schema,
            index,
            writer,
        })
    }

    /// Stages a batch of documents, handed to the indexing thread at once as the
    /// engine's writes are.
    ///
    /// # Errors
    /// Fails when the writer has failed.
    pub fn add_batch(&mut self, docs: &[IndexDoc]) -> IndexResult<()> {
        // In arrival order: the engine's grouping by stream (`stream_order`) is
        // logpool's own work, which the raw engine does not do.
        let documents = docs.iter().map(|doc| self.schema.document(doc));
        super::staging::stage(&self.writer, Vec::new(), documents).map_err(tantivy_error)?;
        Ok(())
    }

    /// Commits what is staged.
    ///
    /// # Errors
    /// Fails when the commit fails.
    pub fn commit(&mut self) -> IndexResult<()> {
        self.writer.commit().map_err(tantivy_error)?;
        Ok(())
    }

    /// Commits, waits for background merges, and returns where the bytes on disk
    /// went, largest first.
    ///
    /// # Errors
    /// Fails when the commit, a merge or reading the segments fails.
    pub fn finish(mut self) -> IndexResult<Vec<FieldSpace>> {
        self.commit()?;
        let BareIndexWriter { index, writer, .. } = self;
        writer.wait_merging_threads().map_err(tantivy_error)?;
        let mut totals = BTreeMap::new();
        add_space_by_field(&index, &mut totals)?;
        Ok(largest_first(totals))
    }
}

/// Where the bytes of the partition indexes under `dir` (an engine's index directory,
/// or one partition) go, largest first: tantivy's space usage per part and field,
/// summed over every partition. Read-only; for the benchmark's report.
///
/// # Errors
/// Fails when a directory cannot be listed or an index cannot be opened.
pub fn space_by_field(dir: &Path) -> IndexResult<Vec<FieldSpace>> {
    let mut totals = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if dir.join("meta.json").exists() {
            let index = Index::open_in_dir(&dir).map_err(tantivy_error)?;
            add_space_by_field(&index, &mut totals)?;
            continue;
        }
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            }
        }
    }
    Ok(largest_first(totals))
}

type SpaceTotals = BTreeMap<(&'static str, String), u64>;

fn add_space_by_field(index: &Index, totals: &mut SpaceTotals) -> IndexResult<()> {
    let usage = index
        .reader()
        .map_err(tantivy_error)?
        .searcher()
        .space_usage()?;
    for segment in usage.segments() {
        let parts = [
            ("terms", segment.termdict()),
            ("postings", segment.postings()),
            ("positions", segment.positions()),
            ("fast", segment.fast_fields()),
            ("fieldnorms", segment.fieldnorms()),
        ];
        for (part, per_field) in parts {
            for field in per_field.fields() {
                *totals
                    .entry((part, field.field_name().to_string()))
                    .or_default() += field.total().get_bytes();
            }
        }
        // The store holds one field, the whole hit.
        *totals
            .entry(("store", super::schema::SOURCE.to_string()))
            .or_default() += segment.store().total().get_bytes();
    }
    Ok(())
}

fn largest_first(totals: SpaceTotals) -> Vec<FieldSpace> {
    let mut spaces: Vec<FieldSpace> = totals
        .into_iter()
        .map(|((part, field), bytes)| FieldSpace { part, field, bytes })
        .collect();
    spaces.sort_by_key(|space| std::cmp::Reverse(space.bytes));
    spaces
}

/// One partition index opened read-only, queried with hand-built tantivy queries and
/// collectors: the raw engine that the benchmark compares logpool's search API with.
/// Each method does the work one API call needs (match, count, order by time, fetch
/// the stored hits; or aggregate) and nothing of the service around it.
pub struct BareIndexReader {
    schema: LogSchema,
    searcher: tantivy::Searcher,
    /// Paths of `fields` that hold text in some segment, read from tantivy's own
    /// segment metadata (not from the engine's learned types).
    text_paths: Vec<String>,
}

impl std::fmt::Debug for BareIndexReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BareIndexReader").finish_non_exhaustive()
    }
}

/// What a raw search found: all matches counted, and the newest ones fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarePage {
    /// Matching documents.
    pub total: u64,
    /// Stored hits read (at most the limit).
    pub fetched: usize,
}

impl BareIndexReader {
    /// Opens the index in `dir` (one pool day) for reading; it is never written.
    ///
    /// # Errors
    /// Fails when `dir` holds no index, or one of another schema.
    pub fn open(dir: &Path) -> IndexResult<BareIndexReader> {
        let index = Index::open_in_dir(dir).map_err(tantivy_error)?;
        let schema = LogSchema::new();
        // The server refuses such an index too, with a less helpful message.
        if index.schema() != schema.schema {
            return Err(IndexError::Internal(format!(
                "the index in {} was written with another schema (by another version)",
                dir.display()
            )));
        }
        // The engine's document-store cache, so that fetching hits costs the same
        // block decompression on both sides of a comparison.
        let reader = index
            .reader_builder()
            .reload_policy(tantivy::ReloadPolicy::Manual)
            .doc_store_cache_num_blocks(super::schema::DOCSTORE_CACHE_BLOCKS)
            .try_into()
            .map_err(tantivy_error)?;
        let searcher = reader.searcher();
        let prefixes = [format!("{FIELDS}."), format!("{FULL_TEXT}.")];
        let mut text_paths = std::collections::BTreeSet::new();
        for segment in searcher.segment_readers() {
            for field in segment.fields_metadata().map_err(tantivy_error)? {
                if field.typ != tantivy::schema::Type::Str || field.postings_size.is_none() {
                    continue;
                }
                if let Some(path) = prefixes
                    .iter()
                    .find_map(|prefix| field.field_name.strip_prefix(prefix.as_str()))
                {
                    text_paths.insert(path.to_string());
                }
            }
        }
        Ok(BareIndexReader {
            schema,
            searcher,
            text_paths: text_paths.into_iter().collect(),
        })
    }

    /// Documents in the index.
    pub fn num_docs(&self) -> u64 {
        self.searcher.num_docs()
    }

    /// Segments of the index (their number drives the cost of every query).
    pub fn num_segments(&self) -> usize {
        self.searcher.segment_readers().len()
    }

    fn time_range(&self, from_ns: i64, to_ns: i64) -> Box<dyn Query> {
        Box::new(RangeQuery::new(
            Bound::Included(Term::from_field_i64(self.schema.time, from_ns)),
            Bound::Excluded(Term::from_field_i64(self.schema.time, to_ns)),
        ))
    }

    fn path_term(&self, path: &str, word: &str) -> Term {
        let mut term = Term::from_field_json_path(self.schema.json_field_of(path), path, true);
        term.append_type_and_str(word);
        term
    }

    /// Bare words (lower-case tokens) as the schema lays text out: a term or phrase
    /// over `_all` (values that are not text) or under any text path of `fields`.
    fn text(&self, words: &[&str]) -> Box<dyn Query> {
        let term = |term: Term| -> Box<dyn Query> {
            Box::new(TermQuery::new(term, IndexRecordOption::Basic))
        };
        let all_text = |word: &str| Term::from_field_text(self.schema.all_text, word);
        let mut alternatives = vec![match words {
            [word] => term(all_text(word)),
            _ => Box::new(PhraseQuery::new(
                words.iter().map(|word| all_text(word)).collect(),
            )),
        }];
        let owned: Vec<String> = words.iter().map(|word| word.to_string()).collect();
        for path in &self.text_paths {
            alternatives.push(match words {
                [word] => term(self.path_term(path, word)),
                _ => {
                    let terms = words
                        .iter()
                        .map(|word| self.path_term(path, word))
                        .collect();
                    phrase_under_path(&self.schema, path, terms, &owned)
                }
            });
        }
        Box::new(BooleanQuery::new(
            alternatives
                .into_iter()
                .map(|query| (Occur::Should, query))
                .collect(),
        ))
    }

    /// Records in `[from_ns, to_ns)` holding `words` (one word: a term; more: a
    /// phrase) in any field: counted, the `limit` newest fetched.
    ///
    /// # Errors
    /// Fails when tantivy fails to search or read a stored hit.
    pub fn search_text(
        &self,
        words: &[&str],
        from_ns: i64,
        to_ns: i64,
        limit: usize,
    ) -> IndexResult<BarePage> {
        if words.is_empty() {
            return Ok(BarePage {
                total: 0,
                fetched: 0,
            });
        }
        let query = BooleanQuery::new(vec![
            (Occur::Must, self.time_range(from_ns, to_ns)),
            (Occur::Must, self.text(words)),
        ]);
        self.newest(&query, limit)
    }

    /// Records in `[from_ns, to_ns)` whose integer field `range_field` is in
    /// `[low, high]` and, with a `word` `(field, value)`, whose string field `field`
    /// holds the word `value`: counted, the `limit` newest fetched. The range reads
    /// the number's column (numbers have no terms).
    ///
    /// # Errors
    /// Fails when tantivy fails to search or read a stored hit.
    pub fn search_range(
        &self,
        word: Option<(&str, &str)>,
        range_field: &str,
        (low, high): (i64, i64),
        (from_ns, to_ns): (i64, i64),
        limit: usize,
    ) -> IndexResult<BarePage> {
        let bound = |value: i64| number_term(&self.schema, range_field, value);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, self.time_range(from_ns, to_ns)),
            (
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Included(bound(low)),
                    Bound::Included(bound(high)),
                )),
            ),
        ];
        if let Some((field, value)) = word {
            let mut term =
                Term::from_field_json_path(self.schema.json_field_of(field), field, true);
            term.append_type_and_str(value);
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
            ));
        }
        self.newest(&BooleanQuery::new(clauses), limit)
    }

    fn newest(&self, query: &dyn Query, limit: usize) -> IndexResult<BarePage> {
        let newest =
            TopDocs::with_limit(limit.max(1)).order_by_fast_field::<i64>(TIME, Order::Desc);
        let (total, hits) = self
            .searcher
            .search(query, &(Count, newest))
            .map_err(tantivy_error)?;
        let mut fetched = 0;
        for (_, address) in hits.into_iter().take(limit) {
            let _: TantivyDocument = self.searcher.doc(address).map_err(tantivy_error)?;
            fetched += 1;
        }
        Ok(BarePage {
            total: total as u64,
            fetched,
        })
    }

    /// A `histogram` aggregation of `_time` over `[from_ns, to_ns)`: (bucket start in
    /// ns, count) of the non-empty buckets, oldest first.
    ///
    /// # Errors
    /// Fails when the aggregation fails.
    pub fn time_histogram(
        &self,
        from_ns: i64,
        to_ns: i64,
        interval_ns: i64,
    ) -> IndexResult<Vec<(i64, u64)>> {
        let request = serde_json::json!({
            "histogram": {
                "histogram": {
                    "field": TIME,
                    "interval": interval_ns as f64,
                    "min_doc_count": 1,
                }
            }
        });
        let result = self.aggregate(request, &*self.time_range(from_ns, to_ns))?;
        let buckets = result["histogram"]["buckets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok(buckets
            .iter()
            .filter_map(|bucket| {
                Some((
                    bucket["key"].as_f64()? as i64,
                    bucket["doc_count"].as_u64()?,
                ))
            })
            .collect())
    }

    /// A `terms` aggregation over the string column of record field `field` in
    /// `[from_ns, to_ns)`: its `size` most frequent values with their counts. Every
    /// segment returns all its values, so the counts are exact.
    ///
    /// # Errors
    /// Fails when the aggregation fails.
    pub fn top_values(
        &self,
        field: &str,
        from_ns: i64,
        to_ns: i64,
        size: usize,
    ) -> IndexResult<Vec<(String, u64)>> {
        let request = serde_json::json!({
            "top": {
                "terms": {
                    "field": format!("{FIELDS}.{field}"),
                    "size": size,
                    "segment_size": 65_000,
                    "order": { "_count": "desc" },
                }
            }
        });
        let result = self.aggregate(request, &*self.time_range(from_ns, to_ns))?;
        let buckets = result["top"]["buckets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok(buckets
            .iter()
            .filter_map(|bucket| {
                Some((
                    bucket["key"].as_str()?.to_string(),
                    bucket["doc_count"].as_u64()?,
                ))
            })
            .collect())
    }

    fn aggregate(
        &self,
        request: serde_json::Value,
        query: &dyn Query,
    ) -> IndexResult<serde_json::Value> {
        let aggregations: Aggregations = serde_json::from_value(request)
            .map_err(|e| IndexError::Internal(format!("aggregation request: {e}")))?;
        let collector = AggregationCollector::from_aggs(
            aggregations,
            AggContextParams::new(AggregationLimitsGuard::default(), fast_field_tokenizers()),
        );
        let result = self
            .searcher
            .search(query, &collector)
            .map_err(tantivy_error)?;
        serde_json::to_value(result)
            .map_err(|e| IndexError::Internal(format!("aggregation result: {e}")))
    }
}
