//! Loki push: `POST /loki/api/v1/push` with a snappy-compressed protobuf
//! `PushRequest` (`application/x-protobuf`, what Promtail and Grafana Alloy send) or
//! JSON (`{"streams":[{"stream":{labels},"values":[["<ns>","line",{metadata}]]}]}`,
//! optionally gzip). Each entry becomes a record (`message`, `time`, `labels.*`,
//! `metadata.*`) stored through the PutDatas path.
//!
//! Answers as Loki does: 204 once durable; errors as text with their status (400
//! for bad input, 429/503 with `Retry-After`). Entries Loki would refuse one by one
//! (a bad timestamp, outside the event-time window) are left out, the others stored,
//! and the answer is a 400 naming them, as Loki answers partly written pushes.

pub mod labels;
pub mod proto;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use logpool_api::{ApiError, ErrorCode, Principal};
use prost::Message as _;
use serde::Serialize;
use serde_json::Value as Json;

use crate::protocol::{
    read_request, refused_index, store_records, target_of, PoolName, RecordsWriter,
};
use crate::PutDatasState;

/// The route.
pub const PATH: &str = "/loki/api/v1/push";
/// The stream label naming the target project (when no header does).
pub const PROJECT_LABEL: &str = "logpool_project";
/// The stream label naming the target pool (when no header does).
pub const POOL_LABEL: &str = "logpool_pool";

/// How many rejection reasons a partial answer spells out.
const REASONS_LISTED: usize = 3;

/// One entry, decoded from either encoding.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// Nanoseconds since the epoch, or why the timestamp is unusable.
    time_ns: Result<i64, String>,
    line: String,
    metadata: Vec<(String, String)>,
}

/// One stream, decoded from either encoding.
#[derive(Debug, Clone, PartialEq)]
struct Stream {
    labels: Vec<(String, String)>,
    entries: Vec<Entry>,
}

/// `POST /loki/api/v1/push`.
pub async fn push(
    State(state): State<PutDatasState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = push_counted(&state, &principal, &headers, body).await;
    state
        .stats
        .count(result.as_ref().map(|(accepted, _)| *accepted));
    match result {
        Ok((_, rejected)) if rejected.is_empty() => StatusCode::NO_CONTENT.into_response(),
        Ok((accepted, rejected)) => {
            let mut message = format!("{} entries rejected ({accepted} stored): ", rejected.len());
            message.push_str(&rejected[..rejected.len().min(REASONS_LISTED)].join("; "));
            if rejected.len() > REASONS_LISTED {
                message.push_str(&format!("; and {} more", rejected.len() - REASONS_LISTED));
            }
            text(StatusCode::BAD_REQUEST, message)
        }
        Err(error) => failure(error),
    }
}

/// Stores a push; gives the entries stored and why others were left out.
async fn push_counted(
    state: &PutDatasState,
    principal: &Principal,
    headers: &HeaderMap,
    body: Body,
) -> Result<(usize, Vec<String>), ApiError> {
    let protobuf = is_protobuf(headers)?;
    let read = read_request(state, principal, headers, body).await?;
    let streams = if protobuf {
        decode_protobuf(&read.raw, state.limits.max_body_bytes)?
    } else {
        decode_json(&read.raw)?
    };
    let mut records = RecordsWriter::for_request(&state.limits, &read);
    let (mut rejected, pool, places) =
        convert(&streams, read.header_target.is_some(), &mut records)?;
    if records.is_empty() {
        if rejected.is_empty() {
            return Ok((0, rejected));
        }
        return Err(ApiError::bad_request(format!(
            "every entry was rejected: {}",
            rejected[..rejected.len().min(REASONS_LISTED)].join("; ")
        )));
    }
    let target = target_of(
        state,
        principal,
        read.header_target,
        pool.as_ref(),
        "the stream labels `logpool_project` and `logpool_pool`",
    )?;
    let answer = store_records(state, &target, records, read.key.as_ref()).await?;
    for refused in &answer.refused_records {
        let place = refused_index(&refused.path)
            .and_then(|i| places.get(i))
            .map(|[i, j]| format!("streams[{i}].values[{j}]"))
            .unwrap_or_else(|| refused.path.clone());
        rejected.push(format!("{place}: {} ({})", refused.reason, refused.limit));
    }
    let unlisted = answer.refused.saturating_sub(answer.refused_records.len());
    rejected.extend((0..unlisted).map(|_| "outside the event-time window".to_string()));
    Ok((answer.accepted, rejected))
}

