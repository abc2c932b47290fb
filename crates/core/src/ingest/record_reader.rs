//! One submitted log record, read in a single pass over its JSON.
//!
//! A serde visitor walks the record, flattens nested objects into dotted names and
//! checks every limit as it goes, handing each field to a [`FieldSink`]: a
//! [`Record`]'s map, or straight into a queue batch's JSON (see
//! [`super::batch_json`]). No intermediate `serde_json::Value` tree is built and
//! dropped per record; for NDJSON bodies that tree was about a third of put-datas'
//! parsing time. NDJSON lines and the records of a JSON envelope are read by this
//! one visitor, so every body format obeys one set of rules.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{
    check_field_name, check_value_size, epoch_float_to_ns, epoch_integer_to_ns, invalid,
    parse_event_time, parse_time_text, IngestError, NOT_A_TIME, TIME_FIELD,
};
use crate::limits::IngestLimits;
use crate::record::{FieldValue, Record, MESSAGE_FIELD};

/// Nested objects deeper than this are refused rather than flattened.
const MAX_NESTING_DEPTH: usize = 16;

thread_local! {
    /// The buffer dotted names are built in, kept from one record to the next so
    /// that reading a record allocates nothing for its names.
    static NAME_BUFFER: std::cell::Cell<String> = const { std::cell::Cell::new(String::new()) };
}

/// The member of an Elasticsearch document that holds its time.
pub const TIMESTAMP_FIELD: &str = "@timestamp";
/// Where a document's own `time` goes when it also has an `@timestamp`.
pub const DISPLACED_TIME_FIELD: &str = "time_original";

/// Which member of a record is its event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeMember {
    /// `time`, as PutDatas takes it.
    Time,
    /// `@timestamp` (Elasticsearch documents); the record's own `time` is then kept
    /// as the field `time_original`. A record without `@timestamp` has its `time`.
    Timestamp,
}

/// Where a record sits in its request, for error messages: `line 7`, `logs[3]`.
#[derive(Debug, Clone, Copy)]
pub(super) enum RecordPlace {
    /// 1-based line of an NDJSON body.
    Line(usize),
    /// Index in a JSON envelope's `logs`.
    Log(usize),
}

impl fmt::Display for RecordPlace {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordPlace::Line(line) => write!(formatter, "line {line}"),
            RecordPlace::Log(index) => write!(formatter, "logs[{index}]"),
        }
    }
}

/// One field's value as the reader hands it over; text stays borrowed from the
/// request where it can.
#[derive(Debug)]
pub(super) enum Scalar<'v> {
    Bool(bool),
    Long(i64),
    Double(f64),
    Text(&'v str),
    /// Text borrowed from the JSON text being read, as it stands there. It holds no
    /// quote, backslash or control character: a string with any escape cannot be
    /// borrowed from the source (it differs from its unescaped value), and raw
    /// control characters are not valid JSON. It can be written back verbatim.
    Source(&'v str),
    OwnedText(String),
}

impl<'v> From<&'v FieldValue> for Scalar<'v> {
    fn from(value: &'v FieldValue) -> Scalar<'v> {
        match value {
            FieldValue::Bool(b) => Scalar::Bool(*b),
            FieldValue::Long(n) => Scalar::Long(*n),
            FieldValue::Double(x) => Scalar::Double(*x),
            FieldValue::Str(text) => Scalar::Text(text),
        }
    }
}

impl Scalar<'_> {
    /// The length of a text value, in bytes; `None` for other values.
    pub(super) fn text_len(&self) -> Option<usize> {
        match self {
            Scalar::Text(text) | Scalar::Source(text) => Some(text.len()),
            Scalar::OwnedText(text) => Some(text.len()),
            Scalar::Bool(_) | Scalar::Long(_) | Scalar::Double(_) => None,
        }
    }

    pub(super) fn into_field_value(self) -> FieldValue {
        match self {
            Scalar::Bool(b) => FieldValue::Bool(b),
            Scalar::Long(n) => FieldValue::Long(n),
            Scalar::Double(x) => FieldValue::Double(x),
            Scalar::Text(text) | Scalar::Source(text) => FieldValue::Str(text.to_string()),
            Scalar::OwnedText(text) => FieldValue::Str(text),
        }
    }
}

