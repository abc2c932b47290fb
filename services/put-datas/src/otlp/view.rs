//! An OTLP `ExportLogsServiceRequest` as the mapping reads it: text and bytes
//! borrowed from where they are, so that no string is copied per attribute.
//!
//! A protobuf body is read here by hand ([`decode`]) in the shape senders write: one
//! pass, the strings borrowed from the body. Anything unusual (a singular message
//! sent twice, which protobuf merges; an `AnyValue` with two values; groups; a
//! malformed field; nesting past [`MAX_DEPTH`]) makes [`decode`] give up, and the
//! body is read by prost's generated decoder instead ([`Export::from_owned`]), which
//! decides as before what is accepted and how. What [`decode`] accepts, it reads as
//! prost does (a test holds the two together): unknown fields skipped, the last of a
//! repeated scalar kept, strings checked as UTF-8. OTLP/JSON is read into the prost
//! types and borrowed from them the same way.

use super::proto::{
    AnyValue, ExportLogsServiceRequest, InstrumentationScope, KeyValue, LogRecord, Value,
};

/// Nesting (messages within messages) read by hand; deeper requests go to prost,
/// whose own limit then applies.
pub const MAX_DEPTH: usize = 32;

/// The request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Export<'a> {
    /// One entry per resource.
    pub resource_logs: Vec<ResourceLogsView<'a>>,
}

/// `ResourceLogs`: the resource's attributes and its records by scope.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceLogsView<'a> {
    /// The resource's attributes (none when it has no resource).
    pub attributes: Vec<KeyValueView<'a>>,
    /// The records, per instrumentation scope.
    pub scope_logs: Vec<ScopeLogsView<'a>>,
}

/// `ScopeLogs`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScopeLogsView<'a> {
    /// The scope (empty when none was sent).
    pub scope: ScopeView<'a>,
    /// The records.
    pub log_records: Vec<LogRecordView<'a>>,
}

/// `InstrumentationScope`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScopeView<'a> {
    /// The scope's name.
    pub name: &'a str,
    /// The scope's version.
    pub version: &'a str,
    /// The scope's attributes.
    pub attributes: Vec<KeyValueView<'a>>,
}

/// `LogRecord`; see [`LogRecord`] for the fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogRecordView<'a> {
    /// When the event happened (0 = unknown).
    pub time_unix_nano: u64,
    /// `SeverityNumber`.
    pub severity_number: i32,
    /// The severity as the source wrote it.
    pub severity_text: &'a str,
    /// The body ([`AnyValueView::Empty`] when none).
    pub body: AnyValueView<'a>,
    /// The record's attributes.
    pub attributes: Vec<KeyValueView<'a>>,
    /// W3C trace flags.
    pub flags: u32,
    /// 16 bytes, or empty.
    pub trace_id: &'a [u8],
    /// 8 bytes, or empty.
    pub span_id: &'a [u8],
    /// When the collector saw the event (0 = unknown).
    pub observed_time_unix_nano: u64,
    /// The event's name.
    pub event_name: &'a str,
}

/// `KeyValue`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValueView<'a> {
    /// The attribute's name.
    pub key: &'a str,
    /// Its value ([`AnyValueView::Empty`] when none).
    pub value: AnyValueView<'a>,
}

