//! The tantivy schema of a pool partition and the mapping from records to documents.

use logpool_core::pool_id::PoolId;
use std::borrow::Cow;
use std::collections::BTreeMap;

use logpool_core::doc_id::DocIdentity;
use logpool_core::field_types::{apply_hint, fits_unchanged, ip_number, Typed};
use logpool_core::ingest::parse_time_text;
use logpool_core::record::{FieldValue, Record};
use logpool_core::routing::FieldType;
use tantivy::schema::document::{ReferenceValue, ReferenceValueLeaf};
use tantivy::schema::{
    Field, IndexRecordOption, JsonObjectOptions, OwnedValue, Schema, TextFieldIndexing,
    TextOptions, FAST, STORED,
};
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::tokenizer::{RawTokenizer, RemoveLongFilter, TextAnalyzer, TokenizerManager};
use tantivy::{IndexSettings, TantivyDocument};

use crate::index::IndexDoc;

/// Field names of the schema. Names starting with `_` are internal.
/// The queue message a record came from ([`DocIdentity::message_key`]).
///
/// [`DocIdentity::message_key`]: logpool_core::doc_id::DocIdentity::message_key
pub(crate) const MESSAGE_KEY: &str = "_message_key";
pub(crate) const TIME: &str = "_time";
pub(crate) const TIEBREAK: &str = "_tiebreak";
pub(crate) const SOURCE: &str = "_source";
pub(crate) const ALL_TEXT: &str = "_all";
pub(crate) const FIELD_NAMES: &str = "_fields";
pub(crate) const FIELDS: &str = "fields";
/// The raw line (`message`), in a JSON field of its own: tokenised like any text, but
/// without positions and without a column (see [`LogSchema::json_field_of`]).
pub(crate) const FULL_TEXT: &str = "full_text";
/// Values of fields typed `keyword` (and the text of `ip` values, for grouping):
/// one untokenised, case-sensitive term per value.
pub(crate) const KEYWORDS: &str = "kw";
/// Values of fields typed `ip`, as [`ip_term`]: fixed-width hex of the address
/// number, so term order is address order and CIDR blocks are term ranges.
pub(crate) const IPS: &str = "ip";
/// Values of fields typed `timestamp`, in nanoseconds since the epoch.
pub(crate) const TIMESTAMPS: &str = "ts";
/// Numbers (`long` and `double` values, and untyped JSON numbers): a column per path
/// and no terms. Equality and ranges scan the column, as Elasticsearch does for a
/// numeric field with `doc_values` and `index: false`. Numbers in logs are mostly
/// counters, sizes, durations and ids: nearly unique per record, so terms for them
/// were the dearest part of the index to write (a term-dictionary entry and postings
/// per record for a sequence number) and 0.055 per raw byte on disk
/// (BENCHMARKS.md), for equality lookups that a column scan answers in milliseconds.
pub(crate) const NUMBERS: &str = "num";
/// The record field that holds the raw line, usually most of a record's bytes.
/// Bare terms always ask its path, even before the pool has learned its type.
pub(crate) const MESSAGE: &str = logpool_core::record::MESSAGE_FIELD;

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

/// Settings of every new partition index. The document store holds the hit as
/// JSON, compressed with zstd on 128 KiB blocks (tantivy's default is lz4 on 16
/// KiB). Bigger blocks find more of the repetition in log lines; a search whose hits
/// are scattered decompresses one block per hit (about 0.1 ms for 128 KiB), so
/// they stop there. Level 4: level 9 stored 7 % fewer bytes but its compression
/// took 13 % of the server's CPU while indexing (BENCHMARKS.md). Merges copy blocks
/// without recompressing them. An existing index keeps the settings it was created
/// with.
pub(crate) fn index_settings() -> IndexSettings {
    IndexSettings {
        docstore_compression: Compressor::Zstd(ZstdCompressor {
            compression_level: Some(DOCSTORE_ZSTD_LEVEL),
        }),
        docstore_blocksize: DOCSTORE_BLOCK_BYTES,
        ..IndexSettings::default()
    }
}

