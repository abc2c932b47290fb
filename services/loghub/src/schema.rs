//! Fixes the types of a batch's new fields before the batch is indexed.
//!
//! A field without a hint takes the type of the first value the pool indexes for it
//! ([`logpool_core::field_types`]). That type is control-plane state: it is written
//! to the metadata store, where the first writer wins when workers race, and every
//! service receives it in the routing snapshot. So a batch is indexed only with types
//! the store holds, and every later reader (search, SQL, the tail, alerts) types the
//! field the same way. A batch whose new types cannot be stored (store unreachable)
//! fails like a failed index write: its messages are redelivered, nothing is lost.
//!
//! A batch with a new field waits (at most [`ROUTING_WAIT`]) until the routing
//! snapshot carries the field's type before it is written, so a record is never
//! searchable while search would still read its field untyped. The wait costs only
//! the first batch of each new field: control-api publishes learned types within a
//! quarter of a second.

use logpool_core::pool_id::PoolId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use logpool_api::RoutingView;
use logpool_core::field_types::learn_types;
use logpool_core::routing::PoolRoute;
use logpool_engines::index::{IndexDoc, IndexError};
use logpool_engines::metadata::{LearnedTypes, MetadataStore};

/// Longest wait for the routing snapshot to carry newly stored types. Past it the
/// batch is written anyway: it is then searched untyped for a moment, which still
/// finds its values by text, but nothing is held up by a slow coordinator.
pub const ROUTING_WAIT: Duration = Duration::from_secs(5);

/// The learned types of each pool, as the metadata store holds them.
#[derive(Debug)]
pub struct PoolSchemas {
    store: Arc<dyn MetadataStore>,
    routing: RoutingView,
    /// Types stored by this worker that the routing snapshot may not carry yet (it
    /// is republished within about a second). An entry is dropped as soon as the
    /// route carries all of it, so the map stays as small as the lag.
    ahead_of_routing: Mutex<HashMap<PoolId, LearnedTypes>>,
}

impl PoolSchemas {
    /// Learned types kept in `store`, published through `routing`.
    pub fn new(store: Arc<dyn MetadataStore>, routing: RoutingView) -> PoolSchemas {
        PoolSchemas {
            store,
            routing,
            ahead_of_routing: Mutex::new(HashMap::new()),
        }
    }

    /// The route to index `docs` with: `pool` carrying every learned type of the
    /// pool, including those of fields `docs` show for the first time, which are
    /// stored first.
    ///
    /// # Errors
    /// [`IndexError::Unavailable`] when new types cannot be stored: the write must
    /// be retried later.
    pub async fn route_for(
        &self,
        pool: &PoolRoute,
        docs: &[IndexDoc],
    ) -> Result<PoolRoute, IndexError> {
        let mut known = pool.learned_types.clone();
        {
            let mut ahead = self.ahead();
            if let Some(stored) = ahead.get(&pool.pool_id) {
                if stored.keys().all(|field| known.contains_key(field)) {
                    ahead.remove(&pool.pool_id);
                } else {
                    known.extend(stored.iter().map(|(field, t)| (field.clone(), *t)));
                }
            }
        }
        let new = learn_types(
            &pool.field_hints,
            &known,
            docs.iter().map(|doc| &doc.record),
        );
        if !new.is_empty() {
            let stored = self
                .store
                .learn_field_types(pool.pool_id, &new)
                .await
                .map_err(|error| {
                    IndexError::Unavailable(format!(
                        "the types of new fields of pool {} cannot be stored: {error}",
                        pool.pool_id
                    ))
                })?;
            self.ahead().insert(pool.pool_id, stored.clone());
            self.wait_until_routed(pool.pool_id, &new).await;
            known = stored;
        }
        Ok(PoolRoute {
            learned_types: known,
            ..pool.clone()
        })
    }

    /// Waits until the routing snapshot carries a type for each of `fields` (or the
    /// pool is gone), at most [`ROUTING_WAIT`].
    async fn wait_until_routed(&self, pool_id: PoolId, fields: &LearnedTypes) {
        let mut receiver = self.routing.receiver();
        let routed = receiver.wait_for(|snapshot| {
            snapshot.pool_by_id(pool_id).is_none_or(|route| {
                fields
                    .keys()
                    .all(|field| route.learned_types.contains_key(field))
            })
        });
        if tokio::time::timeout(ROUTING_WAIT, routed).await.is_err() {
            tracing::warn!(
                %pool_id,
                "learned field types not in the routing snapshot after {ROUTING_WAIT:?}; indexing anyway"
            );
        }
    }

    fn ahead(&self) -> std::sync::MutexGuard<'_, HashMap<PoolId, LearnedTypes>> {
        self.ahead_of_routing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
