//! Where the engine servers of the integration tests are.
//!
//! `./scripts/test-all.sh` starts the servers and exports `LOGPOOL_TEST_*` variables
//! together with `LOGPOOL_REQUIRE_ENGINES=1`. A bare `cargo test` without servers
//! skips those tests, visibly; with `LOGPOOL_REQUIRE_ENGINES` set a missing variable
//! fails the test, so CI can never pass by skipping.

// Each helper serves some engines' tests; a build with only some engine features
// leaves the others unused.
#![allow(dead_code)]

/// Returns the value of `variable`, or `None` (after saying so) when the test must
/// be skipped.
///
/// # Panics
/// When the variable is missing and `LOGPOOL_REQUIRE_ENGINES` is set.
pub(crate) fn engine_address(variable: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var_os("LOGPOOL_REQUIRE_ENGINES").is_some() => {
            panic!("{variable} is not set but LOGPOOL_REQUIRE_ENGINES is: start the engines with scripts/test-engines.sh")
        }
        _ => {
            eprintln!("SKIPPED: {variable} is not set; run ./scripts/test-all.sh to test against the real server");
            None
        }
    }
}

/// A random suffix for names that tests share a server with.
pub(crate) fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", std::process::id(), nanos)
}
