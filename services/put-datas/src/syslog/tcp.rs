//! TCP and TLS listeners: one task per connection, at most `max_connections` at
//! once, each reading frames ([`super::framing`]) into its own batch. A batch is
//! stored when full or after `linger_ms`, while the next one fills; once that one
//! is full too and the first is still being stored (or retried), the connection is
//! not read, so a pool that cannot take more holds the sender back through TCP
//! flow control instead of losing its messages.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use logpool_api::stop::Stop;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::batch::{received, Batch, Delivery, Pipeline, Sink};
use super::framing::FrameDecoder;
use super::{Settings, SyslogStats};
use crate::PutDatasState;

/// Longest wait for a connection's orderly close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Bytes read from a connection at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A bound TCP or TLS listener.
pub struct StreamListener {
    listener: TcpListener,
    settings: Settings,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
}

impl StreamListener {
    /// Binds the listener's address.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn bind(
        settings: Settings,
        tls: Option<TlsAcceptor>,
        handshake_timeout: Duration,
    ) -> std::io::Result<StreamListener> {
        let listener = TcpListener::bind(settings.bind).await?;
        Ok(StreamListener {
            listener,
            settings,
            tls,
            handshake_timeout,
        })
    }

    /// Accepts connections until `stop`, then waits for every connection to store
    /// what it received.
    pub async fn run(self, state: PutDatasState, stats: Arc<SyslogStats>, mut stop: Stop) {
        let permits = Arc::new(Semaphore::new(self.settings.max_connections));
        let sink = Sink {
            state,
            settings: self.settings.clone(),
            stats: stats.clone(),
        };
        let mut connections = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                () = stop.stopped() => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                accepted = self.listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(listener = %self.settings.name, %error, "syslog accept failed");
                    if stop.sleep(Duration::from_millis(100)).await {
                        break;
                    }
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                SyslogStats::add(&stats.connections_refused, 1);
                tracing::warn!(
                    listener = %self.settings.name,
                    %peer,
                    max_connections = self.settings.max_connections,
                    "syslog connection refused: max_connections reached"
                );
                drop(stream);
                continue;
            };
            let (sink, stop, tls) = (sink.clone(), stop.clone(), self.tls.clone());
            let handshake_timeout = self.handshake_timeout;
            connections.spawn(async move {
                serve_connection(stream, peer, tls, handshake_timeout, sink, stop).await;
                drop(permit);
            });
        }
        drop(self.listener);
        while connections.join_next().await.is_some() {}
        tracing::info!(listener = %self.settings.name, "syslog listener stopped");
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    sink: Sink,
    stop: Stop,
) {
    let _ = stream.set_nodelay(true);
    let stats = sink.stats.clone();
    match tls {
        None => {
            SyslogStats::add(&stats.connections_accepted, 1);
            read_frames(stream, peer, sink, stop).await;
        }
        Some(acceptor) => {
            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    SyslogStats::add(&stats.connections_accepted, 1);
                    read_frames(stream, peer, sink, stop).await;
                }
                Ok(Err(error)) => {
                    SyslogStats::add(&stats.connections_refused, 1);
                    tracing::warn!(listener = %sink.settings.name, %peer, %error, "syslog TLS handshake failed");
                }
                Err(_) => {
                    SyslogStats::add(&stats.connections_refused, 1);
                    tracing::warn!(listener = %sink.settings.name, %peer, "syslog TLS handshake timed out");
                }
            }
        }
    }
}

/// Reads frames until the sender closes, the connection fails or `stop`; stores
/// them in batches, and what is left at the end.
async fn read_frames(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    peer: SocketAddr,
    sink: Sink,
    mut stop: Stop,
) {
    let settings = sink.settings.clone();
    let stats = sink.stats.clone();
    let peer_ip: Arc<str> = Arc::from(peer.ip().to_string());
    let mut decoder = FrameDecoder::new(settings.max_message_bytes);
    let mut buffer = BytesMut::with_capacity(READ_CHUNK);
    let mut batch = Batch::new(&settings, sink.state.limits.max_body_bytes);
    let mut pipeline = Pipeline::new(sink.clone(), Delivery::Retry, stop.clone());
    let idle_timeout =
        (settings.idle_timeout_secs > 0).then(|| Duration::from_secs(settings.idle_timeout_secs));
    loop {
        while let Some(frame) = decoder.next_frame(&mut buffer) {
            if batch.push(received(frame.bytes, frame.truncated, &peer_ip, &stats)) {
                pipeline.hand_over(batch.take()).await;
            }
        }
        buffer.reserve(READ_CHUNK);
        let linger = batch.deadline();
        let read = tokio::select! {
            () = stop.stopped() => break,
            () = sleep_until(linger), if linger.is_some() => {
                pipeline.hand_over(batch.take()).await;
                continue;
            }
            read = read_within(&mut stream, &mut buffer, idle_timeout) => read,
        };
        match read {
            Ok(0) => {
                if let Some(frame) = decoder.finish(&mut buffer) {
                    batch.push(received(frame.bytes, frame.truncated, &peer_ip, &stats));
                }
                break;
            }
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(listener = %settings.name, %peer, %error, "syslog connection failed");
                break;
            }
        }
    }
    pipeline.hand_over(batch.take()).await;
    pipeline.wait().await;
    // Closed in order (TLS: with close_notify) once everything received is stored;
    // a sender that no longer reads does not hold the task.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, stream.shutdown()).await;
}

/// Reads more into `buffer`; a connection silent for `idle_timeout` fails with
/// `TimedOut`.
async fn read_within(
    stream: &mut (impl AsyncRead + Unpin),
    buffer: &mut BytesMut,
    idle_timeout: Option<Duration>,
) -> std::io::Result<usize> {
    match idle_timeout {
        None => stream.read_buf(buffer).await,
        Some(idle) => tokio::time::timeout(idle, stream.read_buf(buffer))
            .await
            .unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "idle_timeout_secs passed without a byte",
                ))
            }),
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline).await;
    }
}
