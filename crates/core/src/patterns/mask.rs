//! Splits a log line into tokens and masks the ones that are variables.
//!
//! The rules are generic, with no per-source configuration: anything that
//! carries a digit (numbers, hex ids, IPs, UUIDs, durations, sizes, dates), a
//! quoted string, a path, a URL or an e-mail address is a variable, and a
//! `key=value` or `key:value` token keeps its key and masks its value. A
//! masked token is the wildcard [`WILDCARD`] (or `key=<*>`), so two lines that
//! differ only in variables give the same token sequence.

/// The marker of a variable position in a template.
pub const WILDCARD: &str = "<*>";

/// At most this many tokens of a line are mined; the rest of a longer line is
/// one trailing wildcard, so a template's size is bounded whatever the input.
pub const MAX_TOKENS: usize = 80;

/// Splits `line` on whitespace and masks variable tokens.
pub fn masked_tokens(line: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for (index, raw) in line.split_whitespace().enumerate() {
        if index + 1 == MAX_TOKENS {
            tokens.push(WILDCARD.to_owned());
            break;
        }
        tokens.push(mask_token(raw));
    }
    tokens
}

/// The template common to `lines`: their masked tokens, with every position
/// where lines of the most frequent token count disagree made a wildcard. How a
/// pattern's template is read back from sample records of it.
pub fn common_template<'a>(lines: impl IntoIterator<Item = &'a str>) -> String {
    let mut by_len: std::collections::BTreeMap<usize, (usize, Vec<String>)> =
        std::collections::BTreeMap::new();
    for line in lines {
        let tokens = masked_tokens(line);
        match by_len.get_mut(&tokens.len()) {
            Some((seen, template)) => {
                *seen += 1;
                for (kept, token) in template.iter_mut().zip(&tokens) {
                    if kept != token {
                        *kept = WILDCARD.to_owned();
                    }
                }
            }
            None => {
                by_len.insert(tokens.len(), (1, tokens));
            }
        }
    }
    by_len
        .into_values()
        .max_by_key(|(seen, _)| *seen)
        .map(|(_, template)| template.join(" "))
        .unwrap_or_default()
}

/// The masked form of one whitespace-free token.
pub fn mask_token(token: &str) -> String {
    // Punctuation around a value (`(uid=0)`, `[10.0.0.1]`, `'x',`) stays, so the
    // template keeps the shape of the line.
    let (lead, core, trail) = split_wrapping(token);
    if core.is_empty() {
        return token.to_owned();
    }
    if core.contains("://") {
        return format!("{lead}{WILDCARD}{trail}");
    }
    if let Some((key, value)) = split_key_value(core) {
        if !value.is_empty() && is_variable_value(value) {
            return format!("{lead}{key}{WILDCARD}{trail}");
        }
        return token.to_owned();
    }
    if is_variable(core) || is_calendar_name(core) {
        return format!("{lead}{WILDCARD}{trail}");
    }
    token.to_owned()
}

/// Splits leading and trailing brackets, quotes of unbalanced kind and
/// sentence punctuation off a token.
fn split_wrapping(token: &str) -> (&str, &str, &str) {
    const LEAD: &[char] = &['(', '[', '{', '<', '"', '\''];
    const TRAIL: &[char] = &[')', ']', '}', '>', ',', ';', '.', ':', '"', '\'', '!', '?'];
    let core_start = token.len() - token.trim_start_matches(LEAD).len();
    let rest = &token[core_start..];
    let core_len = rest.trim_end_matches(TRAIL).len();
    // A quoted string keeps its quotes in the core so it is recognised as one.
    let lead = &token[..core_start];
    let core = &rest[..core_len];
    let trail = &rest[core_len..];
    if (lead.ends_with('"') && trail.starts_with('"'))
        || (lead.ends_with('\'') && trail.starts_with('\''))
    {
        return (
            &lead[..lead.len() - 1],
            &token[lead.len() - 1..token.len() - trail.len() + 1],
            &trail[1..],
        );
    }
    (lead, core, trail)
}

