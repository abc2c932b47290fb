//! PutDatas bodies written straight into queue-batch JSON.
//!
//! put-datas does not need a request's records as [`Record`]s: it only encodes
//! them into queue batches. Here each record (an NDJSON line, or an element of a
//! JSON envelope's `logs`) is read by the same visitor as [`super::parse_ndjson_body`]
//! and [`super::parse_json_body`] (same rules, same errors), and every field goes
//! directly into the batch body's JSON, so the per-field `String`s, the map of every
//! record and their drop are not paid. The JSON decodes to exactly the records the
//! parsing functions return; tests hold the two paths together.

use std::collections::BTreeMap;

use super::envelope::read_envelope;
use super::record_reader::TimeMember;
use super::record_reader::{read_into_record, FieldSink, RecordPlace, Scalar};
use super::window::{EventTimeWindow, Refusals};
use super::{
    read_documents_timed, read_envelope_records, read_ndjson_records, read_ndjson_records_timed,
    IngestError, RecordsOut,
};
use crate::batch::EncodedRecords;
use crate::limits::IngestLimits;
use crate::record::FieldValue;
use crate::stable_hash::fnv1a;

/// Reads an NDJSON PutDatas body into batch JSON, one record per non-empty line.
///
/// # Errors
/// As [`super::parse_ndjson_body`]: an [`IngestError`] naming the 1-based line.
pub fn encode_ndjson_body(
    body: &[u8],
    arrival_time_ns: i64,
    limits: &IngestLimits,
) -> Result<EncodedRecords, IngestError> {
    encode_ndjson_body_in_window(body, arrival_time_ns, limits, &EventTimeWindow::UNBOUNDED)
        .map(|(records, _)| records)
}

/// As [`encode_ndjson_body`], but a record whose event time is outside `window` is
/// left out and counted in the [`Refusals`]. Only a body with neither accepted nor
/// refused records is [`IngestError::Empty`].
///
/// # Errors
/// As [`encode_ndjson_body`].
pub fn encode_ndjson_body_in_window(
    body: &[u8],
    arrival_time_ns: i64,
    limits: &IngestLimits,
    window: &EventTimeWindow,
) -> Result<(EncodedRecords, Refusals), IngestError> {
    // The batch JSON is about the body's size: each record gains its `{"f":{...},"t":}`
    // frame and loses its `time` member.
    let mut writer = BatchWriter::new(body.len() + body.len() / 8, *window);
    read_ndjson_records(body, arrival_time_ns, limits, &mut writer)?;
    writer.finish()
}

/// As [`encode_ndjson_body_in_window`], for documents whose time is in
/// `time_member`: with [`TimeMember::Timestamp`], Elasticsearch documents, whose
/// `@timestamp` is the record time and whose own `time` is kept as `time_original`.
///
/// # Errors
/// As [`encode_ndjson_body`].
pub fn encode_ndjson_documents_in_window(
    body: &[u8],
    arrival_time_ns: i64,
    limits: &IngestLimits,
    window: &EventTimeWindow,
    time_member: TimeMember,
) -> Result<(EncodedRecords, Refusals), IngestError> {
    let mut writer = BatchWriter::new(body.len() + body.len() / 8, *window);
    read_ndjson_records_timed(body, arrival_time_ns, limits, time_member, &mut writer)?;
    writer.finish()
}

/// As [`encode_ndjson_documents_in_window`], for documents already split out of a
/// request (without the lines between them): each with its 1-based line, for
/// messages. `bytes` is their total size, to size the batch.
///
/// # Errors
/// As [`encode_ndjson_body`]; more documents than `max_records_per_request` is one.
pub fn encode_documents_in_window<'d>(
    documents: impl Iterator<Item = (usize, &'d [u8])>,
    bytes: usize,
    arrival_time_ns: i64,
    limits: &IngestLimits,
    window: &EventTimeWindow,
    time_member: TimeMember,
) -> Result<(EncodedRecords, Refusals), IngestError> {
    let mut writer = BatchWriter::new(bytes + bytes / 8, *window);
    read_documents_timed(documents, arrival_time_ns, limits, time_member, &mut writer)?;
    writer.finish()
}

