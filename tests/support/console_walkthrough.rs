//! What the console's browser walkthrough (tests/console/e2e.mjs) must have done,
//! checked the same way wherever it runs (standalone, or behind the gateway).

use std::path::Path;

/// Every step of the walkthrough, each with a screenshot named after it.
pub const STEPS: [&str; 18] = [
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
    "group-by-bar-chart",
    "keys-page",
    "quotas",
    "usage",
    "live-tail",
    "reader-view",
    "key-disabled",
    "delete-pool",
];

/// Asserts that the walkthrough's JSON report (`stdout`) lists every step of
/// [`STEPS`] and that `shots` holds a screenshot of each.
pub fn assert_every_step_ran(stdout: &str, shots: &Path) {
    let report: serde_json::Value = serde_json::from_str(stdout).expect("JSON report");
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
