//! Memory budgets in bytes: one per query (or live tail) and one per tenant shared by
//! all of the tenant's queries (or tails).
//!
//! Counting records or groups does not bound memory when a record can be 60 KiB or a
//! group key a whole message, so whatever a request holds in proportion to the data
//! it reads (a page of hits, a tail's buffered records, a SQL group table) is charged
//! here in bytes as it grows, and released as it is handed on or dropped. A charge
//! that would take the request over its own budget, or its tenant over the tenant's,
//! is refused; the caller decides what that means (a shorter page, a dropped record, a
//! clear error), and never allocates what was refused.
//!
//! The counts are estimates of heap bytes (text lengths plus a fixed overhead per
//! entry), not allocator measurements: cheap enough to take per record or per group,
//! and proportional to what is really held.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Which budget refused a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OverBudget {
    /// The request alone would hold more than `limit` bytes.
    #[error("the request needs more than its memory budget of {limit} bytes")]
    Request {
        /// The request's budget in bytes.
        limit: usize,
    },
    /// The tenant's requests together would hold more than `limit` bytes.
    #[error("the tenant's requests running now hold its whole memory budget of {limit} bytes")]
    Tenant {
        /// The tenant's budget in bytes.
        limit: usize,
    },
}

/// Bytes held by one tenant's requests of one kind, against its limit.
#[derive(Debug)]
pub struct TenantMemory {
    limit: usize,
    used: AtomicUsize,
}

impl TenantMemory {
    /// A tenant budget of `limit` bytes, nothing held.
    pub fn new(limit: usize) -> TenantMemory {
        TenantMemory {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// Bytes held now by the tenant's requests.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        // Saturating: a release is never larger than what was taken, but a counter
        // that wrapped would refuse every later request of the tenant.
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}

/// The tenant budgets of one kind of request (searches, or tails) in one service.
/// Tenants are created on first use and forgotten when none of their requests runs.
#[derive(Debug)]
pub struct TenantBudgets {
    per_tenant: usize,
    tenants: Mutex<HashMap<String, Weak<TenantMemory>>>,
}

impl TenantBudgets {
    /// Every tenant gets `per_tenant` bytes.
    pub fn new(per_tenant: usize) -> TenantBudgets {
        TenantBudgets {
            per_tenant,
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// The budget shared by the requests of `tenant` that are running now.
    pub fn tenant(&self, tenant: &str) -> Arc<TenantMemory> {
        let mut tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(memory) = tenants.get(tenant).and_then(Weak::upgrade) {
            return memory;
        }
        // Forget tenants whose requests have all ended, so the map stays small.
        tenants.retain(|_, memory| memory.strong_count() > 0);
        let memory = Arc::new(TenantMemory::new(self.per_tenant));
        tenants.insert(tenant.to_string(), Arc::downgrade(&memory));
        memory
    }

    /// A request budget of `per_request` bytes inside the budget of `tenant`.
    pub fn request(&self, tenant: &str, per_request: usize) -> RequestMemory {
        RequestMemory::within(per_request, self.tenant(tenant))
    }
}

#[derive(Debug)]
struct RequestInner {
    limit: usize,
    used: AtomicUsize,
    tenant: Option<Arc<TenantMemory>>,
}

impl Drop for RequestInner {
    fn drop(&mut self) {
        // Whatever the request still holds goes back to its tenant with it.
        if let Some(tenant) = &self.tenant {
            tenant.give_back(*self.used.get_mut());
        }
    }
}

/// The budget of one request. Clones share it, so every part of a request (the
/// steps of a search, the segments of an aggregation) charges the same count.
#[derive(Debug, Clone)]
pub struct RequestMemory(Arc<RequestInner>);

impl RequestMemory {
    /// No limit at all (tests, and internal requests with bounds of their own).
    pub fn unlimited() -> RequestMemory {
        RequestMemory::limited(usize::MAX)
    }

    /// A budget of `limit` bytes, not shared with a tenant.
    pub fn limited(limit: usize) -> RequestMemory {
        RequestMemory(Arc::new(RequestInner {
            limit,
            used: AtomicUsize::new(0),
            tenant: None,
        }))
    }

    /// A budget of `limit` bytes, charged to `tenant` as well.
    pub fn within(limit: usize, tenant: Arc<TenantMemory>) -> RequestMemory {
        RequestMemory(Arc::new(RequestInner {
            limit,
            used: AtomicUsize::new(0),
            tenant: Some(tenant),
        }))
    }

    /// The request's own limit in bytes.
    pub fn limit(&self) -> usize {
        self.0.limit
    }

    /// Bytes the request holds now.
    pub fn used(&self) -> usize {
        self.0.used.load(Ordering::Relaxed)
    }

    /// Takes `bytes` out of the request's budget and its tenant's.
    ///
    /// # Errors
    /// Which budget it would exceed; nothing is charged then.
    pub fn try_charge(&self, bytes: usize) -> Result<(), OverBudget> {
        let inner = &self.0;
        inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes)
                    .filter(|total| *total <= inner.limit)
            })
            .map_err(|_| OverBudget::Request { limit: inner.limit })?;
        if let Some(tenant) = &inner.tenant {
            if !tenant.try_take(bytes) {
                inner.used.fetch_sub(bytes, Ordering::AcqRel);
                return Err(OverBudget::Tenant {
                    limit: tenant.limit,
                });
            }
        }
        Ok(())
    }

    /// Charges `bytes` whatever the budgets say: for the one item a request must
    /// always be able to hold (the first hit of a page), so that it can make progress.
    pub fn charge_anyway(&self, bytes: usize) {
        let inner = &self.0;
        let _ = inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_add(bytes))
            });
        if let Some(tenant) = &inner.tenant {
            let _ = tenant
                .used
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                    Some(used.saturating_add(bytes))
                });
        }
    }

    /// Gives `bytes` back (they were handed on or freed).
    pub fn release(&self, bytes: usize) {
        let inner = &self.0;
        let released = inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            })
            .map_or(0, |before| before.min(bytes));
        if let Some(tenant) = &inner.tenant {
            tenant.give_back(released);
        }
    }
}

