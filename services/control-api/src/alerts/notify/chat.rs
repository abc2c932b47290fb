//! The HTTP channel kinds: what each receives and how it is signed.
//!
//! - webhook: the notification JSON; `X-Logpool-Signature: sha256=<hex>` with a secret.
//! - Slack incoming webhook: `{"text": ...}`.
//! - DingTalk custom robot: `{"msgtype": "markdown", "markdown": {"title", "text"}}`;
//!   with a secret, `timestamp` (ms) and `sign` = base64(HMAC-SHA256(secret,
//!   "{timestamp}\n{secret}")) as URL parameters. Answers `{"errcode": 0}`.
//! - Feishu / Lark custom bot: `{"msg_type": "text", "content": {"text"}}`; with a
//!   secret, `timestamp` (s) and `sign` = base64(HMAC-SHA256(key "{timestamp}\n{secret}",
//!   empty message)) in the body. Answers `{"code": 0}`.

use base64::Engine as _;
use logpool_wire::alerts::{ChannelBody, Notification};
use serde_json::{json, Value};

use super::{hex, hmac_sha256, text, title, SIGNATURE_HEADER};

/// One HTTP request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    /// Where to POST.
    pub url: reqwest::Url,
    /// The JSON body.
    pub body: Vec<u8>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
}

/// Builds the request for an HTTP channel at `now_ms`.
///
/// # Errors
/// A message when the channel's URL or the body cannot be built.
pub fn request(
    channel: &ChannelBody,
    notification: &Notification,
    now_ms: i64,
) -> Result<ChatRequest, String> {
    let config = &channel.config;
    let url = config.url.as_deref().ok_or("the channel has no url")?;
    let mut url = reqwest::Url::parse(url).map_err(|error| format!("bad url: {error}"))?;
    let secret = config.secret.as_deref().filter(|secret| !secret.is_empty());
    let mut headers = Vec::new();
    let body: Value = match channel.kind.as_str() {
        "webhook" => {
            let body = serde_json::to_vec(notification).map_err(|error| error.to_string())?;
            if let Some(secret) = secret {
                let signature = hex(&hmac_sha256(secret.as_bytes(), &body));
                headers.push((SIGNATURE_HEADER.to_string(), format!("sha256={signature}")));
            }
            for (name, value) in config.headers.iter().flatten() {
                headers.push((name.clone(), value.clone()));
            }
            return Ok(ChatRequest { url, body, headers });
        }
        "slack" => json!({ "text": text(notification) }),
        "dingtalk" => {
            if let Some(secret) = secret {
                let to_sign = format!("{now_ms}\n{secret}");
                let sign = base64::engine::general_purpose::STANDARD
                    .encode(hmac_sha256(secret.as_bytes(), to_sign.as_bytes()));
                url.query_pairs_mut()
                    .append_pair("timestamp", &now_ms.to_string())
                    .append_pair("sign", &sign);
            }
            json!({
                "msgtype": "markdown",
                "markdown": { "title": title(notification), "text": text(notification) },
            })
        }
        "feishu" => {
            let mut body = json!({ "msg_type": "text", "content": { "text": text(notification) } });
            if let Some(secret) = secret {
                let timestamp = (now_ms / 1000).to_string();
                let key = format!("{timestamp}\n{secret}");
                let sign = base64::engine::general_purpose::STANDARD
                    .encode(hmac_sha256(key.as_bytes(), b""));
                body["timestamp"] = Value::String(timestamp);
                body["sign"] = Value::String(sign);
            }
            body
        }
        other => return Err(format!("`{other}` is not an HTTP channel kind")),
    };
    let body = serde_json::to_vec(&body).map_err(|error| error.to_string())?;
    Ok(ChatRequest { url, body, headers })
}

/// The refusal a 2xx answer may still carry (DingTalk's `errcode`, Feishu's
/// `code`), as an error message.
pub fn refusal(kind: &str, answer: &str) -> Option<String> {
    let key = match kind {
        "dingtalk" => "errcode",
        "feishu" => "code",
        _ => return None,
    };
    let answer: Value = serde_json::from_str(answer).ok()?;
    let code = answer.get(key)?.as_i64()?;
    (code != 0).then(|| {
        let message = answer
            .get("errmsg")
            .or_else(|| answer.get("msg"))
            .and_then(Value::as_str)
            .unwrap_or("");
        format!("{key} {code}: {message}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(kind: &str, secret: Option<&str>) -> ChannelBody {
        serde_json::from_value(json!({
            "name": "c", "kind": kind,
            "config": {"url": "https://example.test/hook?access_token=t", "secret": secret},
        }))
        .expect("channel")
    }

    fn notification() -> Notification {
        super::super::test_notification(
            "shop",
            &logpool_engines::metadata::AlertObject {
                id: 1,
                kind: logpool_engines::metadata::AlertObjectKind::Channel,
                tenant: "t".into(),
                project: "shop".into(),
                doc: String::new(),
                status: String::new(),
                created_by: String::new(),
                updated_by: String::new(),
                created_at_ms: 0,
                updated_at_ms: 0,
            },
            "",
        )
    }

    #[test]
    fn test_webhook_signature_covers_the_body() {
        let request = request(&channel("webhook", Some("k")), &notification(), 0).expect("request");
        let (name, value) = &request.headers[0];
        assert_eq!(name, SIGNATURE_HEADER);
        assert_eq!(
            value,
            &format!("sha256={}", hex(&hmac_sha256(b"k", &request.body)))
        );
    }

    #[test]
    fn test_chat_shapes_and_signatures() {
        let slack = request(&channel("slack", None), &notification(), 0).expect("slack");
        let body: Value = serde_json::from_slice(&slack.body).expect("json");
        assert!(body["text"]
            .as_str()
            .is_some_and(|text| text.contains("test line")));

        let ding = request(
            &channel("dingtalk", Some("SEC1")),
            &notification(),
            1_700_000_000_000,
        )
        .expect("dingtalk");
        let body: Value = serde_json::from_slice(&ding.body).expect("json");
        assert_eq!(body["msgtype"], "markdown");
        let pairs: Vec<(String, String)> = ding.url.query_pairs().into_owned().collect();
        assert_eq!(pairs[0], ("access_token".to_string(), "t".to_string()));
        assert_eq!(
            pairs[1],
            ("timestamp".to_string(), "1700000000000".to_string())
        );
        let expected = base64::engine::general_purpose::STANDARD
            .encode(hmac_sha256(b"SEC1", b"1700000000000\nSEC1"));
        assert_eq!(pairs[2], ("sign".to_string(), expected));

        let feishu = request(
            &channel("feishu", Some("S")),
            &notification(),
            1_700_000_000_000,
        )
        .expect("feishu");
        let body: Value = serde_json::from_slice(&feishu.body).expect("json");
        assert_eq!(body["msg_type"], "text");
        assert_eq!(body["timestamp"], "1700000000");
        let expected =
            base64::engine::general_purpose::STANDARD.encode(hmac_sha256(b"1700000000\nS", b""));
        assert_eq!(body["sign"], expected.as_str());

        assert_eq!(refusal("dingtalk", r#"{"errcode":0,"errmsg":"ok"}"#), None);
        assert!(refusal(
            "dingtalk",
            r#"{"errcode":310000,"errmsg":"sign not match"}"#
        )
        .is_some());
        assert!(refusal("feishu", r#"{"code":19021,"msg":"sign match fail"}"#).is_some());
        assert_eq!(refusal("slack", "ok"), None);
    }
}
