//! Parsing of PutDatas bodies into records.
//!
//! Two shapes are accepted:
//! - JSON: `{"source": "...", "tags": {...}, "logs": [{...}, ...]}` (a bare array of
//!   records is accepted too);
//! - NDJSON: one record object per line.
//!
//! Every error names where it happened (`logs[3].time`, `line 7`) and, for limits,
//! the limit's name and value, because the client has to fix the request from the
//! message alone.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::limits::IngestLimits;
use crate::record::{FieldValue, Record};

mod batch_json;
mod envelope;
mod record_reader;
mod rfc3339;
mod structured;
pub mod window;

use envelope::{read_envelope, Envelope};

pub use batch_json::{
    encode_documents_in_window, encode_json_body, encode_json_body_in_window, encode_ndjson_body,
    encode_ndjson_body_in_window, encode_ndjson_documents_in_window,
};
use record_reader::{
    read_into_record, read_record, read_record_timed, FieldSink, ReadFailure, RecordPlace,
};
pub use record_reader::{TimeMember, DISPLACED_TIME_FIELD, TIMESTAMP_FIELD};
pub use structured::StructuredRecords;

/// The field that carries the event time in a submitted record.
pub const TIME_FIELD: &str = "time";

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// The body is not valid JSON (or a line of NDJSON is not).
    #[error("malformed JSON{}: {message}", location.as_ref().map(|l| format!(" at {l}")).unwrap_or_default())]
    Malformed {
        /// Where, e.g. `line 3 column 7`.
        location: Option<String>,
        /// The parser's explanation.
        message: String,
    },
    /// A value is valid JSON but not acceptable.
    #[error("invalid value at `{path}`: {message}")]
    Invalid {
        /// JSON path or line of the value.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// A configured limit was exceeded.
    #[error("limit `{limit}` exceeded at `{path}`: {message}")]
    LimitExceeded {
        /// The limit's configuration name.
        limit: &'static str,
        /// Where it was exceeded.
        path: String,
        /// The value and the limit.
        message: String,
    },
    /// The request holds no records.
    #[error("the request holds no log records")]
    Empty,
}

/// Parses a JSON PutDatas body.
///
/// # Errors
/// Returns an [`IngestError`] that names the offending path.
pub fn parse_json_body(
    body: &[u8],
    arrival_time_ns: i64,
    limits: &IngestLimits,
) -> Result<Vec<Record>, IngestError> {
    let envelope = read_envelope(body, limits)?;
    let mut records = Vec::with_capacity(envelope.logs.len());
    read_envelope_records(&envelope, arrival_time_ns, limits, &mut records)?;
    if records.is_empty() {
        return Err(IngestError::Empty);
    }
    Ok(records)
}

/// Parses an NDJSON PutDatas body: one record object per non-empty line.
///
/// # Errors
/// Returns an [`IngestError`] naming the 1-based line number.
pub fn parse_ndjson_body(
    body: &[u8],
    arrival_time_ns: i64,
    limits: &IngestLimits,
) -> Result<Vec<Record>, IngestError> {
    let mut records = Vec::new();
    read_ndjson_records(body, arrival_time_ns, limits, &mut records)?;
    if records.is_empty() {
        return Err(IngestError::Empty);
    }
    Ok(records)
}

/// Where a body's records go: [`Record`]s, or straight into batch JSON
/// ([`batch_json`]). Each body format has one loop, generic over this.
trait RecordsOut {
    /// Takes one record on top of the request's `shared` fields. `read` reads the
    /// record's own fields into the sink it is given and returns the event time; it
    /// may be called a second time, with another sink.
    /// `place` names the record in the request.
    fn record(
        &mut self,
        place: RecordPlace,
        shared: &BTreeMap<String, FieldValue>,
        read: impl Fn(&mut dyn FieldSink) -> Result<i64, IngestError>,
    ) -> Result<(), IngestError>;
}

impl RecordsOut for Vec<Record> {
    fn record(
        &mut self,
        _place: RecordPlace,
        shared: &BTreeMap<String, FieldValue>,
        read: impl Fn(&mut dyn FieldSink) -> Result<i64, IngestError>,
    ) -> Result<(), IngestError> {
        self.push(read_into_record(shared, read)?);
        Ok(())
    }
}

