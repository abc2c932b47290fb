//! Engine servers started by one test for itself (pulsar-lite, etcd, MariaDB), so the
//! test can stop one and start it again: each keeps its data in its own directory and
//! comes back on the same port with the same data. The command lines follow
//! `scripts/test-engines.sh`. A server is killed when its guard is dropped, also when
//! the test panics.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::services::free_port;
use crate::wait_for;

/// How long a server may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// How a server shows that it is ready.
#[derive(Debug, Clone)]
enum Probe {
    /// A TCP connection to the port succeeds.
    Tcp(u16),
    /// A GET of the URL answers 2xx with a body containing the text.
    Http(String, &'static str),
    /// The command exits successfully.
    Command(Vec<String>),
}

/// One private server process and how to start it again.
#[derive(Debug)]
pub struct PrivateServer {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    probe: Probe,
    child_opt: Option<Child>,
    log: PathBuf,
    /// Holds the data and the log; removed on drop after the process is gone.
    dir: tempfile::TempDir,
    /// The port clients use.
    pub port: u16,
}

impl PrivateServer {
    /// Starts the process and waits until it answers.
    ///
    /// # Panics
    /// When it does not answer within 90 s (with its log tail).
    pub async fn start(&mut self) {
        assert!(self.child_opt.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("server log");
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("server log")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        self.child_opt = Some(child);
        let probe = self.probe.clone();
        let ready = wait_for(START_TIMEOUT, || {
            let probe = probe.clone();
            async move { probe_once(&probe).await.then_some(()) }
        })
        .await;
        if ready.is_none() {
            panic!(
                "{} did not answer within {START_TIMEOUT:?}:\n{}",
                self.name,
                crate::services::log_tail(&self.log)
            );
        }
    }

    /// Kills the process (SIGKILL: the server gets no chance to say goodbye, as in a
    /// crash or a lost host) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child_opt.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Returns the server's log.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Returns the directory that holds the server's data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn probe_once(probe: &Probe) -> bool {
    match probe {
        Probe::Tcp(port) => tokio::net::TcpStream::connect(("127.0.0.1", *port))
            .await
            .is_ok(),
        Probe::Http(url, expected) => {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .expect("http client");
            match client.get(url).send().await {
                Ok(response) if response.status().is_success() => response
                    .text()
                    .await
                    .is_ok_and(|body| body.contains(expected)),
                _ => false,
            }
        }
        Probe::Command(argv) => tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .status()
            .await
            .is_ok_and(|status| status.success()),
    }
}

fn new_server(name: &'static str, program: PathBuf, port: u16, probe: Probe) -> PrivateServer {
    let dir = tempfile::tempdir().expect("server dir");
    let log = dir.path().join(format!("{name}.log"));
    PrivateServer {
        name,
        program,
        args: Vec::new(),
        probe,
        child_opt: None,
        log,
        dir,
        port,
    }
}

/// The Python that has the PyPI engines installed.
fn python() -> String {
    std::env::var("LOGPOOL_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Starts a pulsar-lite broker (the binary packaged in the `pulsar_lite` wheel) with
/// its own database and `default_partitions = 0`, as the shared test broker runs.
/// Returns it and its URL (`pulsar://127.0.0.1:port`).
pub async fn start_pulsar_lite() -> (PrivateServer, String) {
    let output = Command::new(python())
        .args([
            "-c",
            "import os, pulsar_lite; print(os.path.join(os.path.dirname(pulsar_lite.__file__), 'bin', 'pulsar-lite'))",
        ])
        .output()
        .expect("python for pulsar-lite");
    let program = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    assert!(
        output.status.success() && program.exists(),
        "pulsar-lite is not installed for {}: {}",
        python(),
        String::from_utf8_lossy(&output.stderr)
    );
    let port = free_port();
    let mut server = new_server("pulsar-lite", program, port, Probe::Tcp(port));
    let config = server.dir().join("pulsar-lite.toml");
    let metrics_port = free_port();
    std::fs::write(
        &config,
        format!(
            "default_partitions = 0\n\n[metrics]\nenabled = true\naddr = \"127.0.0.1:{metrics_port}\"\n"
        ),
    )
    .expect("pulsar-lite config");
    let db = server.dir().join("db");
    std::fs::create_dir_all(&db).expect("pulsar-lite db dir");
    server.args = vec![
        "--addr".into(),
        format!("127.0.0.1:{port}"),
        "--db-path".into(),
        db.display().to_string(),
        "--config".into(),
        config.display().to_string(),
    ];
    server.start().await;
    (server, format!("pulsar://127.0.0.1:{port}"))
}

/// Starts a one-member etcd with its own data directory. Returns it and its client
/// endpoint (`http://127.0.0.1:port`).
pub async fn start_etcd() -> (PrivateServer, String) {
    let port = free_port();
    let peer_port = free_port();
    let client = format!("http://127.0.0.1:{port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let mut server = new_server(
        "etcd",
        PathBuf::from("etcd"),
        port,
        Probe::Http(format!("{client}/health"), "\"health\":\"true\""),
    );
    let data = server.dir().join("data");
    server.args = vec![
        "--name".into(),
        "logpool-fault".into(),
        "--data-dir".into(),
        data.display().to_string(),
        "--listen-client-urls".into(),
        client.clone(),
        "--advertise-client-urls".into(),
        client.clone(),
        "--listen-peer-urls".into(),
        peer.clone(),
        "--initial-advertise-peer-urls".into(),
        peer.clone(),
        "--initial-cluster".into(),
        format!("logpool-fault={peer}"),
        "--initial-cluster-state".into(),
        "new".into(),
        "--logger".into(),
        "zap".into(),
        "--log-outputs".into(),
        "stderr".into(),
    ];
    server.start().await;
    (server, client)
}

/// Starts a MariaDB server on its own data directory, socket and port (root over TCP
/// without a password). Returns it and its URL (`mysql://root@127.0.0.1:port`).
pub async fn start_mariadb() -> (PrivateServer, String) {
    // mariadbd refuses to run as root unless told to, so it is told who runs it.
    let user = Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "root".to_string());
    let program = ["/usr/sbin/mariadbd", "/usr/bin/mariadbd"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("mariadbd"));
    let port = free_port();
    let probe_tcp = vec![
        "mariadb".to_string(),
        "--no-defaults".into(),
        "--protocol=TCP".into(),
        "-h127.0.0.1".into(),
        format!("-P{port}"),
        "-uroot".into(),
        "-e".into(),
        "SELECT 1".into(),
    ];
    let mut server = new_server("mariadb", program, port, Probe::Command(probe_tcp));
    let data = server.dir().join("data");
    let socket = server.dir().join("mysqld.sock");
    let installed = Command::new("mariadb-install-db")
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--user={user}"))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
        .output()
        .expect("mariadb-install-db");
    assert!(
        installed.status.success(),
        "mariadb-install-db failed: {}",
        String::from_utf8_lossy(&installed.stderr)
    );
    server.args = vec![
        "--no-defaults".into(),
        format!("--datadir={}", data.display()),
        format!("--user={user}"),
        format!("--socket={}", socket.display()),
        format!("--port={port}"),
        "--bind-address=127.0.0.1".into(),
        format!("--pid-file={}", server.dir().join("mariadbd.pid").display()),
        "--skip-name-resolve".into(),
        "--skip-log-bin".into(),
        "--innodb-buffer-pool-size=64M".into(),
    ];
    // The first start waits for the socket: root@127.0.0.1 (the TCP login) does not
    // exist yet; the install creates root@localhost only.
    let tcp_probe = std::mem::replace(
        &mut server.probe,
        Probe::Command(vec![
            "mariadb".into(),
            "--no-defaults".into(),
            format!("--socket={}", socket.display()),
            "-uroot".into(),
            "-e".into(),
            "SELECT 1".into(),
        ]),
    );
    server.start().await;
    let granted = Command::new("mariadb")
        .arg("--no-defaults")
        .arg(format!("--socket={}", socket.display()))
        .args([
            "-uroot",
            "-e",
            "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; \
             GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; \
             FLUSH PRIVILEGES;",
        ])
        .output()
        .expect("mariadb client");
    assert!(
        granted.status.success(),
        "granting root@127.0.0.1 failed: {}",
        String::from_utf8_lossy(&granted.stderr)
    );
    server.probe = tcp_probe;
    let probe = server.probe.clone();
    let reachable = wait_for(START_TIMEOUT, || {
        let probe = probe.clone();
        async move { probe_once(&probe).await.then_some(()) }
    })
    .await;
    assert!(reachable.is_some(), "mariadb does not answer over TCP");
    (server, format!("mysql://root@127.0.0.1:{port}"))
}
