//! Saved searches, export and the tail's filter errors in real headless Chromium
//! (tests/console/saved_export_tail.mjs): a search saved by a project admin key is
//! opened by a reader key of the project with its query, range and columns; the
//! reader's CSV export of a 20,000-record range downloads every record once with
//! the chosen columns; a bad tail filter shows its position; no key in any URL.
//! Screenshots under `target/console-saved-screenshots/`.
//!
//! Skipped visibly without Node.js, Chromium or `npm ci` in tests/console (fails
//! instead when LOGPOOL_REQUIRE_ENGINES is set).

use std::path::PathBuf;
use std::time::Duration;

use logpool_e2e::{console_walkthrough, TestServer, ADMIN_KEY};

const STEPS: [&str; 5] = [
    "save-search",
    "saved-list-of-reader",
    "saved-opened-by-reader",
    "export-csv",
    "tail-bad-filter",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_saved_search_export_and_tail_errors_in_chromium() {
    if let Some(why) = console_walkthrough::browser_missing() {
        assert!(
            std::env::var_os("LOGPOOL_REQUIRE_ENGINES").is_none(),
            "browser test prerequisites missing ({why}) but LOGPOOL_REQUIRE_ENGINES is set"
        );
        eprintln!("SKIPPED: {why}; run scripts/test-browser.sh install");
        return;
    }
    let server = TestServer::start().await.expect("server");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shots = root.join("target/console-saved-screenshots");
    if shots.exists() {
        std::fs::remove_dir_all(&shots).expect("clear old screenshots");
    }
    let dir = root.join("tests/console");
    let chromium = std::env::var_os("LOGPOOL_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let run = tokio::process::Command::new("node")
        .arg(dir.join("saved_export_tail.mjs"))
        .current_dir(&dir)
        .env("LOGPOOL_URL", server.url())
        .env("LOGPOOL_ADMIN_KEY", ADMIN_KEY)
        .env("SCREENSHOT_DIR", &shots)
        .env("RECORDS", "20000")
        .env("LOGPOOL_TEST_CHROMIUM", chromium)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("the browser run finishes within 4 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "browser run failed:\n{stdout}\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    let steps = report["steps"].as_array().expect("steps");
    for expected in STEPS {
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
