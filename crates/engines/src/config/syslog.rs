//! Syslog listeners (`[[syslog.listeners]]`): TCP, UDP or TLS ports that put-datas
//! opens besides HTTP, each writing every message it receives into one configured
//! pool. None by default.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::bail;
use logpool_core::limits::IngestLimits;
use serde::{Deserialize, Serialize};

/// The `[syslog]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyslogConfig {
    /// The listeners; empty (the default): no syslog port is opened.
    pub listeners: Vec<SyslogListenerConfig>,
}

/// How a listener receives messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyslogTransport {
    /// TCP, RFC 6587 framing (octet counting or newline), detected per frame.
    #[default]
    Tcp,
    /// UDP, one message per datagram (RFC 5426).
    Udp,
    /// TCP in TLS (RFC 5425), the same framing as `tcp`.
    Tls,
}

/// One listener (`[[syslog.listeners]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogListenerConfig {
    /// Names the listener in logs and in each record's `listener` field.
    pub name: String,
    /// Address and port to bind, e.g. `0.0.0.0:6514`.
    pub bind: SocketAddr,
    /// `tcp` (default), `udp` or `tls`.
    #[serde(default)]
    pub transport: SyslogTransport,
    /// The tenant of the target pool (default `default`).
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// The project of the target pool.
    pub project: String,
    /// The target pool: every message this listener receives is written to it.
    pub pool: String,
    /// Longest message kept, in bytes (default 65536); the rest of a longer one is
    /// cut off and the record flagged `truncated`.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Most connections open at once (TCP and TLS; default 1000); more are closed at
    /// once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A TCP or TLS connection that sends nothing this long is closed, in seconds
    /// (default 0: never; senders reconnect when they have more to send).
    #[serde(default)]
    pub idle_timeout_secs: u64,
    /// Records of one connection (or of the UDP socket) stored together (default 500).
    #[serde(default = "default_batch_records")]
    pub batch_records: usize,
    /// Longest a received message waits for its batch to fill before it is stored
    /// anyway, in milliseconds (default 200).
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    /// TLS: PEM certificate chain of the listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_path: Option<PathBuf>,
    /// TLS: PEM private key of the certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_path: Option<PathBuf>,
    /// TLS: PEM certificates of the CAs whose client certificates are accepted.
    /// Set: mutual TLS, a client without such a certificate is refused. Unset: any
    /// client may connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_path: Option<PathBuf>,
}

fn default_tenant() -> String {
    "default".to_string()
}

fn default_max_message_bytes() -> usize {
    64 * 1024
}

fn default_max_connections() -> usize {
    1000
}

fn default_batch_records() -> usize {
    500
}

fn default_linger_ms() -> u64 {
    200
}

/// Shortest `max_message_bytes`: what RFC 5424 says every receiver must take.
pub const MIN_MESSAGE_BYTES: usize = 480;

