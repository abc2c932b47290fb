//! Topic management through Apache Pulsar's admin REST API (`admin_url`).
//!
//! Apache Pulsar addresses `{project}-partition-{k}` as partition `k` of the
//! partitioned topic `{project}`, and (with the broker's usual settings) only
//! partitions below the topic's partition count exist. So when an admin URL is
//! configured, the control plane keeps each project's partitioned topic at least as
//! wide as the highest partition number any pool of the project owns:
//! - `GET  /admin/v2/persistent/{tenant}/{namespace}/{project}/partitions` reads the
//!   count (`{"partitions": n}`; 0 or 404 when the topic does not exist yet);
//! - `PUT` of the same path with the count as body creates the partitioned topic;
//! - `POST` of the same path with the new count grows it (Pulsar never shrinks one:
//!   partitions of deleted pools stay, empty, and are never handed out again);
//! - `DELETE` of the same path with `force=true` deletes the project's whole topic
//!   family when the project is deleted.
//!
//! Brokers without an admin API (pulsar-lite) auto-create partition topics on first
//! use instead; `admin_url` stays unset for them. Tenants and namespaces are not
//! created here: they carry cluster-level policy (allowed clusters, retention,
//! backlog quotas) that belongs to the operator.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use crate::queue::{QueueError, QueueResult};

/// A bearer token that never shows in `Debug` output (configs get logged).
#[derive(Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(transparent)]
pub struct AdminToken(String);

impl AdminToken {
    /// The secret itself, for the `Authorization` header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("AdminToken(<redacted>)")
    }
}

/// What one project's partitioned topic needs, computed from the shards of a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicWidth {
    pub(crate) tenant: String,
    pub(crate) project: String,
    /// Partition count the topic must have at least (highest partition + 1).
    pub(crate) partitions: u32,
}

/// Groups shards by project and returns the width each project's topic needs.
pub(crate) fn required_widths(shards: &[logpool_core::routing::ShardAddr]) -> Vec<TopicWidth> {
    let mut widths: Vec<TopicWidth> = Vec::new();
    for shard in shards {
        let needed = shard.partition.saturating_add(1);
        match widths
            .iter_mut()
            .find(|w| w.tenant == shard.tenant && w.project == shard.project)
        {
            Some(width) => width.partitions = width.partitions.max(needed),
            None => widths.push(TopicWidth {
                tenant: shard.tenant.clone(),
                project: shard.project.clone(),
                partitions: needed,
            }),
        }
    }
    widths
}

/// A client of the admin REST API for one namespace.
#[derive(Debug, Clone)]
pub(crate) struct PulsarAdmin {
    http: reqwest::Client,
    base_url: String,
    namespace: String,
    token: Option<String>,
}

/// The admin API's answer to a partition-count request.
#[derive(Debug, Deserialize)]
struct PartitionedTopicMetadata {
    partitions: u32,
}

