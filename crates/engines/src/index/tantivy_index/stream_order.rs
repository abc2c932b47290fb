//! The order in which the documents of one write are staged.
//!
//! tantivy keeps documents in the order they are added. The document store
//! compresses blocks of neighbouring documents, and postings encode the gaps between
//! the documents of a term, so both shrink when similar records are neighbours. The
//! queue hands LogHub every shipper's batches interleaved, so a write mixes many
//! sources record by record. Staging a write grouped by stream (a record's short
//! text fields other than the raw line: host, service, level and the like, as Loki
//! groups by labels) puts the lines of one source and template next to each other
//! (BENCHMARKS.md). Within a stream the order is kept. Nothing reads documents in
//! index order: hits are ordered by the time and tiebreak columns.

use std::hash::{DefaultHasher, Hash, Hasher};

use logpool_core::record::{FieldValue, Record};

use super::schema::MESSAGE;
use crate::index::IndexDoc;

/// Longer text values are payloads (paths, user agents, stack traces), not the name
/// of a source: they are left out of the stream.
const MAX_STREAM_VALUE_BYTES: usize = 64;

/// `docs` in staging order: grouped by queue partition, then by stream, in arrival
/// order within one. The partition comes first because it is the top byte of the
/// tiebreak column: a block of that column that spans two partitions cannot be
/// bit-packed narrowly (7.3 bytes per record instead of 2.2). Streams are ordered by
/// the first bytes of their values, so that similar streams (one component on
/// several hosts) are neighbours too, and then told apart by a hash of all their
/// values. Both are computed once per record: comparing the values themselves in
/// the sort cost a fifth of the server's CPU. Two streams sharing a key are merely
/// staged together.
pub(crate) fn in_stream_order(docs: &[IndexDoc]) -> impl Iterator<Item = &IndexDoc> {
    let mut keyed: Vec<(StreamKey, &IndexDoc)> =
        docs.iter().map(|doc| (StreamKey::of(doc), doc)).collect();
    // Stable: a stream's records stay in arrival order.
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, doc)| doc)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct StreamKey {
    partition: u32,
    /// The first bytes of the stream's values (joined by NUL), big-endian: orders
    /// streams as their text would sort.
    prefix: u128,
    hash: u64,
}

impl StreamKey {
    fn of(doc: &IndexDoc) -> StreamKey {
        let mut prefix = [0u8; 16];
        let mut filled = 0;
        let mut hasher = DefaultHasher::new();
        for (name, text) in stream_values(&doc.record) {
            name.hash(&mut hasher);
            text.hash(&mut hasher);
            // Only what still fits: `take` keeps `filled` below the prefix's length.
            let room = prefix.len() - filled;
            for byte in text.bytes().chain(std::iter::once(0)).take(room) {
                prefix[filled] = byte;
                filled += 1;
            }
        }
        StreamKey {
            partition: doc.identity.partition,
            prefix: u128::from_be_bytes(prefix),
            hash: hasher.finish(),
        }
    }
}

/// The record's stream: its short text values other than the raw line, with their
/// names, in name order.
fn stream_values(record: &Record) -> impl Iterator<Item = (&str, &str)> {
    record
        .fields
        .iter()
        .filter_map(|(name, value)| match value {
            FieldValue::Str(text) if name != MESSAGE && text.len() <= MAX_STREAM_VALUE_BYTES => {
                Some((name.as_str(), text.as_str()))
            }
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::conformance::doc;
    use logpool_core::pool_id::PoolId;

    fn host_and_message(n: u32, host: &str, message: &str) -> IndexDoc {
        doc(
            PoolId::new(1),
            0,
            n,
            i64::from(n),
            &[
                ("host", FieldValue::Str(host.into())),
                ("message", FieldValue::Str(message.into())),
                ("took", FieldValue::Long(i64::from(n))),
            ],
        )
    }

    #[test]
    fn test_streams_are_grouped_and_keep_their_arrival_order() {
        let long_host = "x".repeat(MAX_STREAM_VALUE_BYTES + 1);
        let mut docs = vec![
            host_and_message(0, "web-2", "z"),
            host_and_message(1, "web-1", "y"),
            host_and_message(2, "web-2", "a"),
            host_and_message(3, "web-1", "b"),
            host_and_message(4, "web-2", "c"),
            host_and_message(5, &long_host, "d"),
            host_and_message(6, "web-1", "e"),
        ];
        // A second partition: staged apart from the first, even for the same host.
        docs[6].identity.partition = 1;
        let ordered: Vec<&IndexDoc> = in_stream_order(&docs).collect();
        let stream = |doc: &IndexDoc| {
            let host = match doc.record.fields.get("host") {
                Some(FieldValue::Str(host)) => host.clone(),
                _ => String::new(),
            };
            (doc.identity.partition, host)
        };
        let runs: Vec<(u32, String, Vec<u32>)> = ordered
            .chunk_by(|a, b| stream(a) == stream(b))
            .map(|run| {
                let (partition, host) = stream(run[0]);
                let order = run.iter().map(|doc| doc.identity.index_in_batch).collect();
                (partition, host, order)
            })
            .collect();
        let mut got: Vec<(u32, String, Vec<u32>)> = runs.clone();
        got.sort();
        // One run per partition and stream, in arrival order. The raw line and numbers
        // are not part of the stream: the messages and `took` differ within a run.
        assert_eq!(
            got,
            [
                (0, "web-1".to_string(), vec![1, 3]),
                (0, "web-2".to_string(), vec![0, 2, 4]),
                (0, long_host, vec![5]),
                (1, "web-1".to_string(), vec![6]),
            ]
        );
        assert_eq!(runs.last().map(|run| run.0), Some(1));
    }
}
