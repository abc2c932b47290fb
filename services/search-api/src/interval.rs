//! Automatic histogram intervals: the smallest "round" width that keeps the number
//! of buckets within the limit.

const SECOND: i64 = 1_000_000_000;

/// Round widths, smallest first.
const STEPS: [i64; 21] = [
    SECOND,
    2 * SECOND,
    5 * SECOND,
    10 * SECOND,
    15 * SECOND,
    30 * SECOND,
    60 * SECOND,
    2 * 60 * SECOND,
    5 * 60 * SECOND,
    10 * 60 * SECOND,
    15 * 60 * SECOND,
    30 * 60 * SECOND,
    3_600 * SECOND,
    2 * 3_600 * SECOND,
    3 * 3_600 * SECOND,
    6 * 3_600 * SECOND,
    12 * 3_600 * SECOND,
    86_400 * SECOND,
    2 * 86_400 * SECOND,
    7 * 86_400 * SECOND,
    30 * 86_400 * SECOND,
];

/// Returns the interval for a span of `span_ns` with at most `max_buckets` buckets.
pub fn auto_interval(span_ns: i64, max_buckets: i64) -> i64 {
    let max_buckets = max_buckets.max(1);
    for step in STEPS {
        if buckets_needed(span_ns, step) <= max_buckets {
            return step;
        }
    }
    // Beyond 30-day buckets: whole multiples of 30 days.
    let month = 30 * 86_400 * SECOND;
    let months = (span_ns / month / max_buckets).max(1) + 1;
    months.saturating_mul(month)
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
        for span in [
            1,
            SECOND,
            15 * 60 * SECOND,
            86_400 * SECOND,
            400 * 86_400 * SECOND,
            40 * 365 * 86_400 * SECOND,
        ] {
            let interval = auto_interval(span, 120);
            assert!(
                buckets_needed(span, interval) <= 120,
                "span {span} interval {interval}"
            );
        }
        assert_eq!(auto_interval(15 * 60 * SECOND, 120), 10 * SECOND);
    }
}
