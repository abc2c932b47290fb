//! Subscription backlogs from the broker's Prometheus metrics (`metrics_url`).
//!
//! The binary protocol's CONSUMER_STATS command answers with a subscription's backlog,
//! but not every Pulsar-protocol broker implements it (pulsar-lite ignores it), and
//! it reports no byte count. Apache Pulsar and pulsar-lite both export
//! `pulsar_subscription_back_log` (messages) and `pulsar_average_msg_size` (bytes) on
//! their metrics endpoint, so when `metrics_url` is configured the backlog comes from
//! there: messages exactly as the broker counts them, bytes estimated as messages ×
//! the topic's average message size (the broker's recent average, or else
//! `pulsar_in_bytes_total / pulsar_in_messages_total`).
//!
//! Metrics are a snapshot the broker refreshes periodically (about every 10 s on
//! pulsar-lite, per `statsUpdateFrequencyInSecs` on Apache Pulsar), so the backlog
//! lags acks by up to that interval; it is meant for lag monitoring.
//!
//! The two brokers label a partition topic differently; both are recognised:
//! - Apache Pulsar: `namespace="{tenant}/{ns}"`, `topic="persistent://{tenant}/{ns}/{project}-partition-{k}"`;
//! - pulsar-lite: `namespace="{tenant}/{ns}"`, `topic="{project}"`, `partition="{k}"`.
//!
//! The endpoint is fetched with the same HTTP client as the admin API (reqwest), with
//! the page size capped: Apache brokers with many topics export a lot.

use std::collections::HashMap;

use std::sync::OnceLock;

use logpool_core::routing::ShardAddr;

use crate::queue::{QueueError, QueueResult};

/// Largest metrics page read (Apache brokers with many topics export a lot).
const MAX_METRICS_BYTES: u64 = 256 * 1024 * 1024;

/// One sample: labels and value.
type Sample = (HashMap<String, String>, f64);

/// The samples of the metrics this module reads, from one scrape.
#[derive(Debug, Default)]
pub(crate) struct BacklogMetrics {
    back_log: Vec<Sample>,
    average_msg_size: Vec<Sample>,
    in_bytes_total: Vec<Sample>,
    in_messages_total: Vec<Sample>,
}

impl BacklogMetrics {
    /// Fetches and parses the metrics page at `url` (`http://host:port/path`).
    pub(crate) async fn fetch(url: &str) -> QueueResult<BacklogMetrics> {
        let page = http_get(url).await?;
        Ok(BacklogMetrics::parse(&page))
    }

    /// Parses a Prometheus text page, keeping the metrics this module needs.
    pub(crate) fn parse(page: &str) -> BacklogMetrics {
        let mut metrics = BacklogMetrics::default();
        for line in page.lines() {
            let line = line.trim();
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let Some((name, labels, value)) = parse_sample(line) else {
                continue;
            };
            match name {
                "pulsar_subscription_back_log" => metrics.back_log.push((labels, value)),
                "pulsar_average_msg_size" => metrics.average_msg_size.push((labels, value)),
                "pulsar_in_bytes_total" => metrics.in_bytes_total.push((labels, value)),
                "pulsar_in_messages_total" => metrics.in_messages_total.push((labels, value)),
                _ => {}
            }
        }
        metrics
    }

    /// Returns `(messages, estimated bytes)` of `subscription` on `shard`; a
    /// subscription or topic the broker does not report has no backlog.
    pub(crate) fn backlog(
        &self,
        namespace: &str,
        shard: &ShardAddr,
        subscription: &str,
    ) -> (u64, u64) {
        let messages = self
            .back_log
            .iter()
            .find(|(labels, _)| {
                labels.get("subscription").map(String::as_str) == Some(subscription)
                    && is_shard(labels, namespace, shard)
            })
            .map_or(0.0, |(_, value)| *value);
        let of_topic = |samples: &[Sample]| {
            samples
                .iter()
                .find(|(labels, _)| is_shard(labels, namespace, shard))
                .map_or(0.0, |(_, value)| *value)
        };
        // The broker's average covers a recent interval and is 0 for an idle topic;
        // the totals since the topic was loaded are the fallback.
        let mut average_size = of_topic(&self.average_msg_size);
        if average_size <= 0.0 {
            let in_messages = of_topic(&self.in_messages_total);
            if in_messages > 0.0 {
                average_size = of_topic(&self.in_bytes_total) / in_messages;
            }
        }
        let messages = to_u64(messages);
        (messages, to_u64(messages as f64 * average_size))
    }
}

/// Whether a sample's labels name the shard's topic, in either broker's dialect.
fn is_shard(labels: &HashMap<String, String>, namespace: &str, shard: &ShardAddr) -> bool {
    let full_namespace = format!("{}/{namespace}", shard.tenant);
    let full_topic = super::topic_name(namespace, shard);
    let label = |key: &str| labels.get(key).map(String::as_str);
    if label("topic") == Some(full_topic.as_str()) {
        return true;
    }
    let partition = shard.partition.to_string();
    let partition_topic = format!("{}-partition-{}", shard.project, shard.partition);
    label("namespace") == Some(full_namespace.as_str())
        && ((label("topic") == Some(shard.project.as_str())
            && label("partition") == Some(partition.as_str()))
            || label("topic") == Some(partition_topic.as_str()))
}

