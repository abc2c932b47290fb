//! The index template of a pool and the document written for each record.
//!
//! # Document layout
//! A record's fields are written several times, each copy for one job:
//!
//! | field | mapping | job |
//! |---|---|---|
//! | `_lp_record` | keyword, not indexed | the record's fields as JSON text, returned by hits exactly as written (numbers keep their type, `http.method` stays one key) |
//! | `_lp_time` | long | event time in ns (shown in hits; sub-millisecond histograms) |
//! | `_lp_time_ms`, `_lp_time_sub` | long, integer | event time split in ms and the ns within the ms: sort, time ranges and histograms |
//! | `_lp_tiebreak` | keyword | [`DocIdentity::tiebreak`] as 16 hex digits: the last sort key |
//! | `_lp_shard` | integer | shard shown in hits |
//! | `_lp_all` | text | the text of every value, one array element per field: bare terms |
//! | `_lp_fields` | keyword | names of present fields and their dotted prefixes: `_exists_` |
//! | `_lp_s.*`, `_lp_l.*`, `_lp_d.*`, `_lp_b.*` | text (+ `.keyword`), long, double, boolean | one object per value type, field names encoded by [`encode_field_name`] |
//! | `_lp_k.*`, `_lp_ip.*`, `_lp_ts.*` | keyword, ip, long ns | fields typed `keyword`, `ip` or `timestamp` |
//! | `_lp_ts_ms.*`, `_lp_ts_sub.*` | long, long | a `timestamp` field split like the event time: its terms and ranges |
//!
//! Why the time is split: engines that keep numbers as doubles (OpenSearch-compatible
//! test servers do) cannot hold nanoseconds since the epoch exactly (~1.7e18 needs 61
//! bits), and a cursor or a range bound off by a few hundred ns would skip or repeat
//! hits. Milliseconds (~1.7e12) and a remainder below 1e6 are exact everywhere, and
//! so is a hex string. Elasticsearch itself sorts and filters the pair as fast as one
//! long.
//!
//! Why one object per value type: logs are loosely typed (`status` is 500 in one
//! record and `"n/a"` in the next). Elasticsearch maps a field once per index, so a
//! single path would turn such records into mapping conflicts and dead letters. With
//! typed paths every value lands in a path of its own type, nothing unhinted is ever
//! refused, and `status:500` simply asks every typed path that can hold `500`, which is
//! what the embedded index does with its typed JSON terms.
//!
//! Field types route a field to the path of that type after
//! [`apply_hint`] converted the value (`"12"` into a long); a value that cannot have the
//! declared type (`"abc"` for a long) overflows into the text path, so it is kept and
//! found as text, never refused, exactly as in the embedded index. The types are the
//! pool's effective ones (its `field_hints` as the index passes them here): declared,
//! or learned from the field's first value and fixed in the metadata store (see
//! [`logpool_core::field_types`]). Every mapping comes from a dynamic template keyed by path prefix, so the
//! template never depends on the hints and changing them never conflicts with the
//! mappings of existing daily indices.
//!
//! Text is analysed by `lp_text`: tokens are runs of letters, digits and combining marks,
//! lowercased, tokens over 40 characters dropped — the tokenizer of the core crate
//! ([`logpool_core::query::tokenize`]) and of the embedded index, written as a pattern
//! tokenizer that *extracts* matches (`group: 0`), which every Elasticsearch and
//! OpenSearch version reads the same way.
//!
//! [`DocIdentity::tiebreak`]: logpool_core::doc_id::DocIdentity::tiebreak
//! [`encode_field_name`]: super::naming::encode_field_name

use std::collections::BTreeSet;

use logpool_core::field_types::{apply_hint, Typed};
use logpool_core::ingest::parse_time_text;
use logpool_core::record::{FieldValue, Record, MESSAGE_FIELD};
use logpool_core::routing::{FieldType, PoolRoute};
use serde_json::{json, Map, Value};

use super::naming::{alias_name, encode_field_name, pool_index_pattern};
use crate::index::IndexDoc;

