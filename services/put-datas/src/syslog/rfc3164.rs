//! RFC 3164 (BSD) messages: `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG`, as
//! loosely as senders write them.
//!
//! The header time (`hh:mm:ss`, or with a fraction of a second as syslog-ng writes
//! it with `frac-digits()`) carries neither year nor time zone. It is read as UTC, in the
//! year of arrival; a time more than a day after arrival is taken from the year
//! before (a December message read in January). Senders that write an RFC 3339
//! time instead (rsyslog's high-precision forward format) keep theirs. A message
//! without a header time has none (it gets its arrival time); one whose header has
//! no tag keeps everything after the hostname as its message.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use super::message::{Priority, SyslogMessage};

/// How far after arrival a header time may lie before it is taken from last year.
const FUTURE_TOLERANCE_NS: i64 = 86_400 * 1_000_000_000;

/// Longest tag taken as one (RFC 3164 says 32; senders write more).
const MAX_TAG: usize = 64;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses what follows `<PRI>` in an RFC 3164 message received at `arrival_ns`.
/// Any text is a message: what is not a header is kept in `message`.
pub fn parse(priority: Priority, after_priority: &str, arrival_ns: i64) -> SyslogMessage {
    let mut message = SyslogMessage {
        priority: Some(priority),
        ..SyslogMessage::default()
    };
    let rest = if let Some((time_ns, rest)) = bsd_timestamp(after_priority, arrival_ns) {
        message.time_ns = Some(time_ns);
        rest
    } else if let Some((time_ns, rest)) = rfc3339_timestamp(after_priority) {
        message.time_ns = Some(time_ns);
        rest
    } else {
        message.message = after_priority.to_string();
        return message;
    };
    let rest = rest.trim_start_matches(' ');
    let (first, after_first) = rest.split_once(' ').unwrap_or((rest, ""));
    let body = if tag(first).is_some() {
        rest
    } else {
        message.hostname = (!first.is_empty()).then(|| first.to_string());
        after_first
    };
    let (word, after_word) = body.split_once(' ').unwrap_or((body, ""));
    match tag(word) {
        Some((app_name, procid)) => {
            message.app_name = Some(app_name.to_string());
            message.procid = procid.map(str::to_string);
            message.message = after_word.to_string();
        }
        None => message.message = body.to_string(),
    }
    message
}

