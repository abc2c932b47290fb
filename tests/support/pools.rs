//! A project with pools on a test server, and the checks the shipper tests make on
//! what arrived: every record of a pool, exactly N records (none lost, none twice),
//! a key for a shipper or a dashboard, and the Python clients' one-line reports.

use std::path::PathBuf;
use std::time::Duration;

use logpool_client::wire::control::CreateKey;
use logpool_client::wire::search::{Hit, SearchParams};
use logpool_client::LogpoolClient;
use serde_json::Value;

use crate::{wait_for_count, Config, TestServer};

/// Starts a server (with `adjust` applied to its configuration) holding `project`
/// and the pools `pools` (each a body of `POST .../pools`).
pub async fn server_with_pools(
    project: &str,
    pools: &[Value],
    adjust: impl FnOnce(&mut Config),
) -> TestServer {
    let server = TestServer::start_with(adjust).await.expect("server");
    create_project_with_pools(&server.client, project, pools).await;
    server
}

/// Creates `project` and the pools `pools` in it (each a body of `POST .../pools`).
pub async fn create_project_with_pools(client: &LogpoolClient, project: &str, pools: &[Value]) {
    client.create_project(project).await.expect("project");
    for pool in pools {
        client.create_pool(project, pool).await.expect("pool");
    }
}

/// A new key of the `default` tenant with `role`, limited to `project`; its secret.
pub async fn project_key(
    client: &LogpoolClient,
    role: &str,
    project: &str,
    description: &str,
) -> String {
    client
        .create_key(
            "default",
            &CreateKey {
                role: role.to_string(),
                project: Some(project.to_string()),
                description: description.to_string(),
            },
        )
        .await
        .expect("key")
        .key
        .expect("the new key's secret")
}

/// Every record of a pool (at most 10 000), newest first.
pub async fn all_hits(client: &LogpoolClient, project: &str, pool: &str) -> Vec<Hit> {
    let params = SearchParams {
        limit: Some(10_000),
        ..SearchParams::default()
    };
    client
        .search(project, pool, &params)
        .await
        .expect("search")
        .hits
}

/// Waits until `expected` records are searchable, then a little longer, and checks
/// that there are exactly that many (none lost, none stored twice).
pub async fn assert_exactly(client: &LogpoolClient, project: &str, pool: &str, expected: u64) {
    let seen = wait_for_count(client, project, pool, "", expected).await;
    assert_eq!(seen, expected, "{pool}: records found");
    // Loghub commits every 200 ms in the tests: anything stored twice shows by now.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let again = client.count(project, pool, "").await.expect("count");
    assert_eq!(again, expected, "{pool}: no record arrives twice");
}

/// Runs the Python client `tests/<script>` with `args` (at most 60 s) and reads the
/// JSON line it prints last (its report).
pub async fn run_python_client<A>(python: &str, script: &str, args: &[A]) -> Value
where
    A: AsRef<std::ffi::OsStr> + std::fmt::Debug,
{
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(python)
            .arg(script)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the client finishes in time")
    .expect("run the python client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "client {args:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("client printed `{stdout}`: {e}"))
}
