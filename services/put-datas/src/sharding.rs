//! Which records of a request go to which shard.
//!
//! - With a `hash_key`, the whole request goes to one shard chosen by a stable hash
//!   (FNV-1a), so records with the same key keep their order.
//! - Without one, small requests go whole to one shard (rotating per request), and
//!   large ones are cut into contiguous runs over several shards, so one big client
//!   still uses every shard while each batch stays large enough to compress well.

use std::ops::Range;

use logpool_core::stable_hash::fnv1a;

/// Requests below this many records per extra shard are not split further.
pub const MIN_RECORDS_PER_SPLIT: usize = 500;

/// Splits a request's `record_count` records into (shard index, run of records).
pub fn plan(
    record_count: usize,
    shard_count: usize,
    hash_key: Option<&str>,
    rotation: usize,
) -> Vec<(usize, Range<usize>)> {
    let shard_count = shard_count.max(1);
    if let Some(key) = hash_key {
        return vec![(
            (fnv1a(key.as_bytes()) % shard_count as u64) as usize,
            0..record_count,
        )];
    }
    let first = rotation % shard_count;
    let splits = record_count
        .div_ceil(MIN_RECORDS_PER_SPLIT)
        .clamp(1, shard_count);
    let per_split = record_count.div_ceil(splits).max(1);
    (0..record_count)
        .step_by(per_split)
        .enumerate()
        .map(|(split, start)| {
            let shard = (first + split) % shard_count;
            (shard, start..(start + per_split).min(record_count))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_hash_key_pins_one_shard() {
        let a = plan(2000, 4, Some("user-1"), 0);
        let b = plan(10, 4, Some("user-1"), 3);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].0, b[0].0);
        assert_eq!(a[0].1, 0..2000);
    }

    #[test]
    fn test_large_requests_spread_and_keep_every_record() {
        let batches = plan(2001, 3, None, 1);
        assert_eq!(batches.iter().map(|b| b.0).collect::<Vec<_>>(), [1, 2, 0]);
        let records: Vec<usize> = batches.into_iter().flat_map(|b| b.1).collect();
        assert_eq!(records, (0..2001).collect::<Vec<_>>());
    }

    #[test]
    fn test_small_requests_rotate() {
        assert_eq!(plan(10, 3, None, 0), [(0, 0..10)]);
        assert_eq!(plan(10, 3, None, 4), [(1, 0..10)]);
    }

    #[test]
    fn test_runs_are_never_empty() {
        for count in 1..1600 {
            let batches = plan(count, 3, None, 0);
            assert!(batches.iter().all(|(_, run)| !run.is_empty()), "{count}");
            assert_eq!(
                batches.iter().map(|(_, run)| run.len()).sum::<usize>(),
                count
            );
        }
    }
}
