//! The server under test: a `logpool standalone` child process on a temporary data
//! directory, so that its CPU time and peak memory are its own and not the load
//! generator's. Read from `/proc` (Linux only; elsewhere those figures are absent).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use logpool_client::LogpoolClient;
use tokio::process::{Child, Command};

/// How long a fresh server may take to answer `/readyz`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopping server may take to commit and exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// A running child server.
#[derive(Debug)]
pub struct ChildServer {
    child: Child,
    /// Its base URL.
    pub url: String,
    log_file: PathBuf,
}

impl ChildServer {
    /// Starts `logpool standalone` (this very binary) on `data_dir` with
    /// `admin_key` as its operator key (`LOGPOOL_ADMIN_KEY`), listening on
    /// `127.0.0.1:port` (a free port when `None`), and waits until it is ready.
    ///
    /// # Errors
    /// Fails when the process cannot start or does not become ready in time.
    pub async fn start(
        data_dir: &Path,
        log_file: &Path,
        admin_key: &str,
        port: Option<u16>,
    ) -> anyhow::Result<ChildServer> {
        ChildServer::start_with_env(data_dir, log_file, admin_key, port, &[]).await
    }

    /// [`ChildServer::start`] with `env` (`LOGPOOL_*` overrides) set.
    ///
    /// # Errors
    /// Fails when the process cannot start or does not become ready in time.
    pub async fn start_with_env(
        data_dir: &Path,
        log_file: &Path,
        admin_key: &str,
        port: Option<u16>,
        env: &[(&str, String)],
    ) -> anyhow::Result<ChildServer> {
        let exe = std::env::current_exe().context("cannot find the logpool binary")?;
        // A free port is chosen by binding port 0 and releasing it: another process
        // could take it in between, which then shows up as a start failure.
        let port = match port {
            Some(port) => port,
            None => std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port(),
        };
        std::fs::create_dir_all(data_dir)?;
        let log = std::fs::File::create(log_file)?;
        let mut command = Command::new(exe);
        // The default configuration, which the baseline copies: no LOGPOOL_*
        // overrides from the caller's environment.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("LOGPOOL_") {
                command.env_remove(name);
            }
        }
        command.env("LOGPOOL_ADMIN_KEY", admin_key);
        command.envs(env.iter().map(|(name, value)| (name, value)));
        let child = command
            .arg("standalone")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("LOGPOOL_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start `logpool standalone`")?;
        let mut server = ChildServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log_file: log_file.to_path_buf(),
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = LogpoolClient::new(&self.url)?;
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the server exited with {status} before it was ready: {}",
                    self.log_tail()
                );
            }
            if client.get("/readyz").await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "the server was not ready within {READY_TIMEOUT:?}: {}",
            self.log_tail()
        )
    }

    /// The last lines of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops the server with SIGTERM (it drains, commits and exits), killing it when
    /// it does not exit in time.
    ///
    /// # Errors
    /// Fails when the server exits with an error or has to be killed.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let Some(pid) = self.child.id() else {
            return Ok(());
        };
        // `kill` the command: sending a signal directly would need unsafe code.
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
        if !sent.is_ok_and(|s| s.success()) {
            self.child.kill().await?;
            bail!("could not send SIGTERM to the server; killed it");
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    bail!("the server stopped with {status}: {}", self.log_tail());
                }
                Ok(())
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("the server did not stop within {STOP_TIMEOUT:?}; killed it")
            }
        }
    }
}

/// A fresh administrator key for a child server, unique per run. The harness sends
/// it as `Authorization: Bearer <key>`.
pub fn admin_key() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("lpbench{nanos:x}{:x}", std::process::id())
}

/// CPU time (user + system) of a process so far, in seconds.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it are plain.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks_per_second())
}

/// Peak resident memory of a process, in bytes (`VmHWM`). It counts the pages of
/// memory-mapped files (index and queue segments) that were resident, not only
/// the heap.
pub fn peak_rss_bytes(pid: &str) -> Option<u64> {
    status_bytes(pid, "VmHWM:")
}

/// Resident memory of a process now: (anonymous, file-backed), in bytes.
pub fn rss_split_bytes(pid: &str) -> Option<(u64, u64)> {
    Some((
        status_bytes(pid, "RssAnon:")?,
        status_bytes(pid, "RssFile:")?,
    ))
}

fn status_bytes(pid: &str, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            // The value on every common Linux build.
            .unwrap_or(100.0)
    })
}

/// Total size of the files under `dir` (0 when it does not exist).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        if !Path::new("/proc/self/stat").exists() {
            return;
        }
        assert!(cpu_seconds("self").is_some_and(|s| s >= 0.0));
        assert!(peak_rss_bytes("self").is_some_and(|b| b > 0));
    }
}
