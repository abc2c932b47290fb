//! OTLP logs over HTTP: `POST /v1/logs` with an `ExportLogsServiceRequest` in
//! protobuf (`application/x-protobuf`) or OTLP/JSON (`application/json`), optionally
//! gzip or zstd. Records are converted ([`mapping`]) and stored through the PutDatas
//! path, so limits, quotas and durability are PutDatas's: 200 only once durable.
//!
//! Answers follow the OTLP/HTTP spec, in the request's encoding: 200 with an
//! `ExportLogsServiceResponse` whose `partial_success` counts and explains the
//! records left out; a `google.rpc.Status` for every 4xx and 5xx, with
//! `Retry-After` on 429 and 503 (which OTLP clients retry).

pub mod json;
pub mod mapping;
pub mod proto;
pub mod view;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use logpool_api::{ApiError, ErrorCode, Principal};
use logpool_wire::shippers::{OtlpExportAnswer, OtlpPartialSuccess, OtlpStatus};
use prost::Message as _;

use crate::protocol::{read_request, refused_index, store_records, target_of, RecordsWriter};
use crate::PutDatasState;
use proto::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse, Status,
};

/// The route (the OTLP/HTTP default path for logs).
pub const PATH: &str = "/v1/logs";

/// How many rejection reasons the `error_message` spells out.
const REASONS_LISTED: usize = 3;

/// The two OTLP/HTTP encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Binary protobuf.
    Protobuf,
    /// OTLP/JSON.
    Json,
}

impl Encoding {
    fn from_headers(headers: &HeaderMap) -> Result<Encoding, ApiError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim();
        if mime.eq_ignore_ascii_case("application/x-protobuf")
            || mime.eq_ignore_ascii_case("application/protobuf")
        {
            Ok(Encoding::Protobuf)
        } else if mime.eq_ignore_ascii_case("application/json") {
            Ok(Encoding::Json)
        } else {
            Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "unsupported Content-Type `{}`; OTLP/HTTP takes `application/x-protobuf` \
                     or `application/json`",
                    content_type.escape_debug()
                ),
            )
            .with_detail("field", "Content-Type"))
        }
    }

    fn media_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// `POST /v1/logs`.
pub async fn export_logs(
    State(state): State<PutDatasState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // An unknown content type is answered in JSON, which a person can read.
    let encoding = Encoding::from_headers(&headers);
    let answer_in = *encoding.as_ref().unwrap_or(&Encoding::Json);
    let result = match encoding {
        Ok(encoding) => export(&state, &principal, &headers, body, encoding).await,
        Err(error) => Err(error),
    };
    state
        .stats
        .count(result.as_ref().map(|(accepted, _)| *accepted));
    match result {
        Ok((_, answer)) => success(answer_in, &answer),
        Err(error) => failure(answer_in, error),
    }
}

