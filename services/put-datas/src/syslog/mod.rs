//! Syslog listeners (`[[syslog.listeners]]`): TCP ([`tcp`], RFC 6587 framing,
//! [`framing`]), TLS (the same over [`tls`], RFC 5425) and UDP ([`udp`], RFC
//! 5426), each writing into the one pool its configuration names. Messages are
//! parsed as RFC 5424 ([`rfc5424`]) or RFC 3164 ([`rfc3164`]), told apart by the
//! version after `<PRI>`, and become records ([`message`]) stored in batches
//! through the PutDatas path ([`batch`]): limits, quotas, event-time window and
//! durability are PutDatas's.
//!
//! Syslog has no acknowledgement, so the contract is: over TCP and TLS a batch the
//! pool cannot take yet (full queue, quota, missing pool) is retried with backoff
//! while the connection is not read (the sender's own queue holds the rest); a
//! received frame is never dropped unless it is refused for its content (counted
//! and logged). UDP cannot hold back its senders: what it cannot store is dropped
//! and counted.

pub mod batch;
pub mod framing;
pub mod message;
pub mod rfc3164;
pub mod rfc5424;
pub mod tcp;
pub mod tls;
pub mod udp;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use logpool_api::stop::Stop;
use logpool_engines::config::{Config, SyslogListenerConfig, SyslogTransport};
use tokio::task::{JoinHandle, JoinSet};

use crate::PutDatasState;
use message::SyslogMessage;

/// Counters of every listener, so that refusals and losses are visible.
#[derive(Debug, Default)]
pub struct SyslogStats {
    /// Connections accepted (TCP and TLS).
    pub connections_accepted: AtomicU64,
    /// Connections closed at once: over `max_connections`, or a failed TLS
    /// handshake (no or an untrusted client certificate).
    pub connections_refused: AtomicU64,
    /// Frames and datagrams received.
    pub messages_received: AtomicU64,
    /// Of those, not syslog: stored as their raw text with `parse_error`.
    pub messages_malformed: AtomicU64,
    /// Of those, longer than `max_message_bytes`: cut and stored with `truncated`.
    pub messages_truncated: AtomicU64,
    /// Records durable in the queue.
    pub records_stored: AtomicU64,
    /// Records refused for their content (a PutDatas limit, a time outside the
    /// event-time window): logged and counted, not stored.
    pub records_refused: AtomicU64,
    /// Stores retried over TCP/TLS (queue full, quota, pool missing), the
    /// connection not read meanwhile.
    pub store_retries: AtomicU64,
    /// UDP messages dropped because the pool could not take them.
    pub udp_dropped: AtomicU64,
    /// TCP/TLS records still unstored when the process stopped while the pool kept
    /// refusing them.
    pub records_lost_at_shutdown: AtomicU64,
}

impl SyslogStats {
    fn add(counter: &AtomicU64, amount: usize) {
        counter.fetch_add(amount as u64, Ordering::Relaxed);
    }
}

impl logpool_api::metrics::CounterSource for SyslogStats {
    fn counters(&self) -> Vec<logpool_api::metrics::CounterReading> {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        vec![
            (
                "logpool_syslog_connections_accepted_total",
                "Syslog TCP and TLS connections accepted.",
                read(&self.connections_accepted),
            ),
            (
                "logpool_syslog_connections_refused_total",
                "Syslog connections closed at once: over max_connections or a failed TLS handshake.",
                read(&self.connections_refused),
            ),
            (
                "logpool_syslog_messages_received_total",
                "Syslog frames and datagrams received.",
                read(&self.messages_received),
            ),
            (
                "logpool_syslog_messages_malformed_total",
                "Syslog messages that did not parse, stored raw with parse_error.",
                read(&self.messages_malformed),
            ),
            (
                "logpool_syslog_messages_truncated_total",
                "Syslog messages longer than max_message_bytes, cut and stored with truncated.",
                read(&self.messages_truncated),
            ),
            (
                "logpool_syslog_records_stored_total",
                "Syslog records durable in the queue.",
                read(&self.records_stored),
            ),
            (
                "logpool_syslog_records_refused_total",
                "Syslog records refused for their content (a limit or the event-time window).",
                read(&self.records_refused),
            ),
            (
                "logpool_syslog_store_retries_total",
                "Syslog TCP/TLS stores retried while the pool could not take them.",
                read(&self.store_retries),
            ),
            (
                "logpool_syslog_udp_dropped_total",
                "Syslog UDP messages dropped because the pool could not take them.",
                read(&self.udp_dropped),
            ),
            (
                "logpool_syslog_records_lost_at_shutdown_total",
                "Syslog TCP/TLS records unstored at shutdown while the pool refused them.",
                read(&self.records_lost_at_shutdown),
            ),
        ]
    }
}

