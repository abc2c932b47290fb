//! RFC 5424 messages: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]`,
//! `-` standing for an absent value.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::message::{Priority, SdElement, SyslogMessage};

/// Longest SD-ID and PARAM-NAME (RFC 5424 section 6).
const MAX_SD_NAME: usize = 32;

/// Whether the text after `<PRI>` starts an RFC 5424 header (a version and a space).
pub fn is_rfc5424(after_priority: &str) -> bool {
    let digits = after_priority
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    (1..=2).contains(&digits)
        && !after_priority.starts_with('0')
        && after_priority.as_bytes().get(digits) == Some(&b' ')
}

/// Parses what follows `<PRI>` in an RFC 5424 message.
///
/// # Errors
/// The first part that does not follow the RFC.
pub fn parse(priority: Priority, after_priority: &str) -> Result<SyslogMessage, String> {
    let mut rest = after_priority;
    let version = next_token(&mut rest);
    if version != "1" {
        return Err(format!("RFC 5424 version `{version}` is not 1"));
    }
    let timestamp = next_token(&mut rest);
    let time_ns = match timestamp {
        "-" => None,
        text => Some(parse_timestamp(text)?),
    };
    let mut header = [None, None, None, None];
    for (value, name) in header
        .iter_mut()
        .zip(["HOSTNAME", "APP-NAME", "PROCID", "MSGID"])
    {
        let token = next_token(&mut rest);
        if token.is_empty() {
            return Err(format!("RFC 5424 header ends before {name}"));
        }
        *value = (token != "-").then(|| token.to_string());
    }
    let [hostname, app_name, procid, msgid] = header;
    let (structured_data, after_sd) = parse_structured_data(rest)?;
    let message = match after_sd {
        "" => "",
        text => text
            .strip_prefix(' ')
            .ok_or_else(|| "no space between STRUCTURED-DATA and MSG".to_string())?,
    };
    // A UTF-8 MSG may start with a byte order mark (RFC 5424 6.4); it is no text.
    let message = message.strip_prefix('\u{feff}').unwrap_or(message);
    Ok(SyslogMessage {
        priority: Some(priority),
        time_ns,
        hostname,
        app_name,
        procid,
        msgid,
        structured_data,
        message: message.to_string(),
    })
}

/// The text up to the next space, consumed with that space.
fn next_token<'a>(rest: &mut &'a str) -> &'a str {
    match rest.split_once(' ') {
        Some((token, after)) => {
            *rest = after;
            token
        }
        None => std::mem::take(rest),
    }
}

/// An RFC 3339 timestamp as nanoseconds since the epoch.
pub(super) fn parse_timestamp(text: &str) -> Result<i64, String> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| format!("TIMESTAMP `{}` is not RFC 3339 ({e})", text.escape_debug()))?;
    i64::try_from(parsed.unix_timestamp_nanos())
        .map_err(|_| format!("TIMESTAMP `{text}` is out of range"))
}

/// STRUCTURED-DATA (`-` or one or more `[id param="value" ...]`) and what follows.
fn parse_structured_data(text: &str) -> Result<(Vec<SdElement>, &str), String> {
    if let Some(rest) = text.strip_prefix('-') {
        return Ok((Vec::new(), rest));
    }
    if !text.starts_with('[') {
        return Err("STRUCTURED-DATA is neither `-` nor `[...]`".to_string());
    }
    let mut elements = Vec::new();
    let mut rest = text;
    while let Some(after_bracket) = rest.strip_prefix('[') {
        let (element, after) = parse_element(after_bracket)?;
        elements.push(element);
        rest = after;
    }
    Ok((elements, rest))
}

/// One element after its `[`; gives it and the text after its `]`.
fn parse_element(text: &str) -> Result<(SdElement, &str), String> {
    let (id, mut rest) = sd_name(text, "SD-ID")?;
    let mut params = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix(']') {
            return Ok((SdElement { id, params }, after));
        }
        rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| format!("SD element `{id}`: expected a space or `]`"))?;
        let (name, after_name) = sd_name(rest, "PARAM-NAME")?;
        let after_quote = after_name
            .strip_prefix("=\"")
            .ok_or_else(|| format!("SD-PARAM `{name}`: expected `=\"`"))?;
        let (value, after_value) = param_value(after_quote)
            .ok_or_else(|| format!("SD-PARAM `{name}`: the value has no closing `\"`"))?;
        params.push((name, value));
        rest = after_value;
    }
}

