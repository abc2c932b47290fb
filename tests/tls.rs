//! TLS on the listeners: the `logpool` binary started with `[tls]` serves puts,
//! searches and the live tail over HTTPS / WSS to clients that trust its CA, answers
//! nothing to plain HTTP on the same port, stops gracefully, and refuses to start
//! with half a TLS configuration.
//!
//! The certificate and CA are test-only files in `tests/data/tls/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use logpool_client::LogpoolClient;
use logpool_e2e::{
    free_port, logpool_binary, start_standalone_process_probed_by, wait_for_count, ADMIN_KEY,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::Message;

const PROJECT: &str = "tlsproj";
const POOL: &str = "app";

fn tls_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name)
}

fn tls_env() -> Vec<(&'static str, String)> {
    vec![
        (
            "LOGPOOL_TLS__CERT_PATH",
            tls_file("server.pem").display().to_string(),
        ),
        (
            "LOGPOOL_TLS__KEY_PATH",
            tls_file("server-key.pem").display().to_string(),
        ),
        ("LOGPOOL_LOGHUB__COMMIT_INTERVAL_MS", "200".to_string()),
    ]
}

fn https_client(port: u16) -> LogpoolClient {
    let ca = std::fs::read(tls_file("ca.pem")).expect("read CA");
    LogpoolClient::with_ca_pem(&format!("https://127.0.0.1:{port}"), &ca)
        .expect("https client")
        .with_api_key(ADMIN_KEY)
}

/// A TLS connector (ring provider) that trusts only the test CA.
fn ws_tls_connector() -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(tls_file("ca.pem")).expect("CA file") {
        roots.add(certificate.expect("CA pem")).expect("CA cert");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Opens the pool's live tail over WSS (host name `localhost`, so the certificate's
/// DNS name is checked as well as its IP address by the HTTPS client).
async fn open_wss_tail(
    port: u16,
    query: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("tcp connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("server name");
    let tls = tokio::time::timeout(
        Duration::from_secs(10),
        ws_tls_connector().connect(name, tcp),
    )
    .await
    .expect("handshake in time")
    .expect("TLS handshake with the test CA");
    let url = format!(
        "wss://localhost:{port}/v1/projects/{PROJECT}/pools/{POOL}/tail?query={query}&token={ADMIN_KEY}"
    );
    let (socket, response) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::client_async(url, tls),
    )
    .await
    .expect("upgrade in time")
    .expect("WebSocket upgrade over TLS");
    assert_eq!(response.status().as_u16(), 101);
    socket
}

/// Sends a plain HTTP request to the TLS port and returns whatever comes back
/// before the server closes (or 5 s pass).
async fn plain_http_answer(port: u16) -> Vec<u8> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("tcp connect");
    let request = format!(
        "GET /v1/projects/{PROJECT}/pools/{POOL}/search HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
    // The server may already have closed after the first bytes; that is fine.
    let _ = tcp.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_standalone_serves_https_and_wss_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let log = dir.path().join("logpool.log");
    let mut child = start_standalone_process_probed_by(
        &dir.path().join("data"),
        port,
        &log,
        &tls_env(),
        https_client(port),
    )
    .await;
    let client = https_client(port);
    client.create_project(PROJECT).await.expect("project");
    client
        .create_pool(PROJECT, &json!({ "name": POOL, "shards": 2 }))
        .await
        .expect("pool");

    // Live tail over WSS, opened before the records arrive.
    let mut tail = open_wss_tail(port, "tls_marker").await;

    let records: Vec<Value> = (0..200)
        .map(|i| json!({ "message": format!("tls_marker record {i}"), "n": i }))
        .collect();
    client
        .put_records(PROJECT, POOL, &records)
        .await
        .expect("put over https");
    let total = wait_for_count(&client, PROJECT, POOL, "tls_marker", 200).await;
    assert_eq!(total, 200, "every record searchable over https");

    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < 200 {
        let frame = tokio::time::timeout_at(deadline, tail.next())
            .await
            .expect("tail frames in time");
        match frame {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).expect("json frame");
                if frame["type"] == "records" {
                    for record in frame["records"].as_array().cloned().unwrap_or_default() {
                        seen.push(record["fields"]["n"].as_u64().expect("n"));
                    }
                }
            }
            Some(Ok(_)) => {}
            other => panic!("tail ended early: {other:?}"),
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..200).collect::<Vec<u64>>(), "tail over wss");
    let _ = tail.close(None).await;

    // The CLI trusts the CA through LOGPOOL_CA_CERT (and --ca-cert) and sends its key
    // through LOGPOOL_API_KEY: the search must come back with the hits.
    let search = tokio::process::Command::new(logpool_binary())
        .args(["search", "--project", PROJECT, "--pool", POOL, "--json"])
        .args([
            "--limit",
            "3",
            "--url",
            &format!("https://localhost:{port}"),
        ])
        .arg("tls_marker")
        .env("LOGPOOL_CA_CERT", tls_file("ca.pem"))
        .env("LOGPOOL_API_KEY", ADMIN_KEY)
        .output();
    let search = tokio::time::timeout(Duration::from_secs(60), search)
        .await
        .expect("search in time")
        .expect("run search");
    let stdout = String::from_utf8_lossy(&search.stdout);
    let stderr = String::from_utf8_lossy(&search.stderr);
    assert!(
        search.status.success(),
        "logpool search over https failed: {stderr}"
    );
    let hits: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON hit per line"))
        .collect();
    assert_eq!(hits.len(), 3, "three hits printed: {stdout}");
    for hit in &hits {
        let message = hit["fields"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("tls_marker record "), "{hit}");
    }
    assert!(
        stderr.contains("200 matching records"),
        "the total of the search: {stderr}"
    );
    // Without the CA, the CLI refuses the server's certificate, even with a valid key:
    // the failure is the TLS handshake, before any HTTP.
    let untrusting = tokio::process::Command::new(logpool_binary())
        .args(["search", "--project", PROJECT, "--pool", POOL, "--url"])
        .arg(format!("https://localhost:{port}"))
        .arg("tls_marker")
        .env_remove("LOGPOOL_CA_CERT")
        .env("LOGPOOL_API_KEY", ADMIN_KEY)
        .output();
    let untrusting = tokio::time::timeout(Duration::from_secs(60), untrusting)
        .await
        .expect("search in time")
        .expect("run search");
    let stderr = String::from_utf8_lossy(&untrusting.stderr);
    assert!(
        !untrusting.status.success() && !stderr.contains("HTTP ") && untrusting.stdout.is_empty(),
        "an unknown CA must be refused before any HTTP: {stderr}"
    );
    eprintln!("without the CA, logpool search says: {stderr}");

    // Plain HTTP on the TLS port gets no HTTP answer, let alone data.
    let answer = plain_http_answer(port).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        !text.contains("HTTP/1.") && !text.contains("tls_marker"),
        "plain HTTP must not be answered: {text:?}"
    );
    let plain = LogpoolClient::new(&format!("http://127.0.0.1:{port}")).expect("plain client");
    assert!(
        plain.get("/healthz").await.is_err(),
        "a plain HTTP client gets an error"
    );
    // Failed handshakes did not stop the server, nor were they logged as errors.
    client.get("/healthz").await.expect("still serving https");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !logged.contains("ERROR"),
        "failed handshakes must not log errors:\n{logged}"
    );

    // SIGTERM stops the TLS server as gracefully as the plain one.
    let exit = logpool_e2e::stop_gracefully(&mut child).await;
    assert!(exit.success(), "graceful shutdown exit status {exit:?}");
}

