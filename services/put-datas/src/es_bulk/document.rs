//! One bulk document as a logpool record: `@timestamp` becomes the record's time,
//! then the document is read by PutDatas' own NDJSON reader (same field rules,
//! limits and event-time window).

use std::borrow::Cow;
use std::fmt;

use logpool_core::batch::EncodedRecords;
use logpool_core::ingest::window::EventTimeWindow;
use logpool_core::ingest::{encode_ndjson_body_in_window, IngestError, TIME_FIELD};
use logpool_core::limits::IngestLimits;
use serde::de::{self, Deserializer as _, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The Elasticsearch time field.
pub const TIMESTAMP_FIELD: &str = "@timestamp";
/// Where a document's own `time` goes when it also has an `@timestamp`.
pub const DISPLACED_TIME_FIELD: &str = "time_original";

/// Why a document was not stored, with the status and Elasticsearch error type of
/// its item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The item's HTTP status (400, or 413 for a limit).
    pub status: u16,
    /// Elasticsearch's error type.
    pub kind: &'static str,
    /// What is wrong, naming the line and the field or limit.
    pub reason: String,
}

/// Encodes one document (found at `line` of the body) as one record.
///
/// # Errors
/// The item's refusal: broken JSON, a value or name PutDatas refuses, a limit, or
/// an event time outside the pool's window.
pub fn encode_document(
    document: &[u8],
    line: usize,
    arrival_ns: i64,
    limits: &IngestLimits,
    window: &EventTimeWindow,
) -> Result<EncodedRecords, Refused> {
    let staged = stage(document, line)?;
    encode_staged(&staged, line, arrival_ns, limits, window)
}

/// The document as a PutDatas NDJSON line: `@timestamp` moved to `time`.
///
/// # Errors
/// A document that is not a JSON object.
pub fn stage(document: &[u8], line: usize) -> Result<Cow<'_, [u8]>, Refused> {
    with_record_time(document).map_err(|e| Refused {
        status: 400,
        kind: "mapper_parsing_exception",
        reason: format!("failed to parse the document at line {line}: {e}"),
    })
}

/// Encodes one staged document as one record.
///
/// # Errors
/// As [`encode_document`].
pub fn encode_staged(
    staged: &[u8],
    line: usize,
    arrival_ns: i64,
    limits: &IngestLimits,
    window: &EventTimeWindow,
) -> Result<EncodedRecords, Refused> {
    let (records, refusals) = encode_ndjson_body_in_window(staged, arrival_ns, limits, window)
        .map_err(|error| refused_record(error, line))?;
    if records.is_empty() {
        let reason = refusals
            .listed
            .first()
            .map(|refused| format!("limit `{}`: {}", refused.limit, refused.reason))
            .unwrap_or_else(|| "outside the pool's accepted event-time window".to_string());
        return Err(Refused {
            status: 400,
            kind: "illegal_argument_exception",
            reason: format!("the document at line {line} was refused: {reason}"),
        });
    }
    Ok(records)
}

/// Encodes `count` staged documents (one per line of `lines`) in one pass, as
/// PutDatas reads a body: `None` unless every one of them is stored, so that the
/// caller encodes them one by one to find which are refused. Most requests have no
/// refused document and pay for one pass only.
pub fn encode_all(
    lines: &[u8],
    count: usize,
    arrival_ns: i64,
    limits: &IngestLimits,
    window: &EventTimeWindow,
) -> Option<EncodedRecords> {
    let (records, refusals) =
        encode_ndjson_body_in_window(lines, arrival_ns, limits, window).ok()?;
    (refusals.count == 0 && records.len() == count).then_some(records)
}

/// The document with `@timestamp` moved to the record time field (`time`), and a
/// `time` of its own kept as `time_original`. A document without `@timestamp` is
/// passed on untouched (its `time`, else the arrival time, is the record time).
///
/// Only the top-level members are split, in one pass: their values are copied as
/// the raw JSON they were sent as, without building a tree or a map of them, and
/// are checked by the record reader afterwards.
fn with_record_time(document: &[u8]) -> Result<Cow<'_, [u8]>, serde_json::Error> {
    // Most shippers put `@timestamp` in every document; a document without it
    // skips the rewrite entirely.
    let needle = TIMESTAMP_FIELD.as_bytes();
    if !document
        .windows(needle.len())
        .any(|window| window == needle)
    {
        return Ok(Cow::Borrowed(document));
    }
    let mut out = Vec::with_capacity(document.len() + DISPLACED_TIME_FIELD.len());
    let mut deserializer = serde_json::Deserializer::from_slice(document);
    deserializer.deserialize_map(MovingTimestamp { out: &mut out })?;
    deserializer.end()?;
    Ok(Cow::Owned(out))
}

/// Copies a document's members into `out`, `@timestamp` as `time` and `time` as
/// `time_original`, each value as the raw JSON it was sent as.
struct MovingTimestamp<'o> {
    out: &'o mut Vec<u8>,
}