/// Estimated heap bytes of one JSON value, beyond its text.
const JSON_VALUE_BYTES: usize = 32;
/// Estimated heap bytes of one object entry, beyond its key and value.
const JSON_ENTRY_BYTES: usize = 48;

/// Heap bytes of a JSON value, estimated: text lengths plus a fixed cost per value
/// and per object entry (what `serde_json` allocates around them).
pub fn json_bytes(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => JSON_VALUE_BYTES,
        Value::String(text) => JSON_VALUE_BYTES + text.len(),
        Value::Array(items) => JSON_VALUE_BYTES + items.iter().map(json_bytes).sum::<usize>(),
        Value::Object(map) => JSON_VALUE_BYTES + json_map_bytes(map),
    }
}

/// Heap bytes of a JSON object's entries, estimated as for [`json_bytes`].
pub fn json_map_bytes(map: &serde_json::Map<String, serde_json::Value>) -> usize {
    map.iter()
        .map(|(key, value)| JSON_ENTRY_BYTES + key.len() + json_bytes(value))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_request_budget_refuses_past_its_limit_and_frees_on_release() {
        let memory = RequestMemory::limited(100);
        assert_eq!(memory.try_charge(60), Ok(()));
        assert_eq!(
            memory.try_charge(41),
            Err(OverBudget::Request { limit: 100 })
        );
        assert_eq!(memory.used(), 60, "a refused charge takes nothing");
        memory.release(60);
        assert_eq!(memory.try_charge(100), Ok(()));
    }

    #[test]
    fn test_tenant_budget_is_shared_and_returned_when_a_request_ends() {
        let budgets = TenantBudgets::new(100);
        let first = budgets.request("t", 80);
        let second = budgets.request("t", 80);
        let other_tenant = budgets.request("u", 80);
        assert_eq!(first.try_charge(70), Ok(()));
        assert_eq!(
            second.try_charge(40),
            Err(OverBudget::Tenant { limit: 100 })
        );
        assert_eq!(second.used(), 0);
        assert_eq!(other_tenant.try_charge(80), Ok(()), "tenants are separate");
        drop(first);
        assert_eq!(
            budgets.tenant("t").used(),
            0,
            "a finished request gives back all"
        );
        assert_eq!(second.try_charge(80), Ok(()));
    }

    #[test]
    fn test_charge_anyway_counts_and_release_never_goes_below_zero() {
        let budgets = TenantBudgets::new(10);
        let memory = budgets.request("t", 10);
        memory.charge_anyway(25);
        assert_eq!(memory.used(), 25);
        assert_eq!(budgets.tenant("t").used(), 25);
        assert!(memory.try_charge(1).is_err());
        memory.release(100);
        assert_eq!(memory.used(), 0);
        assert_eq!(budgets.tenant("t").used(), 0);
    }

    #[test]
    fn test_forgotten_tenants_leave_the_map() {
        let budgets = TenantBudgets::new(10);
        for index in 0..100 {
            drop(budgets.request(&format!("t{index}"), 10));
        }
        let _kept = budgets.request("last", 10);
        let tenants = budgets.tenants.lock().expect("lock");
        assert!(tenants.len() <= 2, "{}", tenants.len());
    }

    #[test]
    fn test_json_bytes_grows_with_text() {
        let small = serde_json::json!({"message": "x"});
        let large = serde_json::json!({"message": "x".repeat(60_000)});
        assert!(json_bytes(&large) >= 60_000);
        assert!(json_bytes(&large) - json_bytes(&small) == 59_999);
    }
}
