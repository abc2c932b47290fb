//! What the console's browser walkthrough (tests/console/e2e.mjs) must have done,
//! checked the same way wherever it runs (standalone, or behind the gateway); and
//! the prerequisites, runner and checks every browser test in tests/console shares.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ADMIN_KEY;

/// The walkthrough's directory (its script and pinned npm packages).
fn console_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

/// The Chromium the walkthrough drives (`LOGPOOL_TEST_CHROMIUM`, else Debian's).
fn chromium() -> PathBuf {
    std::env::var_os("LOGPOOL_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Why the walkthrough cannot run here (no Chromium, playwright-core or node), if so.
pub fn browser_missing() -> Option<String> {
    if !chromium().exists() {
        return Some(format!("{} is missing", chromium().display()));
    }
    for package in ["playwright-core", "axe-core"] {
        if !console_dir().join("node_modules").join(package).exists() {
            return Some(format!("tests/console/node_modules/{package} is missing"));
        }
    }
    match std::process::Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("node is missing".into()),
    }
}

/// True when the browser tests cannot run here, after saying why (they are skipped
/// visibly); panics instead when `LOGPOOL_REQUIRE_ENGINES` is set.
pub fn skip_without_browser() -> bool {
    let Some(why) = browser_missing() else {
        return false;
    };
    assert!(
        std::env::var_os("LOGPOOL_REQUIRE_ENGINES").is_none(),
        "browser test prerequisites missing ({why}) but LOGPOOL_REQUIRE_ENGINES is set"
    );
    eprintln!("SKIPPED: {why}; run scripts/test-browser.sh install");
    true
}

/// Runs the walkthrough against `url` (at most 5 minutes), with its screenshots in
/// `target/{shots_name}` (emptied first, so an earlier run's cannot stand in).
/// Returns the process output and the screenshot directory.
pub async fn run(url: &str, shots_name: &str) -> (std::process::Output, PathBuf) {
    run_script("e2e.mjs", url, shots_name, &[], Duration::from_secs(300)).await
}

/// Runs the browser test `tests/console/{script}` against `url` with `env` added
/// (at most `limit`), with its screenshots in `target/{shots_name}` (emptied first,
/// so an earlier run's cannot stand in). Returns the process output and the
/// screenshot directory.
pub async fn run_script(
    script: &str,
    url: &str,
    shots_name: &str,
    env: &[(&str, &str)],
    limit: Duration,
) -> (std::process::Output, PathBuf) {
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(shots_name);
    if shots.exists() {
        std::fs::remove_dir_all(&shots).expect("clear old screenshots");
    }
    let dir = console_dir();
    let run = tokio::process::Command::new("node")
        .arg(dir.join(script))
        .current_dir(&dir)
        .env("LOGPOOL_URL", url)
        .env("LOGPOOL_ADMIN_KEY", ADMIN_KEY)
        .env("SCREENSHOT_DIR", &shots)
        .env("LOGPOOL_TEST_CHROMIUM", chromium())
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(limit, run)
        .await
        .unwrap_or_else(|_| panic!("the browser run of {script} finishes within {limit:?}"))
        .expect("node runs");
    (output, shots)
}

/// Prints the browser run's output and asserts that it succeeded; its stdout (the
/// JSON report).
pub fn assert_run_succeeded(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "browser run failed:\n{stdout}\n{stderr}"
    );
    stdout
}

/// Every step of the walkthrough, each with a screenshot named after it.
pub const STEPS: [&str; 28] = [
    "login-refused",
    "login",
    "tenant-and-admin-key",
    "operator-tenant-quotas",
    "login-tenant-admin",
    "create-project-and-pool",
    "put-and-search",
    "pool-stats",
    "histogram-zoom",
    "context",
    "field-query-line",
    "columns",
    "time-zone",
    "sort-by-time",
    "group-by-bar-chart",
    "multi-series-chart",
    "sql-error-caret",
    "accessibility-and-themes",
    "keyboard",
    "tab-session",
    "keys-page",
    "quotas",
    "usage",
    "live-tail",
    "reader-view",
    "invisible-project",
    "key-disabled",
    "delete-pool",
];

/// Asserts that the walkthrough's JSON report (`stdout`) lists every step of
/// [`STEPS`] and that `shots` holds a screenshot of each.
pub fn assert_every_step_ran(stdout: &str, shots: &Path) {
    assert_steps_ran(&STEPS, stdout, shots);
}

/// Asserts that a browser test's JSON report (`stdout`) lists every step of
/// `expected_steps` and that `shots` holds a screenshot of each.
pub fn assert_steps_ran(expected_steps: &[&str], stdout: &str, shots: &Path) {
    let report: serde_json::Value = serde_json::from_str(stdout).expect("JSON report");
    let steps = report["steps"].as_array().expect("steps");
    for &expected in expected_steps {
        assert!(
            steps.iter().any(|s| s["step"] == expected),
            "step {expected} did not run: {stdout}"
        );
        assert!(
            shots.read_dir().expect("screenshots").any(|e| e
                .map(|e| e.file_name().to_string_lossy().contains(expected))
                .unwrap_or(false)),
            "no screenshot of {expected}"
        );
    }
}
