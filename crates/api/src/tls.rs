//! HTTPS on a listener: loading the certificate and key named by `[tls]`, and the
//! accept loop that serves an axum app over TLS.
//!
//! Plain HTTP keeps using `axum::serve`; with TLS, each accepted connection does its
//! handshake on its own task (a slow or failing client never holds the accept loop),
//! then hyper-util's auto builder serves HTTP/1.1 (with upgrades, for the WebSocket
//! tail) or HTTP/2 on it. Shutdown is graceful as with `axum::serve`: stop accepting,
//! let open connections finish their requests, then return.

use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use logpool_engines::config::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Longest time a client may take to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after an accept error that is not about one connection (e.g. out of file
/// descriptors), so that the loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file cannot be read or holds no PEM certificate.
    #[error("`tls.cert_path` {path}: {reason}")]
    Certificate {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The key file cannot be read or holds no PEM private key.
    #[error("`tls.key_path` {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("`tls.cert_path` and `tls.key_path` do not make a usable server identity: {0}")]
    Identity(#[from] rustls::Error),
}

/// Builds the TLS acceptor of `[tls]`, or `None` when TLS is off.
///
/// # Errors
/// Names the setting whose file is missing, unreadable or not what it should be.
pub fn acceptor(config: &TlsConfig) -> Result<Option<TlsAcceptor>, TlsError> {
    if !config.enabled() {
        return Ok(None);
    }
    let certificates = load_certificates(&config.cert_path)?;
    let key = load_key(&config.key_path)?;
    // The provider is named rather than taken from the process default: several
    // providers may be compiled in, and then rustls has no default to pick.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certificates, key)?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}

fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |reason: String| TlsError::Certificate {
        path: path.display().to_string(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(e.to_string()))?;
    if certificates.is_empty() {
        return Err(error("no PEM certificate in the file".to_string()));
    }
    Ok(certificates)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Key {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Serves `app` on `listener` over TLS until `shutdown` resolves, then waits for
/// open connections to finish their requests.
///
/// # Errors
/// Never fails today; the `Result` matches the plain HTTP path.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    acceptor: TlsAcceptor,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // WebSocket over HTTP/2 (RFC 8441), as `axum::serve` allows it.
    builder.http2().enable_connect_protocol();
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
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
        // Taken before the handshake, so that shutdown also waits for (and then
        // promptly closes) connections that are still shaking hands.
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        let builder = builder.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                // Scanners, plain-HTTP clients and untrusting clients land here;
                // one line per connection at a higher level would flood the log.
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let connection = builder.serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(app),
            );
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn test_data(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/tls")
            .join(name)
    }

    fn test_acceptor() -> TlsAcceptor {
        let config = TlsConfig {
            cert_path: test_data("server.pem"),
            key_path: test_data("server-key.pem"),
        };
        acceptor(&config).expect("loads").expect("enabled")
    }

    fn test_connector() -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_file_iter(test_data("ca.pem")).expect("CA") {
            roots.add(certificate.expect("pem")).expect("root");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    /// One HTTP/1.1 request over TLS; returns the whole answer.
    async fn https_get(addr: std::net::SocketAddr, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut tls = test_connector()
            .connect(name, tcp)
            .await
            .expect("handshake");
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        tls.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn test_serves_https_survives_bad_clients_and_stops() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new().route("/ping", axum::routing::get(|| async { "pong" }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, app, test_acceptor(), async move {
            let _ = stopped.await;
        }));
        let bounded = Duration::from_secs(10);

        let answer = tokio::time::timeout(bounded, https_get(addr, "/ping"))
            .await
            .expect("in time");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("pong"), "{answer}");

        // Plain HTTP, and a client that connects and leaves: no HTTP answer, and the
        // server goes on serving.
        let mut plain = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let _ = plain
            .write_all(b"GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(bounded, plain.read_to_end(&mut answer)).await;
        assert!(
            !String::from_utf8_lossy(&answer).contains("HTTP/1.1"),
            "plain HTTP must not be answered"
        );
        drop(tokio::net::TcpStream::connect(addr).await.expect("connect"));
        let answer = tokio::time::timeout(bounded, https_get(addr, "/ping"))
            .await
            .expect("in time");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

        let _ = stop.send(());
        tokio::time::timeout(bounded, server)
            .await
            .expect("stops in time")
            .expect("no panic")
            .expect("clean stop");
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "no longer listening"
        );
    }

    #[test]
    fn test_no_paths_means_plain_http() {
        assert!(acceptor(&TlsConfig::default()).expect("off").is_none());
    }

    #[test]
    fn test_test_certificate_loads() {
        let config = TlsConfig {
            cert_path: test_data("server.pem"),
            key_path: test_data("server-key.pem"),
        };
        assert!(acceptor(&config).expect("loads").is_some());
    }

    #[test]
    fn test_bad_files_name_the_setting() {
        let missing = TlsConfig {
            cert_path: test_data("no-such.pem"),
            key_path: test_data("server-key.pem"),
        };
        let error = acceptor(&missing).err().expect("missing cert").to_string();
        assert!(error.contains("tls.cert_path"), "{error}");
        // A certificate where the key should be: no private key in the file.
        let swapped = TlsConfig {
            cert_path: test_data("server.pem"),
            key_path: test_data("server.pem"),
        };
        let error = acceptor(&swapped).err().expect("no key").to_string();
        assert!(error.contains("tls.key_path"), "{error}");
        // The CA's certificate with the server's key: the pair does not match.
        let mismatched = TlsConfig {
            cert_path: test_data("ca.pem"),
            key_path: test_data("server-key.pem"),
        };
        assert!(acceptor(&mismatched).is_err());
    }
}
