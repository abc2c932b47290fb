//! Pauses between attempts while an engine keeps failing.
//!
//! When the index (or the queue) is down, every attempt fails the same way; retrying
//! at full speed would only spin the CPU, flood the log and the broker with nacks and
//! redeliveries. The consumer therefore pauses after each failure, doubling the pause
//! up to a ceiling, and starts over after the first success. Messages wait in the
//! queue meanwhile (the backlog grows) and nothing is acked that was not committed.

use std::time::Duration;

/// Capped exponential backoff over consecutive failures.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    consecutive_failures: u32,
}

impl Backoff {
    /// Creates a backoff whose first pause is `first` and whose pauses never exceed `max`.
    pub(crate) fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            consecutive_failures: 0,
        }
    }

    /// Records a failure and returns how long to pause before the next attempt.
    pub(crate) fn on_failure(&mut self) -> Duration {
        let doublings = self.consecutive_failures.min(16);
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.first.saturating_mul(1u32 << doublings).min(self.max)
    }

    /// Records a success: the next failure pauses for the first pause again.
    pub(crate) fn on_success(&mut self) {
        self.consecutive_failures = 0;
    }

    /// Returns how many attempts in a row have failed.
    pub(crate) fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_backoff_doubles_up_to_the_ceiling_and_resets_on_success() {
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(2));
        let pauses: Vec<u128> = (0..6).map(|_| backoff.on_failure().as_millis()).collect();
        assert_eq!(pauses, [250, 500, 1000, 2000, 2000, 2000]);
        assert_eq!(backoff.consecutive_failures(), 6);
        backoff.on_success();
        assert_eq!(backoff.consecutive_failures(), 0);
        assert_eq!(backoff.on_failure(), Duration::from_millis(250));
    }

    #[test]
    fn test_backoff_never_overflows_after_many_failures() {
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(8));
        for _ in 0..10_000 {
            assert!(backoff.on_failure() <= Duration::from_secs(8));
        }
    }
}
