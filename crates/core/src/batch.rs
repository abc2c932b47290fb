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
    CODEC.with(|codec| codec.borrow_mut().encode(records))
}

/// Records written as a batch body's JSON objects, back to back and separated by
/// commas, so that any run of them is one slice: put-datas writes a request's records
/// once, then cuts the runs each shard gets without building [`Record`]s.
#[derive(Debug, Default)]
pub struct EncodedRecords {
    json: Vec<u8>,
    /// Where each record's object ends in `json`.
    ends: Vec<usize>,
}

impl EncodedRecords {
    /// Room for about `bytes` of record JSON, so that writing a request's records
    /// does not grow (and copy) the buffer several times.
    pub fn with_capacity(bytes: usize) -> EncodedRecords {
        EncodedRecords {
            json: Vec::with_capacity(bytes),
            ends: Vec::new(),
        }
    }

    /// How many records are written.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no record is written.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Writes one record.
    pub fn push(&mut self, record: &Record) {
        let mark = self.start_record();
        // Writing into a Vec cannot fail; a record that could not be written would
        // leave nothing behind.
        if serde_json::to_writer(self.buffer(), record).is_ok() {
            self.finish_record();
        } else {
            self.roll_back(mark);
        }
    }

    /// Starts a record's object; returns the mark [`EncodedRecords::roll_back`] takes.
    pub(crate) fn start_record(&mut self) -> usize {
        let mark = self.json.len();
        if !self.ends.is_empty() {
            self.json.push(b',');
        }
        mark
    }

    /// The buffer the current record's object is written into.
    pub(crate) fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.json
    }

    /// Ends the current record's object.
    pub(crate) fn finish_record(&mut self) {
        self.ends.push(self.json.len());
    }

    /// Bytes of record JSON written so far.
    pub fn json_bytes(&self) -> usize {
        self.json.len()
    }

    /// The JSON object of record `index`.
    pub(crate) fn record_json(&self, index: usize) -> &[u8] {
        let start = match index {
            0 => 0,
            // Past the previous record's end and the comma after it.
            after => self.ends[after - 1] + 1,
        };
        &self.json[start..self.ends[index]]
    }

    /// Writes one record given as its JSON object.
    pub(crate) fn push_json(&mut self, object: &[u8]) {
        self.start_record();
        self.json.extend_from_slice(object);
        self.finish_record();
    }

    /// Forgets everything written since `mark`.
    pub(crate) fn roll_back(&mut self, mark: usize) {
        self.json.truncate(mark);
    }

    /// Writes every record of `other` after these, so that records encoded one by
    /// one (the items of an Elasticsearch bulk request) go out as one batch.
    pub fn append(&mut self, other: &EncodedRecords) {
        if other.is_empty() {
            return;
        }
        let offset = if self.ends.is_empty() {
            0
        } else {
            self.json.push(b',');
            self.json.len()
        };
        self.json.extend_from_slice(&other.json);
        self.ends.extend(other.ends.iter().map(|end| end + offset));
    }

    /// Encodes records `run` into one queue payload, as [`encode_batch`] would
    /// encode the same records.
    ///
    /// # Errors
    /// Fails if `run` is outside the records, or if compression fails.
    pub fn encode_run(&self, run: std::ops::Range<usize>) -> Result<Vec<u8>, BatchError> {
        if run.start >= run.end || run.end > self.ends.len() {
            return Err(BatchError::Json(format!(
                "records {run:?} are not among the {} written",
                self.ends.len()
            )));
        }
        let start = match run.start {
            0 => 0,
            // Past the previous record's end and the comma after it.
            first => self.ends[first - 1] + 1,
        };
        let elements = &self.json[start..self.ends[run.end - 1]];
        let count = (run.end - run.start) as u32;
        CODEC.with(|codec| codec.borrow_mut().encode_elements(elements, count))
    }
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
    let json = CODEC.with(|codec| codec.borrow_mut().decompress(&payload[5..]))?;
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

/// A frame whose header declares more than this is decompressed as a stream instead
/// of into one buffer of the declared size, so a damaged header cannot make a
/// consumer allocate gigabytes up front.
const MAX_PREALLOCATED_BATCH_BYTES: u64 = 64 * 1024 * 1024;

/// A scratch buffer larger than this is not kept for the next batch.
const MAX_KEPT_SCRATCH_BYTES: usize = 4 * 1024 * 1024;

thread_local! {
    /// One codec per thread: a zstd context costs about a megabyte to set up, which
    /// per batch was a measurable share of put-datas' time.
    static CODEC: std::cell::RefCell<BatchCodec> = std::cell::RefCell::new(BatchCodec::default());
}

/// Compression contexts and the scratch buffers, reused across batches.
#[derive(Default)]
struct BatchCodec {
    json: Vec<u8>,
    frame: Vec<u8>,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
}

impl BatchCodec {
    fn encode(&mut self, records: &[Record]) -> Result<Vec<u8>, BatchError> {
        self.json.clear();
        serde_json::to_writer(&mut self.json, records)
            .map_err(|e| BatchError::Json(e.to_string()))?;
        self.compress_json(records.len() as u32)
    }

