//! Records a shipper protocol has already decoded (OTLP, Loki, syslog), written
//! straight into queue-batch JSON under PutDatas' rules.
//!
//! The protocols used to write a PutDatas JSON body that PutDatas then parsed again.
//! Here each field goes from the protocol's value (anything `Serialize`) to the batch
//! JSON in one step, checked by the same rules as a PutDatas record: nested objects
//! flattened into dotted names, names and values under their limits, `message`
//! always text, `null` left out, arrays refused, the top-level `time` read as the
//! event time, a repeated name keeping its last value. The first refusal is kept and
//! given back by [`StructuredRecords::into_encoded`], where a PutDatas body would
//! have been read; records outside the pool's event-time window are left out there
//! too. Records are named `logs[i]`, as in a PutDatas JSON body.

mod field_serializer;

use std::collections::BTreeMap;

use serde::Serialize;

use field_serializer::{FieldSerializer, Stop};

use super::record_reader::{read_record, FieldSink, ReadFailure, RecordPlace, Scalar};
use super::window::{EventTimeWindow, Refusals};
use super::{check_value_size, invalid, parse_event_time, IngestError, TIME_FIELD};
use crate::batch::EncodedRecords;
use crate::limits::IngestLimits;
use crate::record::{FieldValue, Record, MESSAGE_FIELD};
use crate::stable_hash::fnv1a;

/// Nested objects deeper than this are refused rather than flattened (as PutDatas).
const MAX_NESTING_DEPTH: usize = 16;

/// Shared JSON values kept flattened for the records that repeat them (a resource's
/// attributes, a scope, a stream's labels).
const SHARED_CACHE: usize = 8;

/// Records being written; see the module documentation.
#[derive(Debug)]
pub struct StructuredRecords {
    records: EncodedRecords,
    /// Each record's event time, for the window.
    times: Vec<i64>,
    limits: IngestLimits,
    arrival_ns: i64,
    /// The record being written.
    current: Current,
    /// The first refusal; nothing is written after it.
    refused: Option<IngestError>,
    /// Flattened shared values, most recent last.
    shared: Vec<SharedFields>,
}

/// The state of the record being written.
#[derive(Debug, Default)]
struct Current {
    /// Where the record starts in the batch JSON.
    mark: usize,
    /// Where its members start (after `{"f":{`).
    members_start: usize,
    time_ns: i64,
    /// Hashes of the names written so far (a record has a handful: a scan beats a set).
    names: Vec<u64>,
    /// The dotted name being built.
    name: String,
    /// Set once a name repeats: the fields so far, read back, and every later one;
    /// the record is then written from this map, the last value of a name winning.
    map: Option<BTreeMap<String, FieldValue>>,
}

/// A shared JSON value, flattened once.
#[derive(Debug)]
struct SharedFields {
    name: String,
    json: String,
    /// The members as written into a record's `f` object, comma-separated.
    members: Vec<u8>,
    /// The names' hashes.
    names: Vec<u64>,
    /// The fields, for a record that repeats one of the names.
    fields: Vec<(String, FieldValue)>,
    /// A name comes twice in the value itself.
    repeated: bool,
    /// Its event time, when the value is the top-level `time`.
    time_ns: Option<i64>,
    /// Why it was refused.
    refused: Option<IngestError>,
}

impl StructuredRecords {
    /// No records yet; records without a time get `arrival_ns`.
    pub fn new(limits: &IngestLimits, arrival_ns: i64) -> StructuredRecords {
        StructuredRecords {
            records: EncodedRecords::default(),
            times: Vec::new(),
            limits: limits.clone(),
            arrival_ns,
            current: Current::default(),
            refused: None,
            shared: Vec::new(),
        }
    }

    /// Records written.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// Whether no record was written.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// The first refusal, if any.
    pub fn refusal(&self) -> Option<&IngestError> {
        self.refused.as_ref()
    }

