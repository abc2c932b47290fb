//! A synthetic corpus that looks like production logs and repeats little: nginx
//! access and error lines, JSON application logs and Java stack traces, full of IP
//! addresses, user agents, numeric ids, UUIDs, trace ids and latencies. The Loghub
//! samples repeat 16,000 distinct lines, which flatters every engine's compression;
//! a gain measured on both corpora is not an artefact of repetition.
//!
//! The lines come from a fixed-seed generator, so every run (and the ClickHouse
//! peer, which gets the records written out) sees the same records.

use super::corpus::{Corpus, SourceLine};

/// A small, fast, fixed-seed generator (xorshift64*): reproducible lines without a
/// dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn hex(&mut self, digits: usize) -> String {
        let mut out = String::with_capacity(digits);
        while out.len() < digits {
            out.push_str(&format!("{:016x}", self.next()));
        }
        out.truncate(digits);
        out
    }

    fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..]
        )
    }

    fn ip(&mut self) -> String {
        let n = self.next();
        match n % 3 {
            0 => format!(
                "10.{}.{}.{}",
                (n >> 8) % 256,
                (n >> 16) % 256,
                (n >> 24) % 254 + 1
            ),
            1 => format!("192.168.{}.{}", (n >> 8) % 256, (n >> 16) % 254 + 1),
            _ => format!(
                "{}.{}.{}.{}",
                (n >> 8) % 223 + 1,
                (n >> 16) % 256,
                (n >> 24) % 256,
                (n >> 32) % 254 + 1
            ),
        }
    }

    /// A latency in ms, mostly small with a long tail.
    fn latency_ms(&mut self) -> f64 {
        let base = (self.below(5_000) as f64 / 100.0).powi(2) / 10.0;
        (base * 1000.0).round() / 1000.0 + 0.1
    }
}

const METHODS: [&str; 5] = ["GET", "GET", "GET", "POST", "PUT"];
const RESOURCES: [&str; 8] = [
    "users", "orders", "carts", "products", "payments", "sessions", "search", "invoices",
];
const STATUSES: [u16; 10] = [200, 200, 200, 200, 201, 204, 301, 404, 500, 503];
const AGENTS: [&str; 6] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "curl/8.5.0",
    "Go-http-client/1.1",
];
const SERVICES: [&str; 6] = [
    "checkout",
    "payments",
    "inventory",
    "auth",
    "search",
    "shipping",
];
const MESSAGES: [(&str, &str); 10] = [
    ("info", "request completed"),
    ("info", "payment authorized"),
    ("info", "cache miss for key"),
    ("debug", "loaded feature flags"),
    ("info", "user session refreshed"),
    ("warn", "retrying upstream call"),
    ("warn", "slow query detected"),
    ("error", "connection reset by peer"),
    ("error", "upstream request timed out"),
    ("info", "order state changed"),
];
const EXCEPTIONS: [&str; 4] = [
    "java.lang.IllegalStateException: order is not payable",
    "java.net.SocketTimeoutException: Read timed out",
    "java.lang.NullPointerException: Cannot invoke \"Customer.getId()\" because \"customer\" is null",
    "org.postgresql.util.PSQLException: ERROR: deadlock detected",
];
const FRAMES: [&str; 6] = [
    "com.shop.orders.OrderService.process(OrderService.java:{})",
    "com.shop.orders.OrderController.submit(OrderController.java:{})",
    "com.shop.payments.PaymentClient.charge(PaymentClient.java:{})",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:{})",
    "jakarta.servlet.http.HttpServlet.service(HttpServlet.java:{})",
    "java.base/java.lang.Thread.run(Thread.java:{})",
];

/// `lines` distinct synthetic lines, in a fixed order.
pub fn corpus(lines: usize) -> Corpus {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(lines);
    for index in 0..lines {
        let minute = index / 600 % 60;
        let second = index / 10 % 60;
        let line = match rng.below(100) {
            0..=49 => access_line(&mut rng, minute, second),
            50..=84 => app_line(&mut rng, minute, second),
            85..=94 => nginx_error_line(&mut rng, minute, second),
            _ => stack_trace(&mut rng),
        };
        out.push(line);
    }
    Corpus { lines: out }
}