/// Reads a JSON PutDatas body (an envelope with `logs`, or an array of records)
/// into batch JSON; the envelope's source and tags go into every record.
///
/// # Errors
/// As [`super::parse_json_body`].
pub fn encode_json_body(
    body: &[u8],
    arrival_time_ns: i64,
    limits: &IngestLimits,
) -> Result<EncodedRecords, IngestError> {
    encode_json_body_in_window(body, arrival_time_ns, limits, &EventTimeWindow::UNBOUNDED)
        .map(|(records, _)| records)
}

/// As [`encode_json_body`], with the event-time `window` of
/// [`encode_ndjson_body_in_window`].
///
/// # Errors
/// As [`encode_json_body`].
pub fn encode_json_body_in_window(
    body: &[u8],
    arrival_time_ns: i64,
    limits: &IngestLimits,
    window: &EventTimeWindow,
) -> Result<(EncodedRecords, Refusals), IngestError> {
    let envelope = read_envelope(body, limits)?;
    // Every record also carries the shared fields.
    let shared_bytes: usize = envelope
        .shared
        .iter()
        .map(|(name, value)| name.len() + value.as_text().len() + 6)
        .sum();
    let mut writer = BatchWriter::new(
        body.len() + envelope.logs.len() * (shared_bytes + 32),
        *window,
    );
    read_envelope_records(&envelope, arrival_time_ns, limits, &mut writer)?;
    writer.finish()
}

/// Writes records one by one into batch JSON.
struct BatchWriter {
    records: EncodedRecords,
    /// Hashes of the current record's field names.
    names: Vec<u64>,
    /// Event times accepted; records outside are left out.
    window: EventTimeWindow,
    /// The records left out for their time.
    refused: Refusals,
}

impl BatchWriter {
    fn new(capacity: usize, window: EventTimeWindow) -> BatchWriter {
        BatchWriter {
            records: EncodedRecords::with_capacity(capacity),
            names: Vec::new(),
            window,
            refused: Refusals::default(),
        }
    }

    fn finish(self) -> Result<(EncodedRecords, Refusals), IngestError> {
        if self.records.is_empty() && self.refused.count == 0 {
            return Err(IngestError::Empty);
        }
        Ok((self.records, self.refused))
    }

    /// Leaves the record started at `mark` out when its time is outside the window;
    /// returns whether it was left out.
    fn refuse_outside_window(&mut self, mark: usize, place: RecordPlace, time_ns: i64) -> bool {
        let Some((limit, reason)) = self.window.refusal(time_ns) else {
            return false;
        };
        self.records.roll_back(mark);
        self.refused.push(|| place.to_string(), limit, reason);
        true
    }
}

impl RecordsOut for BatchWriter {
    /// Writes the `shared` fields, then what `read` reads. A record whose names
    /// repeat (its own, or one of the shared ones) is read a second time into a
    /// `Record`, so the last value wins as in a `Record`'s map; rare enough not to
    /// matter.
    fn record(
        &mut self,
        place: RecordPlace,
        shared: &BTreeMap<String, FieldValue>,
        read: impl Fn(&mut dyn FieldSink) -> Result<i64, IngestError>,
    ) -> Result<(), IngestError> {
        let mark = self.records.start_record();
        self.records.buffer().extend_from_slice(br#"{"f":{"#);
        self.names.clear();
        let mut fields = JsonFields {
            out: self.records.buffer(),
            names: &mut self.names,
            repeated: false,
        };
        for (name, value) in shared {
            fields.field(name, Scalar::from(value));
        }
        let time_ns = read(&mut fields)?;
        let repeated = fields.repeated;
        if self.refuse_outside_window(mark, place, time_ns) {
            return Ok(());
        }
        if repeated {
            self.records.roll_back(mark);
            let record = read_into_record(shared, read)?;
            self.records.push(&record);
            return Ok(());
        }
        let out = self.records.buffer();
        out.extend_from_slice(br#"},"t":"#);
        out.extend_from_slice(itoa::Buffer::new().format(time_ns).as_bytes());
        out.push(b'}');
        self.records.finish_record();
        Ok(())
    }
}

/// Fields written as the members of a batch record's `f` object.
struct JsonFields<'b> {
    out: &'b mut Vec<u8>,
    /// Hashes of the names written so far in this record; records have a handful
    /// of fields, so a scan beats a set.
    names: &'b mut Vec<u64>,
    /// A name (or a hash) came twice; the record is then written another way.
    repeated: bool,
}

impl FieldSink for JsonFields<'_> {
    fn field(&mut self, name: &str, value: Scalar<'_>) -> usize {
        let hash = fnv1a(name.as_bytes());
        if self.names.contains(&hash) {
            self.repeated = true;
        } else {
            self.names.push(hash);
        }
        if self.repeated {
            // Nothing more is written; the count stays exact unless two names
            // share a hash, and the second reading counts exactly.
            return self.names.len();
        }
        if self.names.len() > 1 {
            self.out.push(b',');
        }
        write_json(self.out, name);
        self.out.push(b':');
        match value {
            Scalar::Bool(true) => self.out.extend_from_slice(b"true"),
            Scalar::Bool(false) => self.out.extend_from_slice(b"false"),
            Scalar::Long(n) => self
                .out
                .extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
            // serde_json's own number formatting, as a `Record` is written.
            Scalar::Double(x) => write_json(self.out, &x),
            Scalar::Text(text) => write_json(self.out, text),
            // Only JSON text feeds this sink (NDJSON lines, slices of a JSON body),
            // so borrowed text needs no escaping; see `Scalar::Source`.
            Scalar::Source(text) => {
                debug_assert!(!text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20));
                self.out.push(b'"');
                self.out.extend_from_slice(text.as_bytes());
                self.out.push(b'"');
            }
            Scalar::OwnedText(text) => write_json(self.out, &text),
        }
        self.names.len()
    }
}