/// How segments are merged: tantivy's log-size levels, merging 16 segments of a level
/// at once instead of 8. Every record is rewritten once per level it goes through;
/// with 1 s commits of about 100,000 records, 8 per merge takes 10 M records through
/// two levels and 16 through one, for about 30 segments instead of 17 at 10 M records
/// (BENCHMARKS.md).
pub(crate) fn merge_policy() -> tantivy::indexer::LogMergePolicy {
    let mut policy = tantivy::indexer::LogMergePolicy::default();
    policy.set_min_num_segments(SEGMENTS_PER_MERGE);
    policy
}

const SEGMENTS_PER_MERGE: usize = 16;

const DOCSTORE_ZSTD_LEVEL: i32 = 4;
const DOCSTORE_BLOCK_BYTES: usize = 128 * 1024;

/// Decompressed document-store blocks a searcher keeps per segment. A page of hits
/// comes from a few blocks; tantivy's default of 100 would hold 12.5 MiB per
/// segment of every open partition.
pub(crate) const DOCSTORE_CACHE_BLOCKS: usize = 8;

/// Handles to the schema's fields.
#[derive(Debug, Clone)]
pub(crate) struct LogSchema {
    pub(crate) schema: Schema,
    pub(crate) message_key: Field,
    pub(crate) time: Field,
    pub(crate) tiebreak: Field,
    pub(crate) source: Field,
    pub(crate) all_text: Field,
    pub(crate) field_names: Field,
    pub(crate) fields: Field,
    pub(crate) full_text: Field,
    pub(crate) keywords: Field,
    pub(crate) ips: Field,
    pub(crate) timestamps: Field,
    pub(crate) numbers: Field,
}

/// Tokenised text recording `option` (positions for phrases, or doc ids only). No
/// field norms: hits are ordered by time, never by relevance, and norms cost a byte
/// per document and field.
fn tokenised_without_norms(option: IndexRecordOption) -> TextFieldIndexing {
    TextFieldIndexing::default()
        .set_tokenizer("default")
        .set_index_option(option)
        .set_fieldnorms(false)
}

/// One untokenised term per value, without field norms (see above).
fn untokenised_without_norms() -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    )
}

/// The indexed term of an IP address (see [`IPS`]).
pub(crate) fn ip_term(number: u128) -> String {
    format!("{number:032x}")
}

