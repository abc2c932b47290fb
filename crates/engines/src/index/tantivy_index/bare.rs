//! One tantivy index written with the engine's schema, document mapping and writer
//! settings, without the store around it (no days, no readers, no queue). The
//! benchmark indexes the same records through it as the baseline that shows what
//! the rest of the pipeline costs.

use std::path::Path;

use tantivy::{Index, IndexWriter};

use super::schema::{fast_field_tokenizers, index_settings, LogSchema};
use super::{tantivy_error, TantivyIndexConfig};
use crate::index::{IndexDoc, IndexResult};

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
        let writer = index
            .writer_with_num_threads(1, config.writer_memory_bytes.max(15_000_000))
            .map_err(tantivy_error)?;
        Ok(BareIndexWriter {
            schema,
            index,
            writer,
        })
    }

    /// Stages one document.
    ///
    /// # Errors
    /// Fails when the writer has failed.
    pub fn add(&mut self, doc: &IndexDoc) -> IndexResult<()> {
        self.writer
            .add_document(self.schema.document(doc))
            .map_err(tantivy_error)?;
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
        let usage = index
            .reader()
            .map_err(tantivy_error)?
            .searcher()
            .space_usage()?;
        let mut totals = std::collections::BTreeMap::<(&'static str, String), u64>::new();
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
        let mut spaces: Vec<FieldSpace> = totals
            .into_iter()
            .map(|((part, field), bytes)| FieldSpace { part, field, bytes })
            .collect();
        spaces.sort_by_key(|space| std::cmp::Reverse(space.bytes));
        Ok(spaces)
    }
}
