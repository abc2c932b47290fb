//! The web console in real headless Chromium, driven by `playwright-core`
//! (tests/console/e2e.mjs), with real API keys: a wrong key is refused at the login;
//! the operator creates a tenant and its tenant_admin key, which then creates a
//! project and a pool; records put through the API are counted with a measured
//! ingest rate, found, zoomed in the histogram, shown in context and charted by a
//! group-by; the keys, quotas and usage pages create a reader key, set a project
//! quota and show storage; a new record shows in the live tail within 2 s; the
//! reader sees no create buttons but can search, and is logged out once its key is
//! disabled; the pool is deleted. No unexpected console errors, no request outside
//! the public API, no key in a URL or the browser console. Screenshots of every step
//! are kept under `target/console-screenshots/`.
//!
//! Needs Node.js, Debian `chromium` and `npm ci` in tests/console, which
//! `scripts/test-browser.sh install` (run by scripts/test-all.sh) provides. Without
//! them the test is skipped visibly, and fails when LOGPOOL_REQUIRE_ENGINES is set.

use std::path::{Path, PathBuf};
use std::time::Duration;

use logpool_e2e::{TestServer, ADMIN_KEY};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chromium() -> PathBuf {
    std::env::var_os("LOGPOOL_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

fn browser_ready(dir: &Path) -> Result<(), String> {
    if !chromium().exists() {
        return Err(format!("{} is missing", chromium().display()));
    }
    if !dir.join("node_modules/playwright-core").exists() {
        return Err("tests/console/node_modules/playwright-core is missing".into());
    }
    match std::process::Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        _ => Err("node is missing".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_console_walkthrough_in_chromium() {
    let dir = workspace().join("tests/console");
    if let Err(why) = browser_ready(&dir) {
        assert!(
            std::env::var_os("LOGPOOL_REQUIRE_ENGINES").is_none(),
            "browser test prerequisites missing ({why}) but LOGPOOL_REQUIRE_ENGINES is set"
        );
        eprintln!("SKIPPED: {why}; run scripts/test-browser.sh install");
        return;
    }
    let server = TestServer::start().await.expect("server");
    let shots = workspace().join("target/console-screenshots");
    // Screenshots of an earlier run must not stand in for this run's.
    if shots.exists() {
        std::fs::remove_dir_all(&shots).expect("clear old screenshots");
    }
    let run = tokio::process::Command::new("node")
        .arg(dir.join("e2e.mjs"))
        .current_dir(&dir)
        .env("LOGPOOL_URL", server.url())
        .env("LOGPOOL_ADMIN_KEY", ADMIN_KEY)
        .env("SCREENSHOT_DIR", &shots)
        .env("LOGPOOL_TEST_CHROMIUM", chromium())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the browser walkthrough finishes within 5 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "console walkthrough failed:\n{stdout}\n{stderr}"
    );
    logpool_e2e::console_walkthrough::assert_every_step_ran(&stdout, &shots);
}
