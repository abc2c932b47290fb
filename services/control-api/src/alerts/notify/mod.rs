//! Notifications: the text and JSON each channel kind receives, how they are sent,
//! and the delivery rounds that empty the outbox ([`outbox`]).
//!
//! - `webhook`: the [`Notification`] as JSON, with the channel's extra headers and,
//!   with a secret, `X-Logpool-Signature: sha256=<hex HMAC-SHA256 of the body>`.
//! - `slack`, `dingtalk`, `feishu`: their documented incoming-webhook shapes and
//!   signatures ([`chat`]).
//! - `email`: a plain-text message over SMTP ([`email`], [`smtp`]).
//!
//! A delivery counts as done only on the receiver's 2xx (and, for DingTalk and
//! Feishu, a zero error code in the answer) or the SMTP server's 250 after the
//! message.

pub mod chat;
pub mod email;
pub mod outbox;
pub mod smtp;

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use logpool_engines::metadata::AlertObject;
use logpool_wire::alerts::{
    ChannelBody, Notification, NotificationLine, NotificationRule, NotificationWindow,
};
use sha2::Sha256;

use super::now_ms;
use crate::format_ms;

/// The header a signed webhook carries.
pub const SIGNATURE_HEADER: &str = "X-Logpool-Signature";

/// How one delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    /// Whether the receiver accepted it.
    pub ok: bool,
    /// The HTTP status or SMTP reply code, when the receiver answered.
    pub status: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
}

impl DeliveryOutcome {
    fn failed(status: Option<u16>, error: impl Into<String>) -> DeliveryOutcome {
        DeliveryOutcome {
            ok: false,
            status,
            error: Some(error.into()),
        }
    }

    fn accepted(status: u16) -> DeliveryOutcome {
        DeliveryOutcome {
            ok: true,
            status: Some(status),
            error: None,
        }
    }
}

/// Sends notifications through channels, each attempt bounded in time.
#[derive(Debug, Clone)]
pub struct Notifier {
    http: reqwest::Client,
    timeout: Duration,
}

impl Notifier {
    /// A notifier whose every delivery takes at most `timeout`.
    pub fn new(timeout: Duration) -> Notifier {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            // A receiver's redirect is not followed: the signature covers one URL.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Notifier { http, timeout }
    }

    /// Delivers `notification` through `channel` once.
    pub async fn deliver(
        &self,
        channel: &ChannelBody,
        notification: &Notification,
    ) -> DeliveryOutcome {
        let attempt = async {
            match channel.kind.as_str() {
                "email" => email::send(channel, notification).await,
                _ => self.post(channel, notification).await,
            }
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => DeliveryOutcome::failed(
                None,
                format!("no answer within {} s", self.timeout.as_secs()),
            ),
        }
    }

    async fn post(&self, channel: &ChannelBody, notification: &Notification) -> DeliveryOutcome {
        let request = match chat::request(channel, notification, now_ms()) {
            Ok(request) => request,
            Err(error) => return DeliveryOutcome::failed(None, error),
        };
        let mut builder = self
            .http
            .post(request.url)
            .header("content-type", "application/json")
            .body(request.body);
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(error) => return DeliveryOutcome::failed(None, format!("request failed: {error}")),
        };
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            let excerpt: String = text.chars().take(200).collect();
            return DeliveryOutcome::failed(Some(status), format!("answered {status}: {excerpt}"));
        }
        match chat::refusal(&channel.kind, &text) {
            Some(error) => DeliveryOutcome::failed(Some(status), error),
            None => DeliveryOutcome::accepted(status),
        }
    }
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length, so this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The one-line title of a notification.
pub fn title(notification: &Notification) -> String {
    let group = if notification.group.is_empty() {
        String::new()
    } else {
        format!(" [{}]", notification.group)
    };
    format!(
        "[{}] {}{group}",
        notification.status.to_uppercase(),
        notification.rule.name
    )
}

/// The plain text of a notification: title, description, value, window, link and
/// lines. Chat messages and emails carry it.
pub fn text(notification: &Notification) -> String {
    let mut text = title(notification);
    text.push('\n');
    if !notification.description.is_empty() {
        text.push_str(&notification.description);
        text.push('\n');
    }
    let value = notification
        .value
        .map_or_else(|| "no data".to_string(), |value| value.to_string());
    text.push_str(&format!(
        "value: {value} (threshold {})\nwindow: {} .. {}\nseverity: {}\n{}\n",
        notification
            .threshold
            .map_or_else(|| "-".to_string(), |threshold| threshold.to_string()),
        notification.window.from,
        notification.window.to,
        notification.rule.severity,
        notification.console_url,
    ));
    if !notification.lines.is_empty() {
        text.push_str("\nlatest matching lines:\n");
        for line in &notification.lines {
            text.push_str(&format!("{} {}\n", line.time, line.line));
        }
    }
    text
}

/// The notification "send test" delivers.
pub fn test_notification(project: &str, channel: &AlertObject, console_url: &str) -> Notification {
    let now = now_ms();
    Notification {
        rule: NotificationRule {
            id: "al_test".to_string(),
            name: "logpool test notification".to_string(),
            severity: "info".to_string(),
            labels: Default::default(),
        },
        status: "firing".to_string(),
        group: String::new(),
        value: Some(1.0),
        threshold: Some(0.0),
        window: NotificationWindow {
            from: format_ms(now - 60_000),
            to: format_ms(now),
        },
        description: "A test of this channel; no rule fired.".to_string(),
        console_url: format!(
            "{}/#/alerts?project={project}",
            console_url.trim_end_matches('/')
        ),
        lines: vec![NotificationLine {
            time: format_ms(now),
            id: "test".to_string(),
            line: "test line".to_string(),
            fields: Default::default(),
        }],
        dedupe_key: format!("test/ch_{}/{now}", channel.id),
        project: project.to_string(),
        repeat: false,
        at: format_ms(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
