//! From OTLP log records to logpool records (field names in `docs/api.md`, "OTLP
//! logs"), following the OpenTelemetry log data model and the names its Elasticsearch
//! mapping uses: `resource.attributes.*`, `scope.*`, `attributes.*`, `severity_*`,
//! `trace_id`/`span_id` in hex.

use base64::Engine as _;
use logpool_api::ApiError;
use serde::ser::{SerializeMap as _, Serializer};
use serde::Serialize;
use serde_json::{json, Map, Value as Json};

use super::view::{AnyValueView, Export, KeyValueView, LogRecordView, ScopeView};
use crate::protocol::{hex, PoolName, RecordsWriter};

/// The resource attribute naming the target project (when no header does).
pub const PROJECT_ATTRIBUTE: &str = "logpool.project";
/// The resource attribute naming the target pool (when no header does).
pub const POOL_ATTRIBUTE: &str = "logpool.pool";

/// What converting a request found besides its records.
#[derive(Debug, Default)]
pub struct Converted {
    /// Why each rejected record was left out, in request order.
    pub rejected: Vec<String>,
    /// The pool the resources name (the first resource that names one), used when
    /// no header names one.
    pub pool: Option<PoolName>,
    /// Where each written record is in the request (resource, scope, record), to
    /// name the records PutDatas refuses.
    pub places: Vec<[usize; 3]>,
}

/// A record's place in an OTLP request, as the JSON encoding names it.
pub fn place_name([r, s, l]: [usize; 3]) -> String {
    format!("resourceLogs[{r}].scopeLogs[{s}].logRecords[{l}]")
}

/// Writes every record of `request` into `records`. With `headers_name_pool`, the
/// resources' `logpool.*` attributes are not read; otherwise the records of a
/// resource that names another pool than the first one are rejected (one request
/// writes one pool).
///
/// # Errors
/// 413 when the records exceed the writer's budget, checked record by record.
pub fn convert(
    request: &Export<'_>,
    headers_name_pool: bool,
    records: &mut RecordsWriter,
) -> Result<Converted, ApiError> {
    let mut converted = Converted::default();
    for (r, resource_logs) in request.resource_logs.iter().enumerate() {
        let resource_attributes = resource_logs.attributes.as_slice();
        let named = (!headers_name_pool)
            .then(|| pool_of(resource_attributes))
            .flatten();
        let other_pool = match (&named, &converted.pool) {
            (Some(named), Some(first)) if named != first => Some(named.clone()),
            (Some(named), None) => {
                converted.pool = Some(named.clone());
                None
            }
            _ => None,
        };
        // Serialized once, pasted into each of the resource's records.
        let resource = (!resource_attributes.is_empty())
            .then(|| json!({ "attributes": Attributes(resource_attributes) }).to_string());
        for (s, scope_logs) in resource_logs.scope_logs.iter().enumerate() {
            let scope = scope_json(&scope_logs.scope);
            for (l, record) in scope_logs.log_records.iter().enumerate() {
                // Named only for a rejection: most records have none.
                let place = || place_name([r, s, l]);
                if let Some(other) = &other_pool {
                    converted.rejected.push(format!(
                        "{}: its resource names pool `{}/{}`, another than the request's; \
                         send one request per pool",
                        place(),
                        other.project,
                        other.pool
                    ));
                    continue;
                }
                if let Err(reason) = check_ids(record) {
                    converted.rejected.push(format!("{}: {reason}", place()));
                    continue;
                }
                write_record(records, record, resource.as_deref(), scope.as_deref())?;
                converted.places.push([r, s, l]);
            }
        }
    }
    Ok(converted)
}

