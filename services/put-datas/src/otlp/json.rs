//! OTLP/JSON (the protobuf JSON mapping with OTLP's exceptions: trace and span ids
//! as hex, enums as integers) read into the protobuf types, so that both encodings
//! share one mapping. Keys are lowerCamelCase; the proto field names are accepted
//! too, and unknown keys are skipped as the spec asks.

use base64::Engine as _;
use logpool_api::ApiError;
use serde_json::{Map, Value as Json};

use super::proto::{
    AnyValue, ArrayValue, ExportLogsServiceRequest, InstrumentationScope, KeyValue, KeyValueList,
    LogRecord, Resource, ResourceLogs, ScopeLogs, Value,
};

/// Reads an OTLP/JSON `ExportLogsServiceRequest`.
///
/// # Errors
/// 400 naming the JSON path of the first malformed member.
pub fn decode(raw: &[u8]) -> Result<ExportLogsServiceRequest, ApiError> {
    let document: Json = serde_json::from_slice(raw).map_err(|e| {
        ApiError::bad_request(format!("malformed OTLP/JSON body: {e}")).with_detail("field", "body")
    })?;
    let root = object(&document, "$")?;
    let resource_logs = list(root, "resourceLogs", "resource_logs", "$")?
        .iter()
        .enumerate()
        .map(|(i, item)| resource_logs(item, &format!("resourceLogs[{i}]")))
        .collect::<Result<_, _>>()?;
    Ok(ExportLogsServiceRequest { resource_logs })
}

fn resource_logs(value: &Json, path: &str) -> Result<ResourceLogs, ApiError> {
    let item = object(value, path)?;
    let resource = match member(item, "resource", "resource") {
        Some(resource) => {
            let at = format!("{path}.resource");
            let resource = object(resource, &at)?;
            Some(Resource {
                attributes: attributes(resource, &at)?,
            })
        }
        None => None,
    };
    let scope_logs = list(item, "scopeLogs", "scope_logs", path)?
        .iter()
        .enumerate()
        .map(|(i, scope)| scope_logs(scope, &format!("{path}.scopeLogs[{i}]")))
        .collect::<Result<_, _>>()?;
    Ok(ResourceLogs {
        resource,
        scope_logs,
    })
}

fn scope_logs(value: &Json, path: &str) -> Result<ScopeLogs, ApiError> {
    let item = object(value, path)?;
    let scope = match member(item, "scope", "scope") {
        Some(scope) => {
            let at = format!("{path}.scope");
            let scope = object(scope, &at)?;
            Some(InstrumentationScope {
                name: string(scope, "name", "name", &at)?,
                version: string(scope, "version", "version", &at)?,
                attributes: attributes(scope, &at)?,
            })
        }
        None => None,
    };
    let log_records = list(item, "logRecords", "log_records", path)?
        .iter()
        .enumerate()
        .map(|(i, record)| log_record(record, &format!("{path}.logRecords[{i}]")))
        .collect::<Result<_, _>>()?;
    Ok(ScopeLogs { scope, log_records })
}

fn log_record(value: &Json, path: &str) -> Result<LogRecord, ApiError> {
    let item = object(value, path)?;
    let severity_number = integer(item, "severityNumber", "severity_number", path)?;
    let flags = integer(item, "flags", "flags", path)?;
    Ok(LogRecord {
        time_unix_nano: unsigned(item, "timeUnixNano", "time_unix_nano", path)?,
        observed_time_unix_nano: unsigned(
            item,
            "observedTimeUnixNano",
            "observed_time_unix_nano",
            path,
        )?,
        severity_number: i32::try_from(severity_number)
            .map_err(|_| malformed(&format!("{path}.severityNumber"), "is out of range"))?,
        severity_text: string(item, "severityText", "severity_text", path)?,
        body: member(item, "body", "body")
            .map(|body| any_value(body, &format!("{path}.body")))
            .transpose()?,
        attributes: attributes(item, path)?,
        flags: u32::try_from(flags)
            .map_err(|_| malformed(&format!("{path}.flags"), "is out of range"))?,
        trace_id: hex_id(item, "traceId", "trace_id", path)?,
        span_id: hex_id(item, "spanId", "span_id", path)?,
        event_name: string(item, "eventName", "event_name", path)?,
    })
}

fn attributes(item: &Map<String, Json>, path: &str) -> Result<Vec<KeyValue>, ApiError> {
    key_values(
        list(item, "attributes", "attributes", path)?,
        &format!("{path}.attributes"),
    )
}

fn key_values(items: &[Json], path: &str) -> Result<Vec<KeyValue>, ApiError> {
    items
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let at = format!("{path}[{i}]");
            let entry = object(entry, &at)?;
            Ok(KeyValue {
                key: string(entry, "key", "key", &at)?,
                value: member(entry, "value", "value")
                    .map(|value| any_value(value, &format!("{at}.value")))
                    .transpose()?,
            })
        })
        .collect()
}

