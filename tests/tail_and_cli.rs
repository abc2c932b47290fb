//! Live tail over WebSocket, and the `logpool put` / `logpool search` commands.

use std::time::Duration;

use futures::StreamExt;
use logpool_e2e::{logpool_binary, wait_for_count, TestServer, ADMIN_KEY};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_tail_streams_matching_records_as_they_arrive() {
    let server = TestServer::start().await.expect("server");
    let client = &server.client;
    client.create_project("live").await.expect("project");
    client
        .create_pool("live", &json!({ "name": "app", "shards": 3 }))
        .await
        .expect("pool");
    // Records from before the tail started are not replayed.
    client
        .put_records("live", "app", &[json!({ "message": "old error" })])
        .await
        .expect("put");

    let url = format!(
        "ws://{}/v1/projects/live/pools/app/tail?query=error%20AND%20NOT%20ignored",
        server.addr()
    );
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_KEY}").parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    let records: Vec<Value> = (0..300)
        .map(|i| {
            let kind = ["error", "info", "error ignored"][i % 3];
            json!({ "message": format!("{kind} {i}"), "n": i })
        })
        .collect();
    client
        .put_records("live", "app", &records)
        .await
        .expect("put");

    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while seen.len() < 100 {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("frames in time");
        let Some(Ok(Message::Text(text))) = frame else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).expect("json frame");
        assert_eq!(frame["type"], "records");
        for record in frame["records"].as_array().cloned().unwrap_or_default() {
            seen.push(record["fields"]["n"].as_u64().expect("n"));
        }
    }
    seen.sort_unstable();
    let expected: Vec<u64> = (0..300).filter(|i| i % 3 == 0).collect();
    assert_eq!(
        seen, expected,
        "exactly the matching new records, none of the old ones"
    );

    // A bad query is refused before the upgrade, with the usual error.
    let bad = client
        .get("/v1/projects/live/pools/app/tail?query=a%20AND")
        .await;
    assert_eq!(bad.expect_err("bad query").status(), Some(400));
    server.standalone.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_cli_put_and_search() {
    let server = TestServer::start().await.expect("server");
    server.client.create_project("cli").await.expect("project");
    server
        .client
        .create_pool("cli", &json!({ "name": "files" }))
        .await
        .expect("pool");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.log");
    let mut text = String::new();
    for i in 0..2500 {
        if i % 2 == 0 {
            text.push_str(&format!("plain line {i} checkout\n"));
        } else {
            text.push_str(&format!("{{\"message\": \"json line {i}\", \"n\": {i}}}\n"));
        }
    }
    std::fs::write(&file, text).expect("write");
    let output = tokio::process::Command::new(logpool_binary())
        .args([
            "put",
            "--project",
            "cli",
            "--pool",
            "files",
            "--quiet",
            "--batch-records",
            "1000",
            "--api-key",
            ADMIN_KEY,
            "--url",
        ])
        .arg(server.url())
        .arg(&file)
        .output()
        .await
        .expect("run put");
    assert!(
        output.status.success(),
        "put failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("2500 records accepted"));
    assert_eq!(
        wait_for_count(&server.client, "cli", "files", "", 2500).await,
        2500
    );
    assert_eq!(
        server
            .client
            .count("cli", "files", "checkout")
            .await
            .expect("count"),
        1250
    );
    assert_eq!(
        server
            .client
            .count("cli", "files", "n:[1 TO 99]")
            .await
            .expect("count"),
        50
    );

    let output = tokio::process::Command::new(logpool_binary())
        .args([
            "search",
            "--project",
            "cli",
            "--pool",
            "files",
            "--limit",
            "3",
            "--json",
            "--url",
        ])
        .arg(server.url())
        .arg("json AND n:>2000")
        .env("LOGPOOL_API_KEY", ADMIN_KEY)
        .output()
        .await
        .expect("run search");
    assert!(
        output.status.success(),
        "search failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json hit"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["fields"]["n"], 2499, "newest first");
    assert!(String::from_utf8_lossy(&output.stderr).contains("250 matching records"));

    // Time options as users type them: `--from -1h` after the query, its value
    // starting with a dash. Every record arrived just now, so `--from -1h` finds
    // them all and `--to -1h` none.
    for (option, expected) in [
        ("--from", "250 matching records"),
        ("--to", "0 matching records"),
    ] {
        let output = tokio::process::Command::new(logpool_binary())
            .args(["search", "--project", "cli", "--pool", "files", "--url"])
            .arg(server.url())
            .args(["json AND n:>2000", option, "-1h"])
            .env("LOGPOOL_API_KEY", ADMIN_KEY)
            .output()
            .await
            .expect("run search");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "search {option} -1h failed: {stderr}"
        );
        assert!(
            stderr.lines().any(|line| line == expected),
            "{option} -1h: {stderr}"
        );
    }

    // A rejected request makes the command fail with the server's reason.
    let output = tokio::process::Command::new(logpool_binary())
        .args([
            "put",
            "--project",
            "cli",
            "--pool",
            "nope",
            "--quiet",
            "--url",
        ])
        .arg(server.url())
        .arg(&file)
        .env("LOGPOOL_API_KEY", ADMIN_KEY)
        .output()
        .await
        .expect("run put");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not found"));

    // Without a key the server's refusal is the command's error.
    let output = tokio::process::Command::new(logpool_binary())
        .args(["search", "--project", "cli", "--pool", "files", "--url"])
        .arg(server.url())
        .env_remove("LOGPOOL_API_KEY")
        .output()
        .await
        .expect("run search");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("401") && stderr.contains("missing API key"),
        "{stderr}"
    );
    server.standalone.shutdown().await.expect("shutdown");
}
