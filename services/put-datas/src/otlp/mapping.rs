//! From OTLP log records to logpool records (field names in `docs/api.md`, "OTLP
//! logs"), following the OpenTelemetry log data model and the names its Elasticsearch
//! mapping uses: `resource.attributes.*`, `scope.*`, `attributes.*`, `severity_*`,
//! `trace_id`/`span_id` in hex.

use base64::Engine as _;
use serde_json::{Map, Number, Value as Json};

use super::proto::{AnyValue, ExportLogsServiceRequest, KeyValue, LogRecord, Value};
use logpool_api::ApiError;
use prost::Message as _;

use crate::protocol::{hex, ExpansionBudget, PoolName};

/// The resource attribute naming the target project (when no header does).
pub const PROJECT_ATTRIBUTE: &str = "logpool.project";
/// The resource attribute naming the target pool (when no header does).
pub const POOL_ATTRIBUTE: &str = "logpool.pool";

/// A request's records, converted.
#[derive(Debug, Default)]
pub struct Converted {
    /// The records to store, in request order.
    pub records: Vec<Map<String, Json>>,
    /// Why each rejected record was left out, in request order.
    pub rejected: Vec<String>,
    /// The pool the resources name (the first resource that names one), used when
    /// no header names one.
    pub pool: Option<PoolName>,
}

/// Converts every record of `request`. With `headers_name_pool`, the resources'
/// `logpool.*` attributes are not read; otherwise the records of a resource that
/// names another pool than the first one are rejected (one request writes one pool).
///
/// # Errors
/// 413 when the records would exceed `budget`, checked before each is built.
pub fn convert(
    request: &ExportLogsServiceRequest,
    headers_name_pool: bool,
    budget: &mut ExpansionBudget,
) -> Result<Converted, ApiError> {
    let mut converted = Converted::default();
    for (r, resource_logs) in request.resource_logs.iter().enumerate() {
        let resource_attributes = resource_logs
            .resource
            .as_ref()
            .map(|resource| resource.attributes.as_slice())
            .unwrap_or_default();
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
        let resource = attributes_object(resource_attributes);
        // Every record of the resource repeats its attributes.
        let resource_bytes = Json::Object(resource.clone()).to_string().len();
        for (s, scope_logs) in resource_logs.scope_logs.iter().enumerate() {
            let mut scope = Map::new();
            if let Some(instrumentation) = &scope_logs.scope {
                insert_text(&mut scope, "name", &instrumentation.name);
                insert_text(&mut scope, "version", &instrumentation.version);
                if !instrumentation.attributes.is_empty() {
                    scope.insert(
                        "attributes".into(),
                        Json::Object(attributes_object(&instrumentation.attributes)),
                    );
                }
            }
            let shared_bytes = resource_bytes + Json::Object(scope.clone()).to_string().len();
            for (l, record) in scope_logs.log_records.iter().enumerate() {
                // The record's own part is about as large as its protobuf encoding
                // (twice, for JSON's quotes and names).
                budget.take(shared_bytes + 2 * record.encoded_len())?;
                let place = format!("resourceLogs[{r}].scopeLogs[{s}].logRecords[{l}]");
                if let Some(other) = &other_pool {
                    converted.rejected.push(format!(
                        "{place}: its resource names pool `{}/{}`, another than the request's; \
                         send one request per pool",
                        other.project, other.pool
                    ));
                    continue;
                }
                match convert_record(record, &resource, &scope) {
                    Ok(fields) => converted.records.push(fields),
                    Err(reason) => converted.rejected.push(format!("{place}: {reason}")),
                }
            }
        }
    }
    Ok(converted)
}

fn pool_of(attributes: &[KeyValue]) -> Option<PoolName> {
    let text = |name: &str| {
        attributes.iter().find(|kv| kv.key == name).and_then(|kv| {
            match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(text)) => Some(text.clone()),
                _ => None,
            }
        })
    };
    Some(PoolName {
        project: text(PROJECT_ATTRIBUTE)?,
        pool: text(POOL_ATTRIBUTE)?,
    })
}

