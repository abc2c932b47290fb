//! The accepted event-time window of a pool.
//!
//! Every event time opens (or reopens) the index partition of its UTC day, so an
//! unbounded range of times in one request means an unbounded number of partitions.
//! A record is accepted when its time is no older than the pool's maximum age (by
//! default its retention: anything older would be deleted at the next retention run)
//! and no further ahead than the maximum lead (by default one day, for clock skew).
//! A record outside the window is refused on its own, with the reason, and the rest
//! of its request is stored (see `docs/api.md`).

use serde::{Deserialize, Serialize};

use crate::limits::IngestLimits;

const NS_PER_SECOND: i64 = 1_000_000_000;
const NS_PER_DAY: i64 = 86_400 * NS_PER_SECOND;

/// Refused records listed by name in one answer; the rest are only counted, so the
/// answer to a large request stays small.
pub const MAX_LISTED_REFUSALS: usize = 100;

/// A pool's own event-time settings; `None` follows the global setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventWindowOverride {
    /// Oldest accepted event time, in days before arrival (at most the retention).
    pub max_event_age_days: Option<u32>,
    /// Furthest accepted event time, in seconds after arrival.
    pub max_event_future_secs: Option<u32>,
}

/// The event times a request accepts: `[oldest_ns, newest_ns]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTimeWindow {
    /// Oldest accepted event time.
    pub oldest_ns: i64,
    /// Newest accepted event time.
    pub newest_ns: i64,
    /// Days of age the window allows (for the refusal message).
    pub max_age_days: u32,
    /// Seconds of lead the window allows (for the refusal message).
    pub max_future_secs: u32,
}

impl EventTimeWindow {
    /// A window that accepts every time: for callers that do not store by day.
    pub const UNBOUNDED: EventTimeWindow = EventTimeWindow {
        oldest_ns: i64::MIN,
        newest_ns: i64::MAX,
        max_age_days: u32::MAX,
        max_future_secs: u32::MAX,
    };

    /// The window of a pool with `retention_days` and its own settings, for a
    /// request that arrived at `arrival_ns`. The pool's setting wins over the
    /// global one; the age never exceeds the retention.
    pub fn for_pool(
        limits: &IngestLimits,
        pool: &EventWindowOverride,
        retention_days: u32,
        arrival_ns: i64,
    ) -> EventTimeWindow {
        let max_age_days = pool
            .max_event_age_days
            .or(limits.max_event_age_days)
            .unwrap_or(retention_days)
            .min(retention_days);
        let max_future_secs = pool
            .max_event_future_secs
            .unwrap_or(limits.max_event_future_secs);
        EventTimeWindow {
            oldest_ns: arrival_ns
                .saturating_sub(i64::from(max_age_days).saturating_mul(NS_PER_DAY)),
            newest_ns: arrival_ns
                .saturating_add(i64::from(max_future_secs).saturating_mul(NS_PER_SECOND)),
            max_age_days,
            max_future_secs,
        }
    }

    /// Why `time_ns` is outside the window, or `None` when it is inside.
    pub fn refusal(&self, time_ns: i64) -> Option<(&'static str, String)> {
        if time_ns < self.oldest_ns {
            Some((
                "max_event_age_days",
                format!(
                    "event time {} is older than the accepted window of {} days (oldest accepted: {})",
                    format_ns(time_ns),
                    self.max_age_days,
                    format_ns(self.oldest_ns)
                ),
            ))
        } else if time_ns > self.newest_ns {
            Some((
                "max_event_future_secs",
                format!(
                    "event time {} is more than {} seconds ahead of the server's clock (newest accepted: {})",
                    format_ns(time_ns),
                    self.max_future_secs,
                    format_ns(self.newest_ns)
                ),
            ))
        } else {
            None
        }
    }
}

/// One record refused for its event time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedRecord {
    /// Where it was: `logs[3]` or `line 7`.
    pub path: String,
    /// The limit it broke: `max_event_age_days` or `max_event_future_secs`.
    pub limit: String,
    /// Why, with the time and the window.
    pub reason: String,
}

/// The records of one request refused for their event time: all counted, the first
/// [`MAX_LISTED_REFUSALS`] listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refusals {
    /// How many records were refused.
    pub count: usize,
    /// The first ones, in request order.
    pub listed: Vec<RefusedRecord>,
}

impl Refusals {
    pub(crate) fn push(&mut self, path: impl FnOnce() -> String, limit: &str, reason: String) {
        self.count += 1;
        if self.listed.len() < MAX_LISTED_REFUSALS {
            self.listed.push(RefusedRecord {
                path: path(),
                limit: limit.to_string(),
                reason,
            });
        }
    }
}

/// RFC 3339 text of a time, or the raw nanoseconds when it is outside the calendar.
fn format_ns(time_ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(time_ns))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{time_ns} ns since the epoch"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000 * NS_PER_SECOND;

    #[test]
    fn test_defaults_follow_retention_and_one_day_ahead() {
        let window =
            EventTimeWindow::for_pool(&IngestLimits::default(), &Default::default(), 7, NOW);
        assert_eq!(window.oldest_ns, NOW - 7 * NS_PER_DAY);
        assert_eq!(window.newest_ns, NOW + NS_PER_DAY);
        assert!(window.refusal(NOW - 7 * NS_PER_DAY).is_none());
        assert_eq!(
            window.refusal(NOW - 7 * NS_PER_DAY - 1).map(|r| r.0),
            Some("max_event_age_days")
        );
        assert_eq!(
            window.refusal(NOW + NS_PER_DAY + 1).map(|r| r.0),
            Some("max_event_future_secs")
        );
        assert!(window.refusal(i64::MIN).is_some() && window.refusal(i64::MAX).is_some());
    }

    #[test]
    fn test_pool_setting_wins_and_age_never_exceeds_retention() {
        let limits = IngestLimits {
            max_event_age_days: Some(3),
            max_event_future_secs: 60,
            ..IngestLimits::default()
        };
        let global = EventTimeWindow::for_pool(&limits, &Default::default(), 30, NOW);
        assert_eq!(global.oldest_ns, NOW - 3 * NS_PER_DAY);
        assert_eq!(global.newest_ns, NOW + 60 * NS_PER_SECOND);
        let pool = EventWindowOverride {
            max_event_age_days: Some(400),
            max_event_future_secs: Some(0),
        };
        let own = EventTimeWindow::for_pool(&limits, &pool, 30, NOW);
        assert_eq!(own.oldest_ns, NOW - 30 * NS_PER_DAY, "clamped to retention");
        assert_eq!(own.newest_ns, NOW);
    }

    #[test]
    fn test_refusals_count_all_and_list_a_bounded_number() {
        let mut refusals = Refusals::default();
        for i in 0..MAX_LISTED_REFUSALS + 5 {
            refusals.push(|| format!("line {i}"), "max_event_age_days", String::new());
        }
        assert_eq!(refusals.count, MAX_LISTED_REFUSALS + 5);
        assert_eq!(refusals.listed.len(), MAX_LISTED_REFUSALS);
    }
}