impl LogSchema {
    pub(crate) fn new() -> LogSchema {
        let mut builder = Schema::builder();
        // A redelivered queue message replaces its records: one delete of its key, then
        // the adds. A key per message rather than an id per record: a unique term per
        // record cost 0.03 per raw byte and a dictionary entry at every commit. A
        // record's own id is its message key plus the tiebreak column (`_id` queries,
        // context anchors).
        let message_key = builder.add_text_field(MESSAGE_KEY, untokenised_without_norms());
        // Time ranges run on the column (tantivy's range query prefers a fast field),
        // so `_time` has no terms.
        let time = builder.add_i64_field(TIME, FAST);
        let tiebreak = builder.add_u64_field(TIEBREAK, FAST);
        // The whole hit is kept in one stored field: one read per hit.
        let source = builder.add_text_field(SOURCE, STORED);
        // Bare terms search every value of the record, like Elasticsearch's `*` default
        // field: text under its own path of `fields`, other values' text here.
        let all_text = builder.add_text_field(
            ALL_TEXT,
            TextOptions::default().set_indexing_options(tokenised_without_norms(
                IndexRecordOption::WithFreqsAndPositions,
            )),
        );
        // The names of present fields, so that `_exists_:f` is a term lookup.
        let field_names = builder.add_text_field(FIELD_NAMES, untokenised_without_norms());
        let json_options = JsonObjectOptions::default()
            .set_indexing_options(tokenised_without_norms(
                IndexRecordOption::WithFreqsAndPositions,
            ))
            .set_expand_dots_enabled()
            // Pipe SQL groups and aggregates over these columns (strings untokenised,
            // long ones left out: see `KEYWORD_TOKENIZER`). The cost is a column per
            // path and type: one more copy of every short value on disk.
            .set_fast(KEYWORD_TOKENIZER);
        let fields = builder.add_json_field(FIELDS, json_options);
        // The raw line is full text only, as Elasticsearch's log templates map
        // `message` (`match_only_text`, no keyword): log lines hardly repeat, so a column
        // would be a second copy of most of the record (0.18 per raw byte on Loghub
        // lines that do not repeat, BENCHMARKS.md) and a dictionary to sort at every
        // commit, for grouping by whole lines, which pipe SQL refuses.
        let full_text = builder.add_json_field(
            FULL_TEXT,
            JsonObjectOptions::default()
                .set_indexing_options(
                    // The raw line's words without positions or frequencies, as
                    // Elasticsearch's `match_only_text`: its phrases are checked on the
                    // stored line instead (`line_phrase`).
                    tokenised_without_norms(IndexRecordOption::Basic),
                )
                .set_expand_dots_enabled(),
        );
        let raw_indexing = TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false);
        // Typed fields live in JSON fields of their own, so record field names stay
        // dynamic: keyword values are single raw terms with a column for pipe SQL,
        // addresses are sortable hex terms, timestamps are i64 terms and a column.
        let keywords = builder.add_json_field(
            KEYWORDS,
            JsonObjectOptions::default()
                .set_indexing_options(raw_indexing.clone())
                .set_expand_dots_enabled()
                .set_fast(KEYWORD_TOKENIZER),
        );
        let ips = builder.add_json_field(
            IPS,
            JsonObjectOptions::default()
                .set_indexing_options(raw_indexing.clone())
                .set_expand_dots_enabled(),
        );
        let timestamps = builder.add_json_field(
            TIMESTAMPS,
            JsonObjectOptions::default()
                .set_indexing_options(raw_indexing)
                .set_expand_dots_enabled()
                .set_fast(KEYWORD_TOKENIZER),
        );
        let numbers = builder.add_json_field(
            NUMBERS,
            JsonObjectOptions::default()
                .set_expand_dots_enabled()
                .set_fast(KEYWORD_TOKENIZER),
        );
        LogSchema {
            schema: builder.build(),
            message_key,
            time,
            tiebreak,
            source,
            all_text,
            field_names,
            fields,
            full_text,
            keywords,
            ips,
            timestamps,
            numbers,
        }
    }

    /// The JSON field that indexes the text of record field `path`: the raw line has
    /// its own, every other text and bool is in `fields` (numbers are in
    /// [`NUMBERS`]).
    pub(crate) fn json_field_of(&self, path: &str) -> Field {
        if path == MESSAGE {
            self.full_text
        } else {
            self.fields
        }
    }

    /// Builds the tantivy document of one record, every value indexed with its own
    /// type (the benchmark baseline, which knows no pool types).
    #[cfg(feature = "bench-baseline")]
    pub(crate) fn document(&self, doc: &IndexDoc) -> TantivyDocument {
        self.document_with_types(doc, &BTreeMap::new())
    }

    /// Builds the tantivy document of one record: the typed terms follow the pool's
    /// field types (declared or learned; converted, or kept as text on a conflict),
    /// while the stored hit keeps the record as it was sent.
    pub(crate) fn document_with_types(
        &self,
        doc: &IndexDoc,
        types: &BTreeMap<String, FieldType>,
    ) -> TantivyDocument {
        let mut document = TantivyDocument::new();
        document.add_i64(self.time, doc.record.time_ns);
        document.add_u64(self.tiebreak, doc.identity.tiebreak());
        document.add_text(self.source, stored_source(doc));
        document.add_text(self.message_key, doc.identity.message_key());
        let mut split = TypedValues::split(&doc.record, types);
        // One value per field: tantivy leaves a position gap between values, so a
        // phrase never matches across two fields.
        for (name, value) in &doc.record.fields {
            if Self::indexes_in_all_text(name, value, &split) {
                document.add_text(self.all_text, value.as_text());
            }
        }
        for name in field_names_with_prefixes(&doc.record) {
            document.add_text(self.field_names, name);
        }
        let message = split.fields.remove(MESSAGE);
        document.add_field_value(self.fields, JsonFieldsRef::Object(&split.fields));
        if !split.numbers.is_empty() {
            document.add_field_value(self.numbers, JsonFieldsRef::Object(&split.numbers));
        }
        if let Some(message) = &message {
            document.add_field_value(self.full_text, JsonFieldsRef::Message(message.as_ref()));
        }
        for (field, values) in [
            (self.keywords, split.keywords),
            (self.ips, split.ips),
            (self.timestamps, split.timestamps),
        ] {
            if !values.is_empty() {
                document.add_object(field, values);
            }
        }
        document
    }

    /// Whether the text of field `name` also goes into `_all`. A value indexed as
    /// text under its own path of `fields` (tokenised the same way) is left out:
    /// bare terms ask `_all` and every text path (`compile::text_paths`), so they find
    /// the same records, and each token is indexed once. Numbers are left out too:
    /// a bare number asks every numeric path (`compile::numeric_paths`). Bools and
    /// values typed keyword, ip or timestamp keep their text in `_all`, where a bare
    /// `true` or `10.0.0.1` finds them as on Elasticsearch.
    fn indexes_in_all_text(name: &str, value: &FieldValue, split: &TypedValues<'_>) -> bool {
        let indexed = match split.fields.get(name).map(|v| v.as_ref()) {
            Some(FieldValue::Str(indexed)) => indexed,
            Some(FieldValue::Bool(_)) => return true,
            // Numbers are found as numbers under their own path (a unique number in
            // `_all` was a unique term per record: a third of the indexing time).
            // `fields` never holds one (`TypedValues::insert_plain`).
            Some(FieldValue::Long(_) | FieldValue::Double(_)) => return false,
            // Not in `fields`: a number, or a value typed keyword, ip or timestamp.
            None => return !split.numbers.contains_key(name),
        };
        match value {
            FieldValue::Str(text) => text != indexed,
            other => other.as_text() != *indexed,
        }
    }
}