/// Where a record's fields go.
pub(super) trait FieldSink {
    /// Takes one flattened field. Returns how many distinct fields the record now
    /// has, for `max_fields_per_record`.
    fn field(&mut self, name: &str, value: Scalar<'_>) -> usize;
}

/// Fields into a [`Record`]'s map; a repeated name keeps its last value.
struct RecordFields(BTreeMap<String, FieldValue>);

impl FieldSink for RecordFields {
    fn field(&mut self, name: &str, value: Scalar<'_>) -> usize {
        self.0.insert(name.to_string(), value.into_field_value());
        self.0.len()
    }
}

/// What a failed read means: the JSON itself was malformed (serde's error, with its
/// position), or it was well-formed and refused by a rule (the [`IngestError`]).
pub(super) enum ReadFailure<E> {
    /// The deserializer's own error.
    Syntax(E),
    /// A rule refused the record.
    Refused(IngestError),
}

/// Reads one record from `deserializer` into `sink`; returns its event time (the
/// `time` field, else `arrival_time_ns`).
pub(super) fn read_record<'de, D: Deserializer<'de>, S: FieldSink + ?Sized>(
    deserializer: D,
    place: RecordPlace,
    sink: &mut S,
    arrival_time_ns: i64,
    limits: &IngestLimits,
) -> Result<i64, ReadFailure<D::Error>> {
    read_record_timed(
        deserializer,
        place,
        sink,
        arrival_time_ns,
        limits,
        TimeMember::Time,
    )
}

/// As [`read_record`], the event time in `time_member`.
pub(super) fn read_record_timed<'de, D: Deserializer<'de>, S: FieldSink + ?Sized>(
    deserializer: D,
    place: RecordPlace,
    sink: &mut S,
    arrival_time_ns: i64,
    limits: &IngestLimits,
    time_member: TimeMember,
) -> Result<i64, ReadFailure<D::Error>> {
    let mut name = NAME_BUFFER.take();
    name.clear();
    let mut reader = RecordReader {
        sink,
        name,
        time_ns: arrival_time_ns,
        place,
        limits,
        refused: None,
        time_member,
    };
    let read = deserializer.deserialize_any(RecordVisitor(&mut reader));
    NAME_BUFFER.set(std::mem::take(&mut reader.name));
    match read {
        Ok(()) => Ok(reader.time_ns),
        // A refusal travels through serde as an opaque error; the real one is kept.
        Err(error) => Err(match reader.refused.take() {
            Some(refused) => ReadFailure::Refused(refused),
            None => ReadFailure::Syntax(error),
        }),
    }
}

/// Reads one record into a [`Record`], on top of the request's `shared` fields
/// (source, tags), which the record's own fields of the same name override. `read`
/// reads the record's own fields into the sink it is given and returns the event
/// time.
pub(super) fn read_into_record(
    shared: &BTreeMap<String, FieldValue>,
    read: impl Fn(&mut dyn FieldSink) -> Result<i64, IngestError>,
) -> Result<Record, IngestError> {
    let mut fields = RecordFields(shared.clone());
    let time_ns = read(&mut fields)?;
    Ok(Record {
        time_ns,
        fields: fields.0,
    })
}

/// A record's state while its JSON is walked.
struct RecordReader<'a, S: ?Sized> {
    sink: &'a mut S,
    /// The dotted name of the field being read (the thread's [`NAME_BUFFER`]).
    name: String,
    time_ns: i64,
    place: RecordPlace,
    limits: &'a IngestLimits,
    refused: Option<IngestError>,
    time_member: TimeMember,
}