/// Reads the records of a JSON envelope into `out`.
fn read_envelope_records(
    envelope: &Envelope<'_>,
    arrival_time_ns: i64,
    limits: &IngestLimits,
    out: &mut impl RecordsOut,
) -> Result<(), IngestError> {
    for (index, log) in envelope.logs.iter().enumerate() {
        let place = RecordPlace::Log(index);
        out.record(place, &envelope.shared, |fields| {
            let mut deserializer = serde_json::Deserializer::from_str(log.get());
            // The body's syntax was checked whole: a record can only be refused.
            read_record(&mut deserializer, place, fields, arrival_time_ns, limits).map_err(
                |failure| match failure {
                    ReadFailure::Refused(refused) => refused,
                    ReadFailure::Syntax(error) => invalid(&place.to_string(), &error.to_string()),
                },
            )
        })?;
    }
    Ok(())
}

/// Reads the records of an NDJSON body into `out`.
fn read_ndjson_records(
    body: &[u8],
    arrival_time_ns: i64,
    limits: &IngestLimits,
    out: &mut impl RecordsOut,
) -> Result<(), IngestError> {
    read_ndjson_records_timed(body, arrival_time_ns, limits, TimeMember::Time, out)
}

/// As [`read_ndjson_records`], the event time in `time_member`.
fn read_ndjson_records_timed(
    body: &[u8],
    arrival_time_ns: i64,
    limits: &IngestLimits,
    time_member: TimeMember,
    out: &mut impl RecordsOut,
) -> Result<(), IngestError> {
    let no_shared = BTreeMap::new();
    for (line_number, line) in ndjson_records(body, limits) {
        let line = line?;
        out.record(RecordPlace::Line(line_number), &no_shared, |fields| {
            let read = ReadLine {
                line_number,
                arrival_time_ns,
                limits,
                time_member,
            };
            read_ndjson_line(line, fields, read)
        })?;
    }
    Ok(())
}

/// As [`read_ndjson_records_timed`], for lines already split out of a body, each
/// with its 1-based line number.
fn read_documents_timed<'d>(
    documents: impl Iterator<Item = (usize, &'d [u8])>,
    arrival_time_ns: i64,
    limits: &IngestLimits,
    time_member: TimeMember,
    out: &mut impl RecordsOut,
) -> Result<(), IngestError> {
    let no_shared = BTreeMap::new();
    let max = limits.max_records_per_request;
    for (count, (line_number, line)) in documents.enumerate() {
        check_record_count(count + 1, max, || format!("line {line_number}"))?;
        out.record(RecordPlace::Line(line_number), &no_shared, |fields| {
            let read = ReadLine {
                line_number,
                arrival_time_ns,
                limits,
                time_member,
            };
            read_ndjson_line(line, fields, read)
        })?;
    }
    Ok(())
}

/// How one NDJSON line is read.
#[derive(Clone, Copy)]
struct ReadLine<'l> {
    line_number: usize,
    arrival_time_ns: i64,
    limits: &'l IngestLimits,
    time_member: TimeMember,
}

/// The non-empty lines of an NDJSON body with their 1-based numbers; a line past
/// `max_records_per_request` is an error.
fn ndjson_records<'b>(
    body: &'b [u8],
    limits: &IngestLimits,
) -> impl Iterator<Item = (usize, Result<&'b [u8], IngestError>)> {
    let max = limits.max_records_per_request;
    body.split(|b| *b == b'\n')
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim_ascii()))
        .filter(|(_, line)| !line.is_empty())
        .enumerate()
        .map(move |(count, (line_number, line))| {
            let path = || format!("line {line_number}");
            (
                line_number,
                check_record_count(count + 1, max, path).map(|()| line),
            )
        })
}