/// `AnyValue`: its one value, or none.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum AnyValueView<'a> {
    /// No value (the field or its value absent).
    #[default]
    Empty,
    /// Text.
    String(&'a str),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Double(f64),
    /// A list.
    Array(Vec<AnyValueView<'a>>),
    /// A map.
    Kvlist(Vec<KeyValueView<'a>>),
    /// Raw bytes.
    Bytes(&'a [u8]),
}

impl<'a> Export<'a> {
    /// The request prost decoded (or OTLP/JSON was read into), borrowed.
    pub fn from_owned(request: &'a ExportLogsServiceRequest) -> Export<'a> {
        Export {
            resource_logs: request
                .resource_logs
                .iter()
                .map(|resource_logs| ResourceLogsView {
                    attributes: resource_logs
                        .resource
                        .as_ref()
                        .map(|resource| key_values(&resource.attributes))
                        .unwrap_or_default(),
                    scope_logs: resource_logs
                        .scope_logs
                        .iter()
                        .map(|scope_logs| ScopeLogsView {
                            scope: scope_logs
                                .scope
                                .as_ref()
                                .map(scope_view)
                                .unwrap_or_default(),
                            log_records: scope_logs.log_records.iter().map(record_view).collect(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

fn scope_view(scope: &InstrumentationScope) -> ScopeView<'_> {
    ScopeView {
        name: &scope.name,
        version: &scope.version,
        attributes: key_values(&scope.attributes),
    }
}

fn record_view(record: &LogRecord) -> LogRecordView<'_> {
    LogRecordView {
        time_unix_nano: record.time_unix_nano,
        severity_number: record.severity_number,
        severity_text: &record.severity_text,
        body: record.body.as_ref().map(any_value).unwrap_or_default(),
        attributes: key_values(&record.attributes),
        flags: record.flags,
        trace_id: &record.trace_id,
        span_id: &record.span_id,
        observed_time_unix_nano: record.observed_time_unix_nano,
        event_name: &record.event_name,
    }
}

fn key_values(attributes: &[KeyValue]) -> Vec<KeyValueView<'_>> {
    attributes
        .iter()
        .map(|kv| KeyValueView {
            key: &kv.key,
            value: kv.value.as_ref().map(any_value).unwrap_or_default(),
        })
        .collect()
}

fn any_value(value: &AnyValue) -> AnyValueView<'_> {
    match &value.value {
        None => AnyValueView::Empty,
        Some(Value::StringValue(text)) => AnyValueView::String(text),
        Some(Value::BoolValue(flag)) => AnyValueView::Bool(*flag),
        Some(Value::IntValue(number)) => AnyValueView::Int(*number),
        Some(Value::DoubleValue(number)) => AnyValueView::Double(*number),
        Some(Value::ArrayValue(array)) => {
            AnyValueView::Array(array.values.iter().map(any_value).collect())
        }
        Some(Value::KvlistValue(map)) => AnyValueView::Kvlist(key_values(&map.values)),
        Some(Value::BytesValue(bytes)) => AnyValueView::Bytes(bytes),
    }
}

/// Reads a protobuf `ExportLogsServiceRequest` in one pass, borrowing its text;
/// `None` when the body is unusual or malformed (see the module documentation), to
/// be read by prost instead.
pub fn decode(body: &[u8]) -> Option<Export<'_>> {
    let mut export = Export::default();
    let mut reader = Reader::new(body);
    while let Some(field) = reader.field()? {
        match field {
            Field::Bytes(1, message) => export.resource_logs.push(resource_logs(message)?),
            other => other.skip_if_unknown(&[1])?,
        }
    }
    Some(export)
}

fn resource_logs(message: &[u8]) -> Option<ResourceLogsView<'_>> {
    let mut view = ResourceLogsView::default();
    let mut has_resource = false;
    let mut reader = Reader::new(message);
    while let Some(field) = reader.field()? {
        match field {
            Field::Bytes(1, resource) => {
                // Protobuf merges a message sent twice: prost's business.
                if std::mem::replace(&mut has_resource, true) {
                    return None;
                }
                let mut reader = Reader::new(resource);
                while let Some(field) = reader.field()? {
                    match field {
                        Field::Bytes(1, kv) => view.attributes.push(key_value(kv, 3)?),
                        other => other.skip_if_unknown(&[1])?,
                    }
                }
            }
            Field::Bytes(2, scope_logs) => view.scope_logs.push(self::scope_logs(scope_logs)?),
            other => other.skip_if_unknown(&[1, 2])?,
        }
    }
    Some(view)
}

fn scope_logs(message: &[u8]) -> Option<ScopeLogsView<'_>> {
    let mut view = ScopeLogsView::default();
    let mut has_scope = false;
    let mut reader = Reader::new(message);
    while let Some(field) = reader.field()? {
        match field {
            Field::Bytes(1, scope) => {
                if std::mem::replace(&mut has_scope, true) {
                    return None;
                }
                view.scope = self::scope(scope)?;
            }
            Field::Bytes(2, record) => view.log_records.push(log_record(record)?),
            other => other.skip_if_unknown(&[1, 2])?,
        }
    }
    Some(view)
}

fn scope(message: &[u8]) -> Option<ScopeView<'_>> {
    let mut view = ScopeView::default();
    let mut reader = Reader::new(message);
    while let Some(field) = reader.field()? {
        match field {
            Field::Bytes(1, name) => view.name = text(name)?,
            Field::Bytes(2, version) => view.version = text(version)?,
            Field::Bytes(3, kv) => view.attributes.push(key_value(kv, 4)?),
            other => other.skip_if_unknown(&[1, 2, 3])?,
        }
    }
    Some(view)
}

fn log_record(message: &[u8]) -> Option<LogRecordView<'_>> {
    let mut view = LogRecordView::default();
    let mut has_body = false;
    let mut reader = Reader::new(message);
    while let Some(field) = reader.field()? {
        match field {
            Field::Fixed64(1, time) => view.time_unix_nano = time,
            Field::Varint(2, number) => view.severity_number = number as i32,
            Field::Bytes(3, severity) => view.severity_text = text(severity)?,
            Field::Bytes(5, body) => {
                if std::mem::replace(&mut has_body, true) {
                    return None;
                }
                view.body = any_value_message(body, 4)?;
            }
            Field::Bytes(6, kv) => view.attributes.push(key_value(kv, 4)?),
            Field::Fixed32(8, flags) => view.flags = flags,
            Field::Bytes(9, trace_id) => view.trace_id = trace_id,
            Field::Bytes(10, span_id) => view.span_id = span_id,
            Field::Fixed64(11, observed) => view.observed_time_unix_nano = observed,
            Field::Bytes(12, name) => view.event_name = text(name)?,
            other => other.skip_if_unknown(&[1, 2, 3, 5, 6, 8, 9, 10, 11, 12])?,
        }
    }
    Some(view)
}

/// A `KeyValue` at nesting `depth`.
fn key_value(message: &[u8], depth: usize) -> Option<KeyValueView<'_>> {
    let mut key = "";
    let mut value = None;
    let mut reader = Reader::new(message);
    while let Some(field) = reader.field()? {
        match field {
            Field::Bytes(1, text_bytes) => key = text(text_bytes)?,
            Field::Bytes(2, any) => {
                if value.is_some() {
                    return None;
                }
                value = Some(any_value_message(any, depth + 1)?);
            }
            other => other.skip_if_unknown(&[1, 2])?,
        }
    }
    Some(KeyValueView {
        key,
        value: value.unwrap_or_default(),
    })
}

/// An `AnyValue` at nesting `depth`.
fn any_value_message(message: &[u8], depth: usize) -> Option<AnyValueView<'_>> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut value = None;
    let mut reader = Reader::new(message);
    while let Some(field) = reader.field()? {
        let read = match field {
            Field::Bytes(1, text_bytes) => AnyValueView::String(text(text_bytes)?),
            Field::Varint(2, flag) => AnyValueView::Bool(flag != 0),
            Field::Varint(3, number) => AnyValueView::Int(number as i64),
            Field::Fixed64(4, bits) => AnyValueView::Double(f64::from_bits(bits)),
            Field::Bytes(5, array) => {
                let mut values = Vec::new();
                let mut reader = Reader::new(array);
                while let Some(field) = reader.field()? {
                    match field {
                        Field::Bytes(1, item) => values.push(any_value_message(item, depth + 2)?),
                        other => other.skip_if_unknown(&[1])?,
                    }
                }
                AnyValueView::Array(values)
            }
            Field::Bytes(6, map) => {
                let mut values = Vec::new();
                let mut reader = Reader::new(map);
                while let Some(field) = reader.field()? {
                    match field {
                        Field::Bytes(1, kv) => values.push(key_value(kv, depth + 2)?),
                        other => other.skip_if_unknown(&[1])?,
                    }
                }
                AnyValueView::Kvlist(values)
            }
            Field::Bytes(7, bytes) => AnyValueView::Bytes(bytes),
            other => {
                other.skip_if_unknown(&[1, 2, 3, 4, 5, 6, 7])?;
                continue;
            }
        };
        // A second value: protobuf's oneof rules (replace, or merge two messages)
        // are prost's business.
        if value.replace(read).is_some() {
            return None;
        }
    }
    Some(value.unwrap_or_default())
}

/// A string field's text.
fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

/// One field of a message, by wire type.
enum Field<'a> {
    Varint(u32, u64),
    Fixed64(u32, u64),
    Fixed32(u32, u32),
    Bytes(u32, &'a [u8]),
}

impl Field<'_> {
    /// Skips a field no arm of the caller took; `None` when its tag is one of
    /// `known`, which then came with the wrong wire type (prost refuses that).
    fn skip_if_unknown(&self, known: &[u32]) -> Option<()> {
        let tag = match self {
            Field::Varint(tag, _)
            | Field::Fixed64(tag, _)
            | Field::Fixed32(tag, _)
            | Field::Bytes(tag, _) => *tag,
        };
        (!known.contains(&tag)).then_some(())
    }
}