pub(crate) const TIME: &str = "_lp_time";
pub(crate) const TIME_MS: &str = "_lp_time_ms";
pub(crate) const TIME_SUB: &str = "_lp_time_sub";
pub(crate) const TIEBREAK: &str = "_lp_tiebreak";
pub(crate) const SHARD: &str = "_lp_shard";
pub(crate) const RECORD: &str = "_lp_record";
pub(crate) const ALL_TEXT: &str = "_lp_all";
pub(crate) const FIELD_NAMES: &str = "_lp_fields";

/// Nanoseconds per millisecond: the split of the event time.
pub(crate) const NS_PER_MS: i64 = 1_000_000;

/// The split copies of `timestamp` fields (ms since the epoch, ns within the ms).
const TIMESTAMP_MS: &str = "_lp_ts_ms";
const TIMESTAMP_SUB: &str = "_lp_ts_sub";

/// The (ms, ns-within-ms) fields of a `timestamp` field: exact where a cluster keeps
/// numbers as doubles, as for the event time.
pub(crate) fn timestamp_parts(name: &str) -> (String, String) {
    let encoded = encode_field_name(name);
    (
        format!("{TIMESTAMP_MS}.{encoded}"),
        format!("{TIMESTAMP_SUB}.{encoded}"),
    )
}

/// The typed objects that hold record fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypedPath {
    /// Tokenised text, with a `.keyword` sub-field for ranges.
    Text,
    /// 64-bit integers.
    Long,
    /// 64-bit floats.
    Double,
    /// Booleans.
    Bool,
    /// Exact strings (declared `keyword`).
    Keyword,
    /// IP addresses (declared `ip`).
    Ip,
    /// Times in ns since the epoch (declared `timestamp`).
    Timestamp,
}

impl TypedPath {
    const ALL: [TypedPath; 7] = [
        TypedPath::Text,
        TypedPath::Long,
        TypedPath::Double,
        TypedPath::Bool,
        TypedPath::Keyword,
        TypedPath::Ip,
        TypedPath::Timestamp,
    ];

    /// The paths every unhinted value can land in.
    pub(crate) const DYNAMIC: [TypedPath; 4] = [
        TypedPath::Text,
        TypedPath::Long,
        TypedPath::Double,
        TypedPath::Bool,
    ];

    pub(crate) fn object(self) -> &'static str {
        match self {
            TypedPath::Text => "_lp_s",
            TypedPath::Long => "_lp_l",
            TypedPath::Double => "_lp_d",
            TypedPath::Bool => "_lp_b",
            TypedPath::Keyword => "_lp_k",
            TypedPath::Ip => "_lp_ip",
            TypedPath::Timestamp => "_lp_ts",
        }
    }

    /// The Elasticsearch field of record field `name` in this path.
    pub(crate) fn field(self, name: &str) -> String {
        format!("{}.{}", self.object(), encode_field_name(name))
    }

    fn mapping(self, keyword_ignore_above: u32) -> Value {
        match self {
            TypedPath::Text => json!({
                "type": "text",
                "analyzer": "lp_text",
                "norms": false,
                "fields": {"keyword": {"type": "keyword", "ignore_above": keyword_ignore_above}}
            }),
            TypedPath::Long | TypedPath::Timestamp => json!({"type": "long"}),
            TypedPath::Double => json!({"type": "double"}),
            TypedPath::Bool => json!({"type": "boolean"}),
            // Lucene refuses terms over 32766 bytes; 8191 characters always fit.
            TypedPath::Keyword => json!({"type": "keyword", "ignore_above": 8191}),
            TypedPath::Ip => json!({"type": "ip"}),
        }
    }

    /// Where a field declared `hint` goes, or `None` when the value's own type decides.
    fn for_hint(hint: FieldType) -> TypedPath {
        match hint {
            FieldType::Text => TypedPath::Text,
            FieldType::Keyword => TypedPath::Keyword,
            FieldType::Long => TypedPath::Long,
            FieldType::Double => TypedPath::Double,
            FieldType::Bool => TypedPath::Bool,
            FieldType::Ip => TypedPath::Ip,
            FieldType::Timestamp => TypedPath::Timestamp,
        }
    }

    fn for_value(value: &FieldValue) -> TypedPath {
        match value {
            FieldValue::Str(_) => TypedPath::Text,
            FieldValue::Long(_) => TypedPath::Long,
            FieldValue::Double(_) => TypedPath::Double,
            FieldValue::Bool(_) => TypedPath::Bool,
        }
    }
}

