//! A log record: an event time plus flat, typed fields.
//!
//! Nested JSON objects sent by clients are flattened with dots (`http.status`), and
//! request-level tags become `tags.<key>` fields, so every engine sees one flat map.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Field that holds the main log line. It is indexed for full-text search only (no
/// column, like Elasticsearch's log templates map it): pipe SQL cannot group or
/// aggregate it.
pub const MESSAGE_FIELD: &str = "message";
/// Field that names where a record came from (host, file, app).
pub const SOURCE_FIELD: &str = "source";
/// Prefix of fields made from request-level tags.
pub const TAG_PREFIX: &str = "tags.";

/// One field value. Untagged so that records serialize as plain JSON objects; read
/// back by a hand-written visitor ([`FieldValueVisitor`]) because serde's untagged
/// enums buffer every value and try each variant in turn, which cost about 4% of
/// indexing CPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Long(i64),
    /// A floating point number.
    Double(f64),
    /// A string.
    Str(String),
}

/// Reads a value the way the untagged derive did: a bool, then an integer that fits
/// an `i64`, then any other number as a double, then a string.
struct FieldValueVisitor;

impl<'de> serde::de::Visitor<'de> for FieldValueVisitor {
    type Value = FieldValue;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a boolean, a number or a string")
    }

    fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<FieldValue, E> {
        Ok(FieldValue::Bool(value))
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<FieldValue, E> {
        Ok(FieldValue::Long(value))
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<FieldValue, E> {
        Ok(match i64::try_from(value) {
            Ok(value) => FieldValue::Long(value),
            Err(_) => FieldValue::Double(value as f64),
        })
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<FieldValue, E> {
        Ok(FieldValue::Double(value))
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<FieldValue, E> {
        Ok(FieldValue::Str(value.to_string()))
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<FieldValue, E> {
        Ok(FieldValue::Str(value))
    }
}

impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<FieldValue, D::Error> {
        deserializer.deserialize_any(FieldValueVisitor)
    }
}

impl FieldValue {
    /// Returns the value as text, the way a full-text search sees it.
    pub fn as_text(&self) -> String {
        match self {
            FieldValue::Bool(b) => b.to_string(),
            FieldValue::Long(n) => n.to_string(),
            FieldValue::Double(x) => x.to_string(),
            FieldValue::Str(s) => s.clone(),
        }
    }

    /// Returns the value as a number when it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FieldValue::Long(n) => Some(*n as f64),
            FieldValue::Double(x) => Some(*x),
            _ => None,
        }
    }

    /// Returns the value as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            FieldValue::Bool(b) => serde_json::Value::Bool(*b),
            FieldValue::Long(n) => serde_json::Value::from(*n),
            FieldValue::Double(x) => serde_json::Number::from_f64(*x)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            FieldValue::Str(s) => serde_json::Value::String(s.clone()),
        }
    }
}

/// A log record as it travels through the queue and into the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Event time in nanoseconds since the Unix epoch.
    #[serde(rename = "t")]
    pub time_ns: i64,
    /// Flat fields, including `message`, `source` and `tags.*`.
    #[serde(rename = "f")]
    pub fields: BTreeMap<String, FieldValue>,
}

impl Record {
    /// Returns the `message` field, if any, as text.
    pub fn message(&self) -> Option<String> {
        self.fields.get(MESSAGE_FIELD).map(FieldValue::as_text)
    }

    /// Returns the fields as a JSON object.
    pub fn fields_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.fields
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect()
    }
}

/// Formats nanoseconds since the epoch as RFC 3339 with nanosecond precision.
pub fn format_time_ns(time_ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(time_ns))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| time_ns.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn field_values_read_back_as_the_untagged_derive_read_them() {
        let read = |json: &str| serde_json::from_str::<FieldValue>(json);
        assert_eq!(read("true").expect("bool"), FieldValue::Bool(true));
        assert_eq!(read("-7").expect("long"), FieldValue::Long(-7));
        assert_eq!(read("7").expect("long"), FieldValue::Long(7));
        assert_eq!(
            read("18446744073709551615").expect("beyond i64"),
            FieldValue::Double(18446744073709551615.0)
        );
        assert_eq!(read("2.5").expect("double"), FieldValue::Double(2.5));
        assert_eq!(read("\"x\"").expect("str"), FieldValue::Str("x".into()));
        assert!(read("null").is_err());
        assert!(read("[1]").is_err());
        assert!(read("{}").is_err());
    }

    use super::*;

    #[test]
    fn test_record_roundtrips_through_json() {
        let mut fields = BTreeMap::new();
        fields.insert("message".to_string(), FieldValue::Str("hi".into()));
        fields.insert("status".to_string(), FieldValue::Long(500));
        fields.insert("latency".to_string(), FieldValue::Double(1.5));
        fields.insert("ok".to_string(), FieldValue::Bool(false));
        let record = Record {
            time_ns: 42,
            fields,
        };
        let json = serde_json::to_string(&record).expect("serialize");
        let back: Record = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, record);
    }

    #[test]
    fn test_format_time_ns() {
        assert_eq!(format_time_ns(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time_ns(1_500_000_000), "1970-01-01T00:00:01.5Z");
    }
}
