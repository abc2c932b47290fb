//! Syslog listeners, seen by the senders people run: rsyslog forwarding RFC 5424
//! over TCP with octet counting, syslog-ng sending RFC 5424 (octet counting) and
//! RFC 3164 (newline framing) to one TCP listener; and raw clients for UDP, TLS
//! with client certificates, malformed and oversize frames, and a queue that
//! refuses (nothing sent over TCP may be lost). Each sends N messages of which
//! exactly N must be found, with the fields mapped as `docs/api.md` documents.
//!
//! rsyslog and syslog-ng are installed by `scripts/test-shippers.sh install`
//! (rsyslog unpacked in `/opt/rsyslog` when the system has none);
//! without them their tests skip visibly (with `LOGPOOL_REQUIRE_ENGINES` set they
//! fail instead). Listener ports come from `LOGPOOL_TEST_PORT_BASE` + 700..999
//! when it is set, else from the system.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use logpool_client::wire::search::Hit;
use logpool_core::record::format_time_ns;
use logpool_e2e::pools::{all_hits, assert_exactly, create_project_with_pools, server_with_pools};
use logpool_e2e::{wait_for_count, Config, TestServer};
use logpool_engines::config::{SyslogListenerConfig, SyslogTransport};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const PROJECT: &str = "shop";

/// A port free on 127.0.0.1 for both TCP and UDP, from the test port range when
/// one is given.
fn listener_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base: Option<u16> = std::env::var("LOGPOOL_TEST_PORT_BASE")
        .ok()
        .and_then(|base| base.parse().ok());
    let Some(base) = base else {
        return logpool_e2e::free_port();
    };
    loop {
        let offset = 700 + NEXT.fetch_add(1, Ordering::Relaxed) % 300;
        let port = base + offset;
        let free = std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok();
        if free {
            return port;
        }
    }
}

/// A listener on 127.0.0.1 writing to `shop.<pool>`, with the defaults otherwise.
fn listener(name: &str, transport: SyslogTransport, pool: &str) -> SyslogListenerConfig {
    SyslogListenerConfig {
        name: name.to_string(),
        bind: SocketAddr::from(([127, 0, 0, 1], listener_port())),
        transport,
        tenant: "default".to_string(),
        project: PROJECT.to_string(),
        pool: pool.to_string(),
        max_message_bytes: 64 * 1024,
        max_connections: 1000,
        idle_timeout_secs: 0,
        batch_records: 500,
        linger_ms: 100,
        cert_path: None,
        key_path: None,
        client_ca_path: None,
    }
}

/// A server with the given listeners and project `shop` with `pools` (one shard
/// each).
async fn server_with(
    listeners: Vec<SyslogListenerConfig>,
    pools: &[&str],
    adjust: impl FnOnce(&mut Config),
) -> TestServer {
    let pools: Vec<Value> = pools.iter().map(|pool| one_shard_pool(pool)).collect();
    server_with_pools(PROJECT, &pools, |config| {
        config.syslog.listeners = listeners;
        adjust(config);
    })
    .await
}

/// The body creating pool `name` with one shard, kept ten years.
fn one_shard_pool(name: &str) -> Value {
    json!({ "name": name, "shards": 1, "retention_days": 3650 })
}

/// One counter of the server's `/metrics`.
async fn metric(server: &TestServer, name: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", server.url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    logpool_api::metrics::sample_value(&text, name, &[]).unwrap_or(0.0)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or_default()
}

/// The record whose `message` is `message`.
fn hit<'a>(hits: &'a [Hit], message: &str) -> &'a Hit {
    hits.iter()
        .find(|hit| hit.fields.get("message").and_then(|m| m.as_str()) == Some(message))
        .unwrap_or_else(|| panic!("no record with message {message:?}"))
}

/// The numbers `n` of messages `order {n} shipped`, sorted.
fn order_numbers(hits: &[Hit]) -> Vec<usize> {
    let mut numbers: Vec<usize> = hits
        .iter()
        .filter_map(|hit| {
            let message = hit.fields.get("message")?.as_str()?.trim_start();
            message
                .strip_prefix("order ")?
                .strip_suffix(" shipped")?
                .parse()
                .ok()
        })
        .collect();
    numbers.sort_unstable();
    numbers
}

