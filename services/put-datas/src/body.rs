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

/// Compression framing a compressed body may add above `max_body_bytes`: the most
/// bytes read off the wire is `max_body_bytes` plus this.
pub const COMPRESSED_FRAMING_BYTES: usize = 64 * 1024;

/// Refuses a body whose `Content-Length` is larger than [`read_body`] would read,
/// before any of it is read (a proxy in front may send only the head of such a
/// request, to have this answer).
///
/// # Errors
/// 413 naming `max_body_bytes`.
pub fn check_declared_length(headers: &HeaderMap, limits: &IngestLimits) -> Result<(), ApiError> {
    let max = limits.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > max.saturating_add(COMPRESSED_FRAMING_BYTES) as u64 => {
            Err(too_large(max))
        }
        _ => Ok(()),
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
    let raw = axum::body::to_bytes(body, max.saturating_add(COMPRESSED_FRAMING_BYTES))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with_length(length: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, length.parse().expect("header"));
        headers
    }

    #[test]
    fn test_declared_length_beyond_what_is_read_is_refused_before_reading() {
        let limits = IngestLimits {
            max_body_bytes: 1000,
            ..IngestLimits::default()
        };
        let most = (1000 + COMPRESSED_FRAMING_BYTES).to_string();
        assert!(check_declared_length(&with_length(&most), &limits).is_ok());
        assert!(check_declared_length(&HeaderMap::new(), &limits).is_ok());
        let over = (1001 + COMPRESSED_FRAMING_BYTES).to_string();
        let error = check_declared_length(&with_length(&over), &limits).expect_err("413");
        assert_eq!(error.code, ErrorCode::PayloadTooLarge);
        assert!(
            error.message.contains("max_body_bytes"),
            "{}",
            error.message
        );
    }
}