impl SyslogConfig {
    /// Checks each listener, naming the listener and the setting that is wrong.
    ///
    /// # Errors
    /// A duplicate name or address, a missing TLS file, a value out of range.
    pub fn validate(&self, limits: &IngestLimits) -> anyhow::Result<()> {
        for (i, listener) in self.listeners.iter().enumerate() {
            let at = format!("`syslog.listeners[{i}]` (`{}`)", listener.name);
            if listener.name.trim().is_empty() {
                bail!("`syslog.listeners[{i}].name` must not be empty");
            }
            if self.listeners[..i]
                .iter()
                .any(|other| other.name == listener.name)
            {
                bail!("{at}: another listener has the same name");
            }
            if self.listeners[..i].iter().any(|other| {
                other.bind == listener.bind
                    && (other.transport == SyslogTransport::Udp)
                        == (listener.transport == SyslogTransport::Udp)
            }) {
                bail!("{at}: another listener binds {}", listener.bind);
            }
            for (what, value) in [
                ("tenant", &listener.tenant),
                ("project", &listener.project),
                ("pool", &listener.pool),
            ] {
                logpool_core::names::validate_name(value)
                    .map_err(|reason| anyhow::anyhow!("{at}: `{what}`: {reason}"))?;
            }
            if listener.max_message_bytes < MIN_MESSAGE_BYTES
                || listener.max_message_bytes > limits.max_value_bytes
            {
                bail!(
                    "{at}: `max_message_bytes` must be between {MIN_MESSAGE_BYTES} and \
                     `limits.max_value_bytes` ({}), got {}",
                    limits.max_value_bytes,
                    listener.max_message_bytes
                );
            }
            if listener.max_connections == 0 {
                bail!("{at}: `max_connections` must be positive");
            }
            if listener.batch_records == 0
                || listener.batch_records > limits.max_records_per_request
            {
                bail!(
                    "{at}: `batch_records` must be between 1 and \
                     `limits.max_records_per_request` ({})",
                    limits.max_records_per_request
                );
            }
            let tls = listener.transport == SyslogTransport::Tls;
            if tls && (listener.cert_path.is_none() || listener.key_path.is_none()) {
                bail!("{at}: `transport = \"tls\"` needs `cert_path` and `key_path`");
            }
            if !tls
                && (listener.cert_path.is_some()
                    || listener.key_path.is_some()
                    || listener.client_ca_path.is_some())
            {
                bail!(
                    "{at}: `cert_path`, `key_path` and `client_ca_path` are for \
                     `transport = \"tls\"` only"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(text: &str) -> anyhow::Result<SyslogConfig> {
        let config: SyslogConfig = toml::from_str(text)?;
        config.validate(&IngestLimits::default())?;
        Ok(config)
    }

    #[test]
    fn test_the_commented_sample_is_valid() {
        let sample = include_str!("../../../../config/logpool.toml");
        let start = sample
            .find("# [[syslog.listeners]]")
            .expect("the sample has a listener");
        let uncommented: String = sample[start..]
            .lines()
            .map(|line| line.strip_prefix("# ").unwrap_or(line))
            .filter(|line| !line.trim_start().starts_with('#'))
            .map(|line| format!("{line}\n"))
            .collect();
        let text = uncommented.replace("[[syslog.listeners]]", "[[listeners]]");
        let config = listener(&text).expect("valid");
        assert_eq!(config.listeners[0].transport, SyslogTransport::Tls);
    }

    #[test]
    fn test_defaults_and_validation_name_the_setting() {
        let config = listener(
            "[[listeners]]\nname = \"a\"\nbind = \"127.0.0.1:6514\"\nproject = \"shop\"\npool = \"sys\"\n",
        )
        .expect("valid");
        let first = &config.listeners[0];
        assert_eq!(first.transport, SyslogTransport::Tcp);
        assert_eq!(first.tenant, "default");
        assert_eq!(first.max_message_bytes, 65_536);
        let tls = listener(
            "[[listeners]]\nname = \"a\"\nbind = \"127.0.0.1:6514\"\ntransport = \"tls\"\nproject = \"shop\"\npool = \"sys\"\n",
        )
        .expect_err("no certificate");
        assert!(tls.to_string().contains("cert_path"), "{tls}");
        let big = listener(
            "[[listeners]]\nname = \"a\"\nbind = \"127.0.0.1:6514\"\nproject = \"shop\"\npool = \"sys\"\nmax_message_bytes = 10000000\n",
        )
        .expect_err("too big");
        assert!(big.to_string().contains("max_message_bytes"), "{big}");
        let twice = listener(
            "[[listeners]]\nname = \"a\"\nbind = \"127.0.0.1:6514\"\nproject = \"shop\"\npool = \"sys\"\n\
             [[listeners]]\nname = \"b\"\nbind = \"127.0.0.1:6514\"\nproject = \"shop\"\npool = \"sys\"\n",
        )
        .expect_err("same address");
        assert!(twice.to_string().contains("127.0.0.1:6514"), "{twice}");
        // TCP and UDP may share a port number.
        listener(
            "[[listeners]]\nname = \"a\"\nbind = \"127.0.0.1:6514\"\nproject = \"shop\"\npool = \"sys\"\n\
             [[listeners]]\nname = \"b\"\nbind = \"127.0.0.1:6514\"\ntransport = \"udp\"\nproject = \"shop\"\npool = \"sys\"\n",
        )
        .expect("tcp and udp");
    }
}