/// A client binary, or `None` after saying why (a panic under
/// `LOGPOOL_REQUIRE_ENGINES`).
fn client_binary(path: &str, what: &str) -> Option<PathBuf> {
    let binary = PathBuf::from(path);
    if binary.exists() {
        return Some(binary);
    }
    let message = format!("{what} ({path}) is missing; scripts/test-shippers.sh installs it");
    if std::env::var_os("LOGPOOL_REQUIRE_ENGINES").is_some() {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    None
}

/// An RFC 5424 line of order `n`, `start_ms + n` milliseconds after the epoch.
fn rfc5424_order(n: usize, start_ms: i64) -> String {
    let stamp = format_time_ns((start_ms + n as i64) * 1_000_000);
    format!(
        "<134>1 {stamp} web01 shopapp 4242 ORDER [meta@32473 n=\"{n}\" note=\"say \\\"hi\\\"\"] order {n} shipped"
    )
}

/// Checks the fields of order 7 of [`rfc5424_order`] as documented.
fn assert_order_seven(hits: &[Hit], start_ms: i64, listener: &str) {
    let seventh = hit(hits, "order 7 shipped");
    assert_eq!(seventh.time, format_time_ns((start_ms + 7) * 1_000_000));
    let fields = &seventh.fields;
    assert_eq!(fields["hostname"], "web01");
    assert_eq!(fields["app_name"], "shopapp");
    assert_eq!(fields["procid"], "4242");
    assert_eq!(fields["msgid"], "ORDER");
    assert_eq!(fields["facility"], "local0");
    assert_eq!(fields["severity"], "info");
    assert_eq!(fields["sd.meta@32473.n"], "7");
    assert_eq!(fields["sd.meta@32473.note"], "say \"hi\"");
    assert_eq!(fields["listener"], listener);
    assert_eq!(fields["peer"], "127.0.0.1");
    assert!(!fields.contains_key("parse_error"), "{fields:?}");
}

/// Runs `binary` with `args` until dropped; its stderr goes to `log`.
fn spawn_logged(binary: &Path, args: &[String], log: &Path) -> tokio::process::Child {
    let log = std::fs::File::create(log).expect("log file");
    tokio::process::Command::new(binary)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()))
}

