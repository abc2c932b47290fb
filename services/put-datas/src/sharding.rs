//! Which records of a request go to which shard.
//!
//! - With a `hash_key`, the whole request goes to one shard chosen by a stable hash
//!   (FNV-1a), so records with the same key keep their order.
//! - Without one, small requests go whole to one shard (rotating per request), and
//!   large ones are cut into contiguous runs over several shards, so one big client
//!   still uses every shard while each batch stays large enough to compress well.

use logpool_core::record::Record;

/// Requests below this many records per extra shard are not split further.
pub const MIN_RECORDS_PER_SPLIT: usize = 500;

/// Splits `records` into (shard index, records) batches.
pub fn plan(
    records: Vec<Record>,
    shard_count: usize,
    hash_key: Option<&str>,
    rotation: usize,
) -> Vec<(usize, Vec<Record>)> {
    let shard_count = shard_count.max(1);
    if let Some(key) = hash_key {
        return vec![(
            (fnv1a(key.as_bytes()) % shard_count as u64) as usize,
            records,
        )];
    }
    let first = rotation % shard_count;
    let splits = records
        .len()
        .div_ceil(MIN_RECORDS_PER_SPLIT)
        .clamp(1, shard_count);
    if splits == 1 {
        return vec![(first, records)];
    }
    let per_split = records.len().div_ceil(splits);
    let mut batches = Vec::with_capacity(splits);
    let mut rest = records;
    let mut shard = first;
    while !rest.is_empty() {
        let tail = rest.split_off(per_split.min(rest.len()));
        batches.push((shard, rest));
        rest = tail;
        shard = (shard + 1) % shard_count;
    }
    batches
}

/// FNV-1a: stable across builds and platforms, unlike the std hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn records(n: usize) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                time_ns: i as i64,
                fields: BTreeMap::new(),
            })
            .collect()
    }

    #[test]
    fn test_hash_key_pins_one_shard() {
        let a = plan(records(2000), 4, Some("user-1"), 0);
        let b = plan(records(10), 4, Some("user-1"), 3);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].0, b[0].0);
    }

    #[test]
    fn test_large_requests_spread_and_keep_every_record() {
        let batches = plan(records(2001), 3, None, 1);
        assert_eq!(batches.iter().map(|b| b.0).collect::<Vec<_>>(), [1, 2, 0]);
        let times: Vec<i64> = batches
            .into_iter()
            .flat_map(|b| b.1)
            .map(|r| r.time_ns)
            .collect();
        assert_eq!(times, (0..2001).collect::<Vec<_>>());
    }

    #[test]
    fn test_small_requests_rotate() {
        assert_eq!(plan(records(10), 3, None, 0)[0].0, 0);
        assert_eq!(plan(records(10), 3, None, 4)[0].0, 1);
    }
}
