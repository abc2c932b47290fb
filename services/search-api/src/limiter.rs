//! Caps the queries one tenant runs at once and starts per second, so that one
//! tenant's heavy searches cannot take every search thread; beyond a cap the answer
//! is 429. The caps are the configured default, lowered by the tenant's quota
//! (`concurrent_queries`, `queries_per_s`, `max_query_range_s`) from the routing
//! snapshot, so a quota change applies at the next query.
//!
//! It also holds the tenants' memory budgets: every query gets a budget of
//! `max_query_memory_bytes` inside its tenant's `max_query_memory_bytes_per_tenant`
//! ([`TenantQueries::query_memory`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use logpool_api::quota::{Draw, RateQuotas};
use logpool_api::{ApiError, ErrorCode, Principal, RoutingView};
use logpool_core::access::Limits;
use logpool_core::memory::{RequestMemory, TenantBudgets};
use logpool_engines::config::SearchConfig;

/// The query limits of the caller's tenant, for one request.
#[derive(Debug, Clone)]
pub struct TenantQueries {
    limiter: Arc<TenantLimiter>,
    tenant: String,
    limits: Limits,
}

impl TenantQueries {
    /// The tenant the request acts in (from its key).
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Takes a place for one query, within the running and per-second caps.
    ///
    /// # Errors
    /// 429 with `Retry-After` when a cap is reached.
    pub fn try_acquire(&self) -> Result<QueryPermit, ApiError> {
        if let Some(rate) = self.limits.queries_per_s {
            self.limiter.started.take(&[Draw {
                bucket: self.tenant.clone(),
                rate: u64::from(rate),
                amount: 1,
                limit_name: "queries_per_s",
                owner: format!("tenant `{}`", self.tenant),
            }])?;
        }
        let cap = self
            .limits
            .concurrent_queries
            .map_or(self.limiter.max_per_tenant, |quota| {
                self.limiter.max_per_tenant.min(quota as usize)
            });
        self.limiter.try_acquire_with_cap(&self.tenant, cap)
    }

    /// A memory budget for one query of the tenant.
    pub fn query_memory(&self) -> RequestMemory {
        self.limiter
            .memory
            .request(&self.tenant, self.limiter.query_memory_bytes)
    }

    /// Refuses a time range longer than the tenant's `max_query_range_s`.
    ///
    /// # Errors
    /// 400 naming the limit.
    pub fn check_range(&self, from_ns: i64, to_ns: i64) -> Result<(), ApiError> {
        let Some(max_s) = self.limits.max_query_range_s else {
            return Ok(());
        };
        // An open end (`to` left out) means "until now" for this limit: records are
        // not expected from the future, and a tenant should not have to send `to=now`.
        let to_ns = to_ns.min(logpool_api::time::now_ns());
        let span_s = to_ns.saturating_sub(from_ns) / 1_000_000_000;
        if span_s > i64::try_from(max_s).unwrap_or(i64::MAX) {
            return Err(ApiError::bad_request(format!(
                "the time range from `from` to `to` may span at most {max_s} seconds for this tenant"
            ))
            .with_detail("field", "from")
            .with_detail("limit", "max_query_range_s")
            .with_detail("quota", max_s));
        }
        Ok(())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TenantQueries {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<TenantQueries, ApiError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let limiter = parts
            .extensions
            .get::<Arc<TenantLimiter>>()
            .cloned()
            .ok_or_else(|| ApiError::internal("search router without its query limiter"))?;
        let limits = limiter
            .routing
            .snapshot()
            .access
            .limits_for(&principal.tenant, None);
        Ok(TenantQueries {
            limiter,
            tenant: principal.tenant,
            limits,
        })
    }
}

/// Running queries per tenant.
#[derive(Debug)]
pub struct TenantLimiter {
    max_per_tenant: usize,
    running: Mutex<HashMap<String, usize>>,
    started: RateQuotas,
    routing: RoutingView,
    query_memory_bytes: usize,
    memory: TenantBudgets,
}

/// A running query; dropping it frees its place.
#[derive(Debug)]
pub struct QueryPermit {
    limiter: Arc<TenantLimiter>,
    tenant: String,
}

impl TenantLimiter {
    /// Creates a limiter allowing `max_per_tenant` queries per tenant at once (less
    /// where a tenant's quota in `routing` says so).
    pub fn new(max_per_tenant: usize, routing: RoutingView) -> Arc<TenantLimiter> {
        let defaults = SearchConfig::default();
        TenantLimiter::with_memory(
            max_per_tenant,
            routing,
            defaults.max_query_memory_bytes,
            defaults.max_query_memory_bytes_per_tenant,
        )
    }

    /// Like [`TenantLimiter::new`], with the memory budget of one query and of all
    /// running queries of one tenant, in bytes.
    pub fn with_memory(
        max_per_tenant: usize,
        routing: RoutingView,
        query_memory_bytes: usize,
        tenant_memory_bytes: usize,
    ) -> Arc<TenantLimiter> {
        Arc::new(TenantLimiter {
            max_per_tenant,
            running: Mutex::new(HashMap::new()),
            started: RateQuotas::default(),
            routing,
            query_memory_bytes,
            memory: TenantBudgets::new(tenant_memory_bytes),
        })
    }

    /// Takes a place for one query of `tenant` under the configured cap.
    ///
    /// # Errors
    /// 429 with `Retry-After` when the tenant already runs its maximum.
    pub fn try_acquire(self: &Arc<Self>, tenant: &str) -> Result<QueryPermit, ApiError> {
        self.try_acquire_with_cap(tenant, self.max_per_tenant)
    }

    fn try_acquire_with_cap(
        self: &Arc<Self>,
        tenant: &str,
        cap: usize,
    ) -> Result<QueryPermit, ApiError> {
        let mut running = lock(&self.running);
        let count = running.entry(tenant.to_string()).or_insert(0);
        if *count >= cap {
            return Err(ApiError::new(
                ErrorCode::TooManyRequests,
                format!(
                    "at most {cap} queries may run at once for this tenant; retry when one has finished"
                ),
            )
            .with_detail("limit", "concurrent_queries")
            .with_detail("quota", cap)
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
        let (_sender, receiver) = tokio::sync::watch::channel(std::sync::Arc::new(
            logpool_core::routing::RoutingSnapshot::default(),
        ));
        let limiter = TenantLimiter::new(2, RoutingView::new(receiver));
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