/// Waits for `expected` records; on a shortfall, fails with the sender's log.
async fn wait_or_explain(server: &TestServer, pool: &str, expected: u64, log: &Path) {
    let found = wait_for_count(&server.client, PROJECT, pool, "", expected).await;
    if found != expected {
        panic!(
            "{found} of {expected} messages arrived; the sender said: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}

/// Where `scripts/test-shippers.sh` unpacks rsyslog (its Debian package conflicts
/// with syslog-ng's).
const UNPACKED_RSYSLOG: &str = "/opt/rsyslog";

/// rsyslogd and the arguments that find its modules: the system's, else the
/// unpacked one.
fn rsyslogd() -> Option<(PathBuf, Vec<String>)> {
    if Path::new("/usr/sbin/rsyslogd").exists() {
        return Some((PathBuf::from("/usr/sbin/rsyslogd"), Vec::new()));
    }
    let binary = client_binary(&format!("{UNPACKED_RSYSLOG}/usr/sbin/rsyslogd"), "rsyslog")?;
    let modules = std::fs::read_dir(format!("{UNPACKED_RSYSLOG}/usr/lib"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|dir| dir.path().join("rsyslog"))
        .find(|dir| dir.join("imtcp.so").exists())?;
    Some((
        binary,
        vec!["-M".to_string(), modules.display().to_string()],
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_forwards_rfc5424_with_octet_counting_and_every_message_arrives() {
    let Some((rsyslogd, mut args)) = rsyslogd() else {
        return;
    };
    let target = listener("rsyslog-in", SyslogTransport::Tcp, "rsyslog");
    let target_port = target.bind.port();
    let server = server_with(vec![target], &["rsyslog"], |_| {}).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("work dir");
    // rsyslog takes the messages on a TCP input of its own and forwards them as
    // the README configures it: omfwd, octet counting, the RFC 5424 template.
    let input_port = listener_port();
    let config = dir.path().join("rsyslog.conf");
    std::fs::write(
        &config,
        format!(
            r#"global(workDirectory="{work}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{input_port}" ruleset="forward")
ruleset(name="forward") {{
  action(type="omfwd" target="127.0.0.1" port="{target_port}" protocol="tcp"
         TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format"
         action.resumeRetryCount="-1" action.resumeInterval="1")
}}
"#,
            work = work.display()
        ),
    )
    .expect("config");
    let log = dir.path().join("rsyslog.log");
    args.extend([
        "-n".to_string(),
        "-f".to_string(),
        config.display().to_string(),
        "-i".to_string(),
        dir.path().join("pid").display().to_string(),
    ]);
    let mut child = spawn_logged(&rsyslogd, &args, &log);

    const COUNT: usize = 300;
    let start_ms = now_ms() - 3_600_000;
    let mut lines = String::new();
    for n in 0..COUNT {
        lines.push_str(&rfc5424_order(n, start_ms));
        lines.push('\n');
    }
    let sent = logpool_e2e::wait_for(Duration::from_secs(10), || {
        let lines = lines.clone();
        async move {
            let mut stream = TcpStream::connect(("127.0.0.1", input_port)).await.ok()?;
            stream.write_all(lines.as_bytes()).await.ok()?;
            stream.shutdown().await.ok()
        }
    })
    .await;
    assert!(sent.is_some(), "rsyslog's input did not open");

    wait_or_explain(&server, "rsyslog", COUNT as u64, &log).await;
    assert_exactly(&server.client, PROJECT, "rsyslog", COUNT as u64).await;
    let _ = child.start_kill();
    let hits = all_hits(&server.client, PROJECT, "rsyslog").await;
    assert_eq!(order_numbers(&hits), (0..COUNT).collect::<Vec<_>>());
    assert_order_seven(&hits, start_ms, "rsyslog-in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_ng_sends_rfc5424_and_rfc3164_to_one_tcp_listener() {
    let Some(syslog_ng) = client_binary("/usr/sbin/syslog-ng", "syslog-ng") else {
        return;
    };
    let target = listener("syslog-ng-in", SyslogTransport::Tcp, "syslogng");
    let port = target.bind.port();
    let server = server_with(vec![target], &["syslogng"], |_| {}).await;
    let dir = tempfile::tempdir().expect("tempdir");
    const COUNT: usize = 200;
    let start_ms = now_ms() - 3_600_000;
    let input = dir.path().join("input.log");
    let mut lines = String::new();
    for n in 0..COUNT {
        lines.push_str(&rfc5424_order(n, start_ms));
        lines.push('\n');
    }
    std::fs::write(&input, lines).expect("input");
    // `syslog()` writes RFC 5424 with octet counting, `network()` RFC 3164 lines;
    // both go to the same listener, so each message arrives twice.
    let config = dir.path().join("syslog-ng.conf");
    std::fs::write(
        &config,
        format!(
            r#"@version: 3.38
options {{ stats_freq(0); frac-digits(3); keep-hostname(yes); send-time-zone("+00:00"); }};
source s_test {{ file("{input}" flags(syslog-protocol) follow-freq(0.1)); }};
destination d_rfc5424 {{ syslog("127.0.0.1" port({port}) transport("tcp") persist-name("rfc5424")); }};
destination d_rfc3164 {{ network("127.0.0.1" port({port}) transport("tcp") persist-name("rfc3164")); }};
log {{ source(s_test); destination(d_rfc5424); destination(d_rfc3164); }};
"#,
            input = input.display()
        ),
    )
    .expect("config");
    let log = dir.path().join("syslog-ng.log");
    let args = [
        "--foreground".to_string(),
        "--no-caps".to_string(),
        format!("--cfgfile={}", config.display()),
        format!("--persist-file={}", dir.path().join("persist").display()),
        format!("--pidfile={}", dir.path().join("pid").display()),
        format!("--control={}", dir.path().join("ctl").display()),
    ];
    let mut child = spawn_logged(&syslog_ng, &args, &log);

    wait_or_explain(&server, "syslogng", 2 * COUNT as u64, &log).await;
    assert_exactly(&server.client, PROJECT, "syslogng", 2 * COUNT as u64).await;
    let _ = child.start_kill();
    let hits = all_hits(&server.client, PROJECT, "syslogng").await;
    let (rfc5424, rfc3164): (Vec<Hit>, Vec<Hit>) = hits
        .into_iter()
        .partition(|hit| hit.fields.contains_key("msgid"));
    assert_eq!(order_numbers(&rfc5424), (0..COUNT).collect::<Vec<_>>());
    assert_eq!(order_numbers(&rfc3164), (0..COUNT).collect::<Vec<_>>());
    assert_order_seven(&rfc5424, start_ms, "syslog-ng-in");
    // RFC 3164: the header's time (UTC, this year; the milliseconds of
    // `frac-digits(3)`), host, tag and pid; no structured data.
    let seventh = hit(&rfc3164, "order 7 shipped");
    assert_eq!(seventh.time, format_time_ns((start_ms + 7) * 1_000_000));
    assert_eq!(seventh.fields["hostname"], "web01");
    assert_eq!(seventh.fields["app_name"], "shopapp");
    assert_eq!(seventh.fields["procid"], "4242");
    assert_eq!(seventh.fields["severity"], "info");
    assert!(!seventh.fields.contains_key("parse_error"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_datagrams_are_stored_one_record_each() {
    let target = listener("udp-in", SyslogTransport::Udp, "udp");
    let addr = target.bind;
    let server = server_with(vec![target], &["udp"], |_| {}).await;
    const COUNT: usize = 200;
    let start_ms = now_ms() - 3_600_000;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("socket");
    for n in 0..COUNT {
        socket
            .send_to(rfc5424_order(n, start_ms).as_bytes(), addr)
            .await
            .expect("send");
        // Loopback drops nothing at this pace; the receive buffer is not the test.
        if n % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_exactly(&server.client, PROJECT, "udp", COUNT as u64).await;
    let hits = all_hits(&server.client, PROJECT, "udp").await;
    assert_eq!(order_numbers(&hits), (0..COUNT).collect::<Vec<_>>());
    assert_order_seven(&hits, start_ms, "udp-in");
    assert_eq!(
        metric(&server, "logpool_syslog_udp_dropped_total").await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversize_frames_are_kept_flagged_beside_the_others() {
    let mut target = listener("raw-in", SyslogTransport::Tcp, "raw");
    target.max_message_bytes = 1024;
    let addr = target.bind;
    let server = server_with(vec![target], &["raw"], |_| {}).await;
    let start_ms = now_ms() - 3_600_000;
    let long = "x".repeat(3000);
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let good = rfc5424_order(1, start_ms);
    let frames = format!(
        "{}\nthis line has no priority\n<999>bad priority\n{} {}\n<14>1 - - - - - - {long}\n{}",
        good,
        good.len(),
        good.replace("order 1", "order 2"),
        rfc5424_order(3, start_ms),
    );
    stream.write_all(frames.as_bytes()).await.expect("write");
    stream.shutdown().await.expect("close");
    drop(stream);

    assert_exactly(&server.client, PROJECT, "raw", 6).await;
    let hits = all_hits(&server.client, PROJECT, "raw").await;
    assert_eq!(order_numbers(&hits), [1, 2, 3]);
    let no_priority = hit(&hits, "this line has no priority");
    assert_eq!(no_priority.fields["parse_error"], "no `<PRI>` at the start");
    assert_eq!(no_priority.fields["listener"], "raw-in");
    let bad_priority = hit(&hits, "<999>bad priority");
    assert!(bad_priority.fields.contains_key("parse_error"));
    // Cut at max_message_bytes (1024) with its header: the message keeps the rest.
    let cut = hits
        .iter()
        .find(|hit| hit.fields.contains_key("truncated"))
        .expect("the long frame");
    assert_eq!(cut.fields["truncated"], true);
    let message = cut.fields["message"].as_str().expect("message");
    assert_eq!(message.len(), 1024 - "<14>1 - - - - - - ".len());
    assert_eq!(
        metric(&server, "logpool_syslog_messages_malformed_total").await,
        2.0
    );
    assert_eq!(
        metric(&server, "logpool_syslog_messages_truncated_total").await,
        1.0
    );
    assert_eq!(
        metric(&server, "logpool_syslog_records_stored_total").await,
        6.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_queue_holds_the_tcp_sender_back_and_loses_nothing() {
    let target = listener("held-in", SyslogTransport::Tcp, "held");
    let addr = target.bind;
    // The first batch produced to shard 0 fails: the listener must retry it.
    let server = server_with(vec![target], &["held"], |config| {
        config.idempotency.test_fail_first_produce_to_shard = Some(0);
    })
    .await;
    const COUNT: usize = 400;
    let start_ms = now_ms() - 3_600_000;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    for n in 0..COUNT {
        let line = rfc5424_order(n, start_ms);
        // Octet counting, as rsyslog and syslog-ng send it.
        stream
            .write_all(format!("{} {line}", line.len()).as_bytes())
            .await
            .expect("write");
    }
    stream.shutdown().await.expect("close");
    assert_exactly(&server.client, PROJECT, "held", COUNT as u64).await;
    let hits = all_hits(&server.client, PROJECT, "held").await;
    assert_eq!(order_numbers(&hits), (0..COUNT).collect::<Vec<_>>());
    assert!(metric(&server, "logpool_syslog_store_retries_total").await >= 1.0);
    assert_eq!(
        metric(&server, "logpool_syslog_records_stored_total").await,
        COUNT as f64
    );
}

fn tls_data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name)
}

/// A TLS client trusting the test CA, presenting `identity` (certificate, key)
/// when given.
fn tls_connector(identity: Option<(&str, &str)>) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(tls_data("ca.pem")).expect("CA") {
        roots.add(certificate.expect("pem")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((certificate, key)) => {
            let chain = CertificateDer::pem_file_iter(tls_data(certificate))
                .expect("certificate")
                .collect::<Result<Vec<_>, _>>()
                .expect("pem");
            let key = PrivateKeyDer::from_pem_file(tls_data(key)).expect("key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client identity")
        }
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Sends `lines` newline-framed over TLS; `Err` when the server refuses.
async fn send_over_tls(
    addr: SocketAddr,
    identity: Option<(&str, &str)>,
    lines: &[String],
) -> std::io::Result<()> {
    use tokio::io::AsyncReadExt;
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = tls_connector(identity).connect(name, tcp).await?;
    for line in lines {
        tls.write_all(format!("{line}\n").as_bytes()).await?;
    }
    tls.flush().await?;
    // TLS 1.3 servers judge the client's certificate after the client's side of the
    // handshake is done: a refused client learns it on its next read.
    tls.shutdown().await?;
    let mut rest = Vec::new();
    tls.read_to_end(&mut rest).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates_admits_only_holders_of_the_ca() {
    let mut target = listener("tls-in", SyslogTransport::Tls, "secure");
    target.cert_path = Some(tls_data("server.pem"));
    target.key_path = Some(tls_data("server-key.pem"));
    target.client_ca_path = Some(tls_data("client-ca.pem"));
    let addr = target.bind;
    let server = server_with(vec![target], &["secure"], |_| {}).await;
    let start_ms = now_ms() - 3_600_000;
    let lines: Vec<String> = (0..50).map(|n| rfc5424_order(n, start_ms)).collect();
    let bounded = Duration::from_secs(10);

    let admitted = tokio::time::timeout(
        bounded,
        send_over_tls(addr, Some(("client.pem", "client-key.pem")), &lines),
    )
    .await
    .expect("in time");
    admitted.expect("a client with a certificate of the CA is admitted");
    // No certificate, and a certificate of another CA: refused, nothing stored.
    let strangers = [None, Some(("other-client.pem", "other-client-key.pem"))];
    for identity in strangers {
        let refused = tokio::time::timeout(
            bounded,
            send_over_tls(addr, identity, &["<14>1 - - - - - - intruder".to_string()]),
        )
        .await
        .expect("in time");
        assert!(refused.is_err(), "{identity:?} must be refused");
    }
    // Plain TCP on the TLS port: no handshake, nothing stored.
    let mut plain = TcpStream::connect(addr).await.expect("connect");
    let _ = plain.write_all(b"<14>1 - - - - - - plain intruder\n").await;
    drop(plain);

    assert_exactly(&server.client, PROJECT, "secure", 50).await;
    let hits = all_hits(&server.client, PROJECT, "secure").await;
    assert_eq!(order_numbers(&hits), (0..50).collect::<Vec<_>>());
    assert_order_seven(&hits, start_ms, "tls-in");
    assert!(metric(&server, "logpool_syslog_connections_refused_total").await >= 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_with_open_connections_ends_promptly_and_stores_what_was_received() {
    let mut target = listener("stopping-in", SyslogTransport::Tcp, "stopping");
    // The batch would wait 60 s to fill: only the stop stores it.
    target.linger_ms = 60_000;
    let addr = target.bind;
    let server = server_with(vec![target], &["stopping"], |_| {}).await;
    let start_ms = now_ms() - 3_600_000;
    let mut open = TcpStream::connect(addr).await.expect("connect");
    for n in 0..5 {
        open.write_all(format!("{}\n", rfc5424_order(n, start_ms)).as_bytes())
            .await
            .expect("write");
    }
    let received = logpool_e2e::wait_for(Duration::from_secs(10), || async {
        (metric(&server, "logpool_syslog_messages_received_total").await == 5.0).then_some(())
    })
    .await;
    assert!(received.is_some(), "the listener did not read the messages");
    assert_eq!(
        server
            .client
            .count(PROJECT, "stopping", "")
            .await
            .expect("count"),
        0,
        "stored before the stop"
    );

    let TestServer {
        standalone,
        data_dir,
        ..
    } = server;
    let stopping = tokio::time::timeout(Duration::from_secs(10), standalone.shutdown()).await;
    stopping
        .expect("stops in time although a sender is connected")
        .expect("clean stop");
    drop(open);
    // The same data, without listeners: the batch is in the queue and gets indexed.
    let restarted =
        TestServer::start_with(|config| config.data_dir = data_dir.path().to_path_buf())
            .await
            .expect("restart");
    assert_exactly(&restarted.client, PROJECT, "stopping", 5).await;
    let hits = all_hits(&restarted.client, PROJECT, "stopping").await;
    assert_eq!(order_numbers(&hits), [0, 1, 2, 3, 4]);
}

/// Whether the server closed `stream` (it reads end of stream within `wait`).
async fn closed_by_server(stream: &mut TcpStream, wait: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(wait, stream.read(&mut byte)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reads_listeners_from_its_file_bounds_connections_and_stops_gracefully() {
    let binary = logpool_e2e::logpool_binary();
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --bins` first",
        binary.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let (http_port, syslog_port) = (listener_port(), listener_port());
    let config = dir.path().join("logpool.toml");
    std::fs::write(
        &config,
        format!(
            "[loghub]\ncommit_interval_ms = 200\n\n[[syslog.listeners]]\nname = \"file-in\"\n\
             bind = \"127.0.0.1:{syslog_port}\"\nproject = \"{PROJECT}\"\npool = \"bin\"\n\
             max_connections = 4\nlinger_ms = 50\nidle_timeout_secs = 3\n"
        ),
    )
    .expect("config");
    let log = dir.path().join("logpool.log");
    let mut child = tokio::process::Command::new(&binary)
        .arg("standalone")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", &format!("127.0.0.1:{http_port}")])
        .env("LOGPOOL_ADMIN_KEY", logpool_e2e::ADMIN_KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).expect("log")))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn logpool");
    let base = format!("http://127.0.0.1:{http_port}");
    let client = logpool_e2e::admin_client(&base);
    let ready = logpool_e2e::wait_for(Duration::from_secs(30), || {
        let client = client.clone();
        async move { client.get("/readyz").await.ok() }
    })
    .await;
    assert!(
        ready.is_some(),
        "not ready: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    create_project_with_pools(&client, PROJECT, &[one_shard_pool("bin")]).await;
    let addr = SocketAddr::from(([127, 0, 0, 1], syslog_port));
    let start_ms = now_ms() - 3_600_000;

    // Four connections hold the four places; the next ones are closed at once.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        let mut extra = TcpStream::connect(addr).await.expect("connect");
        assert!(
            closed_by_server(&mut extra, Duration::from_secs(5)).await,
            "a fifth connection must be closed"
        );
    }
    for (n, stream) in held.iter_mut().enumerate() {
        assert!(!closed_by_server(stream, Duration::from_millis(50)).await);
        stream
            .write_all(format!("{}\n", rfc5424_order(n, start_ms)).as_bytes())
            .await
            .expect("write");
    }
    assert_exactly(&client, PROJECT, "bin", 4).await;
    // A closed connection frees its place.
    let mut last = held.pop().expect("a held connection");
    last.shutdown().await.expect("close");
    drop(last);
    let again = logpool_e2e::wait_for(Duration::from_secs(5), || async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        if closed_by_server(&mut stream, Duration::from_millis(300)).await {
            return None;
        }
        Some(stream)
    })
    .await;
    let mut again = again.expect("a place again once one closed");
    again
        .write_all(format!("{}\n", rfc5424_order(4, start_ms)).as_bytes())
        .await
        .expect("write");
    let last_sent = std::time::Instant::now();
    assert_exactly(&client, PROJECT, "bin", 5).await;
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let refused = logpool_api::metrics::sample_value(
        &metrics,
        "logpool_syslog_connections_refused_total",
        &[],
    );
    assert!(refused.is_some_and(|refused| refused >= 3.0), "{refused:?}");

    // A connection silent for idle_timeout_secs (3 s) is closed, after storing
    // what it sent.
    assert!(closed_by_server(&mut again, Duration::from_secs(10)).await);
    let idle = last_sent.elapsed();
    assert!(idle >= Duration::from_millis(2900), "closed after {idle:?}");

    // SIGTERM with senders still connected: a clean exit, in time.
    let status = logpool_e2e::stop_gracefully(&mut child).await;
    assert!(
        status.success(),
        "{status}: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    drop(held);
    drop(again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_cannot_start_fails_the_start_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut busy = listener("busy-in", SyslogTransport::Tcp, "x");
    busy.bind = taken.local_addr().expect("addr");
    let error = TestServer::start_with(|config| config.syslog.listeners = vec![busy])
        .await
        .err()
        .expect("the port is taken");
    let error = format!("{error:#}");
    assert!(error.contains("syslog listener `busy-in`"), "{error}");

    let mut no_key = listener("tls-in", SyslogTransport::Tls, "x");
    no_key.cert_path = Some(tls_data("server.pem"));
    no_key.key_path = Some(tls_data("no-such-key.pem"));
    let error = TestServer::start_with(|config| config.syslog.listeners = vec![no_key])
        .await
        .err()
        .expect("the key is missing");
    let error = format!("{error:#}");
    assert!(
        error.contains("tls-in") && error.contains("key_path"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_counts_what_a_refusing_queue_makes_it_drop() {
    let target = listener("udp-drop-in", SyslogTransport::Udp, "udpdrop");
    let addr = target.bind;
    // The first batch produced to shard 0 fails; UDP cannot hold its sender back.
    let server = server_with(vec![target], &["udpdrop"], |config| {
        config.idempotency.test_fail_first_produce_to_shard = Some(0);
    })
    .await;
    let start_ms = now_ms() - 3_600_000;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("socket");
    let send = |range: std::ops::Range<usize>| {
        let socket = &socket;
        async move {
            for n in range {
                socket
                    .send_to(rfc5424_order(n, start_ms).as_bytes(), addr)
                    .await
                    .expect("send");
            }
        }
    };
    send(0..10).await;
    let dropped = logpool_e2e::wait_for(Duration::from_secs(10), || async {
        let dropped = metric(&server, "logpool_syslog_udp_dropped_total").await;
        (dropped > 0.0).then_some(dropped)
    })
    .await
    .expect("the refused batch is counted");
    send(10..30).await;
    let stored = 30 - dropped as u64;
    assert_exactly(&server.client, PROJECT, "udpdrop", stored).await;
    // Every datagram is either stored or counted as dropped.
    assert_eq!(
        metric(&server, "logpool_syslog_records_stored_total").await,
        stored as f64
    );
    assert_eq!(
        metric(&server, "logpool_syslog_messages_received_total").await,
        30.0
    );
}
