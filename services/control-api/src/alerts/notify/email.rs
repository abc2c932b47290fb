//! The email channel: a plain-text message (RFC 5322, UTF-8) sent over SMTP.

use base64::Engine as _;
use logpool_wire::alerts::{ChannelBody, Notification};

use super::smtp::{self, SmtpSettings, Transport};
use super::{text, title, DeliveryOutcome};

/// Sends `notification` to the channel's recipients.
pub async fn send(channel: &ChannelBody, notification: &Notification) -> DeliveryOutcome {
    let config = &channel.config;
    let (Some(host), Some(from), Some(to)) = (&config.smtp_host, &config.from, &config.to) else {
        return DeliveryOutcome::failed(None, "the channel lacks smtp_host, from or to");
    };
    let transport = match config.smtp_tls.as_deref() {
        Some("none") => Transport::Plain,
        Some("tls") => Transport::ImplicitTls,
        _ => Transport::StartTls,
    };
    let settings = SmtpSettings {
        host: host.clone(),
        port: config.smtp_port.unwrap_or(match transport {
            Transport::Plain => 25,
            Transport::StartTls => 587,
            Transport::ImplicitTls => 465,
        }),
        transport,
        credentials: config.username.clone().zip(config.password.clone()),
        from: from.clone(),
        to: to.clone(),
    };
    let message = message(from, to, notification);
    match smtp::send(&settings, message.as_bytes()).await {
        Ok(code) => DeliveryOutcome::accepted(code),
        Err(error) => DeliveryOutcome::failed(error.code(), error.to_string()),
    }
}

/// An RFC 2047 encoded word when `text` is not plain ASCII.
fn header_text(text: &str) -> String {
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    if clean.is_ascii() {
        clean
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(clean.as_bytes())
        )
    }
}

/// The whole message: headers, a blank line, the text with CRLF line ends.
pub fn message(from: &str, to: &[String], notification: &Notification) -> String {
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let domain = from.rsplit('@').next().unwrap_or("logpool");
    let message_id: String = notification
        .dedupe_key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '.'
            }
        })
        .collect();
    let mut message = String::new();
    for (name, value) in [
        ("From", from.to_string()),
        ("To", to.join(", ")),
        ("Subject", header_text(&title(notification))),
        ("Date", date),
        ("Message-ID", format!("<{message_id}@{domain}>")),
        ("MIME-Version", "1.0".to_string()),
        ("Content-Type", "text/plain; charset=utf-8".to_string()),
        ("Content-Transfer-Encoding", "8bit".to_string()),
        (
            "X-Logpool-Dedupe-Key",
            header_text(&notification.dedupe_key),
        ),
    ] {
        message.push_str(&format!("{name}: {value}\r\n"));
    }
    message.push_str("\r\n");
    for line in text(notification).lines() {
        message.push_str(line);
        message.push_str("\r\n");
    }
    message
}