/// Template settings that come from the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TemplateSettings {
    pub(crate) number_of_shards: u32,
    pub(crate) number_of_replicas: u32,
    pub(crate) total_fields_limit: u32,
    pub(crate) keyword_ignore_above: u32,
}

/// The composable index template of a pool (`PUT _index_template/{name}`).
pub(crate) fn template_body(prefix: &str, pool: &PoolRoute, settings: TemplateSettings) -> Value {
    // The raw line is full text only, as in the embedded index and Elasticsearch's own
    // log templates (`match_only_text`): a keyword of nearly unique lines would be
    // a second copy of them, for grouping by whole lines, which pipe SQL refuses. The
    // first matching dynamic template wins, so this one comes before `_lp_s.*`.
    let message_template = json!({
        "lp_message": {
            "path_match": TypedPath::Text.field(MESSAGE_FIELD),
            "mapping": {"type": "text", "analyzer": "lp_text", "norms": false},
        }
    });
    let dynamic_templates: Vec<Value> = std::iter::once(message_template)
        .chain(TypedPath::ALL.iter().map(|path| {
            let mut entry = Map::new();
            entry.insert(
                format!("lp{}", path.object()),
                json!({
                    "path_match": format!("{}.*", path.object()),
                    "mapping": path.mapping(settings.keyword_ignore_above),
                }),
            );
            Value::Object(entry)
        }))
        .chain([TIMESTAMP_MS, TIMESTAMP_SUB].iter().map(|object| {
            let mut entry = Map::new();
            entry.insert(
                format!("lp{object}"),
                json!({"path_match": format!("{object}.*"), "mapping": {"type": "long"}}),
            );
            Value::Object(entry)
        }))
        .collect();
    let mut properties = json!({
        TIME: {"type": "long"},
        TIME_MS: {"type": "long"},
        TIME_SUB: {"type": "integer"},
        TIEBREAK: {"type": "keyword"},
        SHARD: {"type": "integer"},
        RECORD: {"type": "keyword", "index": false, "doc_values": false},
        ALL_TEXT: {"type": "text", "analyzer": "lp_text", "norms": false},
        FIELD_NAMES: {"type": "keyword"},
    });
    if let Some(map) = properties.as_object_mut() {
        for object in TypedPath::ALL
            .iter()
            .map(|path| path.object())
            .chain([TIMESTAMP_MS, TIMESTAMP_SUB])
        {
            map.insert(
                object.to_string(),
                json!({"type": "object", "dynamic": true}),
            );
        }
    }
    // The derived copies are rebuilt from `_lp_record` at write time; keeping them out of
    // `_source` halves what is stored per record.
    let mut source_excludes: Vec<&str> = vec![ALL_TEXT, FIELD_NAMES, TIME_MS, TIME_SUB];
    source_excludes.extend(TypedPath::ALL.iter().map(|path| path.object()));
    source_excludes.extend([TIMESTAMP_MS, TIMESTAMP_SUB]);
    let mut aliases = Map::new();
    aliases.insert(alias_name(prefix, pool), json!({}));
    json!({
        "index_patterns": [pool_index_pattern(prefix, pool.pool_id)],
        // Above catch-all user templates; pool patterns never overlap each other.
        "priority": 200,
        "_meta": {"managed_by": "logpool", "pool_id": pool.pool_id},
        "template": {
            "settings": {
                "number_of_shards": settings.number_of_shards,
                "number_of_replicas": settings.number_of_replicas,
                "index.mapping.total_fields.limit": settings.total_fields_limit,
                "analysis": {
                    "tokenizer": {
                        "lp_tokenizer": {
                            "type": "pattern",
                            "pattern": "[\\p{L}\\p{N}\\p{Mn}\\p{Mc}]+",
                            "group": 0
                        }
                    },
                    "filter": {"lp_max_length": {"type": "length", "max": logpool_core::query::MAX_TOKEN_BYTES}},
                    "analyzer": {
                        "lp_text": {
                            "type": "custom",
                            "tokenizer": "lp_tokenizer",
                            "filter": ["lowercase", "lp_max_length"]
                        }
                    }
                }
            },
            "aliases": aliases,
            "mappings": {
                // Only the typed objects take new fields; a stray top-level field is a bug.
                "dynamic": "strict",
                "_source": {"excludes": source_excludes},
                "dynamic_templates": dynamic_templates,
                "properties": properties,
            }
        }
    })
}