/// Reads one NDJSON line into `sink`; returns the record's event time.
fn read_ndjson_line(
    line: &[u8],
    sink: &mut dyn FieldSink,
    read: ReadLine<'_>,
) -> Result<i64, IngestError> {
    let ReadLine {
        line_number,
        arrival_time_ns,
        limits,
        time_member,
    } = read;
    let malformed = |e: serde_json::Error| IngestError::Malformed {
        location: Some(format!("line {line_number} column {}", e.column())),
        message: strip_position(&e.to_string()),
    };
    let mut deserializer = serde_json::Deserializer::from_slice(line);
    let place = RecordPlace::Line(line_number);
    let time_ns = read_record_timed(
        &mut deserializer,
        place,
        sink,
        arrival_time_ns,
        limits,
        time_member,
    )
    .map_err(|failure| match failure {
        ReadFailure::Refused(refused) => refused,
        ReadFailure::Syntax(error) => malformed(error),
    })?;
    // Anything after the record's object on its line is malformed too.
    deserializer.end().map_err(malformed)?;
    Ok(time_ns)
}

/// Parses an event time: RFC 3339 text, or epoch seconds, milliseconds, microseconds
/// or nanoseconds told apart by magnitude (as numbers or numeric strings).
///
/// # Errors
/// Returns a message saying which forms are accepted.
pub fn parse_event_time(value: &Value) -> Result<i64, String> {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(epoch_integer_to_ns(i))
            } else if let Some(f) = n.as_f64() {
                epoch_float_to_ns(f)
            } else {
                Err(format!("number `{n}` is out of range for a time"))
            }
        }
        Value::String(s) => parse_time_text(s),
        _ => Err(NOT_A_TIME.to_string()),
    }
}

/// Why a value that is neither text nor a number is no time.
const NOT_A_TIME: &str = "must be RFC 3339 text or an epoch number (s, ms, µs or ns)";

/// Parses RFC 3339 text or a numeric string as an event time.
///
/// # Errors
/// Returns a message saying which forms are accepted.
pub fn parse_time_text(text: &str) -> Result<i64, String> {
    let trimmed = text.trim();
    // The shape shippers send on every record, read without the general parser.
    if let Some(time_ns) = rfc3339::parse_common(trimmed) {
        return Ok(time_ns);
    }
    if let Ok(i) = trimmed.parse::<i64>() {
        return Ok(epoch_integer_to_ns(i));
    }
    if let Ok(f) = trimmed.parse::<f64>() {
        return epoch_float_to_ns(f);
    }
    let parsed =
        time::OffsetDateTime::parse(trimmed, &time::format_description::well_known::Rfc3339)
            .map_err(|e| {
                format!(
                    "`{}` is neither RFC 3339 nor an epoch number ({e})",
                    trimmed.escape_debug()
                )
            })?;
    i64::try_from(parsed.unix_timestamp_nanos())
        .map_err(|_| format!("`{trimmed}` is out of the supported time range"))
}

/// Epoch integers are told apart by magnitude: below 1e11 they are seconds (up to the
/// year 5138), below 1e14 milliseconds, below 1e17 microseconds, otherwise nanoseconds.
fn epoch_integer_to_ns(value: i64) -> i64 {
    let magnitude = value.unsigned_abs();
    if magnitude < 100_000_000_000 {
        value.saturating_mul(1_000_000_000)
    } else if magnitude < 100_000_000_000_000 {
        value.saturating_mul(1_000_000)
    } else if magnitude < 100_000_000_000_000_000 {
        value.saturating_mul(1_000)
    } else {
        value
    }
}

fn epoch_float_to_ns(value: f64) -> Result<i64, String> {
    if !value.is_finite() {
        return Err(format!("`{value}` is not a finite time"));
    }
    let magnitude = value.abs();
    let scale = if magnitude < 1e11 {
        1e9
    } else if magnitude < 1e14 {
        1e6
    } else if magnitude < 1e17 {
        1e3
    } else {
        1.0
    };
    let ns = value * scale;
    if ns.abs() >= 9.2e18 {
        return Err(format!("`{value}` is out of the supported time range"));
    }
    Ok(ns.round() as i64)
}

fn check_field_name(
    name: &str,
    path: impl Fn() -> String,
    limits: &IngestLimits,
) -> Result<(), IngestError> {
    if name.is_empty() || name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return Err(invalid(
            &path(),
            "field names must be non-empty and have no empty dotted parts",
        ));
    }
    let chars = name.chars().count();
    if chars > limits.max_field_name_chars {
        return Err(IngestError::LimitExceeded {
            limit: "max_field_name_chars",
            path: path(),
            message: format!(
                "field name has {chars} characters, the limit is {}",
                limits.max_field_name_chars
            ),
        });
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(
            &path(),
            "field names must not contain control characters",
        ));
    }
    Ok(())
}