fn to_u64(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        value.round() as u64
    } else {
        0
    }
}

/// Parses `name{label="value",...} value [timestamp]`.
fn parse_sample(line: &str) -> Option<(&str, HashMap<String, String>, f64)> {
    let (name, rest) = match line.find('{') {
        Some(brace) => (&line[..brace], &line[brace + 1..]),
        None => {
            let mut parts = line.split_whitespace();
            let name = parts.next()?;
            let value = parts.next()?.parse().ok()?;
            return Some((name, HashMap::new(), value));
        }
    };
    let mut labels = HashMap::new();
    let mut chars = rest.char_indices().peekable();
    let end_of_labels;
    loop {
        // Skip separators, then read `key="value"` or the closing brace.
        while let Some((_, c)) = chars.peek() {
            if *c == ',' || c.is_whitespace() {
                chars.next();
            } else {
                break;
            }
        }
        let (start, c) = chars.next()?;
        if c == '}' {
            end_of_labels = start + 1;
            break;
        }
        let mut key = String::from(c);
        loop {
            let (_, c) = chars.next()?;
            if c == '=' {
                break;
            }
            key.push(c);
        }
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            let (_, c) = chars.next()?;
            match c {
                '"' => break,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                other => value.push(other),
            }
        }
        labels.insert(key.trim().to_string(), value);
    }
    let value = rest[end_of_labels..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((name, labels, value))
}

/// GETs a URL and returns the body of a 200 answer, refusing pages over
/// [`MAX_METRICS_BYTES`]. The caller bounds the whole exchange with its timeout.
pub(crate) async fn http_get(url: &str) -> QueueResult<String> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    let unavailable =
        |error: reqwest::Error| QueueError::Unavailable(format!("fetching {url}: {error}"));
    let mut response = CLIENT
        .get_or_init(reqwest::Client::new)
        .get(url)
        .header(reqwest::header::ACCEPT, "text/plain")
        .send()
        .await
        .map_err(unavailable)?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(QueueError::Unavailable(format!(
            "{url} answered {}",
            response.status()
        )));
    }
    let mut page = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
        if (page.len() + chunk.len()) as u64 > MAX_METRICS_BYTES {
            return Err(QueueError::Unavailable(format!(
                "{url} sent more than {MAX_METRICS_BYTES} bytes of metrics"
            )));
        }
        page.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&page).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard() -> ShardAddr {
        ShardAddr {
            tenant: "acme".to_string(),
            project: "web".to_string(),
            partition: 2,
        }
    }

    #[test]
    fn test_backlog_is_read_in_both_label_dialects() {
        let lite = r#"
# TYPE pulsar_subscription_back_log gauge
pulsar_subscription_back_log{cluster="pulsar-lite",namespace="acme/logs",partition="2",subscription="loghub",topic="web"} 3
pulsar_subscription_back_log{cluster="pulsar-lite",namespace="acme/logs",partition="1",subscription="loghub",topic="web"} 9
pulsar_average_msg_size{cluster="pulsar-lite",namespace="acme/logs",partition="2",topic="web"} 87.5
"#;
        let metrics = BacklogMetrics::parse(lite);
        assert_eq!(metrics.backlog("logs", &shard(), "loghub"), (3, 263));
        assert_eq!(metrics.backlog("logs", &shard(), "other"), (0, 0));

        let apache = r#"pulsar_subscription_back_log{cluster="standalone",namespace="acme/logs",topic="persistent://acme/logs/web-partition-2",subscription="loghub"} 12 1700000000000
pulsar_average_msg_size{cluster="standalone",namespace="acme/logs",topic="persistent://acme/logs/web-partition-2"} 10"#;
        let metrics = BacklogMetrics::parse(apache);
        assert_eq!(metrics.backlog("logs", &shard(), "loghub"), (12, 120));

        let idle = r#"pulsar_subscription_back_log{namespace="acme/logs",partition="2",subscription="loghub",topic="web"} 2
pulsar_average_msg_size{namespace="acme/logs",partition="2",topic="web"} 0
pulsar_in_bytes_total{namespace="acme/logs",partition="2",topic="web"} 300
pulsar_in_messages_total{namespace="acme/logs",partition="2",topic="web"} 6"#;
        let metrics = BacklogMetrics::parse(idle);
        assert_eq!(metrics.backlog("logs", &shard(), "loghub"), (2, 100));
    }

    #[test]
    fn test_label_values_may_hold_escapes_and_commas() {
        let (name, labels, value) =
            parse_sample(r#"m{a="x,\"y\"",b="z"} 1.5"#).unwrap_or(("", HashMap::new(), 0.0));
        assert_eq!(name, "m");
        assert_eq!(labels.get("a").map(String::as_str), Some("x,\"y\""));
        assert_eq!(labels.get("b").map(String::as_str), Some("z"));
        assert_eq!(value, 1.5);
        assert!(parse_sample("plain 4").is_some());
        assert!(parse_sample("broken{a=\"x\" 4").is_none());
    }
}
