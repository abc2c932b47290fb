//! The binary format of one queue message: a compressed batch of records.
//!
//! ```text
//! byte 0       format version (1)
//! bytes 1..5   record count, u32 little endian
//! bytes 5..    zstd frame of a JSON array of records ({"t": ns, "f": {...}})
//! ```
//!
//! The same facts (pool, record count, format version) also travel as message
//! properties so that consumers can route a message without decompressing it.
//! The format is a public contract: `docs/queue-message-format.md`.

use crate::record::Record;

/// The format version written by this build.
pub const BATCH_FORMAT_VERSION: u8 = 1;

/// zstd level 1: logs compress well even at the fastest level, and produce latency
/// matters more than the last few percent of size.
const ZSTD_LEVEL: i32 = 1;

/// Why a batch could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The payload is shorter than its header.
    #[error("batch payload is truncated ({0} bytes)")]
    Truncated(usize),
    /// The payload was written by an unknown format version.
    #[error("unsupported batch format version {0}")]
    UnsupportedVersion(u8),
    /// The compressed body is damaged.
    #[error("batch body cannot be decompressed: {0}")]
    Compression(String),
    /// The decompressed body is not a record array.
    #[error("batch body is not a record array: {0}")]
    Json(String),
    /// The header's record count disagrees with the body.
    #[error("batch header says {header} records, body has {body}")]
    CountMismatch {
        /// Count in the header.
        header: u32,
        /// Count in the body.
        body: usize,
    },
}

/// Encodes records into one queue payload.
///
/// # Errors
/// Fails only if compression fails, which does not happen for in-memory buffers.
pub fn encode_batch(records: &[Record]) -> Result<Vec<u8>, BatchError> {
    let json = serde_json::to_vec(records).map_err(|e| BatchError::Json(e.to_string()))?;
    let compressed = zstd::encode_all(json.as_slice(), ZSTD_LEVEL)
        .map_err(|e| BatchError::Compression(e.to_string()))?;
    let mut payload = Vec::with_capacity(compressed.len() + 5);
    payload.push(BATCH_FORMAT_VERSION);
    payload.extend_from_slice(&(records.len() as u32).to_le_bytes());
    payload.extend_from_slice(&compressed);
    Ok(payload)
}

/// Reads the record count from a payload header without decompressing it.
///
/// # Errors
/// Fails on a truncated header or an unknown version.
pub fn peek_record_count(payload: &[u8]) -> Result<u32, BatchError> {
    if payload.len() < 5 {
        return Err(BatchError::Truncated(payload.len()));
    }
    if payload[0] != BATCH_FORMAT_VERSION {
        return Err(BatchError::UnsupportedVersion(payload[0]));
    }
    Ok(u32::from_le_bytes([
        payload[1], payload[2], payload[3], payload[4],
    ]))
}

/// Decodes a queue payload into its records.
///
/// # Errors
/// Fails on any damage; see [`BatchError`].
pub fn decode_batch(payload: &[u8]) -> Result<Vec<Record>, BatchError> {
    let count = peek_record_count(payload)?;
    let json =
        zstd::decode_all(&payload[5..]).map_err(|e| BatchError::Compression(e.to_string()))?;
    let records: Vec<Record> =
        serde_json::from_slice(&json).map_err(|e| BatchError::Json(e.to_string()))?;
    if records.len() != count as usize {
        return Err(BatchError::CountMismatch {
            header: count,
            body: records.len(),
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::record::FieldValue;

    #[test]
    fn test_batch_roundtrip() {
        let records: Vec<Record> = (0..100)
            .map(|i| {
                let mut fields = BTreeMap::new();
                fields.insert("message".to_string(), FieldValue::Str(format!("line {i}")));
                fields.insert("n".to_string(), FieldValue::Long(i));
                Record { time_ns: i, fields }
            })
            .collect();
        let payload = encode_batch(&records).expect("encode");
        assert_eq!(peek_record_count(&payload).expect("peek"), 100);
        assert_eq!(decode_batch(&payload).expect("decode"), records);
    }

    #[test]
    fn test_damaged_batches_are_errors() {
        assert!(matches!(
            decode_batch(&[1, 0]),
            Err(BatchError::Truncated(2))
        ));
        assert!(matches!(
            decode_batch(&[9, 0, 0, 0, 0]),
            Err(BatchError::UnsupportedVersion(9))
        ));
        assert!(matches!(
            decode_batch(&[1, 1, 0, 0, 0, 7, 7]),
            Err(BatchError::Compression(_))
        ));
    }
}
