//! ClickHouse as a peer of `logpool bench queries --clickhouse`: the script
//! `crates/bench/peer/clickhouse_peer.py` runs embedded ClickHouse (PyPI `chdb`) on
//! the same records, in the table a ClickHouse user would write for logs (the
//! script documents it), and answers one query per line, so that the bench
//! alternates the engines run by run.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Longest wait for the peer to load the records (minutes per ten million on a
/// small machine) and for one answer.
const LOAD_TIMEOUT: Duration = Duration::from_secs(3600);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

/// What the peer holds once loaded.
#[derive(Debug, Clone)]
pub struct PeerTable {
    /// ClickHouse's version.
    pub version: String,
    /// Rows in the table.
    pub rows: u64,
    /// Seconds the load took (insert and final merge), when the table was built.
    pub load_secs: f64,
    /// Bytes of the table's active parts.
    pub table_bytes: u64,
    /// Bytes of the whole database directory.
    pub dir_bytes: u64,
    /// Active parts.
    pub parts: u64,
}

/// The running peer.
pub struct ClickHousePeer {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    /// What it loaded.
    pub table: PeerTable,
}

/// The peer's script: next to the working directory, else in the source tree this
/// binary was built from.
fn script() -> PathBuf {
    let relative = PathBuf::from("crates/bench/peer/clickhouse_peer.py");
    if relative.is_file() {
        return relative;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peer/clickhouse_peer.py")
}

impl ClickHousePeer {
    /// Starts the peer on database directory `db` with interpreter `python`; it
    /// loads `records` (NDJSON) when `db` holds no table yet.
    ///
    /// # Errors
    /// Fails when the interpreter or `chdb` is missing or the load fails.
    pub async fn start(python: &str, db: &Path, records: &Path) -> anyhow::Result<ClickHousePeer> {
        let mut child = Command::new(python)
            .arg(script())
            .arg("--db")
            .arg(db)
            .arg("--records")
            .arg(records)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!("cannot run {python} (set --python to an interpreter with `chdb`)")
            })?;
        let stdin = child.stdin.take().context("the peer has no stdin")?;
        let stdout = child.stdout.take().context("the peer has no stdout")?;
        let mut stdout = BufReader::new(stdout).lines();
        let ready = read_line(&mut stdout, LOAD_TIMEOUT)
            .await
            .context("the ClickHouse peer did not load the records")?;
        let number = |name: &str| ready[name].as_u64().unwrap_or(0);
        let table = PeerTable {
            version: ready["version"].as_str().unwrap_or("?").to_string(),
            rows: number("rows"),
            load_secs: ready["load_secs"].as_f64().unwrap_or(0.0),
            table_bytes: number("table_bytes"),
            dir_bytes: number("dir_bytes"),
            parts: number("parts"),
        };
        Ok(ClickHousePeer {
            child,
            stdin,
            stdout,
            table,
        })
    }

    /// Asks one query; returns its latency in ms (measured inside the peer, SQL
    /// round trip through chdb) and the answer.
    ///
    /// # Errors
    /// Fails when the peer refuses the query or stopped.
    pub async fn ask(&mut self, request: &Value) -> anyhow::Result<(f64, Value)> {
        let mut line = serde_json::to_vec(request)?;
        line.push(b'\n');
        self.stdin.write_all(&line).await?;
        self.stdin.flush().await?;
        let reply = read_line(&mut self.stdout, ANSWER_TIMEOUT).await?;
        if let Some(error) = reply.get("error") {
            bail!("the ClickHouse peer refused {request}: {error}");
        }
        let ms = reply["ms"]
            .as_f64()
            .context("no `ms` in the peer's answer")?;
        Ok((ms, reply["answer"].clone()))
    }

    /// Closes the peer's input and waits for it to exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        drop(self.stdin);
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .context("the ClickHouse peer did not exit")??;
        Ok(())
    }
}

async fn read_line(
    lines: &mut Lines<BufReader<ChildStdout>>,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let line = tokio::time::timeout(timeout, lines.next_line())
        .await
        .context("the ClickHouse peer did not answer in time")??
        .context("the ClickHouse peer exited")?;
    serde_json::from_str(&line).with_context(|| format!("the peer wrote no JSON: {line}"))
}
