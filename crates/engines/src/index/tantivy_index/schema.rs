//! The tantivy schema of a pool partition and the mapping from records to documents.

use std::collections::BTreeMap;

use logpool_core::field_types::apply_hints;
use logpool_core::record::{FieldValue, Record};
use logpool_core::routing::FieldType;
use tantivy::schema::{
    Field, IndexRecordOption, JsonObjectOptions, OwnedValue, Schema, TextFieldIndexing, FAST,
    INDEXED, STORED, STRING, TEXT,
};
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::tokenizer::{RawTokenizer, RemoveLongFilter, TextAnalyzer, TokenizerManager};
use tantivy::{IndexSettings, TantivyDocument};

use crate::index::IndexDoc;

/// Field names of the schema. Names starting with `_` are internal.
pub(crate) const ID: &str = "_id";
pub(crate) const TIME: &str = "_time";
pub(crate) const TIEBREAK: &str = "_tiebreak";
pub(crate) const SOURCE: &str = "_source";
pub(crate) const ALL_TEXT: &str = "_all";
pub(crate) const FIELD_NAMES: &str = "_fields";
pub(crate) const FIELDS: &str = "fields";
/// The record field that holds the raw line. Its text is indexed once, under
/// `fields.message`, instead of also in `_all`: bare terms search both (see
/// [`LogSchema::indexes_in_all_text`]). It is usually most of a record's bytes.
pub(crate) const MESSAGE: &str = "message";

/// The fast-field tokenizer of string values: the whole value as one token, or no
/// token when it is longer than [`KEYWORD_IGNORE_ABOVE`] bytes. Long free text (stack
/// traces, payloads) is nearly unique per record, so its column would be about a
/// second copy of it; like an Elasticsearch keyword with `ignore_above` (the same default of
/// 256), such a value has no column entry and groups as null in pipe SQL.
pub(crate) const KEYWORD_TOKENIZER: &str = "keyword_ignore_above";
pub(crate) const KEYWORD_IGNORE_ABOVE: usize = 256;

/// The fast-field tokenizers every index handle needs before it writes: tantivy
/// keeps tokenizers in memory only, not in the index.
pub(crate) fn fast_field_tokenizers() -> TokenizerManager {
    let tokenizers = TokenizerManager::default();
    tokenizers.register(
        KEYWORD_TOKENIZER,
        TextAnalyzer::builder(RawTokenizer::default())
            // The filter keeps tokens strictly shorter than its limit.
            .filter(RemoveLongFilter::limit(KEYWORD_IGNORE_ABOVE + 1))
            .build(),
    );
    tokenizers
}

/// Settings of every new partition index. The document store holds the whole hit
/// as JSON: zstd on 64 KiB blocks (tantivy's default is lz4 on 16 KiB) stores it in
/// less than half the bytes; hits are fetched newest first, mostly from the same few
/// blocks, so search latency did not move in the benchmark. An existing index keeps
/// the settings it was created with.
pub(crate) fn index_settings() -> IndexSettings {
    IndexSettings {
        docstore_compression: Compressor::Zstd(ZstdCompressor::default()),
        docstore_blocksize: 65_536,
        ..IndexSettings::default()
    }
}

/// Handles to the schema's fields.
#[derive(Debug, Clone)]
pub(crate) struct LogSchema {
    pub(crate) schema: Schema,
    pub(crate) id: Field,
    pub(crate) time: Field,
    pub(crate) tiebreak: Field,
    pub(crate) source: Field,
    pub(crate) all_text: Field,
    pub(crate) field_names: Field,
    pub(crate) fields: Field,
}

