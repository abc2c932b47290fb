//! Caps the queries one tenant runs at once, so that one tenant's heavy searches
//! cannot take every search thread; beyond the cap the answer is 429.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logpool_api::{ApiError, ErrorCode};

/// Running queries per tenant.
#[derive(Debug)]
pub struct TenantLimiter {
    max_per_tenant: usize,
    running: Mutex<HashMap<String, usize>>,
}

/// A running query; dropping it frees its place.
#[derive(Debug)]
pub struct QueryPermit {
    limiter: Arc<TenantLimiter>,
    tenant: String,
}

impl TenantLimiter {
    /// Creates a limiter allowing `max_per_tenant` queries per tenant at once.
    pub fn new(max_per_tenant: usize) -> Arc<TenantLimiter> {
        Arc::new(TenantLimiter {
            max_per_tenant,
            running: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a place for one query of `tenant`.
    ///
    /// # Errors
    /// 429 with `Retry-After` when the tenant already runs its maximum.
    pub fn try_acquire(self: &Arc<Self>, tenant: &str) -> Result<QueryPermit, ApiError> {
        let mut running = lock(&self.running);
        let count = running.entry(tenant.to_string()).or_insert(0);
        if *count >= self.max_per_tenant {
            return Err(ApiError::new(
                ErrorCode::TooManyRequests,
                format!(
                    "at most {} queries may run at once per tenant; retry when one has finished",
                    self.max_per_tenant
                ),
            )
            .with_detail("limit", self.max_per_tenant)
            .with_retry_after(Duration::from_secs(1)));
        }
        *count += 1;
        Ok(QueryPermit {
            limiter: Arc::clone(self),
            tenant: tenant.to_string(),
        })
    }
}

impl Drop for QueryPermit {
    fn drop(&mut self) {
        let mut running = lock(&self.limiter.running);
        if let Some(count) = running.get_mut(&self.tenant) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                running.remove(&self.tenant);
            }
        }
    }
}

/// Locks the map, recovering it if a panicking thread poisoned it: counts stay valid.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_limiter_refuses_beyond_the_cap_per_tenant() {
        let limiter = TenantLimiter::new(2);
        let first = limiter.try_acquire("a").expect("first");
        let _second = limiter.try_acquire("a").expect("second");
        let refused = limiter.try_acquire("a").expect_err("third");
        assert_eq!(refused.code, ErrorCode::TooManyRequests);
        assert!(
            limiter.try_acquire("b").is_ok(),
            "other tenants are not affected"
        );
        drop(first);
        assert!(
            limiter.try_acquire("a").is_ok(),
            "a finished query frees its place"
        );
    }
}