    /// `elements`: record objects separated by commas, written into an array.
    fn encode_elements(&mut self, elements: &[u8], count: u32) -> Result<Vec<u8>, BatchError> {
        self.json.clear();
        self.json.reserve(elements.len() + 2);
        self.json.push(b'[');
        self.json.extend_from_slice(elements);
        self.json.push(b']');
        self.compress_json(count)
    }

    /// Compresses the array in `json` behind the header.
    fn compress_json(&mut self, count: u32) -> Result<Vec<u8>, BatchError> {
        let compressor = match &mut self.compressor {
            Some(compressor) => compressor,
            empty => empty.insert(
                zstd::bulk::Compressor::new(ZSTD_LEVEL)
                    .map_err(|e| BatchError::Compression(e.to_string()))?,
            ),
        };
        // The frame is written into a scratch buffer kept across batches and copied
        // out at its real size (about a fifth of the JSON): a fresh buffer of the
        // worst-case size per batch cost more in page faults than the copy. The
        // frame records its content size, which lets the decoder allocate once.
        self.frame.clear();
        self.frame
            .reserve(zstd::zstd_safe::compress_bound(self.json.len()));
        compressor
            .compress_to_buffer(self.json.as_slice(), &mut self.frame)
            .map_err(|e| BatchError::Compression(e.to_string()))?;
        let mut payload = Vec::with_capacity(5 + self.frame.len());
        payload.push(BATCH_FORMAT_VERSION);
        payload.extend_from_slice(&count.to_le_bytes());
        payload.extend_from_slice(&self.frame);
        for scratch in [&mut self.json, &mut self.frame] {
            if scratch.capacity() > MAX_KEPT_SCRATCH_BYTES {
                *scratch = Vec::new();
            }
        }
        Ok(payload)
    }

    fn decompress(&mut self, frame: &[u8]) -> Result<Vec<u8>, BatchError> {
        let declared = zstd::zstd_safe::get_frame_content_size(frame)
            .ok()
            .flatten();
        let Some(size) = declared.filter(|size| *size <= MAX_PREALLOCATED_BATCH_BYTES) else {
            // Frames without a declared size (written by earlier builds) or with an
            // implausible one are streamed.
            return zstd::decode_all(frame).map_err(|e| BatchError::Compression(e.to_string()));
        };
        let decompressor = match &mut self.decompressor {
            Some(decompressor) => decompressor,
            empty => empty.insert(
                zstd::bulk::Decompressor::new()
                    .map_err(|e| BatchError::Compression(e.to_string()))?,
            ),
        };
        let mut json = Vec::with_capacity(size as usize);
        decompressor
            .decompress_to_buffer(frame, &mut json)
            .map_err(|e| BatchError::Compression(e.to_string()))?;
        if json.len() as u64 != size {
            return Err(BatchError::Compression(format!(
                "frame declares {size} bytes and holds {}",
                json.len()
            )));
        }
        Ok(json)
    }
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
    fn appended_records_encode_as_if_written_together() {
        let records: Vec<Record> = (0..5)
            .map(|i| Record {
                time_ns: i,
                fields: BTreeMap::from([("message".to_string(), FieldValue::Str(format!("{i}")))]),
            })
            .collect();
        let mut joined = EncodedRecords::default();
        joined.append(&EncodedRecords::default());
        for record in &records {
            let mut one = EncodedRecords::default();
            one.push(record);
            joined.append(&one);
        }
        assert_eq!(joined.len(), 5);
        let payload = joined.encode_run(0..5).expect("encode");
        assert_eq!(decode_batch(&payload).expect("decode"), records);
        let tail = joined.encode_run(3..5).expect("encode");
        assert_eq!(decode_batch(&tail).expect("decode"), records[3..]);
    }

    #[test]
    fn test_batches_of_earlier_builds_still_decode() {
        let records: Vec<Record> = (0..10)
            .map(|i| Record {
                time_ns: i,
                fields: BTreeMap::from([("message".to_string(), FieldValue::Str(format!("{i}")))]),
            })
            .collect();
        // Earlier builds streamed the frame, which then declares no content size.
        let json = serde_json::to_vec(&records).expect("json");
        let mut streamed = vec![BATCH_FORMAT_VERSION, 10, 0, 0, 0];
        streamed.extend(zstd::encode_all(json.as_slice(), ZSTD_LEVEL).expect("zstd"));
        let declared = |frame: &[u8]| zstd::zstd_safe::get_frame_content_size(frame).ok();
        assert_eq!(declared(&streamed[5..]), Some(None));
        assert_eq!(decode_batch(&streamed).expect("decode"), records);
        // This build's frames declare it, so decoding allocates once; and the
        // codec reused across batches keeps each batch to itself.
        let payload = encode_batch(&records).expect("encode");
        assert_eq!(declared(&payload[5..]), Some(Some(json.len() as u64)));
        let second = encode_batch(&records[..3]).expect("encode");
        assert_eq!(decode_batch(&payload).expect("decode"), records);
        assert_eq!(decode_batch(&second).expect("decode"), records[..3]);
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
