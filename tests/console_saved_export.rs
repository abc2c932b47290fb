//! Saved searches, export and the tail's filter errors in real headless Chromium
//! (tests/console/saved_export_tail.mjs): a search saved by a project admin key is
//! opened by a reader key of the project with its query, range and columns; the
//! reader's CSV export of a 20,000-record range downloads every record once with
//! the chosen columns; a bad tail filter shows its position; no key in any URL.
//! Screenshots under `target/console-saved-screenshots/`.
//!
//! Skipped visibly without Node.js, Chromium or `npm ci` in tests/console (fails
//! instead when LOGPOOL_REQUIRE_ENGINES is set).

use std::time::Duration;

use logpool_e2e::{console_walkthrough, TestServer};

const STEPS: [&str; 5] = [
    "save-search",
    "saved-list-of-reader",
    "saved-opened-by-reader",
    "export-csv",
    "tail-bad-filter",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_saved_search_export_and_tail_errors_in_chromium() {
    if console_walkthrough::skip_without_browser() {
        return;
    }
    let server = TestServer::start().await.expect("server");
    let (output, shots) = console_walkthrough::run_script(
        "saved_export_tail.mjs",
        &server.url(),
        "console-saved-screenshots",
        &[("RECORDS", "20000")],
        Duration::from_secs(240),
    )
    .await;
    let stdout = console_walkthrough::assert_run_succeeded(&output);
    console_walkthrough::assert_steps_ran(&STEPS, &stdout, &shots);
}
