//! The one HTTP server of every listener: the standalone binary and each service
//! binary, plain HTTP and HTTPS alike.
//!
//! Connection hygiene (`[http]`):
//! - HTTP/1.1 is served by hyper's http1 connection with `header_read_timeout`: a
//!   client must send a request's complete headers within that time after it
//!   connects and after each answer, so connections that send nothing, send their
//!   headers slowly or sit idle between requests are closed.
//! - With TLS, the handshake has its own timeout and ALPN picks HTTP/2 or
//!   HTTP/1.1; HTTP/2 pings detect dead peers and bound the streams per connection.
//! - At most `max_connections` connections are open at once (kept below the file
//!   descriptor limit, see [`connection_cap`]); the permit travels with the socket,
//!   so upgraded WebSocket connections count until they close. A connection beyond
//!   the cap is answered a short `503` with `Retry-After` (plain HTTP; with TLS it is
//!   simply closed, a handshake would cost more than the refusal) and closed.
//! - Shutdown is graceful: stop accepting, let open connections finish the request
//!   they are in, then return.
//!
//! Every request gets the peer's [`ConnectInfo`], its [`ClientAddress`] and the
//! listener's [`AuthThrottle`] in its extensions.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use logpool_engines::config::HttpConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::throttle::{AuthThrottle, ClientAddress};

/// Pause after an accept error that is not about one connection (e.g. out of file
/// descriptors), so that the loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Refusals being answered at once; beyond it a connection over the cap is closed
/// without an answer (each refusal holds a socket for up to [`REFUSAL_TIME`]).
const MAX_PENDING_REFUSALS: usize = 64;

/// Longest time spent answering one refused connection.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// Longest wait for open connections after shutdown began.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Fewest connections a listener accepts whatever the file-descriptor limit.
const MIN_CONNECTIONS: usize = 16;

/// The whole answer to a connection over the cap.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 114\r\n\
\r\n\
{\"error\":{\"code\":\"unavailable\",\"message\":\"too many open connections; retry later\",\"limit\":\"http.max_connections\"}}";

/// The number of connections a listener accepts: `max_connections`, lowered so
/// that `reserved_file_descriptors` stay free for the engines under a soft limit
/// of `file_limit` descriptors (when that leaves too little, half the limit).
pub fn connection_cap(config: &HttpConfig, file_limit: Option<u64>) -> usize {
    let Some(limit) = file_limit else {
        return config.max_connections;
    };
    let room = limit
        .saturating_sub(config.reserved_file_descriptors)
        .max(limit / 2);
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    config.max_connections.min(room).max(MIN_CONNECTIONS)
}

/// Serves `app` on `listener` until `shutdown` resolves (HTTPS when `tls` is set),
/// then waits for open connections to finish their requests.
///
/// # Errors
/// Never fails today; the `Result` leaves room for listener failures.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    config: &HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let cap = connection_cap(config, crate::process::file_limit());
    if cap < config.max_connections {
        tracing::warn!(
            configured = config.max_connections,
            cap,
            "http.max_connections lowered to keep file descriptors for the engines \
             (raise the open-file limit to allow more)"
        );
    }
    let shared = Arc::new(Shared {
        app,
        tls,
        config: config.clone(),
        throttle: Arc::new(AuthThrottle::new(config)),
        refusals: Arc::new(Semaphore::new(MAX_PENDING_REFUSALS)),
        refused: AtomicU64::new(0),
    });
    let connections = Arc::new(Semaphore::new(cap));
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => {
                    tracing::debug!(%error, "connection failed before it was accepted");
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed; retrying shortly");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            shared.refuse(stream, peer, cap);
            continue;
        };
        let counted = Counted {
            stream,
            _permit: permit,
        };
        tokio::spawn(serve_connection(
            shared.clone(),
            counted,
            peer,
            stopping.clone(),
        ));
    }
    drop(listener);
    let _ = stop.send(true);
    // Every open connection holds a permit: all of them back means all closed.
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN_TIMEOUT, connections.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("open connections did not finish within {DRAIN_TIMEOUT:?}");
    }
    Ok(())
}

/// What every connection task of one listener shares.
struct Shared {
    app: Router,
    tls: Option<TlsAcceptor>,
    config: HttpConfig,
    throttle: Arc<AuthThrottle>,
    refusals: Arc<Semaphore>,
    refused: AtomicU64,
}

impl Shared {
    /// Answers a connection over the cap and closes it, without holding the
    /// accept loop; when too many refusals are pending, closes it at once.
    fn refuse(&self, mut stream: TcpStream, peer: SocketAddr, cap: usize) {
        let refused = self.refused.fetch_add(1, Ordering::Relaxed);
        // One line for the first refusal and then one per thousand: a flood of
        // connections must not become a flood of log lines.
        if refused.is_multiple_of(1000) {
            tracing::warn!(%peer, cap, refused = refused + 1, "connection refused: http.max_connections reached");
        }
        let Ok(slot) = self.refusals.clone().try_acquire_owned() else {
            return;
        };
        let plain = self.tls.is_none();
        tokio::spawn(async move {
            let _slot = slot;
            if !plain {
                return;
            }
            let _ = tokio::time::timeout(REFUSAL_TIME, async {
                stream.write_all(REFUSAL).await?;
                stream.shutdown().await?;
                // Read what the client sent until it closes: closing a socket with
                // unread data would reset it, and the client could lose the answer.
                let mut sink = [0_u8; 1024];
                while stream.read(&mut sink).await? > 0 {}
                Ok::<_, io::Error>(())
            })
            .await;
        });
    }