/// Whether a whole (unwrapped) token is a variable.
fn is_variable(core: &str) -> bool {
    let bytes = core.as_bytes();
    if bytes.iter().any(u8::is_ascii_digit) {
        return true;
    }
    let quoted = bytes.len() >= 2
        && ((bytes[0] == b'"' && bytes[bytes.len() - 1] == b'"')
            || (bytes[0] == b'\'' && bytes[bytes.len() - 1] == b'\''));
    if quoted {
        return true;
    }
    is_path(core) || core.contains("://") || is_email(core) || is_long_hex(core)
}

/// Whether the value half of a `key=value` token is a variable: any value that
/// is not a bare lowercase word, since flags like `=true` name a kind of line.
fn is_variable_value(value: &str) -> bool {
    is_variable(value) || value.chars().any(|c| !c.is_ascii_alphabetic())
}

/// `key=value` or `key:value` with an identifier-like key.
fn split_key_value(core: &str) -> Option<(&str, &str)> {
    let split_at = core.find(['=', ':'])?;
    let key = &core[..=split_at];
    let name = &key[..key.len() - 1];
    let identifier = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    identifier.then(|| (key, &core[split_at + 1..]))
}

fn is_path(core: &str) -> bool {
    let slashes = core.bytes().filter(|b| *b == b'/').count();
    (core.starts_with('/') && core.len() > 1 && slashes >= 1 && !core[1..].starts_with('/'))
        && (slashes >= 2 || core.contains('.'))
        || core.starts_with("~/")
        || core.starts_with("./")
}

fn is_email(core: &str) -> bool {
    match core.split_once('@') {
        Some((user, host)) => !user.is_empty() && host.contains('.'),
        None => false,
    }
}

/// Month and weekday names are parts of a date, a variable like its digits.
fn is_calendar_name(core: &str) -> bool {
    const NAMES: [&str; 19] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Mon",
        "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
    ];
    NAMES.contains(&core)
}

/// Hex ids without a digit are rare, but a long run of hex letters is one.
fn is_long_hex(core: &str) -> bool {
    core.len() >= 12 && core.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_masks_common_variables() {
        assert_eq!(mask_token("1234"), WILDCARD);
        assert_eq!(mask_token("10.0.0.1:8080"), WILDCARD);
        assert_eq!(mask_token("[10.0.0.1]"), "[<*>]");
        assert_eq!(mask_token("(uid=0)"), "(uid=<*>)");
        assert_eq!(mask_token("rhost=example.org"), "rhost=<*>");
        assert_eq!(mask_token("user=root"), "user=root");
        assert_eq!(mask_token("123e4567-e89b-12d3-a456-426614174000"), WILDCARD);
        assert_eq!(mask_token("/var/log/messages"), WILDCARD);
        assert_eq!(mask_token("'alice'"), WILDCARD);
        assert_eq!(mask_token("\"alice\","), "<*>,");
        assert_eq!(mask_token("250ms"), WILDCARD);
        assert_eq!(mask_token("deadbeefcafe"), WILDCARD);
        assert_eq!(mask_token("https://x.org/a"), WILDCARD);
        assert_eq!(mask_token("bob@example.org"), WILDCARD);
        assert_eq!(mask_token("failed"), "failed");
        assert_eq!(mask_token("[preauth]"), "[preauth]");
    }

    #[test]
    fn test_common_template_marks_disagreeing_positions() {
        let lines = ["job alpha done in 5ms", "job beta done in 7ms", "other"];
        assert_eq!(common_template(lines), "job <*> done in <*>");
        assert_eq!(common_template([]), "");
    }

    #[test]
    fn test_long_lines_end_in_one_wildcard() {
        let line = vec!["word"; 500].join(" ");
        let tokens = masked_tokens(&line);
        assert_eq!(tokens.len(), MAX_TOKENS);
        assert_eq!(tokens.last().map(String::as_str), Some(WILDCARD));
    }
}