/// Stores a request; gives the records stored and the answer.
async fn export(
    state: &PutDatasState,
    principal: &Principal,
    headers: &HeaderMap,
    body: Body,
    encoding: Encoding,
) -> Result<(usize, ExportLogsServiceResponse), ApiError> {
    let read = read_request(state, principal, headers, body).await?;
    // Read by prost (or from OTLP/JSON) when the hand reading gives up.
    let owned: ExportLogsServiceRequest;
    let request = match encoding {
        Encoding::Protobuf => match view::decode(&read.raw) {
            Some(request) => request,
            None => {
                owned = ExportLogsServiceRequest::decode(read.raw.as_ref()).map_err(|e| {
                    ApiError::bad_request(format!(
                        "malformed protobuf body: not an OTLP ExportLogsServiceRequest ({e})"
                    ))
                    .with_detail("field", "body")
                })?;
                view::Export::from_owned(&owned)
            }
        },
        Encoding::Json => {
            owned = json::decode(&read.raw)?;
            view::Export::from_owned(&owned)
        }
    };
    let mut records = RecordsWriter::for_request(&state.limits, &read);
    let converted = mapping::convert(&request, read.header_target.is_some(), &mut records)?;
    let mut rejected = converted.rejected;
    if records.is_empty() {
        // Nothing to store: an empty export is a success, as is one whose every
        // record was rejected (each with its reason).
        return Ok((0, response(&rejected)));
    }
    let target = target_of(
        state,
        principal,
        read.header_target,
        converted.pool.as_ref(),
        "the resource attributes `logpool.project` and `logpool.pool`",
    )?;
    let answer = store_records(state, &target, records, read.key.as_ref()).await?;
    // Records outside the pool's event-time window were left out by PutDatas.
    for refused in &answer.refused_records {
        let place = refused_index(&refused.path)
            .and_then(|i| converted.places.get(i).copied())
            .map(mapping::place_name)
            .unwrap_or_else(|| refused.path.clone());
        rejected.push(format!("{place}: {} ({})", refused.reason, refused.limit));
    }
    let unlisted = answer.refused.saturating_sub(answer.refused_records.len());
    rejected.extend((0..unlisted).map(|_| "outside the event-time window".to_string()));
    Ok((answer.accepted, response(&rejected)))
}

fn response(rejected: &[String]) -> ExportLogsServiceResponse {
    if rejected.is_empty() {
        return ExportLogsServiceResponse::default();
    }
    let mut message = format!("{} log records rejected: ", rejected.len());
    message.push_str(&rejected[..rejected.len().min(REASONS_LISTED)].join("; "));
    if rejected.len() > REASONS_LISTED {
        message.push_str(&format!("; and {} more", rejected.len() - REASONS_LISTED));
    }
    ExportLogsServiceResponse {
        partial_success: Some(ExportLogsPartialSuccess {
            rejected_log_records: rejected.len() as i64,
            error_message: message,
        }),
    }
}

fn success(encoding: Encoding, answer: &ExportLogsServiceResponse) -> Response {
    let body = match encoding {
        Encoding::Protobuf => answer.encode_to_vec(),
        Encoding::Json => {
            let document = OtlpExportAnswer {
                partial_success: answer.partial_success.as_ref().map(|partial| {
                    OtlpPartialSuccess {
                        rejected_log_records: partial.rejected_log_records,
                        error_message: partial.error_message.clone(),
                    }
                }),
            };
            serde_json::to_vec(&document).unwrap_or_default()
        }
    };
    with_type(StatusCode::OK, encoding, body)
}

/// An error as a `google.rpc.Status`, with the status and `Retry-After` of the
/// logpool error.
fn failure(encoding: Encoding, error: ApiError) -> Response {
    let status = logpool_api::error::status_of(error.code);
    let message = error.message.clone();
    let retry_after = error
        .into_response()
        .headers()
        .get(header::RETRY_AFTER)
        .cloned();
    let body = match encoding {
        Encoding::Protobuf => Status {
            code: grpc_code(status),
            message,
        }
        .encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&OtlpStatus {
            code: grpc_code(status),
            message,
        })
        .unwrap_or_default(),
    };
    let mut response = with_type(status, encoding, body);
    if let Some(retry_after) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after);
    }
    response
}

fn with_type(status: StatusCode, encoding: Encoding, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.media_type()),
    );
    response
}

/// The gRPC code of an HTTP status (the `code` of a `Status`).
fn grpc_code(status: StatusCode) -> i32 {
    match status.as_u16() {
        400 | 413 | 415 => 3, // INVALID_ARGUMENT
        401 => 16,            // UNAUTHENTICATED
        403 => 7,             // PERMISSION_DENIED
        404 => 5,             // NOT_FOUND
        409 => 6,             // ALREADY_EXISTS
        429 | 507 => 8,       // RESOURCE_EXHAUSTED
        503 => 14,            // UNAVAILABLE
        _ => 13,              // INTERNAL
    }
}