/// `Mmm dd hh:mm:ss ` (the day space-padded or not) as nanoseconds, with the rest.
fn bsd_timestamp(text: &str, arrival_ns: i64) -> Option<(i64, &str)> {
    let month_index = MONTHS.iter().position(|m| text.starts_with(m))?;
    let rest = text.get(3..)?.strip_prefix(' ')?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let (day, rest) = rest.split_once(' ')?;
    let (clock, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let day: u8 = day.parse().ok()?;
    // Seconds may carry a fraction (syslog-ng's `frac-digits()`).
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let nanosecond = fraction_nanos(fraction)?;
    let mut parts = clock.split(':').map(|part| part.parse::<u8>().ok());
    let (Some(Some(hour)), Some(Some(minute)), Some(Some(second)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let month = Month::try_from(month_index as u8 + 1).ok()?;
    let clock = Time::from_hms_nano(hour, minute, second, nanosecond).ok()?;
    let arrival = OffsetDateTime::from_unix_timestamp_nanos(i128::from(arrival_ns)).ok()?;
    let at_year = |year: i32| -> Option<i64> {
        let date = Date::from_calendar_date(year, month, day).ok()?;
        let time = PrimitiveDateTime::new(date, clock).assume_utc();
        i64::try_from(time.unix_timestamp_nanos()).ok()
    };
    // Feb 29 of a year that has none is not a date: the year before may have it.
    let this_year = at_year(arrival.year());
    let time_ns = match this_year {
        Some(time_ns) if time_ns <= arrival_ns.saturating_add(FUTURE_TOLERANCE_NS) => time_ns,
        _ => at_year(arrival.year() - 1)?,
    };
    Some((time_ns, rest))
}

/// Nanoseconds of a fraction's digits (`"25"`: 250 ms); `None` for anything but 0
/// to 9 digits.
fn fraction_nanos(digits: &str) -> Option<u32> {
    if digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u32 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    Some(value * 10u32.pow(9 - digits.len() as u32))
}

/// An RFC 3339 time and a space, as some senders put in an RFC 3164 header.
fn rfc3339_timestamp(text: &str) -> Option<(i64, &str)> {
    if !text.as_bytes().first()?.is_ascii_digit() {
        return None;
    }
    let (stamp, rest) = text.split_once(' ')?;
    Some((super::rfc5424::parse_timestamp(stamp).ok()?, rest))
}

/// A tag word, `name:`, `name[pid]:` or `name[pid]`; gives the name and the pid.
fn tag(word: &str) -> Option<(&str, Option<&str>)> {
    let word = word
        .strip_suffix(':')
        .map_or_else(|| word.ends_with(']').then_some(word), Some)?;
    let (name, procid) = match word.split_once('[') {
        Some((name, pid)) => (name, Some(pid.strip_suffix(']')?)),
        None => (word, None),
    };
    let valid = !name.is_empty()
        && name.len() <= MAX_TAG
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'[' | b']' | b':'));
    valid.then_some((name, procid.filter(|pid| !pid.is_empty())))
}

#[cfg(test)]
mod tests {
    use super::super::message::split_priority;
    use super::*;

    /// 2026-03-10T12:00:00Z.
    const ARRIVAL: i64 = 1_773_144_000 * 1_000_000_000;

    fn parsed(line: &str, arrival_ns: i64) -> SyslogMessage {
        let (priority, rest) = split_priority(line).expect("priority");
        parse(priority, rest, arrival_ns)
    }

    fn utc(text: &str) -> i64 {
        super::super::rfc5424::parse_timestamp(text).expect("time")
    }

    #[test]
    fn test_rfc3164_examples() {
        // RFC 3164 5.4, example 1.
        let one = parsed(
            "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
            ARRIVAL,
        );
        assert_eq!(
            one.priority.map(|p| (p.facility_name(), p.severity_name())),
            Some(("auth", "crit"))
        );
        // October is after arrival in March: last year's.
        assert_eq!(one.time_ns, Some(utc("2025-10-11T22:14:15Z")));
        assert_eq!(one.hostname.as_deref(), Some("mymachine"));
        assert_eq!(one.app_name.as_deref(), Some("su"));
        assert_eq!(one.message, "'su root' failed for lonvick on /dev/pts/8");
        // Example 2: a space-padded day, no tag.
        let two = parsed("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!", ARRIVAL);
        assert_eq!(two.time_ns, Some(utc("2026-02-05T17:32:18Z")));
        assert_eq!(two.hostname.as_deref(), Some("10.0.0.99"));
        assert_eq!(two.app_name, None);
        assert_eq!(two.message, "Use the BFG!");
        // A pid, and no hostname.
        let three = parsed("<30>Mar 10 11:59:00 sshd[4242]: Accepted key", ARRIVAL);
        assert_eq!(three.hostname, None);
        assert_eq!(three.app_name.as_deref(), Some("sshd"));
        assert_eq!(three.procid.as_deref(), Some("4242"));
        assert_eq!(three.message, "Accepted key");
        assert_eq!(
            three
                .priority
                .map(|p| (p.facility_name(), p.severity_name())),
            Some(("daemon", "info"))
        );
    }

    #[test]
    fn test_year_inference_and_other_headers() {
        // Within a day after arrival: this year (clock skew); beyond: last year.
        let skewed = parsed("<13>Mar 10 20:00:00 h app: m", ARRIVAL);
        assert_eq!(skewed.time_ns, Some(utc("2026-03-10T20:00:00Z")));
        let december = parsed("<13>Dec 31 23:59:59 h app: m", utc("2026-01-01T00:00:10Z"));
        assert_eq!(december.time_ns, Some(utc("2025-12-31T23:59:59Z")));
        // Feb 29 in a year without one: the last year that had it.
        let leap = parsed("<13>Feb 29 10:00:00 h app: m", utc("2029-03-01T00:00:00Z"));
        assert_eq!(leap.time_ns, Some(utc("2028-02-29T10:00:00Z")));
        // Neither this year nor the last has the date: no header time.
        let never = parsed("<13>Feb 29 10:00:00 h app: m", utc("2027-03-01T00:00:00Z"));
        assert_eq!(never.time_ns, None);
        assert_eq!(never.message, "Feb 29 10:00:00 h app: m");
        // A fraction of a second, as syslog-ng's `frac-digits(3)` writes it.
        let fraction = parsed("<13>Mar  9 08:00:00.250 h app: m", ARRIVAL);
        assert_eq!(fraction.time_ns, Some(utc("2026-03-09T08:00:00.25Z")));
        assert_eq!(fraction.hostname.as_deref(), Some("h"));
        // An RFC 3339 header time.
        let precise = parsed("<13>2026-03-10T11:00:00.250+01:00 host app[7]: m", ARRIVAL);
        assert_eq!(precise.time_ns, Some(utc("2026-03-10T10:00:00.25Z")));
        assert_eq!(precise.hostname.as_deref(), Some("host"));
        assert_eq!(precise.procid.as_deref(), Some("7"));
        // No header at all: everything is the message, no time.
        let bare = parsed("<13>just text", ARRIVAL);
        assert_eq!(bare.time_ns, None);
        assert_eq!(bare.message, "just text");
    }
}
