//! Tenants with real data for the authorization tests: raw HTTP requests that show
//! every status and body, an operator acting in any tenant, and a pool seeded with
//! records that carry a marker string unique to the tenant and project, so a test
//! can grep every answer for another tenant's data.

use std::time::Duration;

use logpool_client::wire::archive::Restore;
use logpool_client::wire::control::ApiKey;
use logpool_client::wire::queue::CursorAnswer;
use logpool_client::wire::search::SearchAnswer;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::{wait_for, ADMIN_KEY};

/// The header an operator key uses to act in another tenant.
pub const TENANT_HEADER: &str = "x-logpool-tenant";

/// One HTTP answer: status and body, whatever they are.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body as text (JSON, NDJSON or anything else).
    pub text: String,
}

impl Answer {
    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// The body as the wire type `T`; panics, showing the body, when it is not one.
    pub fn decode<T: DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.text).unwrap_or_else(|error| {
            panic!(
                "not a {} ({error}): {}",
                std::any::type_name::<T>(),
                self.text
            )
        })
    }
}

/// Raw requests against one server, with or without a key.
#[derive(Debug, Clone)]
pub struct RawApi {
    http: reqwest::Client,
    base_url: String,
}

impl RawApi {
    /// Requests to `base_url` (`http://host:port`).
    pub fn new(base_url: &str) -> RawApi {
        RawApi {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("http client"),
            base_url: base_url.to_string(),
        }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends `method path` with `key` as bearer (none when `None`), the operator's
    /// tenant header when `act_in` is set, and `body` as JSON.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        act_in: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base_url));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(tenant) = act_in {
            request = request.header(TENANT_HEADER, tenant);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Self::answer(request, &method, path).await
    }

    /// As [`RawApi::send`], with an NDJSON body (the Elasticsearch bulk API).
    pub async fn send_ndjson(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        act_in: Option<&str>,
        body: String,
    ) -> Answer {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base_url))
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(tenant) = act_in {
            request = request.header(TENANT_HEADER, tenant);
        }
        Self::answer(request, &method, path).await
    }

    async fn answer(request: reqwest::RequestBuilder, method: &Method, path: &str) -> Answer {
        let response = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Answer { status, text }
    }

    /// Sends as the operator acting in `tenant`.
    pub async fn as_operator(
        &self,
        tenant: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Answer {
        self.send(method, path, Some(ADMIN_KEY), Some(tenant), body)
            .await
    }

    /// Creates tenant `name` (as the operator).
    pub async fn create_tenant(&self, name: &str) {
        let answer = self
            .send(
                Method::POST,
                "/v1/tenants",
                Some(ADMIN_KEY),
                None,
                Some(&json!({ "name": name })),
            )
            .await;
        assert_eq!(answer.status, 201, "create tenant {name}: {}", answer.text);
    }

    /// Creates a key of `tenant` (as the operator) and returns its id and secret.
    pub async fn create_key(
        &self,
        tenant: &str,
        role: &str,
        project: Option<&str>,
    ) -> (String, String) {
        let mut body = json!({ "role": role });
        if let Some(project) = project {
            body["project"] = json!(project);
        }
        let answer = self
            .send(
                Method::POST,
                &format!("/v1/tenants/{tenant}/keys"),
                Some(ADMIN_KEY),
                None,
                Some(&body),
            )
            .await;
        assert_eq!(answer.status, 201, "create key: {}", answer.text);
        let key: ApiKey = answer.decode();
        (
            key.id,
            key.key.expect("the key's secret, shown at its creation"),
        )
    }

    /// Creates a project of `tenant` (as the operator).
    pub async fn create_project(&self, tenant: &str, project: &str) {
        let answer = self
            .as_operator(
                tenant,
                Method::POST,
                "/v1/projects",
                Some(&json!({ "name": project })),
            )
            .await;
        assert_eq!(answer.status, 201, "create project: {}", answer.text);
    }

    /// Creates a one-shard pool (as the operator).
    pub async fn create_pool(&self, tenant: &str, project: &str, pool: &str) {
        let answer = self
            .as_operator(
                tenant,
                Method::POST,
                &format!("/v1/projects/{project}/pools"),
                Some(&json!({ "name": pool, "shards": 1 })),
            )
            .await;
        assert_eq!(answer.status, 201, "create pool: {}", answer.text);
    }

    /// Creates a consumer group (as the operator).
    pub async fn create_group(&self, tenant: &str, project: &str, pool: &str, group: &str) {
        let answer = self
            .as_operator(
                tenant,
                Method::POST,
                &format!("/v1/projects/{project}/pools/{pool}/consumer-groups"),
                Some(&json!({ "name": group })),
            )
            .await;
        assert_eq!(answer.status, 201, "create group: {}", answer.text);
    }
}