/// Builds the document of one record, or says why it can never be indexed.
pub(crate) fn document(doc: &IndexDoc, pool: &PoolRoute) -> Result<Value, String> {
    let record = &doc.record;
    let fields_json = record.fields_json();
    let record_text = serde_json::to_string(&fields_json)
        .map_err(|error| format!("record cannot be serialized: {error}"))?;
    let mut typed: Vec<Map<String, Value>> = vec![Map::new(); TypedPath::ALL.len()];
    // Text of every value but numbers, which bare terms find by value in their own
    // typed path (see `dsl::compile`), as the embedded index does.
    let mut all_text: Vec<Value> = Vec::with_capacity(record.fields.len());
    let (mut timestamp_ms, mut timestamp_sub) = (Map::new(), Map::new());
    for (name, sent) in &record.fields {
        // A value that cannot have its declared type overflows into the text path.
        let (path, value) = match pool.field_hints.get(name) {
            Some(hint) => match apply_hint(sent, *hint) {
                Typed::Fits(converted) => (TypedPath::for_hint(*hint), converted),
                Typed::Overflow(text) => (TypedPath::Text, FieldValue::Str(text)),
            },
            None => (TypedPath::for_value(sent), sent.clone()),
        };
        let json_value = match path {
            TypedPath::Keyword | TypedPath::Ip => Value::String(value.as_text()),
            TypedPath::Timestamp => {
                let time_ns = parse_time_text(&value.as_text())
                    .map_err(|error| format!("field `{name}` is declared a timestamp: {error}"))?;
                timestamp_ms.insert(
                    encode_field_name(name),
                    Value::from(time_ns.div_euclid(NS_PER_MS)),
                );
                timestamp_sub.insert(
                    encode_field_name(name),
                    Value::from(time_ns.rem_euclid(NS_PER_MS)),
                );
                Value::from(time_ns)
            }
            _ => value.to_json(),
        };
        if !matches!(path, TypedPath::Long | TypedPath::Double) {
            all_text.push(Value::String(sent.as_text()));
        }
        let slot = TypedPath::ALL
            .iter()
            .position(|candidate| *candidate == path)
            .unwrap_or(0);
        typed[slot].insert(encode_field_name(name), json_value);
    }
    let mut source = Map::new();
    source.insert(TIME.into(), Value::from(record.time_ns));
    source.insert(
        TIME_MS.into(),
        Value::from(record.time_ns.div_euclid(NS_PER_MS)),
    );
    source.insert(
        TIME_SUB.into(),
        Value::from(record.time_ns.rem_euclid(NS_PER_MS)),
    );
    source.insert(
        TIEBREAK.into(),
        Value::String(tiebreak_text(doc.identity.tiebreak())),
    );
    source.insert(SHARD.into(), Value::from(doc.shard));
    source.insert(RECORD.into(), Value::String(record_text));
    // One array element per field: the text field's position gap keeps phrases from
    // spanning two fields, as in the embedded index.
    source.insert(ALL_TEXT.into(), Value::Array(all_text));
    source.insert(
        FIELD_NAMES.into(),
        Value::Array(
            field_names_with_prefixes(record)
                .into_iter()
                .map(Value::String)
                .collect(),
        ),
    );
    let objects = TypedPath::ALL
        .iter()
        .map(|path| path.object())
        .chain([TIMESTAMP_MS, TIMESTAMP_SUB]);
    for (object, values) in objects.zip(typed.into_iter().chain([timestamp_ms, timestamp_sub])) {
        if !values.is_empty() {
            source.insert(object.into(), Value::Object(values));
        }
    }
    Ok(Value::Object(source))
}