impl PulsarAdmin {
    /// Creates a client; `base_url` is the broker's web service URL
    /// (`http://broker:8080`), `token` an optional bearer token.
    pub(crate) fn new(
        base_url: &str,
        namespace: &str,
        token: Option<String>,
        timeout: Duration,
    ) -> QueueResult<PulsarAdmin> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| QueueError::Unavailable(format!("pulsar admin client: {e}")))?;
        Ok(PulsarAdmin {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            namespace: namespace.to_string(),
            token,
        })
    }

    /// The REST path of a project's partitioned topic. Tenant, namespace and project
    /// are validated names (no `/`, nothing to escape).
    pub(crate) fn partitions_url(&self, tenant: &str, project: &str) -> String {
        format!(
            "{}/admin/v2/persistent/{tenant}/{}/{project}/partitions",
            self.base_url, self.namespace
        )
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Reads a project topic's partition count; 0 when it does not exist.
    async fn partition_count(&self, tenant: &str, project: &str) -> QueueResult<u32> {
        let url = self.partitions_url(tenant, project);
        let response = self
            .request(reqwest::Method::GET, &url)
            .send()
            .await
            .map_err(|e| unavailable("GET", &url, e))?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(0),
            status if status.is_success() => response
                .json::<PartitionedTopicMetadata>()
                .await
                .map(|m| m.partitions)
                .map_err(|e| unavailable("GET", &url, e)),
            status => Err(refused("GET", &url, status, response).await),
        }
    }

    /// Creates or grows a project's partitioned topic to at least `width`.
    pub(crate) async fn ensure_width(&self, width: &TopicWidth) -> QueueResult<()> {
        let url = self.partitions_url(&width.tenant, &width.project);
        let have = self.partition_count(&width.tenant, &width.project).await?;
        if have >= width.partitions {
            return Ok(());
        }
        // PUT creates, POST grows; a concurrent creator makes PUT answer 409, after
        // which growing is still right.
        let method = if have == 0 {
            reqwest::Method::PUT
        } else {
            reqwest::Method::POST
        };
        let response = self
            .request(method.clone(), &url)
            .json(&width.partitions)
            .send()
            .await
            .map_err(|e| unavailable(method.as_str(), &url, e))?;
        match response.status() {
            status if status.is_success() => Ok(()),
            StatusCode::CONFLICT if method == reqwest::Method::PUT => {
                Box::pin(self.ensure_width(width)).await
            }
            status => Err(refused(method.as_str(), &url, status, response).await),
        }
    }

    /// Deletes a project's partitioned topic and every partition; absent is fine.
    pub(crate) async fn delete_topic(&self, tenant: &str, project: &str) -> QueueResult<()> {
        let url = self.partitions_url(tenant, project);
        let response = self
            .request(reqwest::Method::DELETE, &url)
            .query(&[("force", "true")])
            .send()
            .await
            .map_err(|e| unavailable("DELETE", &url, e))?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(()),
            status if status.is_success() => Ok(()),
            status => Err(refused("DELETE", &url, status, response).await),
        }
    }
}

fn unavailable(method: &str, url: &str, error: reqwest::Error) -> QueueError {
    QueueError::Unavailable(format!("pulsar admin {method} {url}: {error}"))
}

async fn refused(
    method: &str,
    url: &str,
    status: StatusCode,
    response: reqwest::Response,
) -> QueueError {
    let body = response.text().await.unwrap_or_default();
    let body: String = body.chars().take(300).collect();
    QueueError::Unavailable(format!(
        "pulsar admin {method} {url} answered {status}: {body}"
    ))
}

#[cfg(test)]
mod tests {
    use logpool_core::routing::ShardAddr;

    use super::*;

    fn shard(project: &str, partition: u32) -> ShardAddr {
        ShardAddr {
            tenant: "acme".into(),
            project: project.into(),
            partition,
        }
    }

    #[test]
    fn test_each_project_needs_its_highest_partition_plus_one() {
        let widths = required_widths(&[shard("shop", 3), shard("web", 0), shard("shop", 7)]);
        assert_eq!(
            widths,
            [
                TopicWidth {
                    tenant: "acme".into(),
                    project: "shop".into(),
                    partitions: 8
                },
                TopicWidth {
                    tenant: "acme".into(),
                    project: "web".into(),
                    partitions: 1
                },
            ]
        );
        assert!(required_widths(&[]).is_empty());
    }

