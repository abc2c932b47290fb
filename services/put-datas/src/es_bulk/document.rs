//! One bulk document as a logpool record, read by PutDatas' own NDJSON reader (same
//! field rules, limits and event-time window) with `@timestamp` as the record's time
//! and a `time` of the document's own kept as `time_original`; the document is read
//! once, as it was sent.

use logpool_core::batch::EncodedRecords;
use logpool_core::ingest::window::EventTimeWindow;
use logpool_core::ingest::{
    encode_documents_in_window, encode_ndjson_documents_in_window, IngestError, TimeMember,
};
use logpool_core::limits::IngestLimits;

/// Where a document's own `time` goes when it also has an `@timestamp`.
pub use logpool_core::ingest::DISPLACED_TIME_FIELD;
/// The Elasticsearch time field.
pub use logpool_core::ingest::TIMESTAMP_FIELD;

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
    let (records, refusals) = encode_ndjson_documents_in_window(
        document,
        arrival_ns,
        limits,
        window,
        TimeMember::Timestamp,
    )
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

/// Encodes documents (each with its line in the body) in one pass, as PutDatas
/// reads a body, where they are in the request (nothing copied): `None` unless
/// every one of them is stored, so that the caller encodes them one by one to find
/// which are refused. Most requests have no refused document and pay for one pass
/// only. `bytes` is their total size.
pub fn encode_all<'d>(
    documents: impl ExactSizeIterator<Item = (usize, &'d [u8])>,
    bytes: usize,
    arrival_ns: i64,
    limits: &IngestLimits,
    window: &EventTimeWindow,
) -> Option<EncodedRecords> {
    let count = documents.len();
    let (records, refusals) = encode_documents_in_window(
        documents,
        bytes,
        arrival_ns,
        limits,
        window,
        TimeMember::Timestamp,
    )
    .ok()?;
    (refusals.count == 0 && records.len() == count).then_some(records)
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
