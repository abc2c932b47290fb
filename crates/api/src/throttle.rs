//! Throttling of failed authentications per client address.
//!
//! After `max_auth_failures_per_address` refused keys from one address within
//! `auth_failure_window_secs`, every request from that address that needs a key is
//! answered `429` with `Retry-After` until the window ends, *before* its key is
//! checked: a guesser learns nothing while throttled, not even that a guess was
//! right. Requests with a correct key do not add to the count, so clients with a
//! valid key are only held back when they share an address with a guesser (behind
//! a proxy: list it in `http.trusted_proxies` so that each client counts alone).
//!
//! The table is bounded: at most [`MAX_TRACKED_ADDRESSES`] addresses; when full,
//! expired windows are dropped first and then the oldest window.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use ipnet::IpNet;
use logpool_engines::config::HttpConfig;

/// Most client addresses whose failures are remembered at once (about 40 bytes
/// each).
pub const MAX_TRACKED_ADDRESSES: usize = 65_536;

/// The address a request came from: the TCP peer, or for a trusted proxy the
/// client it names in `X-Forwarded-For`. Put into every request's extensions by
/// the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// The client of a request from `peer` with these headers: the right-most
    /// `X-Forwarded-For` entry that is not itself a trusted proxy, when `peer` is one.
    pub fn resolve(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> ClientAddress {
        let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
        let peer = peer.ip().to_canonical();
        if !is_trusted(&peer) {
            return ClientAddress(peer);
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical())
            .collect::<Vec<_>>();
        let client = forwarded
            .iter()
            .rev()
            .find(|ip| !is_trusted(ip))
            .copied()
            .unwrap_or(peer);
        ClientAddress(client)
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Counts failed authentications per address (one per listener).
#[derive(Debug)]
pub struct AuthThrottle {
    max_failures: u32,
    window: Duration,
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl AuthThrottle {
    /// A throttle with the `[http]` settings.
    pub fn new(config: &HttpConfig) -> AuthThrottle {
        AuthThrottle {
            max_failures: config.max_auth_failures_per_address,
            window: Duration::from_secs(config.auth_failure_window_secs),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// How long `client` must wait, when it has failed too often.
    pub fn blocked_for(&self, client: IpAddr) -> Option<Duration> {
        if self.max_failures == 0 {
            return None;
        }
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let window = windows.get(&client)?;
        let elapsed = window.started.elapsed();
        (window.failures >= self.max_failures && elapsed < self.window)
            .then(|| self.window - elapsed)
    }

    /// Counts one refused key from `client`.
    pub fn record_failure(&self, client: IpAddr) {
        if self.max_failures == 0 {
            return;
        }
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if !windows.contains_key(&client) && windows.len() >= MAX_TRACKED_ADDRESSES {
            self.make_room(&mut windows, now);
        }
        let window = windows.entry(client).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now.duration_since(window.started) >= self.window {
            *window = Window {
                started: now,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
    }

    /// Addresses remembered now (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.windows.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn make_room(&self, windows: &mut HashMap<IpAddr, Window>, now: Instant) {
        windows.retain(|_, window| now.duration_since(window.started) < self.window);
        if windows.len() >= MAX_TRACKED_ADDRESSES {
            let oldest = windows
                .iter()
                .min_by_key(|(_, window)| window.started)
                .map(|(ip, _)| *ip);
            if let Some(oldest) = oldest {
                windows.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(max_failures: u32, window_secs: u64) -> AuthThrottle {
        AuthThrottle::new(&HttpConfig {
            max_auth_failures_per_address: max_failures,
            auth_failure_window_secs: window_secs,
            ..HttpConfig::default()
        })
    }

    #[test]
    fn an_address_is_blocked_after_its_failures_and_others_are_not() {
        let throttle = throttle(3, 60);
        let guesser: IpAddr = "10.0.0.1".parse().expect("ip");
        let other: IpAddr = "10.0.0.2".parse().expect("ip");
        for _ in 0..2 {
            throttle.record_failure(guesser);
        }
        assert_eq!(throttle.blocked_for(guesser), None);
        throttle.record_failure(guesser);
        let wait = throttle.blocked_for(guesser).expect("blocked");
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(55));
        assert_eq!(throttle.blocked_for(other), None);
    }

    #[test]
    fn zero_failures_allowed_means_off() {
        let throttle = throttle(0, 60);
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        for _ in 0..100 {
            throttle.record_failure(ip);
        }
        assert_eq!(throttle.blocked_for(ip), None);
        assert_eq!(throttle.tracked(), 0);
    }

    #[test]
    fn the_table_stays_bounded() {
        let throttle = throttle(5, 60);
        for n in 0..(MAX_TRACKED_ADDRESSES as u32 + 1000) {
            throttle.record_failure(IpAddr::from(n.to_be_bytes()));
        }
        assert!(throttle.tracked() <= MAX_TRACKED_ADDRESSES);
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxy: SocketAddr = "10.1.1.1:4000".parse().expect("addr");
        let stranger: SocketAddr = "10.9.9.9:4000".parse().expect("addr");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "1.2.3.4, 5.6.7.8, 10.1.1.2".parse().expect("header"),
        );
        let trusted: Vec<IpNet> = vec![
            "10.1.1.1/32".parse().expect("net"),
            "10.1.1.2/32".parse().expect("net"),
        ];
        assert_eq!(
            ClientAddress::resolve(proxy, &headers, &trusted).0,
            "5.6.7.8".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(
            ClientAddress::resolve(stranger, &headers, &trusted).0,
            stranger.ip()
        );
        assert_eq!(
            ClientAddress::resolve(proxy, &HeaderMap::new(), &trusted).0,
            proxy.ip()
        );
        // A range trusts every proxy in it: the client is the first address outside.
        let pods: Vec<IpNet> = vec!["10.1.0.0/16".parse().expect("net")];
        assert_eq!(
            ClientAddress::resolve(proxy, &headers, &pods).0,
            "5.6.7.8".parse::<IpAddr>().expect("ip")
        );
    }
}
