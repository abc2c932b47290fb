//! The common shape of RFC 3339 times read without the general parser:
//! `YYYY-MM-DDTHH:MM:SS[.fraction]` then `Z` or `±HH:MM`, what shippers send in
//! `@timestamp` on every record. Anything else — another shape, a value out of
//! range, a leap second, more than nine fraction digits — is left to the general
//! parser, which also words the error; where both read a text they agree.

/// The time in nanoseconds since the epoch, or `None` for the general parser.
pub(crate) fn parse_common(text: &str) -> Option<i64> {
    let text = text.as_bytes();
    if text.len() < 20
        || text[4] != b'-'
        || text[7] != b'-'
        || text[10] != b'T'
        || text[13] != b':'
        || text[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (
        digits(text, 0..4)?,
        digits(text, 5..7)?,
        digits(text, 8..10)?,
    );
    let (hour, minute, second) = (
        digits(text, 11..13)?,
        digits(text, 14..16)?,
        digits(text, 17..19)?,
    );
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0;
    if text[at] == b'.' {
        let start = at + 1;
        let end = start
            + text[start..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
        let count = end - start;
        if count == 0 || count > 9 {
            return None;
        }
        nanos = digits(text, start..end)? * 10i64.pow((9 - count) as u32);
        at = end;
    }
    let offset_secs = match &text[at..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (digits(text, at + 1..at + 3)?, digits(text, at + 4..at + 6)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let secs = hours * 3600 + minutes * 60;
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_secs;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// The decimal number of `text[range]`, all digits.
fn digits(text: &[u8], range: std::ops::Range<usize>) -> Option<i64> {
    text.get(range)?.iter().try_fold(0i64, |value, byte| {
        byte.is_ascii_digit()
            .then(|| value * 10 + i64::from(byte - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn general(text: &str) -> Option<i64> {
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .ok()
            .and_then(|time| i64::try_from(time.unix_timestamp_nanos()).ok())
    }

    #[test]
    fn the_common_shape_reads_as_the_general_parser_reads_it() {
        let texts = [
            "2026-12-07T21:26:01Z",
            "2026-12-07T21:26:01.5Z",
            "2023-11-14T22:13:20.000001Z",
            "2023-11-14T22:13:20.123456789Z",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999999999Z",
            "2024-02-29T12:00:00+05:30",
            "2000-03-01T00:00:00-08:00",
            "2100-02-28T23:59:59-00:00",
            "1700-01-01T00:00:00Z",
            "2262-04-11T23:47:16.854775807Z",
        ];
        for text in texts {
            assert_eq!(parse_common(text), general(text), "{text}");
            assert!(parse_common(text).is_some(), "{text} takes the fast path");
        }
    }

    #[test]
    fn other_shapes_and_impossible_dates_go_to_the_general_parser() {
        for text in [
            "2026-12-07 21:26:01Z",
            "2026-12-07t21:26:01z",
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-12-07T24:00:00Z",
            "2026-12-07T23:59:60Z",
            "2026-12-07T21:26:01.Z",
            "2026-12-07T21:26:01.1234567891Z",
            "2026-12-07T21:26:01+2400",
            "2026-12-07T21:26:01+24:00",
            "2026-12-07T21:26:01",
            "2026-12-07T21:26:01Zjunk",
            "1500-01-01T00:00:00Z",
            "2300-01-01T00:00:00Z",
            "1765142761",
            "2026-1２-07T21:26:01Z",
        ] {
            assert_eq!(parse_common(text), None, "{text}");
        }
    }
}