fn pool_of(attributes: &[KeyValueView<'_>]) -> Option<PoolName> {
    let text = |name: &str| {
        attributes
            .iter()
            .find(|kv| kv.key == name)
            .and_then(|kv| match kv.value {
                AnyValueView::String(text) => Some(text.to_string()),
                _ => None,
            })
    };
    Some(PoolName {
        project: text(PROJECT_ATTRIBUTE)?,
        pool: text(POOL_ATTRIBUTE)?,
    })
}

/// The scope's fields as JSON, or none when it has none.
fn scope_json(scope: &ScopeView<'_>) -> Option<String> {
    let mut fields = Map::new();
    if !scope.name.is_empty() {
        fields.insert("name".into(), Json::String(scope.name.to_string()));
    }
    if !scope.version.is_empty() {
        fields.insert("version".into(), Json::String(scope.version.to_string()));
    }
    if !scope.attributes.is_empty() {
        fields.insert("attributes".into(), json!(Attributes(&scope.attributes)));
    }
    (!fields.is_empty()).then(|| Json::Object(fields).to_string())
}

/// Trace and span ids have one length each (or none).
fn check_ids(record: &LogRecordView<'_>) -> Result<(), String> {
    match (record.trace_id.len(), record.span_id.len()) {
        (0 | 16, 0 | 8) => Ok(()),
        (0 | 16, other) => Err(format!("span_id must be 8 bytes, got {other}")),
        (other, _) => Err(format!("trace_id must be 16 bytes, got {other}")),
    }
}

/// Writes one record's fields (its ids checked already).
fn write_record(
    records: &mut RecordsWriter,
    record: &LogRecordView<'_>,
    resource: Option<&str>,
    scope: Option<&str>,
) -> Result<(), ApiError> {
    let mut fields = records.record();
    // The event time; the observed time stands in for a source without a clock
    // (the data model's advice), and the arrival time for one with neither.
    let time = match (record.time_unix_nano, record.observed_time_unix_nano) {
        (0, 0) => None,
        (0, observed) => Some(observed),
        (time, _) => Some(time),
    };
    if let Some(time) = time {
        fields.field("time", &time);
    }
    if record.observed_time_unix_nano != 0 {
        fields.field("observed_time_unix_nano", &record.observed_time_unix_nano);
    }
    match &record.body {
        AnyValueView::Kvlist(map) => fields.field("body", &Attributes(map)),
        AnyValueView::Empty => {}
        body => fields.field("message", &Field(body)),
    }
    if record.severity_number != 0 {
        fields.field("severity_number", &record.severity_number);
    }
    let severity_text = if record.severity_text.is_empty() {
        severity_name(record.severity_number).unwrap_or_default()
    } else {
        record.severity_text
    };
    if !severity_text.is_empty() {
        fields.field("severity_text", &severity_text);
    }
    if !record.trace_id.is_empty() {
        fields.field("trace_id", &hex(record.trace_id));
    }
    if !record.span_id.is_empty() {
        fields.field("span_id", &hex(record.span_id));
    }
    if record.flags != 0 {
        fields.field("trace_flags", &record.flags);
    }
    if !record.event_name.is_empty() {
        fields.field("event_name", &record.event_name);
    }
    if !record.attributes.is_empty() {
        fields.field("attributes", &Attributes(&record.attributes));
    }
    if let Some(resource) = resource {
        fields.json_field("resource", resource);
    }
    if let Some(scope) = scope {
        fields.json_field("scope", scope);
    }
    fields.finish()
}

/// The data model's short name of a severity number's range.
fn severity_name(number: i32) -> Option<&'static str> {
    Some(match number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => return None,
    })
}

/// Attributes as a JSON object (PutDatas flattens nested maps into dotted names);
/// empty keys are left out.
struct Attributes<'a>(&'a [KeyValueView<'a>]);

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for kv in self.0.iter().filter(|kv| !kv.key.is_empty()) {
            map.serialize_entry(kv.key, &Field(&kv.value))?;
        }
        map.end()
    }
}

/// An `AnyValue` as a field value: scalars as they are, maps as nested objects,
/// arrays (which fields cannot hold) as their JSON text, bytes as base64; an empty
/// value is `null`, which PutDatas skips.
struct Field<'a>(&'a AnyValueView<'a>);

/// An `AnyValue` inside an array's JSON text, where arrays stay arrays.
struct Item<'a>(&'a AnyValueView<'a>);

impl Serialize for Field<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            AnyValueView::Array(values) => {
                let items: Vec<Item<'_>> = values.iter().map(Item).collect();
                let text = serde_json::to_string(&items).map_err(serde::ser::Error::custom)?;
                serializer.serialize_str(&text)
            }
            other => scalar_or_map(other, serializer),
        }
    }
}

impl Serialize for Item<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        scalar_or_map(self.0, serializer)
    }
}