/// A pool of one tenant's project, with records, a cursor, a consumer group and a
/// restore, whose ids a test can use in paths.
#[derive(Debug, Clone)]
pub struct SeededPool {
    /// Owning tenant.
    pub tenant: String,
    /// Project name.
    pub project: String,
    /// Pool name.
    pub pool: String,
    /// A string in every record of this pool and nowhere else.
    pub marker: String,
    /// The id of one record (from a search hit).
    pub record_id: String,
    /// A cursor at the beginning of shard 0.
    pub cursor: String,
    /// A consumer group of the pool.
    pub group: String,
    /// The id of a restore of the pool's archive.
    pub restore_id: String,
}

/// Number of records [`seed_pool`] writes.
pub const SEEDED_RECORDS: usize = 3;

/// A marker unique to this run, tenant and project (`<tenant>-secret-<random>`).
pub fn unique_marker(tenant: &str, project: &str) -> String {
    format!("{tenant}-{project}-secret-{:016x}", rand::random::<u64>())
}

/// Creates `project` (unless `project_exists`) with pools `pool` and `spare` in
/// `tenant`, writes [`SEEDED_RECORDS`] marked records, and makes a consumer group, a
/// cursor and a restore (into `spare`). Call [`wait_until_searchable`] before using
/// `record_id`.
pub async fn seed_pool(
    api: &RawApi,
    tenant: &str,
    project: &str,
    pool: &str,
    project_exists: bool,
) -> SeededPool {
    if !project_exists {
        api.create_project(tenant, project).await;
    }
    api.create_pool(tenant, project, pool).await;
    api.create_pool(tenant, project, &format!("{pool}-spare"))
        .await;
    let marker = unique_marker(tenant, project);
    let logs: Vec<Value> = (0..SEEDED_RECORDS)
        .map(|n| json!({ "message": format!("{marker} record {n}"), "owner": tenant }))
        .collect();
    let base = format!("/v1/projects/{project}/pools/{pool}");
    let put = api
        .as_operator(
            tenant,
            Method::POST,
            &format!("{base}/logs"),
            Some(&json!({ "source": "seed", "logs": logs })),
        )
        .await;
    assert_eq!(put.status, 200, "seed records: {}", put.text);
    let group = "readers".to_string();
    api.create_group(tenant, project, pool, &group).await;
    let cursor = api
        .as_operator(
            tenant,
            Method::GET,
            &format!("{base}/shards/0/cursor?from=begin"),
            None,
        )
        .await;
    assert_eq!(cursor.status, 200, "cursor: {}", cursor.text);
    let restore = api
        .as_operator(
            tenant,
            Method::POST,
            &format!("{base}/archive/restore"),
            Some(&json!({ "into_pool": format!("{pool}-spare") })),
        )
        .await;
    assert!(
        restore.status == 202 || restore.status == 200,
        "restore: {}",
        restore.text
    );
    SeededPool {
        tenant: tenant.to_string(),
        project: project.to_string(),
        pool: pool.to_string(),
        marker,
        record_id: String::new(),
        cursor: cursor.decode::<CursorAnswer>().cursor,
        group,
        restore_id: restore.decode::<Restore>().id,
    }
}

/// Waits until the seeded records are searchable and fills in `record_id`.
pub async fn wait_until_searchable(api: &RawApi, seeded: &mut SeededPool) {
    let path = format!(
        "/v1/projects/{}/pools/{}/search",
        seeded.project, seeded.pool
    );
    let found = wait_for(Duration::from_secs(30), || {
        let (api, path, tenant) = (api.clone(), path.clone(), seeded.tenant.clone());
        async move {
            let answer = api.as_operator(&tenant, Method::GET, &path, None).await;
            let hits = serde_json::from_str::<SearchAnswer>(&answer.text)
                .ok()?
                .hits;
            (hits.len() >= SEEDED_RECORDS).then(|| hits[0].id.clone())
        }
    })
    .await;
    seeded.record_id = found.unwrap_or_else(|| {
        panic!(
            "records of {}/{} not searchable in time",
            seeded.tenant, seeded.project
        )
    });
}
