//! HTTPS on a listener: loading the certificate and key named by `[tls]` into an
//! acceptor. The server that uses it is [`crate::server`]: each accepted connection
//! does its handshake on its own task, within `http.tls_handshake_timeout_secs`,
//! and ALPN picks HTTP/2 or HTTP/1.1.

use std::path::Path;
use std::sync::Arc;

use logpool_engines::config::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

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
    let certificates = pem_certificates(&config.cert_path).map_err(|e| TlsError::Certificate {
        path: config.cert_path.display().to_string(),
        reason: e.to_string(),
    })?;
    let key = pem_private_key(&config.key_path).map_err(|e| TlsError::Key {
        path: config.key_path.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut server = rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certificates, key)?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}

/// The crypto provider of every TLS server of the product (HTTPS and syslog). It is
/// named rather than taken from the process default: several providers may be
/// compiled in, and then rustls has no default to pick.
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why a PEM file cannot be used (the caller names the setting and the path).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PemFileError(String);

/// The certificates of a PEM file, at least one.
///
/// # Errors
/// The file cannot be read, is not PEM, or holds no certificate.
pub fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemFileError> {
    let error = |e: rustls::pki_types::pem::Error| PemFileError(e.to_string());
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(error)?;
    if certificates.is_empty() {
        return Err(PemFileError("no PEM certificate in the file".to_string()));
    }
    Ok(certificates)
}

/// The private key of a PEM file.
///
/// # Errors
/// The file cannot be read or holds no PEM private key.
pub fn pem_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemFileError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| PemFileError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new().route("/ping", axum::routing::get(|| async { "pong" }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = logpool_engines::config::HttpConfig {
            tls_handshake_timeout_secs: 1,
            ..Default::default()
        };
        let server = tokio::spawn(async move {
            crate::server::serve(listener, app, Some(test_acceptor()), &config, async move {
                let _ = stopped.await;
            })
            .await
        });
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
        // A client that connects and never starts the handshake is closed after
        // `tls_handshake_timeout_secs`.
        let mut silent = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let started = std::time::Instant::now();
        let mut nothing = Vec::new();
        let closed = tokio::time::timeout(bounded, silent.read_to_end(&mut nothing)).await;
        assert!(closed.is_ok(), "closed by the handshake timeout");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
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