    /// The admin API's partitioned-topic calls as Pulsar documents them (PUT creates
    /// or answers 409, POST grows, GET reads `{"partitions": n}`, DELETE removes),
    /// served over raw HTTP so that this test checks the requests this client sends.
    /// It proves our side of the contract only: no Apache Pulsar runs in the tests.
    async fn serve_admin_api(
        listener: tokio::net::TcpListener,
        log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut topics: std::collections::HashMap<String, u32> = Default::default();
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            let (head, body) = loop {
                let n = stream.read(&mut buffer).await.expect("read");
                request.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().expect("length"))
                        })
                        .unwrap_or(0);
                    if text.len() >= end + 4 + length {
                        break (text[..end].to_string(), text[end + 4..].to_string());
                    }
                }
                assert!(n > 0, "connection closed mid-request");
            };
            let line = head.lines().next().expect("request line").to_string();
            let authorized = head
                .to_ascii_lowercase()
                .contains("authorization: bearer t0k");
            let mut parts = line.split(' ');
            let method = parts.next().expect("method").to_string();
            let target = parts.next().expect("target").to_string();
            let path = target.split('?').next().expect("path").to_string();
            log.lock()
                .expect("log")
                .push(format!("{method} {target} {body}"));
            let (status, answer) = match (authorized, method.as_str()) {
                (false, _) => ("401 Unauthorized", String::new()),
                (true, "GET") => match topics.get(&path) {
                    Some(n) => ("200 OK", format!("{{\"partitions\":{n}}}")),
                    None => ("404 Not Found", String::new()),
                },
                (true, "PUT") if topics.contains_key(&path) => ("409 Conflict", String::new()),
                (true, "PUT") => {
                    topics.insert(path, body.trim().parse().expect("count"));
                    ("204 No Content", String::new())
                }
                (true, "POST") => {
                    let n: u32 = body.trim().parse().expect("count");
                    match topics.get_mut(&path) {
                        Some(have) if n > *have => {
                            *have = n;
                            ("204 No Content", String::new())
                        }
                        Some(_) => ("412 Precondition Failed", String::new()),
                        None => ("404 Not Found", String::new()),
                    }
                }
                (true, "DELETE") => match topics.remove(&path) {
                    Some(_) => ("204 No Content", String::new()),
                    None => ("404 Not Found", String::new()),
                },
                _ => ("405 Method Not Allowed", String::new()),
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            stream.write_all(reply.as_bytes()).await.expect("write");
        }
    }

    #[tokio::test]
    async fn test_topics_are_created_grown_and_deleted_with_the_documented_calls() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let server = tokio::spawn(serve_admin_api(listener, log.clone()));
        let admin = PulsarAdmin::new(&url, "logs", Some("t0k".into()), Duration::from_secs(5))
            .expect("client");
        let path = "/admin/v2/persistent/acme/logs/shop/partitions";
        for width in required_widths(&[shard("shop", 0), shard("shop", 1)]) {
            admin.ensure_width(&width).await.expect("create");
        }
        // Growing to a pool's new partitions, then asking again for fewer: no call
        // may shrink the topic.
        for width in required_widths(&[shard("shop", 4)]) {
            admin.ensure_width(&width).await.expect("grow");
        }
        for width in required_widths(&[shard("shop", 2)]) {
            admin
                .ensure_width(&width)
                .await
                .expect("already wide enough");
        }
        admin.delete_topic("acme", "shop").await.expect("delete");
        admin
            .delete_topic("acme", "shop")
            .await
            .expect("absent is fine");
        let calls = log.lock().expect("log").clone();
        assert_eq!(
            calls,
            [
                format!("GET {path} "),
                format!("PUT {path} 2"),
                format!("GET {path} "),
                format!("POST {path} 5"),
                format!("GET {path} "),
                format!("DELETE {path}?force=true "),
                format!("DELETE {path}?force=true "),
            ]
        );
        let unauthorized =
            PulsarAdmin::new(&url, "logs", None, Duration::from_secs(5)).expect("client");
        let error = unauthorized
            .delete_topic("acme", "shop")
            .await
            .expect_err("a refused call is an error");
        assert!(error.to_string().contains("401"), "{error}");
        server.abort();
    }

    #[test]
    fn test_the_token_is_redacted_in_debug_output() {
        let token: AdminToken = serde_json::from_str("\"s3cr3t\"").expect("token");
        assert_eq!(token.expose(), "s3cr3t");
        assert!(!format!("{token:?}").contains("s3cr3t"));
    }

    #[test]
    fn test_the_partitions_path_names_tenant_namespace_and_project() {
        let admin = PulsarAdmin::new("http://broker:8080/", "logs", None, Duration::from_secs(1))
            .expect("client");
        assert_eq!(
            admin.partitions_url("acme", "shop"),
            "http://broker:8080/admin/v2/persistent/acme/logs/shop/partitions"
        );
    }
}
