//! The API key of a WebSocket upgrade, carried in the `Sec-WebSocket-Protocol`
//! header so that it is never part of a URL.
//!
//! Browsers cannot set `Authorization` on a WebSocket, but they do send the
//! subprotocols a page offers
//! (`new WebSocket(url, [TAIL_PROTOCOL, KEY_PROTOCOL_PREFIX + key])`). A URL ends up in browser consoles, history, proxy and server access
//! logs; this header does not. Chosen over a short-lived ticket (which would need
//! state shared by every tail-ws replica, or a signing secret, and a second request)
//! and over a first message (which would upgrade unauthenticated connections and
//! check limits only after the upgrade). Keys are `lpk_<id>_<secret>`, all of whose
//! characters are allowed in a subprotocol token.
//!
//! The server answers with [`TAIL_PROTOCOL`] only, never with the key's entry, and
//! the entry is removed from the request once the key is checked, so no handler or
//! log line after the check sees it.

use axum::http::{HeaderMap, HeaderValue};

/// The subprotocol a client offers to get errors in-band (an `error` frame and a
/// close reason) instead of an HTTP answer to the upgrade, which browsers hide.
pub const TAIL_PROTOCOL: &str = "logpool.tail.v1";

/// The prefix of the subprotocol entry that carries the key.
pub const KEY_PROTOCOL_PREFIX: &str = "logpool.key.";

const PROTOCOL_HEADER: &str = "sec-websocket-protocol";

fn offered(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(PROTOCOL_HEADER)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
}

/// The key offered as a subprotocol entry, if any.
pub fn key_from_protocols(headers: &HeaderMap) -> Option<String> {
    offered(headers)
        .find_map(|entry| entry.strip_prefix(KEY_PROTOCOL_PREFIX))
        .filter(|key| !key.is_empty())
        .map(str::to_string)
}

/// Whether the client offered `protocol`.
pub fn offers(headers: &HeaderMap, protocol: &str) -> bool {
    offered(headers).any(|entry| entry == protocol)
}

/// Removes the key's entry from the offered subprotocols, keeping the others.
pub fn remove_key_protocol(headers: &mut HeaderMap) {
    if key_from_protocols(headers).is_none() {
        return;
    }
    let kept: Vec<String> = offered(headers)
        .filter(|entry| !entry.starts_with(KEY_PROTOCOL_PREFIX))
        .map(str::to_string)
        .collect();
    headers.remove(PROTOCOL_HEADER);
    if let Ok(value) = HeaderValue::from_str(&kept.join(", ")) {
        if !kept.is_empty() {
            headers.insert(PROTOCOL_HEADER, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                PROTOCOL_HEADER,
                HeaderValue::from_str(value).expect("value"),
            );
        }
        headers
    }

    #[test]
    fn test_key_is_read_from_any_entry_and_removed_alone() {
        let mut offered = headers(&["logpool.tail.v1, logpool.key.lpk_ab_cd", "other"]);
        assert_eq!(key_from_protocols(&offered).as_deref(), Some("lpk_ab_cd"));
        assert!(offers(&offered, TAIL_PROTOCOL));
        remove_key_protocol(&mut offered);
        assert_eq!(key_from_protocols(&offered), None);
        assert!(offers(&offered, TAIL_PROTOCOL));
        assert!(offers(&offered, "other"));
        let text = format!("{:?}", offered);
        assert!(!text.contains("lpk_"), "{text}");
    }

    #[test]
    fn test_no_key_or_empty_key_is_none() {
        assert_eq!(key_from_protocols(&headers(&["logpool.tail.v1"])), None);
        assert_eq!(key_from_protocols(&headers(&["logpool.key."])), None);
        assert_eq!(key_from_protocols(&HeaderMap::new()), None);
    }
}
