//! The UDP listener: one message per datagram (RFC 5426), cut at
//! `max_message_bytes`, batched on the socket. UDP cannot hold its senders back: a
//! batch the pool cannot take is dropped and counted (`udp_dropped`). The next
//! batch fills while one is stored; once it is full too, datagrams wait in the
//! socket's receive buffer, and what overflows it the kernel drops (counted in
//! `/proc/net/snmp`, `RcvbufErrors`).

use std::sync::Arc;

use bytes::Bytes;
use logpool_api::stop::Stop;
use tokio::net::UdpSocket;

use super::batch::{received, Batch, Delivery, Pipeline, Sink};
use super::{Settings, SyslogStats};
use crate::PutDatasState;

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

/// A bound UDP listener.
pub struct DatagramListener {
    socket: UdpSocket,
    settings: Settings,
}

impl DatagramListener {
    /// Binds the listener's address.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn bind(settings: Settings) -> std::io::Result<DatagramListener> {
        let socket = UdpSocket::bind(settings.bind).await?;
        Ok(DatagramListener { socket, settings })
    }

    /// Receives until `stop`, then stores what is left.
    pub async fn run(self, state: PutDatasState, stats: Arc<SyslogStats>, mut stop: Stop) {
        let max = self.settings.max_message_bytes;
        let sink = Sink {
            state,
            settings: self.settings.clone(),
            stats: stats.clone(),
        };
        let mut batch = Batch::new(&self.settings, sink.state.limits.max_body_bytes);
        let mut datagram = vec![0u8; MAX_DATAGRAM];
        let mut pipeline = Pipeline::new(sink.clone(), Delivery::Drop, stop.clone());
        loop {
            let linger = batch.deadline();
            let received_from = tokio::select! {
                () = stop.stopped() => break,
                () = async {
                    if let Some(deadline) = linger {
                        tokio::time::sleep_until(deadline).await;
                    }
                }, if linger.is_some() => {
                    pipeline.hand_over(batch.take()).await;
                    continue;
                }
                received_from = self.socket.recv_from(&mut datagram) => received_from,
            };
            let (length, peer) = match received_from {
                Ok(received_from) => received_from,
                Err(error) => {
                    // E.g. an ICMP error of an earlier send: the socket goes on.
                    tracing::debug!(listener = %self.settings.name, %error, "syslog UDP receive failed");
                    continue;
                }
            };
            let kept = length.min(max);
            let peer_ip: Arc<str> = Arc::from(peer.ip().to_string());
            let frame = received(
                Bytes::copy_from_slice(&datagram[..kept]),
                length > max,
                &peer_ip,
                &stats,
            );
            if batch.push(frame) {
                pipeline.hand_over(batch.take()).await;
            }
        }
        pipeline.hand_over(batch.take()).await;
        pipeline.wait().await;
        tracing::info!(listener = %self.settings.name, "syslog listener stopped");
    }
}
