//! What the object store already holds of a shard: the newest batch and which of its
//! hour objects exist. Loaded once per shard when the worker first sees it, which is
//! what makes redelivery after a crash harmless (see the module docs of `archive`).

use std::collections::HashSet;

use logpool_core::archive::ObjectName;
use logpool_engines::object_store::{ObjectStore, ObjectStoreResult};

/// The newest batch of a shard found in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LatestBatch {
    /// Position of its first message.
    pub(super) first: u64,
    /// Position of its last message.
    pub(super) last: u64,
    /// Hour starts (s) of the objects of that batch that exist.
    pub(super) hours: HashSet<i64>,
}

/// Finds the newest batch of `partition` under the pool prefixes (the current one
/// and the legacy layout, whose objects count as written). Batches of a shard are
/// written one after another, so every batch before the newest is complete.
pub(super) async fn latest_batch(
    store: &dyn ObjectStore,
    pool_prefixes: &[&str],
    partition: u32,
) -> ObjectStoreResult<Option<LatestBatch>> {
    let mut names: Vec<ObjectName> = Vec::new();
    for pool_prefix in pool_prefixes {
        names.extend(
            store
                .list(pool_prefix)
                .await?
                .iter()
                .filter_map(|key| key.strip_prefix(pool_prefix).and_then(ObjectName::parse))
                .filter(|name| name.partition == partition),
        );
    }
    let Some(newest) = names.iter().max_by_key(|name| name.last) else {
        return Ok(None);
    };
    let (first, last) = (newest.first, newest.last);
    let hours = names
        .iter()
        .filter(|name| name.first == first && name.last == last)
        .map(|name| name.hour_start_s)
        .collect();
    Ok(Some(LatestBatch { first, last, hours }))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use logpool_engines::object_store::{LocalFileObjectStore, LocalFileObjectStoreConfig};

    use super::*;

    #[tokio::test]
    async fn test_newest_batch_of_the_partition_with_its_existing_hours() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalFileObjectStore::open(&LocalFileObjectStoreConfig {
            dir: dir.path().to_path_buf(),
        })
        .unwrap();
        let prefix = "archive/default/p/pool/";
        for key in [
            "dt=2026-01-01/hour=00/3-0-9.jsonl.zst",
            "dt=2026-01-01/hour=01/3-10-19.jsonl.zst",
            "dt=2026-01-01/hour=02/3-10-19.jsonl.gz",
            "dt=2026-01-01/hour=02/3-10-19.manifest.json",
            "dt=2026-01-01/hour=05/4-50-99.jsonl.zst",
        ] {
            store
                .put(&format!("{prefix}{key}"), Bytes::from_static(b"x"))
                .await
                .unwrap();
        }
        let latest = latest_batch(&store, &[prefix], 3).await.unwrap().unwrap();
        assert_eq!((latest.first, latest.last), (10, 19));
        let hour0 = 1_767_225_600;
        assert_eq!(latest.hours, HashSet::from([hour0 + 3600, hour0 + 7200]));
        assert_eq!(latest_batch(&store, &[prefix], 7).await.unwrap(), None);

        // A batch half written under the legacy layout and completed in the tenant
        // area is one batch, with the hours of both places.
        let current = "tenant=default/archive/p/pool/";
        store
            .put(
                &format!("{current}dt=2026-01-01/hour=03/3-10-19.jsonl.zst"),
                Bytes::from_static(b"x"),
            )
            .await
            .unwrap();
        let both = latest_batch(&store, &[prefix, current], 3)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((both.first, both.last), (10, 19));
        assert_eq!(
            both.hours,
            HashSet::from([hour0 + 3600, hour0 + 7200, hour0 + 10800])
        );
    }
}
