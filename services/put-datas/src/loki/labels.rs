//! Loki's label text, `{name="value", other="v\"q"}` (PromQL selector syntax, `=`
//! only, Go string escapes in values).

/// Parses a stream's label text.
///
/// # Errors
/// What is wrong and where (byte offset).
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let trimmed = text.trim();
    let inner = trimmed
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .ok_or_else(|| format!("labels `{}` are not enclosed in `{{}}`", shorten(text)))?;
    let mut labels = Vec::new();
    let mut chars = inner.char_indices().peekable();
    loop {
        while chars
            .next_if(|(_, c)| c.is_whitespace() || *c == ',')
            .is_some()
        {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut name = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| c.is_ascii_alphanumeric() || *c == '_') {
            name.push(c);
        }
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!(
                "a label name is expected at offset {start} of `{}`",
                shorten(text)
            ));
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.next().map(|(_, c)| c) != Some('=') {
            return Err(format!("`=` is expected after label `{name}`"));
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err(format!(
                "the value of label `{name}` must be a quoted string"
            ));
        }
        let mut value = String::new();
        loop {
            match chars.next().map(|(_, c)| c) {
                None => return Err(format!("the value of label `{name}` is not closed")),
                Some('"') => break,
                Some('\\') => match chars.next().map(|(_, c)| c) {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('r') => value.push('\r'),
                    Some(c @ ('\\' | '"' | '\'')) => value.push(c),
                    _ => return Err(format!("bad escape in the value of label `{name}`")),
                },
                Some(c) => value.push(c),
            }
        }
        labels.push((name, value));
    }
    Ok(labels)
}

fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parses_loki_label_text() {
        assert_eq!(
            parse(r#"{job="web", host="a\"b", empty=""}"#).expect("labels"),
            vec![
                ("job".to_string(), "web".to_string()),
                ("host".to_string(), "a\"b".to_string()),
                ("empty".to_string(), String::new()),
            ]
        );
        assert_eq!(parse("{}").expect("none"), vec![]);
        assert!(parse(r#"job="web""#).is_err());
        assert!(parse(r#"{job=web}"#).expect_err("unquoted").contains("job"));
        assert!(parse(r#"{job="web}"#).is_err());
        assert!(parse(r#"{1x="a"}"#).is_err());
    }
}
