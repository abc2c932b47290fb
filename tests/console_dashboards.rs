//! Dashboards in real headless Chromium (tests/console/dashboards.mjs): a dashboard
//! of four panels (histogram, count with thresholds, records, and a pipe-SQL pie added
//! from the analysis page) is built, a panel dragged and one resized, and after a
//! reload the layout is the same; a click on a histogram bar opens the explorer at
//! that time; export and import give the same dashboard; a panel whose pool is gone
//! shows its own error while the others load. Screenshots under
//! `target/console-dashboards-screenshots/`.
//!
//! Skipped visibly without Node.js, Chromium or `npm ci` in tests/console (fails
//! instead when LOGPOOL_REQUIRE_ENGINES is set).

use std::time::Duration;

use logpool_e2e::{console_walkthrough, TestServer};

const STEPS: [&str; 7] = [
    "dashboard-created",
    "four-panels",
    "moved-and-resized",
    "reloaded-same-layout",
    "chart-click-opens-explorer",
    "export-import",
    "one-panel-fails",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_dashboard_of_four_panels_keeps_its_layout_in_chromium() {
    if console_walkthrough::skip_without_browser() {
        return;
    }
    let server = TestServer::start().await.expect("server");
    let (output, shots) = console_walkthrough::run_script(
        "dashboards.mjs",
        &server.url(),
        "console-dashboards-screenshots",
        &[],
        Duration::from_secs(120),
    )
    .await;
    let stdout = console_walkthrough::assert_run_succeeded(&output);
    console_walkthrough::assert_steps_ran(&STEPS, &stdout, &shots);
}
