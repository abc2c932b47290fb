//! A small SMTP client (RFC 5321) for alert emails: plain, STARTTLS (RFC 3207) or
//! implicit TLS (RFC 8314), AUTH PLAIN or LOGIN (RFC 4954), one message per session.
//!
//! Written on tokio and the workspace's rustls rather than taken from a mail crate:
//! an alert needs one message to a few recipients, which is a dozen commands, and a
//! mail crate would bring its own TLS and DNS stacks. Server certificates are checked
//! against the system's roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` are honoured).

use std::sync::Arc;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Longest reply line read, bytes (RFC 5321 allows 512).
const MAX_REPLY_LINE_BYTES: u64 = 2048;
/// Most lines of one multi-line reply.
const MAX_REPLY_LINES: usize = 100;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// No TLS.
    Plain,
    /// Plain, upgraded by STARTTLS before anything else is sent.
    StartTls,
    /// TLS from the first byte.
    ImplicitTls,
}

/// Where and how to send.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// TLS mode.
    pub transport: Transport,
    /// User name and password, when the server wants AUTH.
    pub credentials: Option<(String, String)>,
    /// Envelope sender.
    pub from: String,
    /// Envelope recipients.
    pub to: Vec<String>,
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// The connection failed.
    #[error("smtp connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// TLS could not be set up.
    #[error("smtp tls failed: {0}")]
    Tls(String),
    /// The server refused a command.
    #[error("smtp server answered {code} to {command}: {text}")]
    Refused {
        /// The command.
        command: &'static str,
        /// The reply code.
        code: u16,
        /// The reply text.
        text: String,
    },
    /// The server's reply was not SMTP.
    #[error("smtp server sent a malformed reply")]
    Malformed,
}