impl<'de> Visitor<'de> for MovingTimestamp<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<(), A::Error> {
        let out = self.out;
        let mut timestamp: Option<&'de RawValue> = None;
        let mut own_time: Option<&'de RawValue> = None;
        out.push(b'{');
        let write = |out: &mut Vec<u8>, name: &str, value: &RawValue| {
            if out.len() > 1 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, name).map_err(de::Error::custom)?;
            out.push(b':');
            out.extend_from_slice(value.get().as_bytes());
            Ok::<(), A::Error>(())
        };
        while let Some(name) = members.next_key::<Cow<'de, str>>()? {
            let value: &'de RawValue = members.next_value()?;
            match name.as_ref() {
                TIMESTAMP_FIELD => timestamp = Some(value),
                TIME_FIELD => own_time = Some(value),
                other => write(out, other, value)?,
            }
        }
        match timestamp {
            Some(timestamp) => {
                write(out, TIME_FIELD, timestamp)?;
                if let Some(own_time) = own_time {
                    write(out, DISPLACED_TIME_FIELD, own_time)?;
                }
            }
            None => {
                if let Some(own_time) = own_time {
                    write(out, TIME_FIELD, own_time)?;
                }
            }
        }
        out.push(b'}');
        Ok(())
    }
}

/// The refusal of a document PutDatas' reader refused; its messages say `line 1`
/// (the document read alone), which becomes the document's line in the body.
fn refused_record(error: IngestError, line: usize) -> Refused {
    let in_body = |text: String| text.replacen("line 1", &format!("line {line}"), 1);
    match error {
        IngestError::LimitExceeded { .. } => Refused {
            status: 413,
            kind: "illegal_argument_exception",
            reason: in_body(error.to_string()),
        },
        IngestError::Malformed { .. } | IngestError::Invalid { .. } => Refused {
            status: 400,
            kind: "mapper_parsing_exception",
            reason: in_body(error.to_string()),
        },
        IngestError::Empty => Refused {
            status: 400,
            kind: "mapper_parsing_exception",
            reason: format!("the document at line {line} is empty"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logpool_core::batch::decode_batch;
    use logpool_core::record::FieldValue;

    fn record_of(document: &str) -> Result<logpool_core::record::Record, Refused> {
        let encoded = encode_document(
            document.as_bytes(),
            9,
            5_000,
            &IngestLimits::default(),
            &EventTimeWindow::UNBOUNDED,
        )?;
        let payload = encoded.encode_run(0..1).expect("encode");
        Ok(decode_batch(&payload).expect("decode").remove(0))
    }

    #[test]
    fn timestamp_becomes_the_record_time_and_an_own_time_is_kept() {
        let record = record_of(r#"{"@timestamp":"2026-01-02T03:04:05Z","time":"x","message":"m"}"#)
            .expect("stored");
        assert_eq!(record.time_ns, 1_767_323_045_000_000_000);
        assert_eq!(
            record.fields.get("time_original"),
            Some(&FieldValue::Str("x".to_string()))
        );
        assert!(!record.fields.contains_key("@timestamp"));
        let without = record_of(r#"{"message":"no time"}"#).expect("stored");
        assert_eq!(without.time_ns, 5_000);
    }

    #[test]
    fn the_rewrite_keeps_nested_values_and_escaped_names() {
        let record = record_of(
            r#"{"http":{"status":200,"path":"/a\"b"},"@timestamp":1767323045123,"we\"ird":"v"}"#,
        )
        .expect("stored");
        assert_eq!(record.time_ns, 1_767_323_045_123_000_000);
        assert_eq!(
            record.fields.get("http.status"),
            Some(&FieldValue::Long(200))
        );
        assert_eq!(
            record.fields.get("http.path"),
            Some(&FieldValue::Str("/a\"b".to_string()))
        );
        assert_eq!(
            record.fields.get("we\"ird"),
            Some(&FieldValue::Str("v".to_string()))
        );
        // `@timestamp` only inside a string: nothing to move.
        let mention = record_of(r#"{"message":"has no @timestamp"}"#).expect("stored");
        assert_eq!(mention.time_ns, 5_000);
    }

    #[test]
    fn a_bad_document_is_refused_with_its_line() {
        let broken = record_of(r#"{"message": "#).expect_err("broken");
        assert_eq!(
            (broken.status, broken.kind),
            (400, "mapper_parsing_exception")
        );
        assert!(broken.reason.contains("line 9"), "{}", broken.reason);
        let bad_time = record_of(r#"{"@timestamp":"yesterday"}"#).expect_err("bad time");
        assert_eq!(bad_time.status, 400);
        assert!(bad_time.reason.contains("time"), "{}", bad_time.reason);
        let not_object = record_of("[1,2]").expect_err("array");
        assert_eq!(not_object.status, 400);
        let broken_with_timestamp = record_of(r#"{"@timestamp":1,"message":"#).expect_err("broken");
        assert_eq!(broken_with_timestamp.kind, "mapper_parsing_exception");
    }
}