fn is_protobuf(headers: &HeaderMap) -> Result<bool, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("application/x-protobuf") {
        Ok(true)
    } else if mime.eq_ignore_ascii_case("application/json") {
        Ok(false)
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "unsupported Content-Type `{}`; Loki push takes `application/x-protobuf` \
                 (snappy) or `application/json`",
                content_type.escape_debug()
            ),
        )
        .with_detail("field", "Content-Type"))
    }
}

/// Unsnappies (block format, as Loki's clients write it) and decodes a
/// `PushRequest`; the decompressed size is checked before any allocation.
fn decode_protobuf(raw: &Bytes, max_body_bytes: usize) -> Result<Vec<Stream>, ApiError> {
    let bad_snappy = |e: snap::Error| {
        ApiError::bad_request(format!("malformed snappy body: {e}")).with_detail("field", "body")
    };
    let length = snap::raw::decompress_len(raw).map_err(bad_snappy)?;
    if length > max_body_bytes {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "limit `max_body_bytes` exceeded: the snappy body expands to {length} bytes, \
                 more than {max_body_bytes}"
            ),
        )
        .with_detail("limit", "max_body_bytes")
        .with_detail("value", max_body_bytes));
    }
    let plain = snap::raw::Decoder::new()
        .decompress_vec(raw)
        .map_err(bad_snappy)?;
    let request = proto::PushRequest::decode(plain.as_slice()).map_err(|e| {
        ApiError::bad_request(format!(
            "malformed protobuf body: not a Loki PushRequest ({e})"
        ))
        .with_detail("field", "body")
    })?;
    request
        .streams
        .into_iter()
        .enumerate()
        .map(|(i, stream)| {
            let labels = labels::parse(&stream.labels).map_err(|reason| {
                ApiError::bad_request(format!("streams[{i}].labels: {reason}"))
                    .with_detail("field", format!("streams[{i}].labels"))
            })?;
            let entries = stream
                .entries
                .into_iter()
                .map(|entry| Entry {
                    time_ns: entry
                        .timestamp
                        .map(|ts| {
                            ts.seconds
                                .checked_mul(1_000_000_000)
                                .and_then(|ns| ns.checked_add(i64::from(ts.nanos)))
                                .ok_or_else(|| "timestamp is out of range".to_string())
                        })
                        .unwrap_or_else(|| Err("timestamp is missing".to_string())),
                    line: entry.line,
                    metadata: entry
                        .structured_metadata
                        .into_iter()
                        .map(|pair| (pair.name, pair.value))
                        .collect(),
                })
                .collect();
            Ok(Stream { labels, entries })
        })
        .collect()
}