    /// The app as a hyper service that adds the connection's facts to each request.
    fn service(
        self: &Arc<Self>,
        peer: SocketAddr,
    ) -> impl hyper::service::Service<
        hyper::Request<Incoming>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>>
                     + Send
                     + 'static,
    > {
        let shared = self.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let client =
                ClientAddress::resolve(peer, request.headers(), &shared.config.trusted_proxies);
            let extensions = request.extensions_mut();
            extensions.insert(ConnectInfo(peer));
            extensions.insert(client);
            extensions.insert(shared.throttle.clone());
            shared.app.clone().oneshot(request)
        })
    }
}

/// Serves one accepted connection until it closes or shutdown has let it finish.
async fn serve_connection(
    shared: Arc<Shared>,
    stream: Counted<TcpStream>,
    peer: SocketAddr,
    stopping: watch::Receiver<bool>,
) {
    let Some(acceptor) = shared.tls.clone() else {
        serve_http1(&shared, stream, peer, stopping).await;
        return;
    };
    let handshake_timeout = Duration::from_secs(shared.config.tls_handshake_timeout_secs);
    let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        // Scanners, plain-HTTP clients and untrusting clients land here; one line
        // per connection at a higher level would flood the log.
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    if http2 {
        serve_http2(&shared, stream, peer, stopping).await;
    } else {
        serve_http1(&shared, stream, peer, stopping).await;
    }
}

async fn serve_http1<S>(
    shared: &Arc<Shared>,
    stream: S,
    peer: SocketAddr,
    mut stopping: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(shared.config.header_read_timeout_secs))
        .keep_alive(shared.config.keep_alive);
    let connection = builder
        .serve_connection(TokioIo::new(stream), shared.service(peer))
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = until_stopped(&mut stopping) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

async fn serve_http2<S>(
    shared: &Arc<Shared>,
    stream: S,
    peer: SocketAddr,
    mut stopping: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ping = Duration::from_secs(shared.config.http2_keep_alive_interval_secs);
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval(ping)
        .keep_alive_timeout(ping)
        .max_concurrent_streams(shared.config.http2_max_concurrent_streams)
        // WebSocket over HTTP/2 (RFC 8441).
        .enable_connect_protocol();
    let connection = builder.serve_connection(TokioIo::new(stream), shared.service(peer));
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = until_stopped(&mut stopping) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// Resolves once shutdown began (the guard of the watch is not held across awaits).
async fn until_stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stopped| *stopped).await;
}

/// Errors that concern one connection only; the listener itself is fine.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A socket with its place under the connection cap: the permit is returned when
/// the socket closes, also after an upgrade hands it to a WebSocket.
struct Counted<S> {
    stream: S,
    _permit: OwnedSemaphorePermit,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_answer() {
        let text = std::str::from_utf8(REFUSAL).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let parsed: serde_json::Value = serde_json::from_str(body).expect("json body");
        assert_eq!(parsed["error"]["code"], "unavailable");
    }

    #[test]
    fn the_cap_leaves_room_for_the_engines() {
        let config = HttpConfig {
            max_connections: 10_000,
            reserved_file_descriptors: 4096,
            ..HttpConfig::default()
        };
        assert_eq!(connection_cap(&config, None), 10_000);
        assert_eq!(connection_cap(&config, Some(1_048_576)), 10_000);
        assert_eq!(connection_cap(&config, Some(20_000)), 10_000);
        assert_eq!(connection_cap(&config, Some(12_000)), 12_000 - 4096);
        // A small limit: half of it, never the whole.
        assert_eq!(connection_cap(&config, Some(1024)), 512);
    }

    /// Starts a server on a free port with `config`; returns its address and the
    /// sender that stops it.
    async fn start(
        config: HttpConfig,
        tls: Option<TlsAcceptor>,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new().route("/ping", axum::routing::get(|| async { "pong" }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            serve(listener, app, tls, &config, async move {
                let _ = stopped.await;
            })
            .await
        });
        (addr, stop, server)
    }

    async fn read_all(stream: &mut TcpStream, within: Duration) -> Option<String> {
        let mut answer = Vec::new();
        tokio::time::timeout(within, stream.read_to_end(&mut answer))
            .await
            .ok()
            .map(|_| String::from_utf8_lossy(&answer).into_owned())
    }

    #[tokio::test]
    async fn slow_and_silent_clients_are_closed_and_the_cap_answers_503() {
        let config = HttpConfig {
            header_read_timeout_secs: 1,
            max_connections: 20,
            reserved_file_descriptors: 0,
            ..HttpConfig::default()
        };
        let (addr, stop, server) = start(config, None).await;
        let mut silent = TcpStream::connect(addr).await.expect("connect");
        let mut partial = TcpStream::connect(addr).await.expect("connect");
        partial
            .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .expect("write");
        let started = std::time::Instant::now();
        for stream in [&mut silent, &mut partial] {
            let closed = read_all(stream, Duration::from_secs(5)).await;
            assert!(closed.is_some(), "closed by the header read timeout");
        }
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
            "{waited:?}"
        );

        // Fill the cap with silent connections; the next one gets the 503.
        let mut held = Vec::new();
        for _ in 0..20 {
            held.push(TcpStream::connect(addr).await.expect("connect"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut over = TcpStream::connect(addr).await.expect("connect");
        let answer = read_all(&mut over, Duration::from_secs(3))
            .await
            .expect("answered and closed at once");
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("retry-after: 1"), "{answer}");
        // Once they go, connections are served again.
        drop(held);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut ok = TcpStream::connect(addr).await.expect("connect");
        ok.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let answer = read_all(&mut ok, Duration::from_secs(3))
            .await
            .expect("answer");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("pong"), "{answer}");

        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("stops in time")
            .expect("no panic")
            .expect("clean stop");
    }
}