/// A record's values sorted into the JSON fields of their types. Values that keep
/// their type are borrowed from the record: the document copies each text once.
struct TypedValues<'a> {
    /// Text and bools (converted to their field's type, or the overflow text of a
    /// conflicting value).
    fields: BTreeMap<&'a str, Cow<'a, FieldValue>>,
    /// Numbers, likewise converted (see [`NUMBERS`]).
    numbers: BTreeMap<&'a str, Cow<'a, FieldValue>>,
    keywords: BTreeMap<String, OwnedValue>,
    ips: BTreeMap<String, OwnedValue>,
    timestamps: BTreeMap<String, OwnedValue>,
}

impl<'a> TypedValues<'a> {
    fn split(record: &'a Record, types: &BTreeMap<String, FieldType>) -> TypedValues<'a> {
        let mut values = TypedValues {
            fields: BTreeMap::new(),
            numbers: BTreeMap::new(),
            keywords: BTreeMap::new(),
            ips: BTreeMap::new(),
            timestamps: BTreeMap::new(),
        };
        for (name, value) in &record.fields {
            let field_type = match types.get(name) {
                None => {
                    values.insert_plain(name, Cow::Borrowed(value));
                    continue;
                }
                // Keyword values are copied into their own JSON field below.
                Some(field_type)
                    if *field_type != FieldType::Keyword && fits_unchanged(*field_type, value) =>
                {
                    values.insert_plain(name, Cow::Borrowed(value));
                    continue;
                }
                Some(field_type) => field_type,
            };
            let converted = match apply_hint(value, *field_type) {
                Typed::Fits(converted) => converted,
                Typed::Overflow(text) => {
                    values
                        .fields
                        .insert(name, Cow::Owned(FieldValue::Str(text)));
                    continue;
                }
            };
            let text = converted.as_text();
            match field_type {
                FieldType::Keyword => {
                    values.keywords.insert(name.clone(), OwnedValue::Str(text));
                }
                FieldType::Ip => match text.parse() {
                    Ok(address) => {
                        values
                            .ips
                            .insert(name.clone(), OwnedValue::Str(ip_term(ip_number(address))));
                        // The address as written groups in pipe SQL like a keyword.
                        values.keywords.insert(name.clone(), OwnedValue::Str(text));
                    }
                    Err(_) => {
                        values
                            .fields
                            .insert(name, Cow::Owned(FieldValue::Str(text)));
                    }
                },
                FieldType::Timestamp => match parse_time_text(&text) {
                    Ok(time_ns) => {
                        values
                            .timestamps
                            .insert(name.clone(), OwnedValue::I64(time_ns));
                    }
                    Err(_) => {
                        values
                            .fields
                            .insert(name, Cow::Owned(FieldValue::Str(text)));
                    }
                },
                FieldType::Text | FieldType::Long | FieldType::Double | FieldType::Bool => {
                    values.insert_plain(name, Cow::Owned(converted));
                }
            }
        }
        values
    }

    /// A value that keeps its JSON type: numbers to their columns, the rest to
    /// `fields`.
    fn insert_plain(&mut self, name: &'a str, value: Cow<'a, FieldValue>) {
        match value.as_ref() {
            FieldValue::Long(_) | FieldValue::Double(_) => self.numbers.insert(name, value),
            FieldValue::Str(_) | FieldValue::Bool(_) => self.fields.insert(name, value),
        };
    }
}

/// The stored form of a hit: what the search API returns, except the sort key
/// (time and tiebreak), which the columns already hold and every search reads
/// from them anyway. Unique numbers compress poorly: leaving the two out of the
/// JSON makes the document store about a fifth smaller. For the same reason the
/// record's id is rebuilt from its pool, `partition` and tiebreak, and stored only
/// when the tiebreak cannot hold it ([`DocIdentity::tiebreak_is_exact`]).
///
/// [`DocIdentity::tiebreak_is_exact`]: logpool_core::doc_id::DocIdentity::tiebreak_is_exact
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct StoredSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    pub(crate) partition: u32,
    pub(crate) shard: u32,
    pub(crate) fields: serde_json::Map<String, serde_json::Value>,
}