/// Decodes Loki's JSON push body.
fn decode_json(raw: &[u8]) -> Result<Vec<Stream>, ApiError> {
    let malformed = |path: String, what: &str| {
        ApiError::bad_request(format!("malformed Loki JSON body: `{path}` {what}"))
            .with_detail("field", path)
    };
    let document: Json = serde_json::from_slice(raw).map_err(|e| {
        ApiError::bad_request(format!("malformed Loki JSON body: {e}")).with_detail("field", "body")
    })?;
    let streams = document
        .get("streams")
        .and_then(Json::as_array)
        .ok_or_else(|| malformed("streams".into(), "is missing or not an array"))?;
    streams
        .iter()
        .enumerate()
        .map(|(i, stream)| {
            if stream.get("labels").is_some() {
                return legacy_json_stream(stream, i);
            }
            let labels = stream
                .get("stream")
                .map(|labels| {
                    labels
                        .as_object()
                        .ok_or_else(|| {
                            malformed(format!("streams[{i}].stream"), "is not an object")
                        })?
                        .iter()
                        .map(|(name, value)| {
                            value
                                .as_str()
                                .map(|value| (name.clone(), value.to_string()))
                                .ok_or_else(|| {
                                    malformed(
                                        format!("streams[{i}].stream.{name}"),
                                        "is not a string",
                                    )
                                })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default();
            let values = stream
                .get("values")
                .and_then(Json::as_array)
                .ok_or_else(|| {
                    malformed(format!("streams[{i}].values"), "is missing or not an array")
                })?;
            let entries = values
                .iter()
                .enumerate()
                .map(|(j, value)| {
                    json_entry(value)
                        .map_err(|what| malformed(format!("streams[{i}].values[{j}]"), &what))
                })
                .collect::<Result<_, _>>()?;
            Ok(Stream { labels, entries })
        })
        .collect()
}

/// The JSON of Loki before 0.4 (still the default of some clients):
/// `{"labels": "{a=\"b\"}", "entries": [{"ts": "<RFC 3339>", "line": "..."}]}`.
fn legacy_json_stream(stream: &Json, i: usize) -> Result<Stream, ApiError> {
    let malformed = |path: String, what: &str| {
        ApiError::bad_request(format!("malformed Loki JSON body: `{path}` {what}"))
            .with_detail("field", path)
    };
    let text = stream
        .get("labels")
        .and_then(Json::as_str)
        .ok_or_else(|| malformed(format!("streams[{i}].labels"), "is not a string"))?;
    let labels =
        labels::parse(text).map_err(|reason| malformed(format!("streams[{i}].labels"), &reason))?;
    let entries = stream
        .get("entries")
        .and_then(Json::as_array)
        .ok_or_else(|| {
            malformed(
                format!("streams[{i}].entries"),
                "is missing or not an array",
            )
        })?
        .iter()
        .enumerate()
        .map(|(j, entry)| {
            let line = entry.get("line").and_then(Json::as_str).ok_or_else(|| {
                malformed(format!("streams[{i}].entries[{j}].line"), "is not a string")
            })?;
            let time_ns = match entry.get("ts") {
                Some(ts @ Json::String(_)) => logpool_core::ingest::parse_event_time(ts),
                _ => Err("timestamp `ts` is missing or not RFC 3339 text".to_string()),
            };
            Ok(Entry {
                time_ns,
                line: line.to_string(),
                metadata: Vec::new(),
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Stream { labels, entries })
}

/// One `["<ns>", "line", {metadata}?]`; a timestamp that is not a number of
/// nanoseconds rejects only its entry.
fn json_entry(value: &Json) -> Result<Entry, String> {
    let items = value
        .as_array()
        .filter(|items| (2..=3).contains(&items.len()))
        .ok_or("is not `[timestamp, line]` or `[timestamp, line, metadata]`")?;
    let time_ns = match &items[0] {
        Json::String(text) => text.trim().parse::<i64>().ok(),
        other => other.as_i64(),
    }
    .ok_or_else(|| {
        let shown = items[0]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| items[0].to_string());
        format!("timestamp `{shown}` is not nanoseconds since the epoch")
    });
    let line = items[1].as_str().ok_or("line is not a string")?.to_string();
    let metadata = match items.get(2) {
        None => Vec::new(),
        Some(Json::Object(map)) => map
            .iter()
            .map(|(name, value)| {
                value
                    .as_str()
                    .map(|value| (name.clone(), value.to_string()))
                    .ok_or_else(|| format!("structured metadata `{name}` is not a string"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("structured metadata is not an object".to_string()),
    };
    Ok(Entry {
        time_ns,
        line,
        metadata,
    })
}

/// What converting a push found besides its records: why entries were left out,
/// and the pool its streams name.
/// Where each written record is (stream, entry), to name the records PutDatas
/// refuses.
type Converted = (Vec<String>, Option<PoolName>, Vec<[usize; 2]>);

/// Writes the entries into `records`; with `headers_name_pool` false, the pool is
/// the first stream's `logpool_project`/`logpool_pool` and the entries of streams
/// naming another are rejected (one push writes one pool).
///
/// # Errors
/// 413 when the records exceed the writer's budget, checked record by record.
fn convert(
    streams: &[Stream],
    headers_name_pool: bool,
    records: &mut RecordsWriter,
) -> Result<Converted, ApiError> {
    let mut rejected = Vec::new();
    let mut pool: Option<PoolName> = None;
    let mut places = Vec::new();
    for (i, stream) in streams.iter().enumerate() {
        let label = |name: &str| {
            stream
                .labels
                .iter()
                .find(|(label, _)| label == name)
                .map(|(_, value)| value.clone())
        };
        let named = match (headers_name_pool, label(PROJECT_LABEL), label(POOL_LABEL)) {
            (false, Some(project), Some(pool)) => Some(PoolName { project, pool }),
            _ => None,
        };
        let other_pool = match (&named, &pool) {
            (Some(named), Some(first)) if named != first => Some(named.clone()),
            (Some(named), None) => {
                pool = Some(named.clone());
                None
            }
            _ => None,
        };
        // Serialized once, pasted into each of the stream's records.
        let labels = (!stream.labels.is_empty())
            .then(|| serde_json::to_string(&Pairs(&stream.labels)).unwrap_or_else(|_| "{}".into()));
        for (j, entry) in stream.entries.iter().enumerate() {
            if let Some(other) = &other_pool {
                rejected.push(format!(
                    "streams[{i}].values[{j}]: its stream names pool `{}/{}`, another than the \
                     push's; send one push per pool",
                    other.project, other.pool
                ));
                continue;
            }
            let time_ns = match &entry.time_ns {
                Ok(time_ns) => *time_ns,
                Err(reason) => {
                    rejected.push(format!("streams[{i}].values[{j}]: {reason}"));
                    continue;
                }
            };
            let mut record = records.record();
            record.field("time", &time_ns);
            record.field("message", &entry.line);
            if let Some(labels) = &labels {
                record.json_field("labels", labels);
            }
            if !entry.metadata.is_empty() {
                record.field("metadata", &Pairs(&entry.metadata));
            }
            record.finish()?;
            places.push([i, j]);
        }
    }
    Ok((rejected, pool, places))
}

/// Name and value pairs as a JSON object of strings.
struct Pairs<'a>(&'a [(String, String)]);

impl Serialize for Pairs<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, value)| (name, value)))
    }
}

fn text(status: StatusCode, message: String) -> Response {
    let mut response = (status, message).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// An error as Loki writes them: its message as text, with the status and
/// `Retry-After` of the logpool error.
fn failure(error: ApiError) -> Response {
    let status = logpool_api::error::status_of(error.code);
    let message = error.message.clone();
    let retry_after = error
        .into_response()
        .headers()
        .get(header::RETRY_AFTER)
        .cloned();
    let mut response = text(status, message);
    if let Some(retry_after) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_json_push_with_metadata_and_a_bad_timestamp() {
        let body = br#"{"streams":[{"stream":{"job":"web","logpool_project":"shop","logpool_pool":"logs"},
            "values":[["1700000000000000000","one"],["soon","two"],["1700000000000000001","three",{"trace_id":"abc"}]]}]}"#;
        let streams = decode_json(body).expect("decodes");
        let limits = logpool_core::limits::IngestLimits::default();
        let mut writer = RecordsWriter::new(&limits);
        let (rejected, pool, places) = convert(&streams, false, &mut writer).expect("converts");
        assert_eq!(places, vec![[0, 0], [0, 2]]);
        let body: Json = serde_json::from_slice(&writer.finish()).expect("JSON");
        let records = body["logs"].as_array().cloned().unwrap_or_default();
        assert_eq!(records.len(), 2);
        assert_eq!(rejected.len(), 1);
        assert!(rejected[0].contains("streams[0].values[1]"), "{rejected:?}");
        assert_eq!(pool.map(|p| p.pool), Some("logs".to_string()));
        let last = &records[1];
        assert_eq!(last["labels.job"], "web");
        assert_eq!(last["metadata.trace_id"], "abc");
        assert_eq!(last["message"], "three");
        assert_eq!(last["time"], 1_700_000_000_000_000_001i64);
    }

    #[test]
    fn test_legacy_json_push() {
        let body = br#"{"streams":[{"labels":"{job=\"old\"}","entries":[{"ts":"2023-11-14T22:13:20.5Z","line":"x"}]}]}"#;
        let streams = decode_json(body).expect("decodes");
        assert_eq!(
            streams[0].labels,
            vec![("job".to_string(), "old".to_string())]
        );
        assert_eq!(streams[0].entries[0].time_ns, Ok(1_700_000_000_500_000_000));
    }

    #[test]
    fn test_protobuf_push_round_trips_through_snappy() {
        let request = proto::PushRequest {
            streams: vec![proto::StreamAdapter {
                labels: r#"{job="db"}"#.into(),
                entries: vec![proto::EntryAdapter {
                    timestamp: Some(proto::Timestamp {
                        seconds: 1_700_000_000,
                        nanos: 5,
                    }),
                    line: "hello".into(),
                    structured_metadata: vec![proto::LabelPairAdapter {
                        name: "user".into(),
                        value: "ann".into(),
                    }],
                }],
            }],
        };
        let packed = snap::raw::Encoder::new()
            .compress_vec(&request.encode_to_vec())
            .expect("snappy");
        let streams = decode_protobuf(&Bytes::from(packed.clone()), 1 << 20).expect("decodes");
        assert_eq!(
            streams[0].labels,
            vec![("job".to_string(), "db".to_string())]
        );
        assert_eq!(streams[0].entries[0].time_ns, Ok(1_700_000_000_000_000_005));
        let error = decode_protobuf(&Bytes::from(packed), 4).expect_err("too large");
        assert!(
            error.message.contains("max_body_bytes"),
            "{}",
            error.message
        );
        let error = decode_protobuf(&Bytes::from_static(b"\xff\xff\xff\xff\xff"), 1 << 20)
            .expect_err("not snappy");
        assert!(error.message.contains("snappy"), "{}", error.message);
    }
}
