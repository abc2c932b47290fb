//! Automatic histogram intervals: the smallest "round" width that keeps the number
//! of buckets within the limit. Neighbouring widths differ by at most 2.5 times, so a
//! limit of 120 gives 48 to 120 buckets for any span of at least 30 round steps
//! (from 300 ms up to years); shorter spans get fewer, never less than one.

const MILLISECOND: i64 = 1_000_000;
const SECOND: i64 = 1_000_000_000;
const DAY: i64 = 86_400 * SECOND;

/// Round widths, smallest first.
const STEPS: [i64; 32] = [
    MILLISECOND,
    2 * MILLISECOND,
    5 * MILLISECOND,
    10 * MILLISECOND,
    20 * MILLISECOND,
    50 * MILLISECOND,
    100 * MILLISECOND,
    200 * MILLISECOND,
    500 * MILLISECOND,
    SECOND,
    2 * SECOND,
    5 * SECOND,
    10 * SECOND,
    20 * SECOND,
    30 * SECOND,
    60 * SECOND,
    2 * 60 * SECOND,
    5 * 60 * SECOND,
    10 * 60 * SECOND,
    20 * 60 * SECOND,
    30 * 60 * SECOND,
    3_600 * SECOND,
    2 * 3_600 * SECOND,
    3 * 3_600 * SECOND,
    6 * 3_600 * SECOND,
    12 * 3_600 * SECOND,
    DAY,
    2 * DAY,
    5 * DAY,
    10 * DAY,
    20 * DAY,
    50 * DAY,
];

/// Returns the interval for a span of `span_ns` with at most `max_buckets` buckets.
pub fn auto_interval(span_ns: i64, max_buckets: i64) -> i64 {
    let max_buckets = max_buckets.max(1);
    for step in STEPS {
        if buckets_needed(span_ns, step) <= max_buckets {
            return step;
        }
    }
    // Beyond the table: whole multiples of 100 days.
    let step = 100 * DAY;
    let steps = (span_ns / step / max_buckets).max(1) + 1;
    steps.saturating_mul(step)
}

/// Buckets touched by a span that may start anywhere inside a bucket.
pub fn buckets_needed(span_ns: i64, interval_ns: i64) -> i64 {
    span_ns.div_euclid(interval_ns.max(1)) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_auto_interval_stays_within_limit() {
        for span in [1, SECOND, 15 * 60 * SECOND, DAY, 400 * DAY, 40 * 365 * DAY] {
            let interval = auto_interval(span, 120);
            assert!(
                buckets_needed(span, interval) <= 120,
                "span {span} interval {interval}"
            );
        }
        assert_eq!(auto_interval(15 * 60 * SECOND, 120), 10 * SECOND);
    }

    #[test]
    fn test_auto_interval_gives_30_to_120_buckets() {
        // Spans from 300 ms to 15 years, in uneven steps so no span is a round number.
        let mut span = 300 * MILLISECOND;
        let mut checked = 0;
        while span < 15 * 365 * DAY {
            let interval = auto_interval(span, 120);
            let buckets = span / interval;
            assert!(
                (30..=120).contains(&buckets),
                "span {span} ns gives {buckets} buckets of {interval} ns"
            );
            span = span / 10 * 13;
            checked += 1;
        }
        assert!(checked > 50);
    }
}