impl StoredSource {
    /// The record's id: stored, or rebuilt from the pool, partition and tiebreak.
    pub(crate) fn doc_id(&self, pool_id: PoolId, tiebreak: u64) -> String {
        match &self.id {
            Some(id) => id.clone(),
            None => DocIdentity::from_tiebreak(pool_id, self.partition, tiebreak).doc_id(),
        }
    }
}

/// What [`StoredSource`] reads back, written from the record without copying it.
#[derive(serde::Serialize)]
struct StoredSourceRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    partition: u32,
    shard: u32,
    fields: &'a BTreeMap<String, FieldValue>,
}

fn stored_source(doc: &IndexDoc) -> String {
    let identity = &doc.identity;
    let source = StoredSourceRef {
        id: (!identity.tiebreak_is_exact()).then(|| identity.doc_id()),
        partition: identity.partition,
        shard: doc.shard,
        fields: &doc.record.fields,
    };
    serde_json::to_string(&source).unwrap_or_default()
}

/// `http.status` is present as `http.status` and `http`, like a nested object in ES.
/// The names are slices of the record's own names: tantivy copies each once. Without
/// dotted names they are the record's sorted, distinct keys as they are.
fn field_names_with_prefixes(record: &Record) -> Vec<&str> {
    let mut names = Vec::with_capacity(record.fields.len());
    let mut dotted = false;
    for name in record.fields.keys() {
        for (index, byte) in name.bytes().enumerate() {
            if byte == b'.' {
                names.push(&name[..index]);
                dotted = true;
            }
        }
        names.push(name.as_str());
    }
    if dotted {
        names.sort_unstable();
        names.dedup();
    }
    names
}

