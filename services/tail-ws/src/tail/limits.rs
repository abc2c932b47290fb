//! Counts open tails per tenant and per pool, so that one tenant (or one busy pool)
//! cannot take every reader the service can afford.

use logpool_core::pool_id::PoolId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Which limit refused a tail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TailLimitError {
    /// The tenant has `max` tails open.
    #[error("tenant already has {max} tails open (max_tails_per_tenant)")]
    TooManyForTenant {
        /// The limit.
        max: usize,
    },
    /// The pool has `max` tails open.
    #[error("pool already has {max} tails open (max_tails_per_pool)")]
    TooManyForPool {
        /// The limit.
        max: usize,
    },
}

/// The open tails of one service.
#[derive(Debug)]
pub struct TailRegistry {
    max_per_tenant: usize,
    max_per_pool: usize,
    open: Mutex<OpenTails>,
}

#[derive(Debug, Default)]
struct OpenTails {
    per_tenant: HashMap<String, usize>,
    per_pool: HashMap<PoolId, usize>,
}

impl TailRegistry {
    /// Creates a registry with the two limits.
    pub fn new(max_per_tenant: usize, max_per_pool: usize) -> TailRegistry {
        TailRegistry {
            max_per_tenant,
            max_per_pool,
            open: Mutex::new(OpenTails::default()),
        }
    }

    /// Counts one more tail, or says which limit it would break. The tail counts
    /// until the returned permit is dropped.
    ///
    /// # Errors
    /// [`TailLimitError`] when the tenant or the pool is at its limit.
    pub fn try_open(
        self: &Arc<Self>,
        tenant: &str,
        pool_id: PoolId,
    ) -> Result<TailPermit, TailLimitError> {
        self.try_open_within(tenant, pool_id, None)
    }

    /// Like [`TailRegistry::try_open`], with the tenant's own `concurrent_tails`
    /// quota lowering the configured per-tenant maximum.
    ///
    /// # Errors
    /// Which limit is reached.
    pub fn try_open_within(
        self: &Arc<Self>,
        tenant: &str,
        pool_id: PoolId,
        tenant_quota: Option<u32>,
    ) -> Result<TailPermit, TailLimitError> {
        let max_for_tenant = tenant_quota.map_or(self.max_per_tenant, |quota| {
            self.max_per_tenant.min(quota as usize)
        });
        let mut open = self.lock();
        let tenant_count = open.per_tenant.get(tenant).copied().unwrap_or(0);
        if tenant_count >= max_for_tenant {
            return Err(TailLimitError::TooManyForTenant {
                max: max_for_tenant,
            });
        }
        let pool_count = open.per_pool.get(&pool_id).copied().unwrap_or(0);
        if pool_count >= self.max_per_pool {
            return Err(TailLimitError::TooManyForPool {
                max: self.max_per_pool,
            });
        }
        *open.per_tenant.entry(tenant.to_string()).or_default() += 1;
        *open.per_pool.entry(pool_id).or_default() += 1;
        Ok(TailPermit {
            registry: Arc::clone(self),
            tenant: tenant.to_string(),
            pool_id,
        })
    }

    /// Returns the number of open tails on a pool.
    pub fn open_on_pool(&self, pool_id: PoolId) -> usize {
        self.lock().per_pool.get(&pool_id).copied().unwrap_or(0)
    }

    fn lock(&self) -> MutexGuard<'_, OpenTails> {
        // The counters stay consistent under a panic elsewhere: each update is one
        // statement on plain integers.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One open tail; dropping it frees its place.
#[derive(Debug)]
pub struct TailPermit {
    registry: Arc<TailRegistry>,
    tenant: String,
    pool_id: PoolId,
}

impl Drop for TailPermit {
    fn drop(&mut self) {
        let mut open = self.registry.lock();
        decrement(&mut open.per_tenant, &self.tenant);
        decrement(&mut open.per_pool, &self.pool_id);
    }
}

/// Counts one down and forgets keys that reach zero, so the maps stay small.
fn decrement<K: std::hash::Hash + Eq + Clone>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = counts.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_pool_limit_refuses_and_frees_on_drop() {
        let registry = Arc::new(TailRegistry::new(10, 2));
        let first = registry.try_open("t", PoolId::new(1)).expect("first");
        let _second = registry.try_open("t", PoolId::new(1)).expect("second");
        assert_eq!(
            registry.try_open("t", PoolId::new(1)).expect_err("third"),
            TailLimitError::TooManyForPool { max: 2 }
        );
        // Another pool of the same tenant is not affected.
        let _other = registry.try_open("t", PoolId::new(2)).expect("other pool");
        drop(first);
        assert_eq!(registry.open_on_pool(PoolId::new(1)), 1);
        let _again = registry.try_open("t", PoolId::new(1)).expect("freed");
    }

    #[test]
    fn test_tenant_limit_spans_pools_and_tenants_are_separate() {
        let registry = Arc::new(TailRegistry::new(2, 10));
        let _a = registry.try_open("t", PoolId::new(1)).expect("a");
        let _b = registry.try_open("t", PoolId::new(2)).expect("b");
        assert_eq!(
            registry
                .try_open("t", PoolId::new(3))
                .expect_err("over tenant limit"),
            TailLimitError::TooManyForTenant { max: 2 }
        );
        let _c = registry
            .try_open("u", PoolId::new(3))
            .expect("another tenant");
    }

    #[test]
    fn test_counts_are_forgotten_at_zero() {
        let registry = Arc::new(TailRegistry::new(1, 1));
        drop(registry.try_open("t", PoolId::new(1)).expect("open"));
        let open = registry.lock();
        assert!(open.per_tenant.is_empty() && open.per_pool.is_empty());
    }
}
