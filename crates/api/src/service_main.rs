//! Shared start-up of the per-service binaries (distributed mode).
//!
//! Every service binary takes `--config FILE` (TOML) plus `LOGPOOL_*` environment
//! overrides, and serves `/healthz`, `/readyz` and its own routes on `listen`
//! (HTTPS only when `[tls]` is set) through [`crate::node::run_service_binary`].

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use logpool_engines::config::{Config, CoordinationConfig};

/// Every logpool process (the service binaries and `logpool` itself, which all
/// start through this crate) allocates through mimalloc: glibc malloc keeps a heap
/// arena per thread that stays at its peak after an indexing burst (BENCHMARKS.md:
/// peak RSS at 10 M records 1,692 → about 880 MiB).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Parses `--config FILE` from the command line.
///
/// # Errors
/// Names the argument that is wrong.
pub fn config_file_from_args(args: &[String]) -> anyhow::Result<Option<PathBuf>> {
    let mut file = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--config" | "-c" => {
                let value = rest.next().context("`--config` needs a file path")?;
                file = Some(PathBuf::from(value));
            }
            other => match other.strip_prefix("--config=") {
                Some(value) => file = Some(PathBuf::from(value)),
                None => bail!("unknown argument `{other}`; usage: --config FILE"),
            },
        }
    }
    Ok(file)
}

/// Loads the configuration for a service that runs as its own process.
///
/// # Errors
/// Fails on a bad configuration (naming the key), or when the configuration uses
/// in-process coordination, which cannot connect separate processes.
pub fn load_service_config(service: &str) -> anyhow::Result<Config> {
    // Before anything is opened: files private to this user, the full open-file limit.
    crate::process::prepare();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config_file = config_file_from_args(&args)?;
    let env: HashMap<String, String> = std::env::vars().collect();
    let config = Config::load(config_file.as_deref(), &env)?;
    // A bad certificate or key fails the start here, before engines are connected.
    crate::tls::acceptor(&config.tls)?;
    if matches!(config.coordination, CoordinationConfig::Local) {
        bail!(
            "{service} as a separate process needs shared engines (distributed mode); \
             this configuration uses in-process coordination: run `logpool standalone` instead"
        );
    }
    Ok(config)
}

/// Logs to stderr, filtered by `LOGPOOL_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGPOOL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops this process");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn test_config_argument_forms() {
        assert_eq!(config_file_from_args(&args(&[])).expect("none"), None);
        assert_eq!(
            config_file_from_args(&args(&["--config", "a.toml"])).expect("flag"),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(
            config_file_from_args(&args(&["--config=b.toml"])).expect("equals"),
            Some(PathBuf::from("b.toml"))
        );
        assert!(config_file_from_args(&args(&["--config"])).is_err());
        assert!(config_file_from_args(&args(&["c.toml"])).is_err());
    }
}
