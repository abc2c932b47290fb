//! A tail refused after the upgrade: one `error` frame with the error object (its
//! `field`, `position`, ...), then a close whose code is 4000 plus the HTTP status
//! the refusal would have had (4400 for a bad filter, 4404 for an unknown pool,
//! 4429 for too many tails) and whose reason is the message, so a browser, which
//! sees nothing of a refused upgrade's HTTP answer, can show what is wrong and where.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::response::Response;
use logpool_api::ApiError;
use logpool_wire::tail::TailFrame;
use logpool_wire::ErrorObject;

/// The close codes of refusals start here (the 4xxx range is the application's).
const CLOSE_REFUSAL_BASE: u16 = 4000;
/// The longest close reason the protocol allows, in bytes.
const MAX_REASON_BYTES: usize = 123;
/// Longest wait for the frames to go out.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Upgrades, sends `error` as the only frame and closes.
pub fn in_band(upgrade: WebSocketUpgrade, error: ApiError) -> Response {
    let code = CLOSE_REFUSAL_BASE + logpool_api::error::status_of(error.code).as_u16();
    let reason = close_reason(&error.message);
    let frame = TailFrame::Error {
        error: ErrorObject {
            code: error.code,
            message: error.message,
            details: error.details,
        },
    };
    let text = serde_json::to_string(&frame).unwrap_or_default();
    upgrade.on_upgrade(move |mut socket| async move {
        let send = async {
            socket.send(Message::Text(text.into())).await?;
            socket
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                })))
                .await
        };
        if tokio::time::timeout(SEND_TIMEOUT, send).await.is_err() {
            tracing::debug!("tail refusal not delivered in time");
        }
    })
}

/// `message` cut to the close reason's limit at a character boundary.
fn close_reason(message: &str) -> String {
    if message.len() <= MAX_REASON_BYTES {
        return message.to_string();
    }
    let mut end = MAX_REASON_BYTES - '…'.len_utf8();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_close_reason_fits_the_protocol_limit() {
        assert_eq!(close_reason("short"), "short");
        let long = "é".repeat(200);
        let reason = close_reason(&long);
        assert!(reason.len() <= MAX_REASON_BYTES, "{}", reason.len());
        assert!(reason.ends_with('…'));
    }
}