impl SmtpError {
    /// The server's reply code, when it refused.
    pub fn code(&self) -> Option<u16> {
        match self {
            SmtpError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Session {
    stream: BufReader<Box<dyn Io>>,
}

impl Session {
    fn new(stream: Box<dyn Io>) -> Session {
        Session {
            stream: BufReader::new(stream),
        }
    }

    /// Reads one reply: its code and its lines' text.
    async fn reply(&mut self) -> Result<(u16, Vec<String>), SmtpError> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = (&mut self.stream)
                .take(MAX_REPLY_LINE_BYTES)
                .read_line(&mut line)
                .await?;
            if read == 0 {
                return Err(SmtpError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            let line = line.trim_end_matches(['\r', '\n']);
            let code: u16 = line
                .get(..3)
                .and_then(|code| code.parse().ok())
                .ok_or(SmtpError::Malformed)?;
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_string());
            if last {
                return Ok((code, lines));
            }
            if lines.len() >= MAX_REPLY_LINES {
                return Err(SmtpError::Malformed);
            }
        }
    }

    /// Sends `line` and reads the reply, which must be in `expected`'s class
    /// (2 for 2xx, 3 for 3xx).
    async fn command(
        &mut self,
        name: &'static str,
        line: &str,
        expected: u16,
    ) -> Result<(u16, Vec<String>), SmtpError> {
        self.stream.write_all(line.as_bytes()).await?;
        self.stream.write_all(b"\r\n").await?;
        self.stream.flush().await?;
        self.expect(name, expected).await
    }

    async fn expect(
        &mut self,
        name: &'static str,
        expected: u16,
    ) -> Result<(u16, Vec<String>), SmtpError> {
        let (code, lines) = self.reply().await?;
        if code / 100 != expected {
            return Err(SmtpError::Refused {
                command: name,
                code,
                text: lines.join(" "),
            });
        }
        Ok((code, lines))
    }
}

fn tls_connector() -> Result<tokio_rustls::TlsConnector, SmtpError> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls_native_certs::load_native_certs().certs {
        // A certificate the store cannot use is skipped, as browsers do.
        let _ = roots.add(certificate);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| SmtpError::Tls(error.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn tls<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    host: &str,
) -> Result<Box<dyn Io>, SmtpError> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|error| SmtpError::Tls(error.to_string()))?;
    let stream = tls_connector()?
        .connect(name, stream)
        .await
        .map_err(|error| SmtpError::Tls(error.to_string()))?;
    Ok(Box::new(stream))
}

fn ehlo_offers(lines: &[String], keyword: &str) -> bool {
    lines
        .iter()
        .any(|line| line.to_ascii_uppercase().split_whitespace().next() == Some(keyword))
}

fn auth_offers(lines: &[String], mechanism: &str) -> bool {
    lines.iter().any(|line| {
        let line = line.to_ascii_uppercase();
        let mut words = line.split_whitespace();
        words.next() == Some("AUTH") && words.any(|word| word == mechanism)
    })
}

/// Sends `message` (headers and body, CRLF line ends) and returns the server's
/// reply code to it (250).
///
/// # Errors
/// When the connection, TLS, authentication or any command fails.
pub async fn send(settings: &SmtpSettings, message: &[u8]) -> Result<u16, SmtpError> {
    let tcp = TcpStream::connect((settings.host.as_str(), settings.port)).await?;
    let stream: Box<dyn Io> = match settings.transport {
        Transport::ImplicitTls => tls(tcp, &settings.host).await?,
        Transport::Plain | Transport::StartTls => Box::new(tcp),
    };
    let mut session = Session::new(stream);
    session.expect("greeting", 2).await?;
    let (_, mut offers) = session.command("EHLO", "EHLO logpool", 2).await?;
    if settings.transport == Transport::StartTls {
        if !ehlo_offers(&offers, "STARTTLS") {
            return Err(SmtpError::Tls(
                "the server does not offer STARTTLS".to_string(),
            ));
        }
        session.command("STARTTLS", "STARTTLS", 2).await?;
        let plain = session.stream.into_inner();
        session = Session::new(tls(plain, &settings.host).await?);
        offers = session.command("EHLO", "EHLO logpool", 2).await?.1;
    }
    if let Some((user, password)) = &settings.credentials {
        let base64 = base64::engine::general_purpose::STANDARD;
        if auth_offers(&offers, "PLAIN") || !auth_offers(&offers, "LOGIN") {
            let token = base64.encode(format!("\0{user}\0{password}"));
            session
                .command("AUTH PLAIN", &format!("AUTH PLAIN {token}"), 2)
                .await?;
        } else {
            session.command("AUTH LOGIN", "AUTH LOGIN", 3).await?;
            session
                .command("AUTH LOGIN", &base64.encode(user), 3)
                .await?;
            session
                .command("AUTH LOGIN", &base64.encode(password), 2)
                .await?;
        }
    }
    session
        .command("MAIL FROM", &format!("MAIL FROM:<{}>", settings.from), 2)
        .await?;
    for recipient in &settings.to {
        session
            .command("RCPT TO", &format!("RCPT TO:<{recipient}>"), 2)
            .await?;
    }
    session.command("DATA", "DATA", 3).await?;
    session.stream.write_all(&dot_stuffed(message)).await?;
    let (code, _) = session.command("message", ".", 2).await?;
    // The message is accepted; a failed QUIT changes nothing.
    let _ = session.command("QUIT", "QUIT", 2).await;
    Ok(code)
}

/// The message with CRLF line ends, a dot doubled at the start of a line, and a
/// final CRLF (RFC 5321 section 4.5.2); the terminating "." is sent after it.
fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(message);
    let mut out = Vec::with_capacity(message.len() + 64);
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // `split` yields an empty last piece after a final newline: drop its CRLF pair
    // duplicate so the body ends with exactly one CRLF.
    if text.ends_with('\n') {
        out.truncate(out.len() - 2);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_dot_stuffing_and_line_ends() {
        assert_eq!(dot_stuffed(b"a\n.b\r\nc"), b"a\r\n..b\r\nc\r\n");
        assert_eq!(dot_stuffed(b"a\r\n"), b"a\r\n");
    }

    #[test]
    fn test_offers_are_read_from_ehlo_lines() {
        let lines = vec![
            "mail.test".to_string(),
            "STARTTLS".to_string(),
            "AUTH LOGIN PLAIN".to_string(),
        ];
        assert!(ehlo_offers(&lines, "STARTTLS"));
        assert!(auth_offers(&lines, "PLAIN"));
        assert!(!auth_offers(&lines, "CRAM-MD5"));
    }
}