/// The fields of one message, in order.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, at: 0 }
    }

    /// The next field: `Some(None)` at the end, `None` for what prost refuses
    /// (or groups, which it skips and this does not).
    fn field(&mut self) -> Option<Option<Field<'a>>> {
        if self.at == self.buf.len() {
            return Some(None);
        }
        let key = self.varint()?;
        let key = u32::try_from(key).ok()?;
        let tag = key >> 3;
        if tag == 0 {
            return None;
        }
        let field = match key & 7 {
            0 => Field::Varint(tag, self.varint()?),
            1 => Field::Fixed64(tag, u64::from_le_bytes(self.take(8)?.try_into().ok()?)),
            2 => {
                let length = usize::try_from(self.varint()?).ok()?;
                Field::Bytes(tag, self.take(length)?)
            }
            5 => Field::Fixed32(tag, u32::from_le_bytes(self.take(4)?.try_into().ok()?)),
            _ => return None,
        };
        Some(Some(field))
    }

    fn take(&mut self, length: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(length)?;
        let bytes = self.buf.get(self.at..end)?;
        self.at = end;
        Some(bytes)
    }

    /// A varint as prost reads one: at most ten bytes, the tenth at most 1.
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for index in 0..10 {
            let byte = *self.buf.get(self.at)?;
            self.at += 1;
            if index == 9 && byte > 1 {
                return None;
            }
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::proto::{ArrayValue, KeyValueList, Resource, ResourceLogs, ScopeLogs};
    use super::*;
    use prost::Message as _;

    fn text_kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(value.into())),
            }),
        }
    }

    fn sample() -> ExportLogsServiceRequest {
        let nested = AnyValue {
            value: Some(Value::KvlistValue(KeyValueList {
                values: vec![
                    text_kv("op", "insert é"),
                    KeyValue {
                        key: "list".into(),
                        value: Some(AnyValue {
                            value: Some(Value::ArrayValue(ArrayValue {
                                values: vec![
                                    AnyValue {
                                        value: Some(Value::IntValue(-3)),
                                    },
                                    AnyValue {
                                        value: Some(Value::DoubleValue(0.5)),
                                    },
                                    AnyValue {
                                        value: Some(Value::BoolValue(true)),
                                    },
                                    AnyValue { value: None },
                                ],
                            })),
                        }),
                    },
                    KeyValue {
                        key: "none".into(),
                        value: None,
                    },
                ],
            })),
        };
        let record = LogRecord {
            time_unix_nano: 1_700_000_000_000_000_001,
            observed_time_unix_nano: 7,
            severity_number: -5,
            severity_text: "WARN".into(),
            body: Some(nested.clone()),
            attributes: vec![
                text_kv("host", "node-1"),
                KeyValue {
                    key: "raw".into(),
                    value: Some(AnyValue {
                        value: Some(Value::BytesValue(vec![0, 1, 255])),
                    }),
                },
                KeyValue {
                    key: "map".into(),
                    value: Some(nested),
                },
            ],
            flags: 1,
            trace_id: vec![0xab; 16],
            span_id: vec![1; 8],
            event_name: "ev".into(),
        };
        ExportLogsServiceRequest {
            resource_logs: vec![
                ResourceLogs {
                    resource: Some(Resource {
                        attributes: vec![text_kv("service.name", "api")],
                    }),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: "db".into(),
                            version: "2".into(),
                            attributes: vec![text_kv("k", "v")],
                        }),
                        log_records: vec![record, LogRecord::default()],
                    }],
                },
                ResourceLogs {
                    resource: None,
                    scope_logs: vec![ScopeLogs {
                        scope: None,
                        log_records: vec![LogRecord {
                            body: Some(AnyValue { value: None }),
                            ..LogRecord::default()
                        }],
                    }],
                },
            ],
        }
    }

    /// What prost reads, borrowed.
    fn by_prost(body: &[u8]) -> Option<ExportLogsServiceRequest> {
        ExportLogsServiceRequest::decode(body).ok()
    }

    #[test]
    fn the_hand_reading_is_prosts() {
        let body = sample().encode_to_vec();
        let owned = by_prost(&body).expect("prost reads it");
        assert_eq!(decode(&body), Some(Export::from_owned(&owned)));
        assert_eq!(decode(b""), Some(Export::default()));
    }

    /// Appends a field of tag `tag` and wire type `wire` with `payload` already
    /// encoded.
    fn field(out: &mut Vec<u8>, tag: u32, wire: u32, payload: &[u8]) {
        prost::encoding::encode_varint(u64::from(tag << 3 | wire), out);
        if wire == 2 {
            prost::encoding::encode_varint(payload.len() as u64, out);
        }
        out.extend_from_slice(payload);
    }

    /// A request of one resource, one scope and one record of `record` bytes.
    fn with_record(record: &[u8]) -> Vec<u8> {
        let mut scope_logs = Vec::new();
        field(&mut scope_logs, 2, 2, record);
        let mut resource_logs = Vec::new();
        field(&mut resource_logs, 2, 2, &scope_logs);
        let mut body = Vec::new();
        field(&mut body, 1, 2, &resource_logs);
        body
    }

    #[test]
    fn unknown_fields_are_skipped_and_the_last_scalar_wins() {
        let mut record = Vec::new();
        field(&mut record, 3, 2, b"first");
        field(&mut record, 7, 0, &[0x96, 0x01]); // dropped_attributes_count
        field(&mut record, 99, 1, &[0; 8]);
        field(&mut record, 98, 5, &[0; 4]);
        field(&mut record, 97, 2, b"\xff not text, not read");
        field(&mut record, 3, 2, b"second");
        field(&mut record, 2, 0, &[0xff, 0xff, 0xff, 0xff, 0x0f]);
        let body = with_record(&record);
        let owned = by_prost(&body).expect("prost reads it");
        let view = decode(&body).expect("read by hand");
        assert_eq!(view, Export::from_owned(&owned));
        let read = &view.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!((read.severity_text, read.severity_number), ("second", -1));
    }

    #[test]
    fn what_prost_would_merge_or_refuse_is_left_to_prost() {
        let mut any = Vec::new();
        field(&mut any, 1, 2, b"a");
        field(&mut any, 3, 0, &[5]);
        let mut two_values = Vec::new();
        field(&mut two_values, 5, 2, &any);
        let mut two_bodies = Vec::new();
        field(&mut two_bodies, 5, 2, b"");
        field(&mut two_bodies, 5, 2, b"");
        let mut bad_text = Vec::new();
        field(&mut bad_text, 3, 2, b"\xff");
        let mut wrong_wire = Vec::new();
        field(&mut wrong_wire, 1, 0, &[1]);
        let mut group = Vec::new();
        field(&mut group, 50, 3, &[]);
        field(&mut group, 50, 4, &[]);
        let mut cut = Vec::new();
        field(&mut cut, 3, 2, b"abc");
        cut.pop();
        let mut deep = AnyValue {
            value: Some(Value::StringValue("leaf".into())),
        };
        for _ in 0..40 {
            deep = AnyValue {
                value: Some(Value::ArrayValue(ArrayValue { values: vec![deep] })),
            };
        }
        let deep_record = LogRecord {
            body: Some(deep),
            ..LogRecord::default()
        }
        .encode_to_vec();
        for (name, record, prost_reads) in [
            ("two values", two_values, true),
            ("two bodies", two_bodies, true),
            ("bad UTF-8", bad_text, false),
            ("wrong wire type", wrong_wire, false),
            ("a group", group, true),
            ("cut short", cut, false),
            ("deep", deep_record, true),
        ] {
            let body = with_record(&record);
            assert_eq!(decode(&body), None, "{name}");
            assert_eq!(by_prost(&body).is_some(), prost_reads, "{name}");
        }
    }
}
