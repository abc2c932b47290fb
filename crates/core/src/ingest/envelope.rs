//! A JSON PutDatas body taken apart: its records' JSON text and the fields every
//! record shares (`source`, `tags`).
//!
//! The records are kept as slices of the body (`RawValue`), not as `Value` trees, so
//! that each one is read once, by the same visitor as an NDJSON line, into a `Record`
//! or straight into a queue batch.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{
    check_field_name, check_record_count, check_value_size, invalid, strip_position, IngestError,
};
use crate::limits::IngestLimits;
use crate::record::{FieldValue, SOURCE_FIELD, TAG_PREFIX};

/// The parts of a JSON body.
pub(super) struct Envelope<'b> {
    /// Each record's JSON text, in order; the whole body is known to be valid JSON.
    pub(super) logs: Vec<&'b RawValue>,
    /// The request's source and tags, as record fields.
    pub(super) shared: BTreeMap<String, FieldValue>,
}

/// Takes `{"source": ..., "tags": {...}, "logs": [...]}` (or a bare array of
/// records) apart, checking everything but the records themselves.
///
/// # Errors
/// Malformed JSON with its position, or the envelope key at fault.
pub(super) fn read_envelope<'b>(
    body: &'b [u8],
    limits: &IngestLimits,
) -> Result<Envelope<'b>, IngestError> {
    let malformed = |e: serde_json::Error| IngestError::Malformed {
        location: Some(format!("line {} column {}", e.line(), e.column())),
        message: strip_position(&e.to_string()),
    };
    // The first byte tells the shape, and the parse of that shape checks the whole
    // body's syntax as it takes the body apart: the body is not scanned once more
    // just to check it.
    let (logs, source, tags) = match body.iter().find(|byte| !byte.is_ascii_whitespace()) {
        Some(b'[') => (
            serde_json::from_slice::<Vec<&RawValue>>(body).map_err(malformed)?,
            None,
            Map::new(),
        ),
        Some(b'{') => {
            let mut envelope: BTreeMap<String, &RawValue> =
                serde_json::from_slice(body).map_err(malformed)?;
            let logs = envelope.remove("logs");
            let source = envelope.remove(SOURCE_FIELD);
            let tags = envelope.remove("tags");
            // An unknown key first: `{"log": [...]}` is a typo of `logs`, not a missing field.
            if let Some(unknown) = envelope.keys().next() {
                return Err(invalid(
                    unknown,
                    "unknown envelope key; expected `logs`, `source` or `tags`",
                ));
            }
            let logs = match logs {
                Some(logs) if logs.get().starts_with('[') => records_of(logs)?,
                Some(_) => return Err(invalid("logs", "must be an array of log records")),
                None => return Err(invalid("logs", "is missing; expected {\"logs\": [...]}")),
            };
            let source = match source.map(|raw| serde_json::from_str::<Value>(raw.get())) {
                None | Some(Ok(Value::Null)) => None,
                Some(Ok(Value::String(s))) => Some(s),
                Some(_) => return Err(invalid("source", "must be a string")),
            };
            let tags = match tags.map(|raw| serde_json::from_str::<Value>(raw.get())) {
                None | Some(Ok(Value::Null)) => Map::new(),
                Some(Ok(Value::Object(tags))) => tags,
                Some(_) => return Err(invalid("tags", "must be an object of strings")),
            };
            (logs, source, tags)
        }
        _ => {
            // Malformed, or well-formed JSON of another shape.
            serde_json::from_slice::<&RawValue>(body).map_err(malformed)?;
            return Err(invalid(
                "$",
                "must be an object with `logs` or an array of records",
            ));
        }
    };
    check_record_count(logs.len(), limits.max_records_per_request, || {
        "logs".to_string()
    })?;
    let mut shared = BTreeMap::new();
    if let Some(source) = source {
        check_value_size(SOURCE_FIELD, || "source".to_string(), source.len(), limits)?;
        shared.insert(SOURCE_FIELD.to_string(), FieldValue::Str(source));
    }
    for (key, value) in tags {
        let path = format!("tags.{key}");
        let text = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(invalid(&path, "tag values must be strings")),
        };
        check_field_name(&format!("{TAG_PREFIX}{key}"), || path.clone(), limits)?;
        check_value_size(&path, || path.clone(), text.len(), limits)?;
        shared.insert(format!("{TAG_PREFIX}{key}"), FieldValue::Str(text));
    }
    if shared.len() > limits.max_fields_per_record {
        return Err(IngestError::LimitExceeded {
            limit: "max_fields_per_record",
            path: "tags".to_string(),
            message: format!(
                "source and tags make {} fields of every record, the limit is {}",
                shared.len(),
                limits.max_fields_per_record
            ),
        });
    }
    Ok(Envelope { logs, shared })
}

/// The elements of a JSON array already known to be valid.
fn records_of(array: &RawValue) -> Result<Vec<&RawValue>, IngestError> {
    serde_json::from_str(array.get()).map_err(|e| invalid("logs", &e.to_string()))
}
