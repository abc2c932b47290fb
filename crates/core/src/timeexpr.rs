//! Time expressions for `from` and `to`: `now`, relative offsets like `-15m` or
//! `now-2h`, RFC 3339 text, and epoch milliseconds.

/// Parses a time expression relative to `now_ns`.
///
/// Plain integers are epoch milliseconds, as in Elasticsearch's `epoch_millis`.
///
/// # Errors
/// Returns a message listing the accepted forms.
pub fn parse_time_expr(expr: &str, now_ns: i64) -> Result<i64, String> {
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
}
