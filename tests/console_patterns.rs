//! The explorer's Patterns tab in real headless Chromium
//! (tests/console/patterns_tab.mjs) on Loghub OpenSSH lines: patterns with counts
//! and sparklines, "new" badges when compared with the previous period, a click
//! that filters by a pattern and an "Exclude" that filters it out. Screenshots
//! under `target/console-patterns-screenshots/`.
//!
//! Skipped visibly without Node.js, Chromium or `npm ci` in tests/console (fails
//! instead when LOGPOOL_REQUIRE_ENGINES is set).

use std::time::Duration;

use logpool_e2e::{console_walkthrough, TestServer};

const STEPS: [&str; 4] = [
    "patterns-tab",
    "patterns-compare-new",
    "patterns-click-filters",
    "patterns-exclude",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_patterns_tab_in_chromium() {
    if console_walkthrough::skip_without_browser() {
        return;
    }
    let server = TestServer::start_with(|config| config.loghub.mine_patterns = true)
        .await
        .expect("server");
    let (output, shots) = console_walkthrough::run_script(
        "patterns_tab.mjs",
        &server.url(),
        "console-patterns-screenshots",
        &[],
        Duration::from_secs(180),
    )
    .await;
    let stdout = console_walkthrough::assert_run_succeeded(&output);
    console_walkthrough::assert_steps_ran(&STEPS, &stdout, &shots);
}
