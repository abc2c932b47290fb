//! The real binary keeps its data private and throttles key guessing.
//!
//! - The data directory is `0700` and every file the server writes in it (the
//!   metadata database with the key hashes and the cursor signing key, the queue,
//!   the index, the objects) is readable by its user only; an existing data
//!   directory and database with open modes are tightened at start.
//! - Failed authentications are counted per client address: past the limit the
//!   address gets 429 with `Retry-After` before its key is checked (even a right key,
//!   so that a guesser learns nothing), until the window ends; requests with a valid
//!   key do not count; other addresses are not affected. The addresses come from
//!   `X-Forwarded-For` because the test's peer, 127.0.0.1, is a trusted proxy; the
//!   header from an untrusted peer is ignored (unit-tested in `logpool-api`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use logpool_e2e::tenants::RawApi;
use logpool_e2e::{free_port, start_standalone_process, ADMIN_KEY};
use reqwest::StatusCode;
use serde_json::json;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o7777
}

/// Every entry under `dir` whose mode lets anyone but the owner in.
fn open_entries(dir: &Path, found: &mut Vec<String>, seen: &mut usize) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        *seen += 1;
        let mode = mode(&path);
        if mode & 0o077 != 0 {
            found.push(format!("{} {mode:o}", path.display()));
        }
        if path.is_dir() && !path.is_symlink() {
            open_entries(&path, found, seen);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_data_directory_and_files_are_private() {
    let started = Instant::now();
    let root = tempfile::tempdir().expect("tempdir");
    let data_dir = root.path().join("data");
    // An existing, world-readable data directory is tightened at start.
    std::fs::create_dir(&data_dir).expect("mkdir");
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let log = root.path().join("logpool.log");
    let port = free_port();
    let mut child = start_standalone_process(&data_dir, port, &log, &[]).await;
    let api = RawApi::new(&format!("http://127.0.0.1:{port}"));
    api.create_project("default", "private").await;
    api.create_pool("default", "private", "web").await;
    api.create_key("default", "reader", None).await;
    let put = api
        .as_operator(
            "default",
            reqwest::Method::POST,
            "/v1/projects/private/pools/web/logs",
            Some(&json!({ "logs": [{ "message": "private record" }] })),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    // Let loghub commit, so that the index has files too.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    assert_eq!(mode(&data_dir), 0o700, "data directory");
    let database = data_dir.join("metadata.sqlite");
    assert_eq!(mode(&database), 0o600, "metadata database");
    let mut open = Vec::new();
    let mut seen = 0;
    open_entries(&data_dir, &mut open, &mut seen);
    assert!(seen > 5, "the walk saw the engines' files ({seen})");
    assert!(open.is_empty(), "entries others may read: {open:?}");

    // Restart after someone opened the modes up: they are tightened again.
    child.kill().await.expect("kill");
    let _ = child.wait().await;
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut child = start_standalone_process(&data_dir, port, &log, &[]).await;
    assert_eq!(mode(&data_dir), 0o700, "data directory after restart");
    assert_eq!(mode(&database), 0o600, "metadata database after restart");
    let _ = child.start_kill();
    println!("test ran {:?}", started.elapsed());
}

const MAX_FAILURES: u32 = 5;
const WINDOW_SECS: u64 = 3;

/// A search of the seeded pool with `key`, as coming from `client` (via the trusted
/// proxy's `X-Forwarded-For`).
async fn search_as(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    client: &str,
) -> (StatusCode, Option<u64>, serde_json::Value) {
    let response = http
        .get(format!(
            "{base}/v1/projects/guarded/pools/web/search?limit=1"
        ))
        .bearer_auth(key)
        .header("x-forwarded-for", client)
        .send()
        .await
        .expect("answer");
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, retry_after, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_failed_authentications_are_throttled_per_address() {
    let started = Instant::now();
    let root = tempfile::tempdir().expect("tempdir");
    let log = root.path().join("logpool.log");
    let port = free_port();
    let mut child = start_standalone_process(
        &root.path().join("data"),
        port,
        &log,
        &[
            (
                "LOGPOOL_HTTP__MAX_AUTH_FAILURES_PER_ADDRESS",
                MAX_FAILURES.to_string(),
            ),
            (
                "LOGPOOL_HTTP__AUTH_FAILURE_WINDOW_SECS",
                WINDOW_SECS.to_string(),
            ),
            ("LOGPOOL_HTTP__TRUSTED_PROXIES", "127.0.0.1".to_string()),
        ],
    )
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let api = RawApi::new(&base);
    api.create_project("default", "guarded").await;
    api.create_pool("default", "guarded", "web").await;
    let (_, reader) = api.create_key("default", "reader", None).await;
    let http = reqwest::Client::new();
    let (guesser, neighbour, user) = ("198.51.100.7", "198.51.100.8", "198.51.100.9");

    // Valid keys never count, however many.
    for _ in 0..3 * MAX_FAILURES {
        let (status, _, body) = search_as(&http, &base, &reader, user).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // Up to the limit, a wrong key is a plain 401 ...
    let wrong = "lpk_nosuchkey_guess";
    for n in 0..MAX_FAILURES {
        let (status, _, body) = search_as(&http, &base, wrong, guesser).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "guess {n}: {body}");
    }
    let blocked_at = Instant::now();
    // ... then the address waits, whatever key it sends, and is told how long.
    for key in [wrong, reader.as_str(), ADMIN_KEY] {
        let (status, retry_after, body) = search_as(&http, &base, key, guesser).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["error"]["limit"], "http.max_auth_failures_per_address");
        let retry_after = retry_after.expect("Retry-After");
        assert!((1..=WINDOW_SECS).contains(&retry_after), "{retry_after}");
    }
    // Other addresses are not held back, and the unauthenticated routes answer.
    let (status, _, body) = search_as(&http, &base, &reader, neighbour).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let health = http
        .get(format!("{base}/healthz"))
        .header("x-forwarded-for", guesser)
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), StatusCode::OK);
    // A neighbour's failures below the limit stay 401s of its own.
    for _ in 0..MAX_FAILURES - 1 {
        let (status, _, _) = search_as(&http, &base, wrong, neighbour).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _, _) = search_as(&http, &base, &reader, neighbour).await;
    assert_eq!(status, StatusCode::OK, "four failures are below the limit");

    // When the window has passed, the right key works again from the guesser's address.
    let wait = Duration::from_secs(WINDOW_SECS) + Duration::from_millis(300);
    tokio::time::sleep(wait.saturating_sub(blocked_at.elapsed())).await;
    let (status, _, body) = search_as(&http, &base, &reader, guesser).await;
    assert_eq!(status, StatusCode::OK, "after the window: {body}");
    assert!(child.try_wait().expect("wait").is_none(), "server alive");
    let _ = child.start_kill();
    println!("test ran {:?}", started.elapsed());
}