/// An SD-ID or PARAM-NAME: 1 to 32 printable ASCII characters but `=`, space, `]`
/// and `"`; also a field name part, so no leading, trailing or double dot.
fn sd_name<'a>(text: &'a str, what: &str) -> Result<(String, &'a str), String> {
    let end = text
        .bytes()
        .position(|b| matches!(b, b'=' | b' ' | b']' | b'"') || !(33..=126).contains(&b))
        .unwrap_or(text.len());
    let name = &text[..end];
    if name.is_empty() || name.len() > MAX_SD_NAME {
        return Err(format!("{what} must have 1 to {MAX_SD_NAME} characters"));
    }
    if name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return Err(format!("{what} `{name}` has an empty dotted part"));
    }
    Ok((name.to_string(), &text[end..]))
}

/// A PARAM-VALUE after its opening quote, with `\"`, `\\` and `\]` unescaped (any
/// other backslash is kept, as RFC 5424 6.3.3 asks); gives it and the text after the
/// closing quote.
fn param_value(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[index + 1..])),
            '\\' => match chars.clone().next() {
                Some((_, escaped @ ('"' | '\\' | ']'))) => {
                    value.push(escaped);
                    chars.next();
                }
                _ => value.push('\\'),
            },
            other => value.push(other),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::message::split_priority;
    use super::*;

    fn parsed(line: &str) -> Result<SyslogMessage, String> {
        let (priority, rest) = split_priority(line)?;
        assert!(is_rfc5424(rest), "{line}");
        parse(priority, rest)
    }

    #[test]
    fn test_rfc5424_examples() {
        // RFC 5424 6.5, example 1 (with its BOM).
        let one = parsed(
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{feff}'su root' failed for lonvick on /dev/pts/8",
        )
        .expect("example 1");
        assert_eq!(
            one.priority.map(|p| (p.facility_name(), p.severity_name())),
            Some(("auth", "crit"))
        );
        assert_eq!(one.time_ns, Some(1_065_910_455_003_000_000));
        assert_eq!(one.hostname.as_deref(), Some("mymachine.example.com"));
        assert_eq!(one.app_name.as_deref(), Some("su"));
        assert_eq!(one.procid, None);
        assert_eq!(one.msgid.as_deref(), Some("ID47"));
        assert_eq!(one.message, "'su root' failed for lonvick on /dev/pts/8");
        // Example 2: a time zone offset and microseconds.
        let two = parsed(
            "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
        )
        .expect("example 2");
        assert_eq!(two.time_ns, Some(1_061_727_255_000_003_000));
        assert_eq!(two.procid.as_deref(), Some("8710"));
        assert_eq!(two.message, "%% It's time to make the do-nuts.");
        // Example 3: structured data and a message.
        let three = parsed(
            r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry..."#,
        )
        .expect("example 3");
        assert_eq!(three.structured_data.len(), 1);
        assert_eq!(three.structured_data[0].id, "exampleSDID@32473");
        assert_eq!(
            three.structured_data[0].params,
            [
                ("iut".to_string(), "3".to_string()),
                ("eventSource".to_string(), "Application".to_string()),
                ("eventID".to_string(), "1011".to_string()),
            ]
        );
        assert_eq!(three.message, "An application event log entry...");
        // Example 4: two elements and no message.
        let four = parsed(
            r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]"#,
        )
        .expect("example 4");
        assert_eq!(four.structured_data.len(), 2);
        assert_eq!(four.structured_data[1].params[0].1, "high");
        assert_eq!(four.message, "");
    }

    #[test]
    fn test_escapes_nil_values_and_errors() {
        let escaped = parsed(r#"<14>1 - - - - - [a b="q\"uo\]te\\d\n"] m"#).expect("escapes");
        assert_eq!(escaped.time_ns, None);
        assert_eq!(escaped.hostname, None);
        assert_eq!(escaped.structured_data[0].params[0].1, r#"q"uo]te\d\n"#);
        assert_eq!(escaped.message, "m");
        for (bad, why) in [
            ("<14>1 yesterday h a p m - x", "RFC 3339"),
            ("<14>1 - h a p", "MSGID"),
            ("<14>1 - h a p m [id x=1] m", "`=\"`"),
            ("<14>1 - h a p m [id x=\"1] m", "closing"),
            ("<14>1 - h a p m {x}", "STRUCTURED-DATA"),
            ("<14>2 - h a p m - m", "version"),
            ("<14>1 - h a p m [.x] m", "dotted"),
        ] {
            let error = parsed(bad).expect_err(bad);
            assert!(error.contains(why), "{bad}: {error}");
        }
        assert!(!is_rfc5424("Oct 11 22:14:15 host su: x"));
        assert!(!is_rfc5424("123 x"));
    }
}