/// One record's fields, or why it cannot be stored.
fn convert_record(
    record: &LogRecord,
    resource: &Map<String, Json>,
    scope: &Map<String, Json>,
) -> Result<Map<String, Json>, String> {
    let mut fields = Map::new();
    // The event time; the observed time stands in for a source without a clock
    // (the data model's advice), and the arrival time for one with neither.
    let time = match (record.time_unix_nano, record.observed_time_unix_nano) {
        (0, 0) => None,
        (0, observed) => Some(observed),
        (time, _) => Some(time),
    };
    if let Some(time) = time {
        fields.insert("time".into(), Json::Number(time.into()));
    }
    if record.observed_time_unix_nano != 0 {
        fields.insert(
            "observed_time_unix_nano".into(),
            Json::Number(record.observed_time_unix_nano.into()),
        );
    }
    match record.body.as_ref().and_then(|body| body.value.as_ref()) {
        Some(Value::KvlistValue(map)) => {
            fields.insert("body".into(), Json::Object(attributes_object(&map.values)));
        }
        Some(_) => {
            let message = record.body.as_ref().map(any_value).unwrap_or(Json::Null);
            fields.insert("message".into(), message);
        }
        None => {}
    }
    if record.severity_number != 0 {
        fields.insert(
            "severity_number".into(),
            Json::Number(record.severity_number.into()),
        );
    }
    let severity_text = if record.severity_text.is_empty() {
        severity_name(record.severity_number).unwrap_or_default()
    } else {
        record.severity_text.as_str()
    };
    insert_text(&mut fields, "severity_text", severity_text);
    match record.trace_id.len() {
        0 => {}
        16 => {
            fields.insert("trace_id".into(), Json::String(hex(&record.trace_id)));
        }
        other => return Err(format!("trace_id must be 16 bytes, got {other}")),
    }
    match record.span_id.len() {
        0 => {}
        8 => {
            fields.insert("span_id".into(), Json::String(hex(&record.span_id)));
        }
        other => return Err(format!("span_id must be 8 bytes, got {other}")),
    }
    if record.flags != 0 {
        fields.insert("trace_flags".into(), Json::Number(record.flags.into()));
    }
    insert_text(&mut fields, "event_name", &record.event_name);
    if !record.attributes.is_empty() {
        fields.insert(
            "attributes".into(),
            Json::Object(attributes_object(&record.attributes)),
        );
    }
    if !resource.is_empty() {
        let mut wrapped = Map::new();
        wrapped.insert("attributes".into(), Json::Object(resource.clone()));
        fields.insert("resource".into(), Json::Object(wrapped));
    }
    if !scope.is_empty() {
        fields.insert("scope".into(), Json::Object(scope.clone()));
    }
    Ok(fields)
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

fn insert_text(fields: &mut Map<String, Json>, name: &str, text: &str) {
    if !text.is_empty() {
        fields.insert(name.into(), Json::String(text.to_string()));
    }
}

/// Attributes as a JSON object; PutDatas flattens nested maps into dotted names.
fn attributes_object(attributes: &[KeyValue]) -> Map<String, Json> {
    attributes
        .iter()
        .filter(|kv| !kv.key.is_empty())
        .map(|kv| {
            let value = kv.value.as_ref().map(any_value).unwrap_or(Json::Null);
            (kv.key.clone(), value)
        })
        .collect()
}

/// An `AnyValue` as a field value: scalars as they are, maps as nested objects,
/// arrays (which fields cannot hold) as their JSON text, bytes as base64.
fn any_value(value: &AnyValue) -> Json {
    match &value.value {
        None => Json::Null,
        Some(Value::StringValue(text)) => Json::String(text.clone()),
        Some(Value::BoolValue(flag)) => Json::Bool(*flag),
        Some(Value::IntValue(number)) => Json::Number((*number).into()),
        // NaN and infinities have no JSON number: kept as text.
        Some(Value::DoubleValue(number)) => Number::from_f64(*number)
            .map(Json::Number)
            .unwrap_or_else(|| Json::String(number.to_string())),
        Some(Value::ArrayValue(array)) => {
            Json::String(Json::Array(array.values.iter().map(any_value).collect()).to_string())
        }
        Some(Value::KvlistValue(map)) => Json::Object(attributes_object(&map.values)),
        Some(Value::BytesValue(bytes)) => {
            Json::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::proto::{
        InstrumentationScope, KeyValueList, Resource, ResourceLogs, ScopeLogs,
    };
    use super::*;

    fn budget() -> ExpansionBudget {
        ExpansionBudget::new(&logpool_core::limits::IngestLimits::default())
    }

    #[test]
    fn test_a_large_resource_repeated_by_many_records_is_refused_while_converting() {
        let resource = vec![text("big", &"x".repeat(100_000))];
        let records = vec![LogRecord::default(); 500];
        let error = convert(&request(vec![(resource, records)]), false, &mut budget())
            .expect_err("50 MB of repeated attributes");
        assert!(
            error.message.contains("max_body_bytes"),
            "{}",
            error.message
        );
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
        let record = LogRecord {
            time_unix_nano: 1_700_000_000_000_000_001,
            observed_time_unix_nano: 1_700_000_000_500_000_000,
            severity_number: 17,
            body: Some(AnyValue {
                value: Some(Value::KvlistValue(KeyValueList {
                    values: vec![text("op", "insert")],
                })),
            }),
            attributes: vec![text("http.method", "GET")],
            trace_id: vec![0xab; 16],
            span_id: vec![0x01; 8],
            ..LogRecord::default()
        };
        let converted = convert(
            &request(vec![(vec![text("service.name", "api")], vec![record])]),
            false,
            &mut budget(),
        )
        .expect("converts");
        assert!(converted.rejected.is_empty(), "{:?}", converted.rejected);
        let fields = Json::Object(converted.records[0].clone());
        assert_eq!(fields["time"], 1_700_000_000_000_000_001u64);
        assert_eq!(
            fields["observed_time_unix_nano"],
            1_700_000_000_500_000_000u64
        );
        assert_eq!(fields["severity_text"], "ERROR");
        assert_eq!(fields["severity_number"], 17);
        assert_eq!(fields["body"]["op"], "insert");
        assert_eq!(fields["attributes"]["http.method"], "GET");
        assert_eq!(fields["resource"]["attributes"]["service.name"], "api");
        assert_eq!(fields["scope"]["name"], "app.db");
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
        let converted = convert(
            &request(vec![
                (first.clone(), vec![good.clone(), short_trace]),
                (second.clone(), vec![good.clone()]),
            ]),
            false,
            &mut budget(),
        )
        .expect("converts");
        assert_eq!(converted.records.len(), 1);
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
        let converted = convert(
            &request(vec![(first, vec![good.clone()]), (second, vec![good])]),
            true,
            &mut budget(),
        )
        .expect("converts");
        assert_eq!((converted.records.len(), converted.pool), (2, None));
    }
}
