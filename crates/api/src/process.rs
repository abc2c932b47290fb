//! Process-wide settings every logpool binary applies before it opens anything:
//! the file-descriptor limit and the mode of the files it creates.

/// Raises the soft limit on open file descriptors to the hard limit and returns the
/// limit now in effect (`None` when it is unlimited or cannot be read).
///
/// Connections and the engines' files (index segments, queue segments, databases)
/// share this limit; the default soft limit of many systems (1024) would let a few
/// hundred idle connections starve the engines. The connection cap is derived from
/// the value returned (see [`crate::server::connection_cap`]).
pub fn raise_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => limit = getrlimit(Resource::Nofile),
            Err(error) => {
                tracing::warn!(%error, "cannot raise the open-file limit to its hard limit");
            }
        }
    }
    limit.current
}

/// The soft limit on open file descriptors (`None`: unlimited).
pub fn file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Makes every file and directory this process creates from now on private to its
/// user (umask 077): the data directory holds key hashes and the cursor signing
/// key, and the embedded engines create their files with the usual 0644.
pub fn restrict_new_file_modes() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Both of the above: what a logpool server process does first.
pub fn prepare() {
    restrict_new_file_modes();
    if let Some(limit) = raise_file_limit() {
        tracing::debug!(limit, "open-file limit");
    }
}