fn check_value_size(
    name: &str,
    path: impl Fn() -> String,
    len: usize,
    limits: &IngestLimits,
) -> Result<(), IngestError> {
    if len > limits.max_value_bytes {
        return Err(IngestError::LimitExceeded {
            limit: "max_value_bytes",
            path: path(),
            message: format!(
                "value of `{name}` is {len} bytes, the limit is {}",
                limits.max_value_bytes
            ),
        });
    }
    Ok(())
}

fn check_record_count(
    count: usize,
    max: usize,
    path: impl Fn() -> String,
) -> Result<(), IngestError> {
    if count > max {
        return Err(IngestError::LimitExceeded {
            limit: "max_records_per_request",
            path: path(),
            message: format!("request has more than {max} records"),
        });
    }
    Ok(())
}

fn invalid(path: &str, message: &str) -> IngestError {
    IngestError::Invalid {
        path: path.to_string(),
        message: message.to_string(),
    }
}

/// serde_json appends " at line X column Y"; the location is reported separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::FieldValue;

    const NOW: i64 = 1_700_000_000_000_000_000;

    fn limits() -> IngestLimits {
        IngestLimits::default()
    }

    #[test]
    fn test_json_envelope_applies_source_and_tags() {
        let body = br#"{"source":"web-1","tags":{"env":"prod"},"logs":[{"time":1700000000,"message":"hello","status":200,"ok":true,"http":{"path":"/x"}}]}"#;
        let records = parse_json_body(body, NOW, &limits()).expect("parse");
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.time_ns, 1_700_000_000_000_000_000);
        assert_eq!(r.fields["source"], FieldValue::Str("web-1".into()));
        assert_eq!(r.fields["tags.env"], FieldValue::Str("prod".into()));
        assert_eq!(r.fields["status"], FieldValue::Long(200));
        assert_eq!(r.fields["ok"], FieldValue::Bool(true));
        assert_eq!(r.fields["http.path"], FieldValue::Str("/x".into()));
    }

    #[test]
    fn test_time_forms() {
        let cases = [
            (serde_json::json!(1_700_000_000), NOW),
            (serde_json::json!(1_700_000_000_000_i64), NOW),
            (serde_json::json!(1_700_000_000_000_000_i64), NOW),
            (serde_json::json!(1_700_000_000_000_000_000_i64), NOW),
            (serde_json::json!(1_700_000_000.5), NOW + 500_000_000),
            (serde_json::json!("2023-11-14T22:13:20Z"), NOW),
            (serde_json::json!("2023-11-14T23:13:20+01:00"), NOW),
            (serde_json::json!("1700000000000"), NOW),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_event_time(&value), Ok(expected), "{value}");
        }
        assert!(parse_event_time(&serde_json::json!("yesterday")).is_err());
        assert!(parse_event_time(&serde_json::json!(true)).is_err());
    }

    #[test]
    fn test_missing_time_defaults_to_arrival() {
        let records = parse_json_body(br#"[{"message":"x"}]"#, NOW, &limits()).expect("parse");
        assert_eq!(records[0].time_ns, NOW);
    }

    #[test]
    fn test_malformed_json_reports_position() {
        let err = parse_json_body(b"{\"logs\": [", NOW, &limits()).expect_err("must fail");
        assert!(matches!(err, IngestError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn test_json_body_shapes_are_told_apart() {
        let malformed: [&[u8]; 6] = [
            b"",
            b"  ",
            b"{\"logs\":[{}]} x",
            b"[{}",
            b"nope",
            b"\n {\"logs\":[{}],}",
        ];
        for body in malformed {
            let err = parse_json_body(body, NOW, &limits()).expect_err("must fail");
            assert!(
                matches!(
                    err,
                    IngestError::Malformed {
                        location: Some(_),
                        ..
                    }
                ),
                "{}: {err}",
                String::from_utf8_lossy(body)
            );
        }
        let err = parse_json_body(b"{\"logs\":[{}]} x", NOW, &limits()).expect_err("must fail");
        assert!(
            err.to_string()
                .contains("line 1 column 15: trailing characters"),
            "{err}"
        );
        // Well-formed JSON of another shape is named as such.
        for body in [&b"12"[..], b" \"text\" ", b"null"] {
            let err = parse_json_body(body, NOW, &limits()).expect_err("must fail");
            assert_eq!(
                err,
                invalid("$", "must be an object with `logs` or an array of records")
            );
        }
        let records = parse_json_body(b"\r\n [{\"m\":1}] \n", NOW, &limits()).expect("array");
        assert_eq!(records.len(), 1);
    }

    #[test]
    fn test_bad_time_names_path() {
        let err = parse_json_body(
            br#"{"logs":[{"message":"a"},{"time":"soon"}]}"#,
            NOW,
            &limits(),
        )
        .expect_err("must fail");
        assert!(err.to_string().contains("logs[1].time"), "{err}");
    }

    #[test]
    fn test_ndjson_reports_line_number() {
        let body = b"{\"message\":\"a\"}\n\n{\"message\":\"b\"}\n{oops\n";
        let err = parse_ndjson_body(body, NOW, &limits()).expect_err("must fail");
        assert!(err.to_string().contains("line 4"), "{err}");
        let ok = parse_ndjson_body(
            b"{\"message\":\"a\"}\r\n{\"message\":\"b\"}",
            NOW,
            &limits(),
        )
        .expect("parse");
        assert_eq!(ok.len(), 2);
    }

    /// Limits small enough to hit with a line of JSON.
    pub(super) fn tight_limits() -> IngestLimits {
        IngestLimits {
            max_records_per_request: 2,
            max_fields_per_record: 2,
            max_field_name_chars: 4,
            max_value_bytes: 3,
            ..IngestLimits::default()
        }
    }

    #[test]
    fn test_limits_are_named() {
        let small = tight_limits();
        let cases: [(&[u8], &str); 4] = [
            (br#"[{},{},{}]"#, "max_records_per_request"),
            (br#"[{"a":1,"b":2,"c":3}]"#, "max_fields_per_record"),
            (br#"[{"abcde":1}]"#, "max_field_name_chars"),
            (br#"[{"a":"abcd"}]"#, "max_value_bytes"),
        ];
        for (body, limit) in cases {
            let err = parse_json_body(body, NOW, &small).expect_err("must fail");
            assert!(err.to_string().contains(limit), "{err}");
        }
    }

    #[test]
    fn test_arrays_and_non_objects_are_refused() {
        assert!(parse_json_body(br#"[{"ids":[1,2]}]"#, NOW, &limits()).is_err());
        assert!(parse_json_body(br#"[1]"#, NOW, &limits()).is_err());
        assert!(parse_json_body(br#""x""#, NOW, &limits()).is_err());
        assert_eq!(
            parse_json_body(br#"[]"#, NOW, &limits()),
            Err(IngestError::Empty)
        );
    }

    #[test]
    fn test_ndjson_and_json_bodies_read_records_alike() {
        let records = [
            r#"{"time":1700000000,"message":"plain","status":200,"ratio":0.5,"ok":true}"#,
            r#"{"message":42,"http":{"path":"/x","req":{"bytes":7}},"gone":null}"#,
            r#"{"message":"tab\there \u00e9\ud83d\ude00","big":18446744073709551615,"neg":-3}"#,
            r#"{"time":null,"k":"first","k":"last"}"#,
        ];
        let ndjson = records.join("\n");
        let json = format!("[{}]", records.join(","));
        let from_ndjson = parse_ndjson_body(ndjson.as_bytes(), NOW, &limits()).expect("ndjson");
        let from_json = parse_json_body(json.as_bytes(), NOW, &limits()).expect("json");
        assert_eq!(from_ndjson, from_json);
        let [first, second, third, fourth] = &from_ndjson[..] else {
            panic!("four records expected, got {from_ndjson:?}");
        };
        assert_eq!(first.time_ns, NOW);
        assert_eq!(first.fields["status"], FieldValue::Long(200));
        assert_eq!(first.fields["ratio"], FieldValue::Double(0.5));
        assert_eq!(first.fields["ok"], FieldValue::Bool(true));
        // The raw line is text whatever was sent; nested objects are flattened; null
        // fields are absent.
        assert_eq!(second.fields["message"], FieldValue::Str("42".into()));
        assert_eq!(second.fields["http.path"], FieldValue::Str("/x".into()));
        assert_eq!(second.fields["http.req.bytes"], FieldValue::Long(7));
        assert_eq!(second.fields.len(), 3, "{second:?}");
        assert_eq!(
            third.fields["message"],
            FieldValue::Str("tab\there \u{e9}\u{1f600}".into())
        );
        assert_eq!(
            third.fields["big"],
            FieldValue::Double(18446744073709551615.0)
        );
        assert_eq!(third.fields["neg"], FieldValue::Long(-3));
        // A null time is the arrival time; a repeated key keeps its last value.
        assert_eq!(fourth.time_ns, NOW);
        assert_eq!(fourth.fields["k"], FieldValue::Str("last".into()));
    }

    #[test]
    fn test_text_after_a_record_on_its_line_is_malformed() {
        for line in [&br#"{"a":1} x"#[..], br#"{"a":1}{"b":2}"#, br#"{"a":1"#] {
            let err = parse_ndjson_body(line, NOW, &limits()).expect_err("must fail");
            assert!(matches!(err, IngestError::Malformed { .. }), "{err}");
            assert!(err.to_string().contains("line 1 column"), "{err}");
        }
    }

    #[test]
    fn test_ndjson_refusals_name_the_line_and_field() {
        let small = IngestLimits {
            max_fields_per_record: 3,
            max_field_name_chars: 8,
            max_value_bytes: 4,
            ..IngestLimits::default()
        };
        let cases: [(&[u8], &str); 8] = [
            (
                b"{\"a\":1}\n5",
                "`line 2`: a log record must be a JSON object",
            ),
            (
                b"[{\"a\":1}]",
                "`line 1`: a log record must be a JSON object",
            ),
            (b"{\"ids\":[1,2]}", "`line 1.ids`: arrays are not supported"),
            (
                b"{\"a..b\":1}",
                "`line 1.a..b`: field names must be non-empty",
            ),
            (
                b"{\"o\":{\"\":1}}",
                "`line 1.o.`: field names must be non-empty",
            ),
            (
                b"{\"abcdefghi\":1}",
                "`max_field_name_chars` exceeded at `line 1.abcdefghi`",
            ),
            (
                b"{\"o\":{\"v\":\"12345\"}}",
                "`max_value_bytes` exceeded at `line 1.o.v`",
            ),
            (
                b"{\"a\":1,\"o\":{\"b\":2,\"c\":3,\"d\":4}}",
                "`max_fields_per_record` exceeded at `line 1`",
            ),
        ];
        for (body, expected) in cases {
            let err = parse_ndjson_body(body, NOW, &small).expect_err("must fail");
            assert!(
                err.to_string().contains(expected),
                "{err} (expected {expected})"
            );
        }
        let ok = parse_ndjson_body(b"{\"a\":1,\"o\":{\"b\":2,\"c\":null}}", NOW, &small);
        assert_eq!(ok.expect("three fields fit").len(), 1);
    }

    #[test]
    fn test_nesting_deeper_than_sixteen_levels_is_refused() {
        let nested = |levels: usize| {
            let mut record = String::from("1");
            for _ in 0..levels {
                record = format!("{{\"n\":{record}}}");
            }
            record
        };
        // The record object plus 16 nested objects is the deepest accepted.
        let deepest = parse_ndjson_body(nested(17).as_bytes(), NOW, &limits()).expect("16 levels");
        assert_eq!(
            deepest[0]
                .fields
                .keys()
                .next()
                .map(|k| k.matches('.').count()),
            Some(16)
        );
        for body in [nested(18), format!("[{}]", nested(18))] {
            let err = if body.starts_with('[') {
                parse_json_body(body.as_bytes(), NOW, &limits())
            } else {
                parse_ndjson_body(body.as_bytes(), NOW, &limits())
            }
            .expect_err("must fail");
            assert!(
                err.to_string().contains("nested deeper than 16 levels"),
                "{err}"
            );
        }
    }
}
