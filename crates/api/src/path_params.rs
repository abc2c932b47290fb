//! Checks of every path parameter, by its name, before any handler runs: a value
//! that cannot be a name, an id or a shard number is refused with a 400 that names
//! the parameter, so no handler ever builds a key, a query or a file name from it.
//!
//! The names are those of the route templates of every service (`{tenant}`,
//! `{project}`, `{pool}`, `{group}`, `{shard}`, `{id}`); a handler may check an id
//! further against its own format (a restore id, a record id).

use logpool_core::names::validate_name;

use crate::error::ApiError;

/// Longest `{id}` (key ids, record ids and restore ids are all far shorter).
pub const MAX_ID_CHARS: usize = 64;
/// Longest value of a parameter with no rule of its own.
pub const MAX_OTHER_CHARS: usize = 128;
/// Most characters of a refused value repeated in the message.
const ECHO_CHARS: usize = 64;

/// Checks each `(name, value)` path parameter.
///
/// # Errors
/// A 400 naming the first parameter that breaks its rule, with the rule.
pub fn check(params: &[(String, String)]) -> Result<(), ApiError> {
    for (name, value) in params {
        check_one(name, value).map_err(|rule| {
            ApiError::bad_request(format!(
                "path parameter `{name}` {rule}, got `{}`",
                echo(value)
            ))
            // `field` as for every other 400 naming its cause; `parameter` says
            // where it is.
            .with_detail("field", name.as_str())
            .with_detail("parameter", name.as_str())
        })?;
    }
    Ok(())
}

fn check_one(name: &str, value: &str) -> Result<(), String> {
    match name {
        "tenant" | "project" | "pool" | "group" => validate_name(value).map_err(|_| {
            "must be a name of 2 to 63 characters of a-z, 0-9 and `-`, starting with a letter or digit"
                .to_string()
        }),
        "shard" => {
            let digits = !value.is_empty() && value.len() <= 10;
            if digits && value.bytes().all(|b| b.is_ascii_digit()) {
                Ok(())
            } else {
                Err("must be a shard number".to_string())
            }
        }
        "id" => {
            let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
            if (1..=MAX_ID_CHARS).contains(&value.len()) && value.bytes().all(allowed) {
                Ok(())
            } else {
                Err(format!(
                    "must be 1 to {MAX_ID_CHARS} characters of a-z, A-Z, 0-9, `-` and `_`"
                ))
            }
        }
        _ => {
            let printable = value.chars().all(|c| !c.is_control() && c != '/');
            if (1..=MAX_OTHER_CHARS).contains(&value.chars().count())
                && printable
                && !value.contains("..")
            {
                Ok(())
            } else {
                Err(format!(
                    "must be 1 to {MAX_OTHER_CHARS} printable characters without `/` or `..`"
                ))
            }
        }
    }
}

/// The start of a refused value, with control characters escaped, for the message.
fn echo(value: &str) -> String {
    let escaped: String = value.escape_debug().collect();
    if escaped.chars().count() <= ECHO_CHARS {
        return escaped;
    }
    let mut cut: String = escaped.chars().take(ECHO_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn well_formed_parameters_pass() {
        let ok = params(&[
            ("tenant", "default"),
            ("project", "shop"),
            ("pool", "web-1"),
            ("group", "readers"),
            ("shard", "0"),
            ("id", "0123456789abcdef"),
        ]);
        assert!(check(&ok).is_ok());
        for id in ["bootstrap", "7-0-17-3"] {
            assert!(check(&params(&[("id", id)])).is_ok(), "{id}");
        }
    }

    #[test]
    fn hostile_values_are_refused_with_the_parameter_named() {
        let long = "a".repeat(200);
        for (name, value) in [
            ("id", ".."),
            ("id", "../../etc/passwd"),
            ("id", "abc\0def"),
            ("id", ""),
            ("id", long.as_str()),
            ("project", "Shop"),
            ("project", ".."),
            ("pool", "a\0"),
            ("tenant", "a/b"),
            ("group", "x"),
            ("shard", "-1"),
            ("shard", "99999999999"),
            ("shard", "1e3"),
            ("other", "a/../b"),
            ("other", "\u{7}"),
        ] {
            let error = check(&params(&[("project", "shop"), (name, value)]))
                .expect_err(&format!("{name}={value:?}"));
            assert_eq!(error.code, ErrorCode::BadRequest);
            assert_eq!(
                error.details.get("parameter"),
                Some(&serde_json::Value::from(name))
            );
            assert!(!error.message.contains('\0'), "{}", error.message);
            assert!(error.message.chars().count() < 300, "{}", error.message);
        }
    }
}