/// A name, text or number as JSON.
fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Serialising a string or a number into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::decode_batch;
    use crate::ingest::{parse_json_body, parse_ndjson_body, TimeMember};
    use crate::record::Record;

    const NOW: i64 = 1_700_000_000_000_000_000;

    fn decoded(records: &EncodedRecords, run: std::ops::Range<usize>) -> Vec<Record> {
        let payload = records.encode_run(run).expect("encode");
        decode_batch(&payload).expect("decode")
    }

    /// The batch JSON of records `run`, as text.
    fn batch_text(records: &EncodedRecords, run: std::ops::Range<usize>) -> String {
        let payload = records.encode_run(run).expect("encode");
        let json = zstd::decode_all(&payload[5..]).expect("zstd");
        String::from_utf8(json).expect("utf-8")
    }

    type Read<T> = fn(&[u8], i64, &IngestLimits) -> Result<T, IngestError>;

    /// Both paths refuse every body, with the same error, under tight limits.
    fn assert_same_refusals(
        bodies: &[&[u8]],
        parse: Read<Vec<Record>>,
        encode: Read<EncodedRecords>,
    ) {
        let small = crate::ingest::tests::tight_limits();
        for body in bodies {
            let parsed = parse(body, NOW, &small).expect_err("parse refuses");
            let encoded = encode(body, NOW, &small).expect_err("encode refuses");
            assert_eq!(parsed, encoded, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn test_batch_json_decodes_to_the_parsed_records() {
        let body = concat!(
            r#"{"time":1700000000,"message":"plain","status":200,"ratio":0.5,"ok":true,"no":false}"#,
            "\n",
            r#"{"message":42.5,"http":{"path":"/x\"y","req":{"bytes":7}},"gone":null}"#,
            "\r\n\n",
            r#"{"message":"tab\there \u00e9\ud83d\ude00 \u0001","big":18446744073709551615,"neg":-3,"tiny":1e-300}"#,
            "\n",
            r#"{"time":"2023-11-14T22:13:20Z","k":"first","o":{"k":1},"k":"last"}"#,
            "\n",
            r#"{"message":true,"time":null}"#,
            "\n",
            r#"{"raw":"日本 é </tag> 'q' ~","esc":"a\/b","key\"q":"v","nested":{"é":"ü"}}"#,
            "\n",
            r#"{}"#,
        );
        let limits = IngestLimits::default();
        let parsed = parse_ndjson_body(body.as_bytes(), NOW, &limits).expect("parse");
        let encoded = encode_ndjson_body(body.as_bytes(), NOW, &limits).expect("encode");
        assert_eq!(encoded.len(), parsed.len());
        assert_eq!(decoded(&encoded, 0..parsed.len()), parsed);
        // Every run cuts at record boundaries.
        for start in 0..parsed.len() {
            for end in start + 1..=parsed.len() {
                assert_eq!(
                    decoded(&encoded, start..end),
                    parsed[start..end],
                    "{start}..{end}"
                );
            }
        }
        assert!(encoded.encode_run(2..2).is_err());
        assert!(encoded.encode_run(0..parsed.len() + 1).is_err());
    }

    #[test]
    fn test_batch_json_refuses_what_parsing_refuses() {
        let small = crate::ingest::tests::tight_limits();
        let bodies: [&[u8]; 9] = [
            b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}",
            b"{\"a\":1,\"b\":2,\"c\":3}",
            // Three names, one of them sent twice: two distinct fields fit...
            b"{\"a\":1,\"b\":2,\"a\":3,\"c\":4}",
            b"{\"abcde\":1}",
            b"{\"a\":\"abcd\"}",
            b"{\"a\":[1]}",
            b"{\"a\":1} x",
            b"[1]",
            b"\n \n",
        ];
        assert_same_refusals(&bodies, parse_ndjson_body, encode_ndjson_body);
        // ...and a repeated name alone is no refusal: the last value wins, and the
        // batch holds the name once.
        let body = b"{\"a\":1,\"b\":2,\"a\":3}";
        let encoded = encode_ndjson_body(body, NOW, &small).expect("two distinct fields");
        assert_eq!(
            decoded(&encoded, 0..1),
            parse_ndjson_body(body, NOW, &small).expect("parse")
        );
        assert_eq!(batch_text(&encoded, 0..1).matches("\"a\":").count(), 1);
    }

    #[test]
    fn test_envelope_batch_json_decodes_to_the_parsed_records() {
        let bodies = [
            concat!(
                r#"{"logs":[{"message":"a","time":1700000000},"#,
                r#"{"message":"b \"q\" 日本","source":"own","tags.env":"mine","n":{"x":1}},"#,
                r#"{}],"source":"web-1","tags":{"env":"prod","zone":3,"on":true}}"#
            ),
            r#"[{"message":"bare","k":1,"k":2},{"message":7}]"#,
            r#" {"tags":null,"source":null,"logs":[{"m":"x"}]} "#,
        ];
        let limits = IngestLimits::default();
        for body in bodies {
            let parsed = parse_json_body(body.as_bytes(), NOW, &limits).expect("parse");
            let encoded = encode_json_body(body.as_bytes(), NOW, &limits).expect("encode");
            assert_eq!(decoded(&encoded, 0..encoded.len()), parsed, "{body}");
        }
        // The record's own field overrides the envelope's of the same name, and the
        // batch holds each name of a record once.
        let parsed = parse_json_body(bodies[0].as_bytes(), NOW, &limits).expect("parse");
        let encoded = encode_json_body(bodies[0].as_bytes(), NOW, &limits).expect("encode");
        let text = batch_text(&encoded, 1..2);
        assert_eq!(text.matches("\"source\":").count(), 1, "{text}");
        assert_eq!(text.matches("\"tags.env\":").count(), 1, "{text}");
        assert_eq!(parsed[1].fields["source"], FieldValue::Str("own".into()));
        assert_eq!(parsed[0].fields["source"], FieldValue::Str("web-1".into()));
        assert_eq!(parsed[2].fields["tags.zone"], FieldValue::Str("3".into()));
    }

    #[test]
    fn test_envelope_batch_json_refuses_what_parsing_refuses() {
        let bodies: [&[u8]; 13] = [
            b"{\"logs\": [",
            b"{\"log\":[{}]}",
            b"{\"logs\":{}}",
            b"{\"source\":\"s\"}",
            b"{\"logs\":[{}],\"source\":1}",
            b"{\"logs\":[{}],\"tags\":[]}",
            b"{\"logs\":[{}],\"tags\":{\"a\":{}}}",
            b"{\"logs\":[{}],\"tags\":{\"a\":\"long\"}}",
            b"{\"logs\":[{}],\"tags\":{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"}}",
            b"[{},{},{}]",
            b"[{\"a\":[1]}]",
            b"[1]",
            b"[]",
        ];
        assert_same_refusals(&bodies, parse_json_body, encode_json_body);
    }

    #[test]
    fn test_records_outside_the_window_are_left_out_and_named() {
        let limits = IngestLimits::default();
        let window =
            crate::ingest::window::EventTimeWindow::for_pool(&limits, &Default::default(), 7, NOW);
        let old = NOW - 8 * 86_400_000_000_000;
        let ahead = NOW + 2 * 86_400_000_000_000;
        // Records with repeated names take the second reading path: they are
        // refused the same way.
        let body = format!(
            "{{\"time\":{old},\"m\":\"old\"}}\n{{\"m\":\"now\"}}\n{{\"time\":{ahead},\"m\":1,\"m\":2}}\n{{\"time\":{NOW},\"m\":\"in\",\"m\":\"in\"}}\n"
        );
        let (records, refused) =
            encode_ndjson_body_in_window(body.as_bytes(), NOW, &limits, &window).expect("encode");
        let kept = decoded(&records, 0..records.len());
        assert_eq!(kept.len(), 2);
        assert!(kept.iter().all(|r| r.time_ns == NOW));
        assert_eq!(refused.count, 2);
        assert_eq!(refused.listed[0].path, "line 1");
        assert_eq!(refused.listed[0].limit, "max_event_age_days");
        assert_eq!(refused.listed[1].path, "line 3");
        assert_eq!(refused.listed[1].limit, "max_event_future_secs");

        let envelope = format!("{{\"logs\":[{{\"time\":{old}}}]}}");
        let (records, refused) =
            encode_json_body_in_window(envelope.as_bytes(), NOW, &limits, &window)
                .expect("a body with only refused records is not empty");
        assert!(records.is_empty());
        assert_eq!(refused.listed[0].path, "logs[0]");
    }

    #[test]
    fn test_documents_take_their_time_from_the_timestamp() {
        let read = |body: &str| {
            let (records, _) = encode_ndjson_documents_in_window(
                body.as_bytes(),
                NOW,
                &IngestLimits::default(),
                &EventTimeWindow::UNBOUNDED,
                TimeMember::Timestamp,
            )?;
            Ok::<_, IngestError>(decoded(&records, 0..records.len()))
        };
        let plain = |body: &str| parse_ndjson_body(body.as_bytes(), NOW, &IngestLimits::default());
        // Each document, and the PutDatas record it stands for.
        let cases = [
            (
                r#"{"@timestamp":1700000001,"time":"x","m":1}"#,
                r#"{"time":1700000001,"time_original":"x","m":1}"#,
            ),
            (
                r#"{"time":{"a":1},"@timestamp":"2023-11-14T22:13:21Z"}"#,
                r#"{"time":1700000001,"time_original":{"a":1}}"#,
            ),
            (
                r#"{"time":1700000002,"m":"no timestamp"}"#,
                r#"{"time":1700000002,"m":"no timestamp"}"#,
            ),
            (r#"{"@timestamp":null,"time":5}"#, r#"{"time_original":5}"#),
            (r#"{"a":{"@timestamp":1}}"#, r#"{"a":{"@timestamp":1}}"#),
            (
                r#"{"time_original":1,"time":2,"@timestamp":3}"#,
                r#"{"time":3,"time_original":2}"#,
            ),
        ];
        for (document, record) in cases {
            assert_eq!(read(document), plain(record), "{document}");
        }
        // The same documents handed over one by one read the same.
        let body = cases.map(|(document, _)| document).join("\n");
        let whole = read(&body).expect("read whole");
        let documents = body.split('\n').map(str::as_bytes).enumerate();
        let (records, _) = encode_documents_in_window(
            documents.map(|(index, line)| (2 * index + 2, line)),
            body.len(),
            NOW,
            &IngestLimits::default(),
            &EventTimeWindow::UNBOUNDED,
            TimeMember::Timestamp,
        )
        .expect("read one by one");
        assert_eq!(decoded(&records, 0..records.len()), whole);
        let bad = read(r#"{"@timestamp":"yesterday"}"#).expect_err("bad time");
        assert!(bad.to_string().contains("line 1.time"), "{bad}");
        let array = read(r#"{"time":[1],"@timestamp":1}"#).expect_err("array");
        assert!(array.to_string().contains("time_original"), "{array}");
    }
}