/// The tiebreak as a fixed-width hex string: string order is numeric order.
pub(crate) fn tiebreak_text(tiebreak: u64) -> String {
    format!("{tiebreak:016x}")
}

/// `http.status` is present as `http.status` and `http`, like a nested object in ES.
fn field_names_with_prefixes(record: &Record) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for name in record.fields.keys() {
        for (index, c) in name.char_indices() {
            if c == '.' {
                names.insert(name[..index].to_string());
            }
        }
        names.insert(name.clone());
    }
    names
}

#[cfg(test)]
mod tests {
    use logpool_core::pool_id::PoolId;
    use std::collections::BTreeMap;

    use logpool_core::doc_id::DocIdentity;

    use super::*;

    fn pool(hints: &[(&str, FieldType)]) -> PoolRoute {
        PoolRoute {
            pool_id: PoolId::new(3),
            tenant: "default".into(),
            project: "p".into(),
            name: "web".into(),
            partitions: vec![0],
            retention_days: 7,
            field_hints: hints
                .iter()
                .map(|(name, hint)| (name.to_string(), *hint))
                .collect(),
            event_window: Default::default(),
            learned_types: Default::default(),
        }
    }

    fn doc(fields: &[(&str, FieldValue)]) -> IndexDoc {
        IndexDoc {
            identity: DocIdentity {
                pool_id: PoolId::new(3),
                partition: 1,
                position: 2,
                index_in_batch: 3,
            },
            shard: 1,
            record: Record {
                time_ns: -1,
                fields: fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect::<BTreeMap<_, _>>(),
            },
        }
    }

    #[test]
    fn test_document_splits_values_by_type_and_keeps_the_record() {
        let doc = doc(&[
            ("message", FieldValue::Str("Disk full".into())),
            ("status", FieldValue::Long(500)),
            ("latency", FieldValue::Double(1.5)),
            ("ok", FieldValue::Bool(false)),
            ("http.method", FieldValue::Str("GET".into())),
        ]);
        let source = document(&doc, &pool(&[])).expect("document");
        assert_eq!(source[TIME], json!(-1));
        assert_eq!(source[TIME_MS], json!(-1));
        assert_eq!(source[TIME_SUB], json!(999_999));
        assert_eq!(source[TIEBREAK], json!("0100000000020003"));
        assert_eq!(source["_lp_s"]["http%2Emethod"], json!("GET"));
        assert_eq!(source["_lp_l"]["status"], json!(500));
        assert_eq!(source["_lp_d"]["latency"], json!(1.5));
        assert_eq!(source["_lp_b"]["ok"], json!(false));
        assert_eq!(
            source[FIELD_NAMES],
            json!(["http", "http.method", "latency", "message", "ok", "status"])
        );
        let record: Map<String, Value> =
            serde_json::from_str(source[RECORD].as_str().expect("record text")).expect("json");
        assert_eq!(record, doc.record.fields_json());
    }

    #[test]
    fn test_document_follows_hints() {
        let hints = [
            ("status", FieldType::Long),
            ("user", FieldType::Keyword),
            ("at", FieldType::Timestamp),
        ];
        let source = document(
            &doc(&[
                ("status", FieldValue::Str("abc".into())),
                ("user", FieldValue::Long(42)),
                ("at", FieldValue::Str("2023-11-14T22:13:20Z".into())),
            ]),
            &pool(&hints),
        )
        .expect("document");
        // A value that cannot be a long overflows into the text path.
        assert_eq!(source["_lp_s"]["status"], json!("abc"));
        assert_eq!(source["_lp_l"].get("status"), None);
        assert_eq!(source["_lp_k"]["user"], json!("42"));
        assert_eq!(source["_lp_ts"]["at"], json!(1_700_000_000_000_000_000_i64));
        let overflow = document(
            &doc(&[("at", FieldValue::Str("yesterday".into()))]),
            &pool(&hints),
        )
        .expect("kept");
        assert_eq!(overflow["_lp_s"]["at"], json!("yesterday"));
    }
}
