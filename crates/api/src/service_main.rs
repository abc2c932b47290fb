//! Shared start-up of the per-service binaries.

use std::collections::HashMap;

use anyhow::bail;
use logpool_engines::config::{Config, CoordinationConfig};

/// Loads the configuration for a service that runs as its own process: the config
/// file is the first argument, `LOGPOOL_*` variables override it.
///
/// # Errors
/// Fails on a bad configuration, or when the configuration uses in-process
/// coordination, which cannot connect separate processes.
pub fn load_service_config(service: &str) -> anyhow::Result<Config> {
    let config_file = std::env::args().nth(1).map(std::path::PathBuf::from);
    let env: HashMap<String, String> = std::env::vars().collect();
    let config = Config::load(config_file.as_deref(), &env)?;
    if matches!(config.coordination, CoordinationConfig::Local) {
        bail!(
            "{service} as a separate process needs shared engines (distributed mode); \
             this configuration uses in-process coordination: run `logpool standalone` instead"
        );
    }
    Ok(config)
}
