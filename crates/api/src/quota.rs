//! Rate quotas: token buckets keyed by tenant or project.
//!
//! A bucket refills at its rate and holds at most one second of it. A request is let
//! through while every bucket it draws from is above zero and then takes its whole
//! amount, which may push a bucket below zero: a 1,000-record request under a
//! 100 records/s limit passes once and then waits ten seconds. The average rate is
//! what the limit promises; this keeps large batches possible under small limits.
//! Buckets live in each process: with several put-datas instances behind a balancer
//! each enforces the limit on its own share.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{ApiError, ErrorCode};

/// One draw from one bucket.
#[derive(Debug, Clone)]
pub struct Draw<'a> {
    /// Bucket name, e.g. `tenant/acme/records`.
    pub bucket: String,
    /// Refill rate per second.
    pub rate: u64,
    /// Amount to take.
    pub amount: u64,
    /// What the limit is called in errors (`ingest_records_per_s`).
    pub limit_name: &'a str,
    /// Whose limit it is, for the error (`tenant acme`).
    pub owner: String,
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl Bucket {
    fn refill(&mut self, rate: u64, now: Instant) {
        let rate = rate as f64;
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.rate = rate;
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.refilled_at = now;
    }
}

/// Token buckets by name.
#[derive(Debug, Default)]
pub struct RateQuotas {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateQuotas {
    /// Takes every draw, or none of them when one bucket is empty.
    ///
    /// # Errors
    /// 429 naming the exhausted limit, with `Retry-After` until it has refilled.
    pub fn take(&self, draws: &[Draw<'_>]) -> Result<(), ApiError> {
        if draws.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for draw in draws {
            let bucket = buckets.entry(draw.bucket.clone()).or_insert(Bucket {
                rate: draw.rate as f64,
                tokens: draw.rate as f64,
                refilled_at: now,
            });
            bucket.refill(draw.rate, now);
            if bucket.tokens <= 0.0 {
                let wait = Duration::from_secs_f64((-bucket.tokens + 1.0) / bucket.rate.max(1.0));
                return Err(ApiError::new(
                    ErrorCode::TooManyRequests,
                    format!(
                        "{} is over its `{}` quota of {}; retry later",
                        draw.owner, draw.limit_name, draw.rate
                    ),
                )
                .with_detail("limit", draw.limit_name)
                .with_detail("quota", draw.rate)
                .with_retry_after(wait));
            }
        }
        for draw in draws {
            if let Some(bucket) = buckets.get_mut(&draw.bucket) {
                bucket.tokens -= draw.amount as f64;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(bucket: &str, rate: u64, amount: u64) -> Draw<'static> {
        Draw {
            bucket: bucket.into(),
            rate,
            amount,
            limit_name: "ingest_records_per_s",
            owner: format!("bucket {bucket}"),
        }
    }

    #[test]
    fn a_big_draw_passes_once_then_the_bucket_is_in_debt() {
        let quotas = RateQuotas::default();
        quotas.take(&[draw("a", 100, 1000)]).expect("first passes");
        let refused = quotas.take(&[draw("a", 100, 1)]).expect_err("in debt");
        assert_eq!(refused.code, ErrorCode::TooManyRequests);
        let wait = refused.retry_after.expect("retry after");
        assert!(wait >= Duration::from_secs(8), "{wait:?}");
    }

    #[test]
    fn nothing_is_taken_when_one_bucket_is_empty() {
        let quotas = RateQuotas::default();
        quotas.take(&[draw("tenant", 10, 20)]).expect("first");
        assert!(quotas
            .take(&[draw("project", 1000, 5), draw("tenant", 10, 5)])
            .is_err());
        // The project bucket kept its tokens: 1000 draws of 1 still fit.
        let buckets = quotas.buckets.lock().expect("lock");
        assert!(buckets["project"].tokens >= 999.0);
    }
}