impl LogSchema {
    pub(crate) fn new() -> LogSchema {
        let mut builder = Schema::builder();
        // `_id` is indexed untokenised so that a redelivery can delete-then-add by id.
        let id = builder.add_text_field(ID, STRING);
        let time = builder.add_i64_field(TIME, INDEXED | FAST);
        let tiebreak = builder.add_u64_field(TIEBREAK, FAST);
        // The whole hit is kept in one stored field: one read per hit.
        let source = builder.add_text_field(SOURCE, STORED);
        // Bare terms search every text of the record, like Elasticsearch's `*` default field.
        let all_text = builder.add_text_field(ALL_TEXT, TEXT);
        // The names of present fields, so that `_exists_:f` is a term lookup.
        let field_names = builder.add_text_field(FIELD_NAMES, STRING);
        let json_options = JsonObjectOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("default")
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            )
            .set_expand_dots_enabled()
            // Pipe SQL groups and aggregates over these columns (strings untokenised,
            // long ones left out: see `KEYWORD_TOKENIZER`). The cost is a column per
            // path and type: one more copy of every short value on disk.
            .set_fast(KEYWORD_TOKENIZER);
        let fields = builder.add_json_field(FIELDS, json_options);
        LogSchema {
            schema: builder.build(),
            id,
            time,
            tiebreak,
            source,
            all_text,
            field_names,
            fields,
        }
    }

    /// Builds the tantivy document of one record of a pool without field hints.
    pub(crate) fn document(&self, doc: &IndexDoc) -> TantivyDocument {
        self.document_with_hints(doc, &BTreeMap::new())
    }

    /// Builds the tantivy document of one record: the typed JSON terms follow the
    /// pool's declared field types ([`apply_hints`]: converted, or kept as text on a
    /// conflict), while the stored hit keeps the record as it was sent.
    pub(crate) fn document_with_hints(
        &self,
        doc: &IndexDoc,
        hints: &BTreeMap<String, FieldType>,
    ) -> TantivyDocument {
        let doc_id = doc.identity.doc_id();
        let mut document = TantivyDocument::new();
        document.add_text(self.id, &doc_id);
        document.add_i64(self.time, doc.record.time_ns);
        document.add_u64(self.tiebreak, doc.identity.tiebreak());
        document.add_text(self.source, stored_source(&doc_id, doc));
        // One value per field: tantivy leaves a position gap between values, so a
        // phrase never matches across two fields.
        let typed = apply_hints(&doc.record, hints);
        for (name, value) in &doc.record.fields {
            let text = value.as_text();
            if Self::indexes_in_all_text(name, &text, &typed) {
                document.add_text(self.all_text, text);
            }
        }
        for name in field_names_with_prefixes(&doc.record) {
            document.add_text(self.field_names, name);
        }
        document.add_object(self.fields, json_object(&typed));
        document
    }

    /// Whether the text of field `name` goes into `_all`. The message is left out
    /// when `fields.message` holds exactly the same text, tokenised the same way, so
    /// a bare term that searches `_all` and `fields.message` finds the same records.
    /// A message typed as a number or bool by a hint keeps its text in `_all`.
    fn indexes_in_all_text(name: &str, text: &str, typed: &Record) -> bool {
        if name != MESSAGE {
            return true;
        }
        !matches!(typed.fields.get(name), Some(FieldValue::Str(indexed)) if indexed == text)
    }
}

/// The stored form of a hit: everything the search API returns.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct StoredSource {
    pub(crate) id: String,
    pub(crate) time_ns: i64,
    pub(crate) shard: u32,
    pub(crate) tiebreak: u64,
    pub(crate) fields: serde_json::Map<String, serde_json::Value>,
}

fn stored_source(doc_id: &str, doc: &IndexDoc) -> String {
    let source = StoredSource {
        id: doc_id.to_string(),
        time_ns: doc.record.time_ns,
        shard: doc.shard,
        tiebreak: doc.identity.tiebreak(),
        fields: doc.record.fields_json(),
    };
    serde_json::to_string(&source).unwrap_or_default()
}

/// `http.status` is present as `http.status` and `http`, like a nested object in ES.
fn field_names_with_prefixes(record: &Record) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    for name in record.fields.keys() {
        let mut end = 0;
        for (index, c) in name.char_indices() {
            if c == '.' {
                names.insert(name[..index].to_string());
            }
            end = index + c.len_utf8();
        }
        names.insert(name[..end].to_string());
    }
    names.into_iter().collect()
}

fn json_object(record: &Record) -> BTreeMap<String, OwnedValue> {
    record
        .fields
        .iter()
        .map(|(name, value)| {
            let owned = match value {
                FieldValue::Bool(b) => OwnedValue::Bool(*b),
                FieldValue::Long(n) => OwnedValue::I64(*n),
                FieldValue::Double(x) => OwnedValue::F64(*x),
                FieldValue::Str(s) => OwnedValue::Str(s.clone()),
            };
            (name.clone(), owned)
        })
        .collect()
}