#[tokio::test]
async fn test_half_tls_config_fails_start_naming_key_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let run = tokio::process::Command::new(logpool_binary())
        .args(["standalone", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env(
            "LOGPOOL_TLS__CERT_PATH",
            tls_file("server.pem").display().to_string(),
        )
        .env_remove("LOGPOOL_TLS__KEY_PATH")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("exits in time")
        .expect("run logpool");
    assert!(!output.status.success(), "must not start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tls.key_path"), "{stderr}");
}

/// One service binary of distributed mode (search-api) with `[tls]` answers
/// `/healthz` over HTTPS, nothing over plain HTTP, and stops cleanly.
#[cfg(feature = "distributed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_service_binary_serves_https() {
    use logpool_e2e::services::{engines, log_tail, service_binary, Deployment};
    use logpool_e2e::wait_for;

    let Some(engines) = engines() else {
        return;
    };
    let deployment = Deployment::new(&engines).await;
    let port = free_port();
    let log = deployment.dir.path().join("search-api-tls.log");
    let mut child = tokio::process::Command::new(service_binary("search-api"))
        .arg("--config")
        .arg(&deployment.config_path)
        .env("LOGPOOL_LISTEN", format!("127.0.0.1:{port}"))
        .envs(tls_env())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn search-api");
    let client = https_client(port);
    let healthy = wait_for(Duration::from_secs(60), || {
        let client = client.clone();
        async move { client.get("/healthz").await.ok() }
    })
    .await;
    assert!(
        healthy.is_some(),
        "search-api did not answer /healthz over https:\n{}",
        log_tail(&log)
    );
    let plain = LogpoolClient::new(&format!("http://127.0.0.1:{port}")).expect("plain client");
    assert!(
        plain.get("/healthz").await.is_err(),
        "plain HTTP is not served"
    );
    client.get("/healthz").await.expect("still serving https");

    let exit = logpool_e2e::stop_gracefully(&mut child).await;
    assert!(
        exit.success(),
        "search-api exit {exit:?}:\n{}",
        log_tail(&log)
    );
}
