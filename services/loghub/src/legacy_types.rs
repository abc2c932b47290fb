//! The one-time import of field types that an earlier version's index engine kept
//! itself (tantivy: a file per pool; Elasticsearch: a `-field-types` index), so an
//! upgrade types every field as its data was indexed.
//!
//! It runs before the indexer's first batch, in every loghub: the store's first
//! writer wins, so replicas racing to import store each type once, and a type
//! learned since (by a newer loghub) is kept. The engine's copy is removed only after
//! the store holds every type, so a crash in between imports again at the next start.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use logpool_api::stop::Stop;
use logpool_core::pool_id::PoolId;
use logpool_engines::index::LogIndex;
use logpool_engines::metadata::MetadataStore;

/// Pause between attempts while the index or the store is unreachable.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Imports what there is, retrying until it is done or the stop comes. Returns the
/// number of types handed to the store.
pub async fn import_until_done(
    index: Arc<dyn LogIndex>,
    store: Arc<dyn MetadataStore>,
    mut stopping: Stop,
) -> usize {
    loop {
        match import(index.as_ref(), store.as_ref()).await {
            Ok(imported) => return imported,
            Err(error) => {
                tracing::warn!(%error, "importing the index engine's learned field types failed; retrying");
                if stopping.sleep(RETRY_PAUSE).await {
                    return 0;
                }
            }
        }
    }
}

/// One attempt: read the engine's types, store those of pools that still exist,
/// then retire the engine's copy.
///
/// # Errors
/// Fails when the engine cannot be read or the store cannot be written.
pub async fn import(index: &dyn LogIndex, store: &dyn MetadataStore) -> anyhow::Result<usize> {
    let legacy = index.legacy_learned_types().await?;
    if legacy.is_empty() {
        return Ok(0);
    }
    // Asked of the store, not of the routing snapshot, which may be behind: a pool
    // skipped here would lose its types for good once the engine's copy is retired.
    let existing: HashSet<PoolId> = store
        .all_pools()
        .await?
        .iter()
        .map(|pool| pool.id)
        .collect();
    let mut imported = 0;
    for (pool_id, types) in &legacy {
        // A pool deleted since has no row to hang types on, and no data left.
        if !existing.contains(pool_id) || types.is_empty() {
            continue;
        }
        store.learn_field_types(*pool_id, types).await?;
        imported += types.len();
    }
    index.retire_legacy_learned_types().await?;
    tracing::info!(
        pools = legacy.len(),
        types = imported,
        "imported the field types the index engine had learned"
    );
    Ok(imported)
}