/// A bound listener, ready to run.
enum Bound {
    Stream(tcp::StreamListener),
    Datagram(udp::DatagramListener),
}

/// Binds every configured listener (all or none: a port that cannot be bound
/// fails the start, naming the listener) and runs them until `stop`. The task ends
/// once every connection has stored what it received.
///
/// # Errors
/// A listener whose address cannot be bound or whose TLS files cannot be used.
pub async fn start(
    config: &Config,
    state: PutDatasState,
    stats: Arc<SyslogStats>,
    stop: Stop,
) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
    let handshake_timeout = Duration::from_secs(config.http.tls_handshake_timeout_secs.max(1));
    let mut bound = Vec::with_capacity(config.syslog.listeners.len());
    for listener in &config.syslog.listeners {
        let settings = Arc::new(listener.clone());
        let context = || format!("syslog listener `{}` on {}", listener.name, listener.bind);
        bound.push(match listener.transport {
            SyslogTransport::Udp => Bound::Datagram(
                udp::DatagramListener::bind(settings)
                    .await
                    .with_context(context)?,
            ),
            SyslogTransport::Tcp | SyslogTransport::Tls => {
                let acceptor = match listener.transport {
                    SyslogTransport::Tls => Some(tls::acceptor(listener).with_context(context)?),
                    _ => None,
                };
                Bound::Stream(
                    tcp::StreamListener::bind(settings, acceptor, handshake_timeout)
                        .await
                        .with_context(context)?,
                )
            }
        });
        tracing::info!(
            listener = %listener.name,
            bind = %listener.bind,
            transport = ?listener.transport,
            project = %listener.project,
            pool = %listener.pool,
            "syslog listener started"
        );
    }
    Ok(tokio::spawn(async move {
        let mut running = JoinSet::new();
        for listener in bound {
            let (state, stats, stop) = (state.clone(), stats.clone(), stop.clone());
            match listener {
                Bound::Stream(listener) => running.spawn(listener.run(state, stats, stop)),
                Bound::Datagram(listener) => running.spawn(listener.run(state, stats, stop)),
            };
        }
        while let Some(ended) = running.join_next().await {
            ended.context("a syslog listener panicked")?;
        }
        Ok(())
    }))
}

/// What one frame turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A syslog message.
    Message(SyslogMessage),
    /// Not syslog: the text as received and why it is not.
    Unparsed {
        /// The frame as text (invalid UTF-8 replaced).
        line: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Parses one frame received at `arrival_ns`: RFC 5424 when a version follows
/// `<PRI>`, else RFC 3164.
pub fn parse_frame(bytes: &[u8], arrival_ns: i64) -> Parsed {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end_matches(['\n', '\r', '\0']);
    let unparsed = |reason: String| Parsed::Unparsed {
        line: text.to_string(),
        reason,
    };
    match message::split_priority(text) {
        Err(reason) => unparsed(reason),
        Ok((priority, rest)) if rfc5424::is_rfc5424(rest) => match rfc5424::parse(priority, rest) {
            Ok(message) => Parsed::Message(message),
            Err(reason) => unparsed(reason),
        },
        Ok((priority, rest)) => Parsed::Message(rfc3164::parse(priority, rest, arrival_ns)),
    }
}

/// The settings of one listener, shared by its connections.
pub type Settings = Arc<SyslogListenerConfig>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_frames_are_told_apart_by_their_header() {
        let now = 1_773_144_000 * 1_000_000_000;
        let Parsed::Message(new) = parse_frame(b"<14>1 - host app - - - hi\n", now) else {
            panic!("RFC 5424");
        };
        assert_eq!(
            (new.hostname.as_deref(), new.message.as_str()),
            (Some("host"), "hi")
        );
        let Parsed::Message(old) = parse_frame(b"<14>Mar  1 10:00:00 host app: hi", now) else {
            panic!("RFC 3164");
        };
        assert_eq!(old.app_name.as_deref(), Some("app"));
        assert_eq!(
            parse_frame(b"no priority \xff", now),
            Parsed::Unparsed {
                line: "no priority \u{fffd}".to_string(),
                reason: "no `<PRI>` at the start".to_string()
            }
        );
        let Parsed::Unparsed { reason, .. } =
            parse_frame(b"<14>1 2026-13-01T00:00:00Z h a p m - x", now)
        else {
            panic!("a bad RFC 5424 header is not read as RFC 3164");
        };
        assert!(reason.contains("TIMESTAMP"), "{reason}");
    }
}