impl<S: FieldSink + ?Sized> RecordReader<'_, S> {
    /// Keeps the refusal and returns the error that stops the deserializer.
    fn refuse<E: de::Error>(&mut self, error: IngestError) -> E {
        let stop = E::custom(&error);
        self.refused = Some(error);
        stop
    }

    fn not_an_object<E: de::Error>(&mut self) -> E {
        let error = invalid(
            &self.place.to_string(),
            "a log record must be a JSON object",
        );
        self.refuse(error)
    }

    /// Takes `value` as the record's event time (`null` leaves the arrival time).
    fn set_time<E: de::Error>(&mut self, value: &Value) -> Result<(), E> {
        if value.is_null() {
            return Ok(());
        }
        self.set_parsed_time(parse_event_time(value))
    }

    /// Takes a time read by [`TimeSeed`] (`None`: `null`, the arrival time stays).
    fn set_parsed_time<E: de::Error>(&mut self, parsed: Result<i64, String>) -> Result<(), E> {
        match parsed {
            Ok(time_ns) => {
                self.time_ns = time_ns;
                Ok(())
            }
            Err(message) => {
                let path = format!("{}.{TIME_FIELD}", self.place);
                Err(self.refuse(invalid(&path, &message)))
            }
        }
    }

    /// The current field's path, for error messages only.
    fn field_path(&self) -> String {
        format!("{}.{}", self.place, self.name)
    }

    fn refuse_field<E: de::Error>(&mut self, message: &str) -> E {
        let error = invalid(&self.field_path(), message);
        self.refuse(error)
    }

    fn insert<E: de::Error>(&mut self, value: Scalar<'_>) -> Result<(), E> {
        if let Some(len) = value.text_len() {
            if let Err(error) = check_value_size(&self.name, || self.field_path(), len, self.limits)
            {
                return Err(self.refuse(error));
            }
        }
        let value = match value {
            // The raw line is always text, whatever the client sent.
            Scalar::Bool(_) | Scalar::Long(_) | Scalar::Double(_) if self.name == MESSAGE_FIELD => {
                Scalar::OwnedText(value.into_field_value().as_text())
            }
            other => other,
        };
        let count = self.sink.field(&self.name, value);
        if count > self.limits.max_fields_per_record {
            let error = IngestError::LimitExceeded {
                limit: "max_fields_per_record",
                path: self.place.to_string(),
                message: format!(
                    "record has more than {limit} fields, the limit is {limit}",
                    limit = self.limits.max_fields_per_record
                ),
            };
            return Err(self.refuse(error));
        }
        Ok(())
    }
}

/// The record itself: must be an object.
struct RecordVisitor<'r, 'a, S: ?Sized>(&'r mut RecordReader<'a, S>);

impl<'de, S: FieldSink + ?Sized> Visitor<'de> for RecordVisitor<'_, '_, S> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a log record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let by_timestamp = self.0.time_member == TimeMember::Timestamp;
        // With `@timestamp` as the time, the record's own `time` waits until the end:
        // it is the time only if no `@timestamp` came.
        let mut own_time: Option<Value> = None;
        let mut has_timestamp = false;
        while map.next_key_seed(NameSeed(&mut self.0.name))?.is_some() {
            let is_time = self.0.name == TIME_FIELD;
            if (by_timestamp && self.0.name == TIMESTAMP_FIELD) || (is_time && !by_timestamp) {
                self.0.name.clear();
                has_timestamp |= by_timestamp;
                if let Some(parsed) = map.next_value_seed(TimeSeed)? {
                    self.0.set_parsed_time(parsed)?;
                }
                continue;
            }
            if is_time {
                // Kept until the end: the time only if no `@timestamp` comes.
                self.0.name.clear();
                own_time = Some(map.next_value()?);
                continue;
            }
            map.next_value_seed(FieldSeed {
                reader: &mut *self.0,
                prefix_len: 0,
                depth: 0,
            })?;
        }
        match own_time {
            Some(value) if has_timestamp => {
                self.0.name.clear();
                self.0.name.push_str(DISPLACED_TIME_FIELD);
                FieldSeed {
                    reader: &mut *self.0,
                    prefix_len: 0,
                    depth: 0,
                }
                .deserialize(value)
                .map_err(de::Error::custom)?;
            }
            Some(value) => self.0.set_time(&value)?,
            None => {}
        }
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.0.not_an_object())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.0.not_an_object())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(self.0.not_an_object())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.0.not_an_object())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.0.not_an_object())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.0.not_an_object())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.0.not_an_object())
    }
}

