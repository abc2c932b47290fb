//! TLS of a syslog listener (RFC 5425): its certificate and key, and with
//! `client_ca_path` mutual TLS, where only clients with a certificate from those
//! CAs get through the handshake. The provider is named, as for HTTPS
//! ([`logpool_api::tls`]), since several may be compiled in.

use std::path::Path;
use std::sync::Arc;

use logpool_api::tls::{crypto_provider, pem_certificates, pem_private_key};
use logpool_engines::config::SyslogListenerConfig;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use tokio_rustls::TlsAcceptor;

/// Why a listener's TLS settings cannot be used, naming the setting.
#[derive(Debug, thiserror::Error)]
pub enum SyslogTlsError {
    /// A file cannot be read or holds no PEM object of the right kind.
    #[error("`{setting}` {path}: {reason}")]
    File {
        /// `cert_path`, `key_path` or `client_ca_path`.
        setting: &'static str,
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the certificate, key or CAs.
    #[error("the TLS settings do not make a usable server: {0}")]
    Rustls(String),
}

/// The acceptor of a `transport = "tls"` listener.
///
/// # Errors
/// Names the setting whose file is missing or not what it should be.
pub fn acceptor(settings: &SyslogListenerConfig) -> Result<TlsAcceptor, SyslogTlsError> {
    let missing = |setting: &'static str| SyslogTlsError::File {
        setting,
        path: String::new(),
        reason: "not set".to_string(),
    };
    let cert_path = settings
        .cert_path
        .as_deref()
        .ok_or_else(|| missing("cert_path"))?;
    let key_path = settings
        .key_path
        .as_deref()
        .ok_or_else(|| missing("key_path"))?;
    let certificates = read_certificates(cert_path, "cert_path")?;
    let key = pem_private_key(key_path).map_err(|e| SyslogTlsError::File {
        setting: "key_path",
        path: key_path.display().to_string(),
        reason: e.to_string(),
    })?;
    let provider = crypto_provider();
    let rustls_error = |e: rustls::Error| SyslogTlsError::Rustls(e.to_string());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(rustls_error)?;
    let builder = match &settings.client_ca_path {
        None => builder.with_no_client_auth(),
        Some(ca_path) => {
            let mut roots = RootCertStore::empty();
            for certificate in read_certificates(ca_path, "client_ca_path")? {
                roots.add(certificate).map_err(rustls_error)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| SyslogTlsError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let server = builder
        .with_single_cert(certificates, key)
        .map_err(rustls_error)?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

fn read_certificates(
    path: &Path,
    setting: &'static str,
) -> Result<Vec<CertificateDer<'static>>, SyslogTlsError> {
    pem_certificates(path).map_err(|e| SyslogTlsError::File {
        setting,
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}