fn any_value(value: &Json, path: &str) -> Result<AnyValue, ApiError> {
    let item = object(value, path)?;
    let field = |camel: &str| format!("{path}.{camel}");
    let value = if let Some(text) = member(item, "stringValue", "string_value") {
        let text = text
            .as_str()
            .ok_or_else(|| malformed(&field("stringValue"), "is not a string"))?;
        Some(Value::StringValue(text.to_string()))
    } else if let Some(flag) = member(item, "boolValue", "bool_value") {
        let flag = flag
            .as_bool()
            .ok_or_else(|| malformed(&field("boolValue"), "is not a boolean"))?;
        Some(Value::BoolValue(flag))
    } else if member(item, "intValue", "int_value").is_some() {
        Some(Value::IntValue(integer(
            item,
            "intValue",
            "int_value",
            path,
        )?))
    } else if let Some(number) = member(item, "doubleValue", "double_value") {
        let number = match number {
            Json::String(text) => text.parse::<f64>().ok(),
            other => other.as_f64(),
        }
        .ok_or_else(|| malformed(&field("doubleValue"), "is not a number"))?;
        Some(Value::DoubleValue(number))
    } else if let Some(array) = member(item, "arrayValue", "array_value") {
        let at = field("arrayValue");
        let values = list(object(array, &at)?, "values", "values", &at)?
            .iter()
            .enumerate()
            .map(|(i, value)| any_value(value, &format!("{at}.values[{i}]")))
            .collect::<Result<_, _>>()?;
        Some(Value::ArrayValue(ArrayValue { values }))
    } else if let Some(map) = member(item, "kvlistValue", "kvlist_value") {
        let at = field("kvlistValue");
        let values = key_values(
            list(object(map, &at)?, "values", "values", &at)?,
            &format!("{at}.values"),
        )?;
        Some(Value::KvlistValue(KeyValueList { values }))
    } else if let Some(bytes) = member(item, "bytesValue", "bytes_value") {
        let bytes = bytes
            .as_str()
            .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
            .ok_or_else(|| malformed(&field("bytesValue"), "is not base64"))?;
        Some(Value::BytesValue(bytes))
    } else {
        None
    };
    Ok(AnyValue { value })
}

fn member<'a>(item: &'a Map<String, Json>, camel: &str, snake: &str) -> Option<&'a Json> {
    item.get(camel)
        .or_else(|| item.get(snake))
        .filter(|value| !value.is_null())
}

fn object<'a>(value: &'a Json, path: &str) -> Result<&'a Map<String, Json>, ApiError> {
    value
        .as_object()
        .ok_or_else(|| malformed(path, "is not an object"))
}

fn list<'a>(
    item: &'a Map<String, Json>,
    camel: &str,
    snake: &str,
    path: &str,
) -> Result<&'a [Json], ApiError> {
    match member(item, camel, snake) {
        None => Ok(&[]),
        Some(value) => value
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| malformed(&format!("{path}.{camel}"), "is not an array")),
    }
}

fn string(
    item: &Map<String, Json>,
    camel: &str,
    snake: &str,
    path: &str,
) -> Result<String, ApiError> {
    match member(item, camel, snake) {
        None => Ok(String::new()),
        Some(value) => value
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| malformed(&format!("{path}.{camel}"), "is not a string")),
    }
}

/// An int64 (a JSON number or, as the protobuf JSON mapping writes it, a string).
fn integer(
    item: &Map<String, Json>,
    camel: &str,
    snake: &str,
    path: &str,
) -> Result<i64, ApiError> {
    match member(item, camel, snake) {
        None => Some(0),
        Some(Json::String(text)) => text.trim().parse::<i64>().ok(),
        Some(other) => other.as_i64(),
    }
    .ok_or_else(|| malformed(&format!("{path}.{camel}"), "is not an integer"))
}

/// A fixed64 (times in nanoseconds), a number or a string.
fn unsigned(
    item: &Map<String, Json>,
    camel: &str,
    snake: &str,
    path: &str,
) -> Result<u64, ApiError> {
    match member(item, camel, snake) {
        None => Some(0),
        Some(Json::String(text)) => text.trim().parse::<u64>().ok(),
        Some(other) => other.as_u64(),
    }
    .ok_or_else(|| malformed(&format!("{path}.{camel}"), "is not an unsigned integer"))
}

/// A trace or span id: hex text in OTLP/JSON (not base64, unlike other bytes).
fn hex_id(
    item: &Map<String, Json>,
    camel: &str,
    snake: &str,
    path: &str,
) -> Result<Vec<u8>, ApiError> {
    let text = string(item, camel, snake, path)?;
    let digits = text.as_bytes();
    if digits.len() % 2 != 0 {
        return Err(malformed(&format!("{path}.{camel}"), "is not hex"));
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| malformed(&format!("{path}.{camel}"), "is not hex"))
        })
        .collect()
}

fn malformed(path: &str, what: &str) -> ApiError {
    ApiError::bad_request(format!("malformed OTLP/JSON body: `{path}` {what}"))
        .with_detail("field", path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_reads_the_spec_example_shape() {
        let body = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},
            "scopeLogs":[{"scope":{"name":"lib","version":"1.0"},"logRecords":[{"timeUnixNano":"1544712660300000000",
            "severityNumber":10,"severityText":"Information","traceId":"5b8efff798038103d269b633813fc60c",
            "spanId":"eee19b7ec3c1b174","body":{"stringValue":"hello"},
            "attributes":[{"key":"n","value":{"intValue":"42"}},{"key":"l","value":{"arrayValue":{"values":[{"boolValue":true}]}}}]}]}]}]}"#;
        let request = decode(body).expect("decodes");
        let record = &request.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(record.time_unix_nano, 1_544_712_660_300_000_000);
        assert_eq!(record.severity_number, 10);
        assert_eq!(record.trace_id.len(), 16);
        assert_eq!(record.span_id.len(), 8);
        assert_eq!(
            record.attributes[0].value,
            Some(AnyValue {
                value: Some(Value::IntValue(42))
            })
        );
    }

    #[test]
    fn test_names_the_malformed_member() {
        let body =
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"soon"}]}]}]}"#;
        let error = decode(body).expect_err("bad time");
        assert!(
            error
                .message
                .contains("resourceLogs[0].scopeLogs[0].logRecords[0].timeUnixNano"),
            "{}",
            error.message
        );
        let error =
            decode(br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"zz"}]}]}]}"#)
                .expect_err("bad hex");
        assert!(error.message.contains("traceId"), "{}", error.message);
    }
}