fn scalar_or_map<S: Serializer>(
    value: &AnyValueView<'_>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        AnyValueView::Empty => serializer.serialize_unit(),
        AnyValueView::String(text) => serializer.serialize_str(text),
        AnyValueView::Bool(flag) => serializer.serialize_bool(*flag),
        AnyValueView::Int(number) => serializer.serialize_i64(*number),
        // NaN and infinities have no JSON number: kept as text.
        AnyValueView::Double(number) if !number.is_finite() => {
            serializer.serialize_str(&number.to_string())
        }
        AnyValueView::Double(number) => serializer.serialize_f64(*number),
        AnyValueView::Kvlist(map) => Attributes(map).serialize(serializer),
        AnyValueView::Bytes(bytes) => {
            serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        AnyValueView::Array(values) => serializer.collect_seq(values.iter().map(Item)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::proto::{
        AnyValue, ArrayValue, ExportLogsServiceRequest, InstrumentationScope, KeyValue,
        KeyValueList, LogRecord, Resource, ResourceLogs, ScopeLogs, Value,
    };
    use super::*;
    use logpool_core::limits::IngestLimits;

    /// Converts under the default limits; gives what was found and the records.
    fn convert_all(
        request: &ExportLogsServiceRequest,
        headers_name_pool: bool,
    ) -> (Converted, Vec<Json>) {
        let mut records = RecordsWriter::new(&IngestLimits::default());
        let converted = convert(
            &Export::from_owned(request),
            headers_name_pool,
            &mut records,
        )
        .expect("converts");
        let body: Json = serde_json::from_slice(&records.finish()).expect("JSON");
        let logs = body["logs"].as_array().cloned().unwrap_or_default();
        (converted, logs)
    }

    fn text(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(value.into())),
            }),
        }
    }

    fn request(resources: Vec<(Vec<KeyValue>, Vec<LogRecord>)>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: resources
                .into_iter()
                .map(|(attributes, log_records)| ResourceLogs {
                    resource: Some(Resource { attributes }),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: "app.db".into(),
                            version: "2".into(),
                            attributes: vec![],
                        }),
                        log_records,
                    }],
                })
                .collect(),
        }
    }

    #[test]
    fn test_record_fields_follow_the_documented_names() {
        let list = AnyValue {
            value: Some(Value::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue {
                        value: Some(Value::IntValue(1)),
                    },
                    AnyValue {
                        value: Some(Value::StringValue("b".into())),
                    },
                ],
            })),
        };
        let record = LogRecord {
            time_unix_nano: 1_700_000_000_000_000_001,
            observed_time_unix_nano: 1_700_000_000_500_000_000,
            severity_number: 17,
            body: Some(AnyValue {
                value: Some(Value::KvlistValue(KeyValueList {
                    values: vec![text("op", "insert")],
                })),
            }),
            attributes: vec![
                text("http.method", "GET"),
                KeyValue {
                    key: "list".into(),
                    value: Some(list),
                },
                KeyValue {
                    key: "raw".into(),
                    value: Some(AnyValue {
                        value: Some(Value::BytesValue(vec![1, 2, 3])),
                    }),
                },
            ],
            trace_id: vec![0xab; 16],
            span_id: vec![0x01; 8],
            ..LogRecord::default()
        };
        let (converted, records) = convert_all(
            &request(vec![(vec![text("service.name", "api")], vec![record])]),
            false,
        );
        assert!(converted.rejected.is_empty(), "{:?}", converted.rejected);
        let fields = &records[0];
        assert_eq!(fields["time"], 1_700_000_000_000_000_001u64);
        assert_eq!(
            fields["observed_time_unix_nano"],
            1_700_000_000_500_000_000u64
        );
        assert_eq!(fields["severity_text"], "ERROR");
        assert_eq!(fields["severity_number"], 17);
        assert_eq!(fields["body.op"], "insert");
        assert_eq!(fields["attributes.http.method"], "GET");
        assert_eq!(fields["attributes.list"], r#"[1,"b"]"#);
        assert_eq!(fields["attributes.raw"], "AQID");
        assert_eq!(fields["resource.attributes.service.name"], "api");
        assert_eq!(fields["scope.name"], "app.db");
        assert_eq!(fields["trace_id"], "ab".repeat(16));
        assert_eq!(fields["span_id"], "0101010101010101");
    }

    #[test]
    fn test_bad_ids_and_other_pools_are_rejected_one_by_one() {
        let good = LogRecord {
            body: Some(AnyValue {
                value: Some(Value::StringValue("fine".into())),
            }),
            ..LogRecord::default()
        };
        let short_trace = LogRecord {
            trace_id: vec![1, 2, 3],
            ..good.clone()
        };
        let first = vec![text(PROJECT_ATTRIBUTE, "shop"), text(POOL_ATTRIBUTE, "web")];
        let second = vec![text(PROJECT_ATTRIBUTE, "shop"), text(POOL_ATTRIBUTE, "db")];
        let (converted, records) = convert_all(
            &request(vec![
                (first.clone(), vec![good.clone(), short_trace]),
                (second.clone(), vec![good.clone()]),
            ]),
            false,
        );
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["message"], "fine");
        assert_eq!(converted.rejected.len(), 2, "{:?}", converted.rejected);
        assert!(converted.rejected[0].contains("trace_id must be 16 bytes, got 3"));
        assert!(converted.rejected[1].contains("shop/db"));
        assert_eq!(
            converted.pool,
            Some(PoolName {
                project: "shop".into(),
                pool: "web".into()
            })
        );
        // The headers' pool wins: the attributes are neither read nor enforced.
        let (converted, records) = convert_all(
            &request(vec![(first, vec![good.clone()]), (second, vec![good])]),
            true,
        );
        assert_eq!((records.len(), converted.pool), (2, None));
    }

    #[test]
    fn test_a_large_resource_repeated_by_many_records_is_refused_while_converting() {
        // 100 kB of attributes, each value within `max_value_bytes`.
        let resource: Vec<KeyValue> = (0..20)
            .map(|i| text(&format!("big{i}"), &"x".repeat(5_000)))
            .collect();
        let records = vec![LogRecord::default(); 500];
        let mut writer = RecordsWriter::new(&IngestLimits::default());
        let request = request(vec![(resource, records)]);
        let error = convert(&Export::from_owned(&request), false, &mut writer)
            .expect_err("50 MB of repeated attributes");
        assert!(
            error.message.contains("max_body_bytes"),
            "{}",
            error.message
        );
    }
}
