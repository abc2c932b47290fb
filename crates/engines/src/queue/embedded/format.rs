//! Byte layouts of segment files and watermark files (see the parent module doc).

use crate::queue::{BatchProperties, Position};
use logpool_core::pool_id::PoolId;

/// First bytes of every segment file: format name and version.
pub(super) const SEGMENT_MAGIC: &[u8; 8] = b"LPQSEG\x00\x01";

/// Size of the fixed header in front of every entry's payload.
pub(super) const ENTRY_HEADER_LEN: usize = 37;

/// Largest payload a recovery scan believes; a bigger length field is a torn or
/// damaged header, not a real entry, and must not make recovery allocate gigabytes.
pub(super) const MAX_PAYLOAD_LEN: u32 = 1 << 30;

/// Size of a watermark file: position plus CRC32C.
pub(super) const WATERMARK_FILE_LEN: usize = 12;

/// The decoded fixed header of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EntryHeader {
    pub(super) payload_len: u32,
    pub(super) crc: u32,
    pub(super) position: Position,
    pub(super) publish_time_ms: i64,
    pub(super) properties: BatchProperties,
}

impl EntryHeader {
    /// Builds the header of a new entry, computing the CRC over header and payload.
    pub(super) fn for_payload(
        position: Position,
        publish_time_ms: i64,
        properties: &BatchProperties,
        payload: &[u8],
    ) -> Option<[u8; ENTRY_HEADER_LEN]> {
        let payload_len = u32::try_from(payload.len())
            .ok()
            .filter(|len| *len <= MAX_PAYLOAD_LEN)?;
        let mut bytes = [0u8; ENTRY_HEADER_LEN];
        bytes[0..4].copy_from_slice(&payload_len.to_le_bytes());
        bytes[8..16].copy_from_slice(&position.to_le_bytes());
        bytes[16..24].copy_from_slice(&publish_time_ms.to_le_bytes());
        bytes[24..32].copy_from_slice(&properties.pool_id.get().to_le_bytes());
        bytes[32..36].copy_from_slice(&properties.record_count.to_le_bytes());
        bytes[36] = properties.format_version;
        let crc = entry_crc(&bytes, payload);
        bytes[4..8].copy_from_slice(&crc.to_le_bytes());
        Some(bytes)
    }

    /// Decodes a header; the CRC is checked separately once the payload is read.
    pub(super) fn decode(bytes: &[u8; ENTRY_HEADER_LEN]) -> EntryHeader {
        EntryHeader {
            payload_len: u32::from_le_bytes(le_array(&bytes[0..4])),
            crc: u32::from_le_bytes(le_array(&bytes[4..8])),
            position: u64::from_le_bytes(le_array(&bytes[8..16])),
            publish_time_ms: i64::from_le_bytes(le_array(&bytes[16..24])),
            properties: BatchProperties {
                pool_id: PoolId::new(i64::from_le_bytes(le_array(&bytes[24..32]))),
                record_count: u32::from_le_bytes(le_array(&bytes[32..36])),
                format_version: bytes[36],
            },
        }
    }
}

/// Computes the CRC32C of an entry: every header byte except the CRC field, then the
/// payload, so a damaged length or position is caught as well as a damaged payload.
pub(super) fn entry_crc(header: &[u8; ENTRY_HEADER_LEN], payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&header[0..4]);
    let crc = crc32c::crc32c_append(crc, &header[8..]);
    crc32c::crc32c_append(crc, payload)
}

/// Encodes a subscription watermark file.
pub(super) fn encode_watermark(watermark: Position) -> [u8; WATERMARK_FILE_LEN] {
    let mut bytes = [0u8; WATERMARK_FILE_LEN];
    bytes[0..8].copy_from_slice(&watermark.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[0..8]);
    bytes[8..12].copy_from_slice(&crc.to_le_bytes());
    bytes
}

/// Decodes a subscription watermark file; `None` when it is damaged.
pub(super) fn decode_watermark(bytes: &[u8]) -> Option<Position> {
    if bytes.len() != WATERMARK_FILE_LEN {
        return None;
    }
    let crc = u32::from_le_bytes(le_array(&bytes[8..12]));
    (crc32c::crc32c(&bytes[0..8]) == crc).then(|| u64::from_le_bytes(le_array(&bytes[0..8])))
}

/// Copies a slice whose length the caller fixed into an array.
fn le_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut array = [0u8; N];
    array.copy_from_slice(&bytes[..N]);
    array
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_entry_header_round_trip_and_crc() {
        let properties = BatchProperties {
            pool_id: PoolId::new(-7),
            record_count: 42,
            format_version: 3,
        };
        let payload = b"hello";
        let bytes = EntryHeader::for_payload(9, 1_700_000_000_000, &properties, payload)
            .unwrap_or([0; ENTRY_HEADER_LEN]);
        let header = EntryHeader::decode(&bytes);
        assert_eq!(header.payload_len, 5);
        assert_eq!(header.position, 9);
        assert_eq!(header.publish_time_ms, 1_700_000_000_000);
        assert_eq!(header.properties, properties);
        assert_eq!(header.crc, entry_crc(&bytes, payload));
        assert_ne!(header.crc, entry_crc(&bytes, b"hellp"));
    }

    #[test]
    fn test_watermark_round_trip_and_damage() {
        let bytes = encode_watermark(123);
        assert_eq!(decode_watermark(&bytes), Some(123));
        let mut damaged = bytes;
        damaged[0] ^= 1;
        assert_eq!(decode_watermark(&damaged), None);
        assert_eq!(decode_watermark(&bytes[..5]), None);
    }
}
