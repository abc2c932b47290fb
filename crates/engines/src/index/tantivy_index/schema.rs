//! The tantivy schema of a pool partition and the mapping from records to documents.

use std::collections::BTreeMap;

use logpool_core::field_types::apply_hints;
use logpool_core::record::{FieldValue, Record};
use logpool_core::routing::FieldType;
use tantivy::schema::{
    Field, IndexRecordOption, JsonObjectOptions, OwnedValue, Schema, TextFieldIndexing, FAST,
    INDEXED, STORED, STRING, TEXT,
};
use tantivy::TantivyDocument;

use crate::index::IndexDoc;

/// Field names of the schema. Names starting with `_` are internal.
pub(crate) const ID: &str = "_id";
pub(crate) const TIME: &str = "_time";
pub(crate) const TIEBREAK: &str = "_tiebreak";
pub(crate) const SOURCE: &str = "_source";
pub(crate) const ALL_TEXT: &str = "_all";
pub(crate) const FIELD_NAMES: &str = "_fields";
pub(crate) const FIELDS: &str = "fields";

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
            // Pipe SQL groups and aggregates over these columns (strings untokenised).
            // The cost is a column per path and type: roughly one more copy of every
            // value on disk, paid at indexing time.
            .set_fast("raw");
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
        for value in doc.record.fields.values() {
            document.add_text(self.all_text, value.as_text());
        }
        for name in field_names_with_prefixes(&doc.record) {
            document.add_text(self.field_names, name);
        }
        document.add_object(self.fields, json_object(&apply_hints(&doc.record, hints)));
        document
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