fn access_line(rng: &mut Rng, minute: usize, second: usize) -> SourceLine {
    let resource = rng.pick(&RESOURCES);
    let path = match rng.below(3) {
        0 => format!("/api/v1/{resource}/{}", rng.below(5_000_000)),
        1 => format!(
            "/api/v1/{resource}/{}/items?page={}",
            rng.uuid(),
            rng.below(20)
        ),
        _ => format!("/api/v2/{resource}?q={}&limit=50", rng.hex(6)),
    };
    let status = STATUSES[rng.below(STATUSES.len() as u64) as usize];
    let line = format!(
        "{} - - [07/Dec/2026:10:{minute:02}:{second:02} +0000] \"{} {path} HTTP/1.1\" {status} {} \"https://shop.example.com/{}\" \"{}\" {:.3}",
        rng.ip(),
        rng.pick(&METHODS),
        rng.below(200_000),
        rng.pick(&RESOURCES),
        rng.pick(&AGENTS),
        rng.latency_ms() / 1000.0,
    );
    SourceLine {
        line,
        level: if status >= 500 { "error" } else { "info" }.to_string(),
        host: Some(format!("web-{}", rng.below(12))),
        component: "nginx".to_string(),
        system: "nginx".to_string(),
    }
}

fn app_line(rng: &mut Rng, minute: usize, second: usize) -> SourceLine {
    let service = rng.pick(&SERVICES);
    let (level, message) = MESSAGES[rng.below(MESSAGES.len() as u64) as usize];
    let line = format!(
        "{{\"ts\":\"2026-12-07T10:{minute:02}:{second:02}.{:03}Z\",\"level\":\"{level}\",\"service\":\"{service}\",\"trace_id\":\"{}\",\"span_id\":\"{}\",\"user_id\":{},\"order_id\":\"{}\",\"msg\":\"{message}\",\"latency_ms\":{},\"client_ip\":\"{}\"}}",
        rng.below(1000),
        rng.hex(32),
        rng.hex(16),
        rng.below(10_000_000),
        rng.uuid(),
        rng.latency_ms(),
        rng.ip(),
    );
    SourceLine {
        line,
        level: level.to_string(),
        host: Some(format!("{service}-{}", rng.hex(5))),
        component: service.to_string(),
        system: "app".to_string(),
    }
}

fn nginx_error_line(rng: &mut Rng, minute: usize, second: usize) -> SourceLine {
    let resource = rng.pick(&RESOURCES);
    let line = format!(
        "2026/12/07 10:{minute:02}:{second:02} [error] {}#0: *{} upstream timed out (110: Connection timed out) while reading response header from upstream, client: {}, server: shop.example.com, request: \"GET /api/v1/{resource}/{} HTTP/1.1\", upstream: \"http://{}:8080/{resource}\", host: \"shop.example.com\"",
        rng.below(64),
        rng.below(100_000_000),
        rng.ip(),
        rng.below(5_000_000),
        rng.ip(),
    );
    SourceLine {
        line,
        level: "error".to_string(),
        host: Some(format!("web-{}", rng.below(12))),
        component: "nginx".to_string(),
        system: "nginx".to_string(),
    }
}

fn stack_trace(rng: &mut Rng) -> SourceLine {
    let mut line = format!(
        "ERROR [http-nio-8080-exec-{}] com.shop.orders.OrderService: failed to process order {}\n{}",
        rng.below(200),
        rng.uuid(),
        rng.pick(&EXCEPTIONS)
    );
    let frames = 3 + rng.below(4) as usize;
    let first = rng.below(FRAMES.len() as u64) as usize;
    for frame in 0..frames {
        let template = FRAMES[(first + frame) % FRAMES.len()];
        line.push_str("\n\tat ");
        line.push_str(&template.replace("{}", &(20 + rng.below(900)).to_string()));
    }
    SourceLine {
        line,
        level: "error".to_string(),
        host: Some(format!("orders-{}", rng.hex(5))),
        component: "com.shop.orders.OrderService".to_string(),
        system: "java".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_reproducible_and_mostly_distinct() {
        let a = corpus(2_000);
        let b = corpus(2_000);
        assert_eq!(a.lines.len(), 2_000);
        assert!(a.lines.iter().zip(&b.lines).all(|(x, y)| x.line == y.line));
        let distinct: std::collections::HashSet<&str> =
            a.lines.iter().map(|l| l.line.as_str()).collect();
        assert!(distinct.len() > 1_990, "{} distinct", distinct.len());
        assert!(a.lines.iter().any(|l| l.line.contains("\n\tat ")));
    }
}