/// A time member's value read as [`parse_event_time`] reads it, without building a
/// `Value` first (whose text would be a copy per record): `None` for `null`, else the
/// time or why it is none.
struct TimeSeed;

impl<'de> DeserializeSeed<'de> for TimeSeed {
    type Value = Option<Result<i64, String>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TimeSeed {
    type Value = Option<Result<i64, String>>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a time")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Some(Ok(epoch_integer_to_ns(value))))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Some(match i64::try_from(value) {
            Ok(value) => Ok(epoch_integer_to_ns(value)),
            // As `serde_json::Number::as_f64` gives it.
            Err(_) => epoch_float_to_ns(value as f64),
        }))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        Ok(Some(epoch_float_to_ns(value)))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Some(parse_time_text(value)))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Some(Err(NOT_A_TIME.to_string())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(Some(Err(NOT_A_TIME.to_string())))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Some(Err(NOT_A_TIME.to_string())))
    }
}

/// A key, appended to the dotted name being built (no allocation per key).
struct NameSeed<'n>(&'n mut String);

impl<'de> DeserializeSeed<'de> for NameSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for NameSeed<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<(), E> {
        self.0.push_str(key);
        Ok(())
    }
}

/// One field's value; the reader's `name` holds its dotted name, which is cut back
/// to `prefix_len` once the value is read.
struct FieldSeed<'r, 'a, S: ?Sized> {
    reader: &'r mut RecordReader<'a, S>,
    prefix_len: usize,
    depth: usize,
}

impl<S: FieldSink + ?Sized> FieldSeed<'_, '_, S> {
    fn insert<E: de::Error>(self, value: Scalar<'_>) -> Result<(), E> {
        self.reader.insert(value)?;
        self.reader.name.truncate(self.prefix_len);
        Ok(())
    }
}

impl<'de, S: FieldSink + ?Sized> DeserializeSeed<'de> for FieldSeed<'_, '_, S> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        // The name is checked before its value is read, whatever the value is.
        let reader = &mut *self.reader;
        if let Err(error) = check_field_name(&reader.name, || reader.field_path(), reader.limits) {
            return Err(reader.refuse(error));
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de, S: FieldSink + ?Sized> Visitor<'de> for FieldSeed<'_, '_, S> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string, number, bool, null or object")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        // A null field is no field.
        self.reader.name.truncate(self.prefix_len);
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<(), E> {
        self.insert(Scalar::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        self.insert(Scalar::Long(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        self.insert(match i64::try_from(value) {
            Ok(value) => Scalar::Long(value),
            Err(_) => Scalar::Double(value as f64),
        })
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        self.insert(Scalar::Double(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        self.insert(Scalar::Text(value))
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<(), E> {
        self.insert(Scalar::Source(value))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<(), E> {
        self.insert(Scalar::OwnedText(value))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.depth >= MAX_NESTING_DEPTH {
            return Err(self.reader.refuse_field(&format!(
                "objects nested deeper than {MAX_NESTING_DEPTH} levels are not accepted"
            )));
        }
        let own_len = self.reader.name.len();
        loop {
            self.reader.name.push('.');
            if map
                .next_key_seed(NameSeed(&mut self.reader.name))?
                .is_none()
            {
                break;
            }
            map.next_value_seed(FieldSeed {
                reader: &mut *self.reader,
                prefix_len: own_len,
                depth: self.depth + 1,
            })?;
        }
        self.reader.name.truncate(self.prefix_len);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self
            .reader
            .refuse_field("arrays are not supported; send a string, number, bool or object"))
    }
}