    /// Starts the next record.
    pub fn start_record(&mut self) {
        let mark = self.records.start_record();
        self.records.buffer().extend_from_slice(br#"{"f":{"#);
        let current = &mut self.current;
        current.mark = mark;
        current.members_start = self.records.json_bytes();
        current.time_ns = self.arrival_ns;
        current.names.clear();
        current.name.clear();
        current.map = None;
    }

    /// Writes the field `name` of the current record: `value` flattened as PutDatas
    /// flattens a record's JSON.
    pub fn field(&mut self, name: &str, value: &impl Serialize) {
        if self.refused.is_some() {
            return;
        }
        if name == TIME_FIELD {
            self.time(value);
            return;
        }
        let rollback = (self.records.buffer().len(), self.current.names.len());
        self.current.name.clear();
        self.current.name.push_str(name);
        let outcome = value.serialize(FieldSerializer {
            writer: self,
            prefix_len: 0,
            depth: 0,
        });
        if outcome.is_err() && self.refused.is_none() {
            // The value could not be serialized (it has no JSON form): it is left
            // out, as the `null` a JSON writer would have put in its place.
            if self.current.map.is_none() {
                self.records.buffer().truncate(rollback.0);
                self.current.names.truncate(rollback.1);
            }
        }
    }

    /// Writes the field `name` whose value is the JSON text `json` (a value many
    /// records share: it is flattened once and pasted into each).
    pub fn json_field(&mut self, name: &str, json: &str) {
        if self.refused.is_some() {
            return;
        }
        let found = self
            .shared
            .iter()
            .position(|shared| shared.name == name && shared.json == json);
        let index = match found {
            Some(index) => index,
            None => {
                let flattened = self.flatten_shared(name, json);
                if self.shared.len() == SHARED_CACHE {
                    self.shared.remove(0);
                }
                self.shared.push(flattened);
                self.shared.len() - 1
            }
        };
        if let Some(refused) = &self.shared[index].refused {
            self.refused = Some(refused.clone());
            return;
        }
        if let Some(time_ns) = self.shared[index].time_ns {
            self.current.time_ns = time_ns;
        }
        let repeats = self.shared[index].repeated
            || self.shared[index]
                .names
                .iter()
                .any(|hash| self.current.names.contains(hash));
        if repeats && self.current.map.is_none() {
            self.read_back();
        }
        let place = self.place();
        let shared = &self.shared[index];
        let current = &mut self.current;
        let count = match &mut current.map {
            Some(map) => {
                for (name, value) in &shared.fields {
                    map.insert(name.clone(), value.clone());
                }
                current.names.extend(&shared.names);
                map.len()
            }
            None => {
                if shared.members.is_empty() {
                    return;
                }
                let out = self.records.buffer();
                if !current.names.is_empty() {
                    out.push(b',');
                }
                out.extend_from_slice(&shared.members);
                current.names.extend(&shared.names);
                current.names.len()
            }
        };
        if let Err(error) = check_field_count(count, place, &self.limits) {
            self.refused = Some(error);
        }
    }

    /// Ends the current record; returns the bytes it takes in the batch.
    pub fn finish_record(&mut self) -> usize {
        let time_ns = self.current.time_ns;
        if let Some(fields) = self.current.map.take() {
            self.records.roll_back(self.current.mark);
            self.records.push(&Record { time_ns, fields });
        } else {
            let out = self.records.buffer();
            out.extend_from_slice(br#"},"t":"#);
            out.extend_from_slice(itoa::Buffer::new().format(time_ns).as_bytes());
            out.push(b'}');
            self.records.finish_record();
        }
        self.times.push(time_ns);
        self.records.json_bytes() - self.current.mark
    }

    /// The records whose time is inside `window`, and those left out.
    ///
    /// # Errors
    /// The first refusal while writing (a name, value or limit PutDatas refuses),
    /// or [`IngestError::Empty`] for no records at all.
    pub fn into_encoded(
        self,
        window: &EventTimeWindow,
    ) -> Result<(EncodedRecords, Refusals), IngestError> {
        if let Some(refused) = self.refused {
            return Err(refused);
        }
        if self.times.is_empty() {
            return Err(IngestError::Empty);
        }
        let mut refusals = Refusals::default();
        if self
            .times
            .iter()
            .all(|time| window.refusal(*time).is_none())
        {
            return Ok((self.records, refusals));
        }
        let mut kept = EncodedRecords::default();
        for (index, time) in self.times.iter().enumerate() {
            match window.refusal(*time) {
                Some((limit, reason)) => refusals.push(|| format!("logs[{index}]"), limit, reason),
                None => kept.push_json(self.records.record_json(index)),
            }
        }
        Ok((kept, refusals))
    }

    /// The current record's place, for messages.
    fn place(&self) -> RecordPlace {
        RecordPlace::Log(self.times.len())
    }

    fn refuse(&mut self, error: IngestError) -> Stop {
        if self.refused.is_none() {
            self.refused = Some(error);
        }
        Stop
    }

    fn field_path(&self) -> String {
        format!("{}.{}", self.place(), self.current.name)
    }

    /// The top-level `time`: the record's event time, as PutDatas reads it.
    fn time(&mut self, value: &impl Serialize) {
        let json = match serde_json::to_value(value) {
            Ok(json) => json,
            // No JSON form: as `null`, no time.
            Err(_) => return,
        };
        if json.is_null() {
            return;
        }
        match parse_event_time(&json) {
            Ok(time_ns) => self.current.time_ns = time_ns,
            Err(message) => {
                let path = format!("{}.{TIME_FIELD}", self.place());
                self.refused = Some(invalid(&path, &message));
            }
        }
    }

    /// Takes one flattened field (its name in `current.name`).
    fn insert(&mut self, value: Scalar<'_>) -> Result<(), Stop> {
        let name = &self.current.name;
        if let Some(len) = value.text_len() {
            if let Err(error) = check_value_size(name, || self.field_path(), len, &self.limits) {
                return Err(self.refuse(error));
            }
        }
        let value = match value {
            // The raw line is always text, whatever the protocol carried.
            Scalar::Bool(_) | Scalar::Long(_) | Scalar::Double(_) if name == MESSAGE_FIELD => {
                Scalar::OwnedText(value.into_field_value().as_text())
            }
            other => other,
        };
        let hash = fnv1a(name.as_bytes());
        let repeated = self.current.names.contains(&hash);
        if repeated && self.current.map.is_none() {
            self.read_back();
        }
        if !repeated {
            self.current.names.push(hash);
        }
        let count = match &mut self.current.map {
            Some(map) => {
                map.insert(self.current.name.clone(), value.into_field_value());
                map.len()
            }
            None => {
                let out = self.records.buffer();
                if self.current.names.len() > 1 {
                    out.push(b',');
                }
                write_member(out, &self.current.name, &value);
                self.current.names.len()
            }
        };
        let place = self.place();
        check_field_count(count, place, &self.limits).map_err(|error| self.refuse(error))
    }

    /// Reads the current record's fields written so far back into a map, which takes
    /// every later field (a name came twice).
    fn read_back(&mut self) {
        let mut object = b"{".to_vec();
        object.extend_from_slice(&self.records.buffer()[self.current.members_start..]);
        object.push(b'}');
        // The members were written here, as JSON of flat scalars: they read back.
        let map = serde_json::from_slice(&object).unwrap_or_default();
        self.current.map = Some(map);
    }

    /// Flattens a shared JSON value as the field `name`, under the current record's
    /// place.
    fn flatten_shared(&mut self, name: &str, json: &str) -> SharedFields {
        let mut capture = Capture::default();
        let document = format!("{{{}:{json}}}", serde_json::Value::from(name));
        let mut deserializer = serde_json::Deserializer::from_str(&document);
        let place = self.place();
        let read = read_record(
            &mut deserializer,
            place,
            &mut capture,
            i64::MIN,
            &self.limits,
        );
        let (time_ns, refused) = match read {
            Ok(time_ns) => ((time_ns != i64::MIN).then_some(time_ns), None),
            Err(ReadFailure::Refused(refused)) => (None, Some(refused)),
            Err(ReadFailure::Syntax(error)) => (
                None,
                Some(invalid(&format!("{place}.{name}"), &error.to_string())),
            ),
        };
        SharedFields {
            name: name.to_string(),
            json: json.to_string(),
            members: capture.members,
            names: capture.names,
            fields: capture.fields,
            repeated: capture.repeated,
            time_ns,
            refused,
        }
    }
}

fn check_field_count(
    count: usize,
    place: RecordPlace,
    limits: &IngestLimits,
) -> Result<(), IngestError> {
    if count > limits.max_fields_per_record {
        return Err(IngestError::LimitExceeded {
            limit: "max_fields_per_record",
            path: place.to_string(),
            message: format!(
                "record has more than {limit} fields, the limit is {limit}",
                limit = limits.max_fields_per_record
            ),
        });
    }
    Ok(())
}

/// Writes `"name":value`.
fn write_member(out: &mut Vec<u8>, name: &str, value: &Scalar<'_>) {
    write_json(out, name);
    out.push(b':');
    match value {
        Scalar::Bool(true) => out.extend_from_slice(b"true"),
        Scalar::Bool(false) => out.extend_from_slice(b"false"),
        Scalar::Long(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
        // serde_json's own number formatting, as a `Record` is written.
        Scalar::Double(x) => write_json(out, x),
        // Borrowed from serde_json's own output (a shared value): no escapes in it.
        Scalar::Source(text) => {
            out.push(b'"');
            out.extend_from_slice(text.as_bytes());
            out.push(b'"');
        }
        Scalar::Text(text) => write_json(out, text),
        Scalar::OwnedText(text) => write_json(out, text),
    }
}

fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Serialising a string or a number into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// The flattened fields of a shared value.
#[derive(Default)]
struct Capture {
    members: Vec<u8>,
    names: Vec<u64>,
    fields: Vec<(String, FieldValue)>,
    repeated: bool,
}

impl FieldSink for Capture {
    fn field(&mut self, name: &str, value: Scalar<'_>) -> usize {
        if !self.members.is_empty() {
            self.members.push(b',');
        }
        write_member(&mut self.members, name, &value);
        let hash = fnv1a(name.as_bytes());
        self.repeated |= self.names.contains(&hash);
        self.names.push(hash);
        self.fields
            .push((name.to_string(), value.into_field_value()));
        self.fields.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::decode_batch;
    use crate::ingest::encode_json_body_in_window;
    use serde_json::{json, Value};

    const NOW: i64 = 1_700_000_000_000_000_000;

    /// Writes `records` (JSON objects) field by field; members named in `shared`
    /// go through `json_field` as their JSON text.
    fn write(records: &[Value], shared: &[&str], limits: &IngestLimits) -> StructuredRecords {
        let mut out = StructuredRecords::new(limits, NOW);
        for record in records {
            out.start_record();
            for (name, value) in record.as_object().expect("object") {
                if shared.contains(&name.as_str()) {
                    out.json_field(name, &value.to_string());
                } else {
                    out.field(name, value);
                }
            }
            out.finish_record();
        }
        out
    }

    fn decoded(records: &EncodedRecords) -> Vec<Record> {
        if records.is_empty() {
            return Vec::new();
        }
        decode_batch(&records.encode_run(0..records.len()).expect("encode")).expect("decode")
    }

    /// What PutDatas stores from the same records sent as a JSON body.
    fn as_putdatas(
        records: &[Value],
        limits: &IngestLimits,
        window: &EventTimeWindow,
    ) -> Result<(Vec<Record>, Refusals), IngestError> {
        let body = serde_json::to_vec(&json!({ "logs": records })).expect("body");
        encode_json_body_in_window(&body, NOW, limits, window)
            .map(|(records, refusals)| (decoded(&records), refusals))
    }

    fn assert_same(records: &[Value], limits: &IngestLimits, window: &EventTimeWindow) {
        let expected = as_putdatas(records, limits, window);
        for shared in [&[][..], &["resource", "labels", "k", "time"][..]] {
            let written = write(records, shared, limits)
                .into_encoded(window)
                .map(|(records, refusals)| (decoded(&records), refusals));
            assert_eq!(written, expected, "{records:?} with {shared:?} shared");
        }
    }

    #[test]
    fn records_are_stored_as_the_same_putdatas_body_would_be() {
        let records = vec![
            json!({"time": 1_700_000_000u64, "message": "plain", "status": 200, "ratio": 0.5, "ok": true}),
            json!({"message": 42.5, "http": {"path": "/x\"y", "req": {"bytes": 7}}, "gone": null}),
            json!({"message": "tab\there é😀 \u{1}", "big": u64::MAX, "neg": -3, "tiny": 1e-300}),
            json!({"time": "2023-11-14T22:13:20Z", "resource": {"attributes": {"service.name": "api"}}}),
            json!({"message": true, "time": null, "labels": {"job": "web", "env": "prod"}}),
            json!({"k": {"a": 1, "b": {"c": "d"}}, "k.a": 2, "z": 1}),
            json!({"resource": {"attributes": {"service.name": "api"}}, "resource.attributes.service.name": "own"}),
            json!({}),
        ];
        assert_same(
            &records,
            &IngestLimits::default(),
            &EventTimeWindow::UNBOUNDED,
        );
    }

    #[test]
    fn refusals_are_the_putdatas_refusals() {
        let small = crate::ingest::tests::tight_limits();
        let cases = [
            json!({"a": 1, "b": 2, "c": 3}),
            json!({"abcde": 1}),
            json!({"a": "abcd"}),
            json!({"a": [1]}),
            json!({"time": "yesterday"}),
            json!({"time": {"a": 1}}),
            json!({"": 1}),
            json!({"a": {"b": {}}}),
        ];
        for case in cases {
            let records = [json!({}), case];
            assert_same(&records, &small, &EventTimeWindow::UNBOUNDED);
        }
        let mut deep = json!("leaf");
        for _ in 0..20 {
            deep = json!({ "n": deep });
        }
        assert_same(
            &[json!({ "deep": deep })],
            &IngestLimits::default(),
            &EventTimeWindow::UNBOUNDED,
        );
    }

    #[test]
    fn records_outside_the_window_are_left_out_by_index() {
        let window = EventTimeWindow {
            oldest_ns: NOW - 1_000,
            newest_ns: NOW + 1_000,
            max_age_days: 1,
            max_future_secs: 1,
        };
        let records = [
            json!({"message": "old", "time": NOW - 5_000}),
            json!({"message": "now"}),
            json!({"message": "future", "time": NOW + 5_000}),
        ];
        assert_same(&records, &IngestLimits::default(), &window);
        let (kept, refusals) = write(&records, &[], &IngestLimits::default())
            .into_encoded(&window)
            .expect("one kept");
        assert_eq!(kept.len(), 1);
        assert_eq!(refusals.count, 2);
        assert_eq!(refusals.listed[1].path, "logs[2]");
    }
}
