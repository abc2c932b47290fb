//! Time expressions for `from` and `to`: `now`, relative offsets like `-15m` or
//! `now-2h`, RFC 3339 text, and epoch milliseconds.

/// The earliest time a request may name: 1823-09-21, half of `i64` nanoseconds
/// before the epoch. Keeping both ends within half the range means `to - from`,
/// bucket rounding and offsets never overflow, wherever a span is computed.
pub const EARLIEST_NS: i64 = -(i64::MAX / 2);
/// The latest time a request may name: 2116-02-20, half of `i64` nanoseconds after
/// the epoch.
pub const LATEST_NS: i64 = i64::MAX / 2;

/// Parses a time expression relative to `now_ns`.
///
/// Plain integers are epoch milliseconds, as in Elasticsearch's `epoch_millis`.
///
/// # Errors
/// Returns a message listing the accepted forms, or naming the range when the time
/// lies outside [`EARLIEST_NS`, `LATEST_NS`].
pub fn parse_time_expr(expr: &str, now_ns: i64) -> Result<i64, String> {
    let time_ns = parse_unbounded(expr, now_ns)?;
    if (EARLIEST_NS..=LATEST_NS).contains(&time_ns) {
        Ok(time_ns)
    } else {
        Err(format!(
            "`{}` is out of range: times must lie between 1823-09-21 and 2116-02-20",
            expr.trim().escape_debug()
        ))
    }
}

fn parse_unbounded(expr: &str, now_ns: i64) -> Result<i64, String> {
    let text = expr.trim();
    if text.is_empty() {
        return Err("empty time expression".to_string());
    }
    if text == "now" {
        return Ok(now_ns);
    }
    let relative = text.strip_prefix("now").unwrap_or(text);
    if let Some(rest) = relative
        .strip_prefix('-')
        .or_else(|| relative.strip_prefix('+'))
    {
        if let Some(offset_ns) = parse_duration_ns(rest) {
            let sign = if relative.starts_with('-') { -1 } else { 1 };
            return Ok(now_ns.saturating_add(sign * offset_ns));
        }
    }
    if let Ok(millis) = text.parse::<i64>() {
        return Ok(millis.saturating_mul(1_000_000));
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos()).ok())
        .ok_or_else(|| {
            format!(
                "`{}` is not a time; use RFC 3339, epoch milliseconds, `now` or a relative offset like `-15m`",
                text.escape_debug()
            )
        })
}

/// Parses `15m`, `2h`, `30s`, `7d`, `1w`, `500ms` into nanoseconds.
pub fn parse_duration_ns(text: &str) -> Option<i64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let amount: i64 = digits.parse().ok()?;
    let unit_ns: i64 = match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        "d" => 86_400 * 1_000_000_000,
        "w" => 7 * 86_400 * 1_000_000_000,
        _ => return None,
    };
    amount.checked_mul(unit_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000_000_000;

    #[test]
    fn test_forms() {
        assert_eq!(parse_time_expr("now", NOW), Ok(NOW));
        assert_eq!(parse_time_expr("-15m", NOW), Ok(NOW - 900_000_000_000));
        assert_eq!(parse_time_expr("now-1h", NOW), Ok(NOW - 3_600_000_000_000));
        assert_eq!(parse_time_expr("now+1d", NOW), Ok(NOW + 86_400_000_000_000));
        assert_eq!(parse_time_expr("1700000000000", NOW), Ok(NOW));
        assert_eq!(parse_time_expr("2023-11-14T22:13:20Z", NOW), Ok(NOW));
        assert!(parse_time_expr("yesterday", NOW).is_err());
        assert!(parse_time_expr("-15y", NOW).is_err());
        assert!(parse_time_expr("", NOW).is_err());
    }

    #[test]
    fn test_times_outside_the_safe_range_are_refused() {
        for far in [
            "-5851314828368225800",
            "9223372036854775807",
            "-15000w",
            "now+15000w",
            "2200-01-01T00:00:00Z",
        ] {
            let error = parse_time_expr(far, NOW).expect_err(far);
            assert!(error.contains("out of range"), "{far}: {error}");
        }
        assert_eq!(parse_time_expr("0", NOW), Ok(0));
        assert!(parse_time_expr("2116-01-01T00:00:00Z", NOW).is_ok());
    }
}
