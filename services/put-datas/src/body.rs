//! Reading a PutDatas body: content type, size limit and decompression.
//!
//! The decompressed size is bounded while decompressing, so a small gzip bomb can
//! never expand past `max_body_bytes` in memory.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use logpool_api::{ApiError, ErrorCode};
use logpool_core::limits::IngestLimits;

/// The accepted body formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`: an envelope with `logs`, or an array of records.
    Json,
    /// `application/x-ndjson`: one record per line.
    Ndjson,
}

impl BodyFormat {
    /// Picks the format from `Content-Type`.
    ///
    /// # Errors
    /// 415 naming the accepted types.
    pub fn from_headers(headers: &HeaderMap) -> Result<BodyFormat, ApiError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/json" => Ok(BodyFormat::Json),
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/x-jsonlines" => {
                Ok(BodyFormat::Ndjson)
            }
            _ => Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "unsupported Content-Type `{}`; use `application/json` or `application/x-ndjson`",
                    content_type.escape_debug()
                ),
            )
            .with_detail("field", "Content-Type")),
        }
    }
}

/// Reads and decompresses the body under `limits.max_body_bytes`.
///
/// # Errors
/// 413 over the limit, 400 for corrupt compressed data, 415 for an unknown encoding.
pub async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limits: &IngestLimits,
) -> Result<Bytes, ApiError> {
    let max = limits.max_body_bytes;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    // A compressed body is never larger than what it expands to (plus framing).
    let raw = axum::body::to_bytes(body, max.saturating_add(64 * 1024))
        .await
        .map_err(|_| too_large(max))?;
    let decoded = match encoding.as_str() {
        // The received buffer itself: a plain body is parsed where it landed.
        "" | "identity" => raw,
        "gzip" | "x-gzip" => {
            decompress(flate2::read::MultiGzDecoder::new(raw.as_ref()), max, "gzip")?.into()
        }
        "zstd" => {
            let decoder = zstd::stream::read::Decoder::new(raw.as_ref())
                .map_err(|e| ApiError::bad_request(format!("corrupt zstd body: {e}")))?;
            decompress(decoder, max, "zstd")?.into()
        }
        other => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "unsupported Content-Encoding `{}`; use gzip or zstd",
                    other.escape_debug()
                ),
            )
            .with_detail("field", "Content-Encoding"))
        }
    };
    if decoded.len() > max {
        return Err(too_large(max));
    }
    Ok(decoded)
}

fn decompress(reader: impl Read, max: usize, name: &str) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            ApiError::bad_request(format!("corrupt {name} body: {e}"))
                .with_detail("field", "Content-Encoding")
        })?;
    if out.len() > max {
        return Err(too_large(max));
    }
    Ok(out)
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "limit `max_body_bytes` exceeded: the decompressed body is larger than {max} bytes"
        ),
    )
    .with_detail("limit", "max_body_bytes")
    .with_detail("value", max)
}