/// The `fields` object handed to tantivy as borrowed values: tantivy copies each
/// value once into its document, instead of once into an owned map and again from
/// it (3 % of the server's instructions, callgrind).
#[derive(Debug, Clone, Copy)]
enum JsonFieldsRef<'a> {
    Object(&'a BTreeMap<&'a str, Cow<'a, FieldValue>>),
    /// `{"message": value}`: the object of the full-text field.
    Message(&'a FieldValue),
    Leaf(&'a FieldValue),
}

/// No fields: the full-text object iterates this, then its one message entry.
static NO_FIELDS: BTreeMap<&str, Cow<'_, FieldValue>> = BTreeMap::new();

/// Turns one entry of the `fields` map into a named leaf.
type JsonFieldEntry<'a> =
    fn((&'a &'a str, &'a Cow<'a, FieldValue>)) -> (&'a str, JsonFieldsRef<'a>);

type JsonFieldsIter<'a> = std::iter::Map<
    std::collections::btree_map::Iter<'a, &'a str, Cow<'a, FieldValue>>,
    JsonFieldEntry<'a>,
>;

impl<'a> tantivy::schema::Value<'a> for JsonFieldsRef<'a> {
    type ArrayIter = std::iter::Empty<JsonFieldsRef<'a>>;
    type ObjectIter =
        std::iter::Chain<JsonFieldsIter<'a>, std::option::IntoIter<(&'a str, JsonFieldsRef<'a>)>>;

    fn as_value(&self) -> ReferenceValue<'a, Self> {
        match *self {
            JsonFieldsRef::Object(fields) => {
                let entry: JsonFieldEntry<'a> =
                    |(name, value)| (*name, JsonFieldsRef::Leaf(value.as_ref()));
                ReferenceValue::Object(fields.iter().map(entry).chain(None))
            }
            JsonFieldsRef::Message(value) => {
                let entry: JsonFieldEntry<'a> =
                    |(name, value)| (*name, JsonFieldsRef::Leaf(value.as_ref()));
                ReferenceValue::Object(
                    NO_FIELDS
                        .iter()
                        .map(entry)
                        .chain(Some((MESSAGE, JsonFieldsRef::Leaf(value)))),
                )
            }
            JsonFieldsRef::Leaf(value) => ReferenceValue::Leaf(match value {
                FieldValue::Bool(b) => ReferenceValueLeaf::Bool(*b),
                FieldValue::Long(n) => ReferenceValueLeaf::I64(*n),
                FieldValue::Double(x) => ReferenceValueLeaf::F64(*x),
                FieldValue::Str(s) => ReferenceValueLeaf::Str(s),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_field_names_carry_their_dotted_prefixes_once() {
        let record = |names: &[&str]| Record {
            time_ns: 0,
            fields: names
                .iter()
                .map(|name| (name.to_string(), FieldValue::Bool(true)))
                .collect(),
        };
        let dotted = record(&["http", "a", "http.status", "http.req.method"]);
        assert_eq!(
            field_names_with_prefixes(&dotted),
            ["a", "http", "http.req", "http.req.method", "http.status"]
        );
        let flat = record(&["level", "host", "message"]);
        assert_eq!(
            field_names_with_prefixes(&flat),
            ["host", "level", "message"]
        );
    }
}
