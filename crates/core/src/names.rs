//! Name rules shared by projects and pools.

/// Maximum length of a project or pool name.
pub const MAX_NAME_LEN: usize = 63;

/// Checks a project or pool name against `[a-z0-9][a-z0-9-]{1,62}`.
///
/// # Errors
/// Returns a message that says which rule the name broke.
pub fn validate_name(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if !(2..=MAX_NAME_LEN).contains(&len) {
        return Err(format!(
            "name `{}` must be 2 to {MAX_NAME_LEN} characters long, got {len}",
            name.escape_debug()
        ));
    }
    let mut chars = name.chars();
    let first = chars.next().unwrap_or('-');
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(format!(
            "name `{}` must start with a lowercase letter or digit",
            name.escape_debug()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "name `{}` contains `{}`; only a-z, 0-9 and `-` are allowed",
            name.escape_debug(),
            bad.escape_debug()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_valid_names() {
        for name in ["web", "a1", "nginx-access", "0abc", &"a".repeat(63)] {
            assert!(validate_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn test_invalid_names() {
        for name in [
            "",
            "a",
            "-ab",
            "Web",
            "a_b",
            "a b",
            "ab/",
            &"a".repeat(64),
            "é1",
        ] {
            assert!(validate_name(name).is_err(), "{name}");
        }
    }
}
