//! What a running process uses, read from `/proc/<pid>` (Linux): resident memory,
//! its peak, threads and open file descriptors. Load and fault tests bound these.

/// One reading of a process's footprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessStats {
    /// Resident memory now, in KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident memory since start, in KiB (`VmHWM`).
    pub peak_rss_kib: u64,
    /// Threads now.
    pub threads: u64,
    /// Open file descriptors now.
    pub fds: u64,
}

impl ProcessStats {
    /// Reads the stats of `pid`, or `None` when the process is gone.
    pub fn read(pid: u32) -> Option<ProcessStats> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| -> Option<u64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|value| value.parse().ok())
        };
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
        Some(ProcessStats {
            rss_kib: field("VmRSS:")?,
            peak_rss_kib: field("VmHWM:")?,
            threads: field("Threads:")?,
            fds,
        })
    }
}

/// The soft limit on open files of `pid` (`None`: unlimited or unreadable).
pub fn open_file_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
