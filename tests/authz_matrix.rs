//! The authorization matrix (issue 7): every route of every service, as the code
//! declares it, against a table written by hand from the role model, and
//! then every route × every kind of caller × own and foreign tenant (and, for keys
//! limited to a project, own and other project) against a real server.
//!
//! A new route without a row here fails `test_every_route_has_a_row_with_its_permission`;
//! a route whose permission changes in the code fails it too, so that a change of
//! who may do what is always a deliberate change of this table.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use logpool_api::auth::RouteSpec;
use logpool_core::access::{Permission, Role};
use logpool_e2e::tenants::{seed_pool, wait_until_searchable, Answer, RawApi, SeededPool};
use logpool_e2e::{TestServer, ADMIN_KEY};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const POOL: &str = "/v1/projects/{project}/pools/{pool}";

/// What each route should need, written from the issue: readers search, tail, pull
/// and list archives; writers only ingest; project admins manage pools, archives
/// and consumer groups; tenant admins manage projects, keys, project quotas and
/// usage; operators manage tenants, tenant quotas and the cluster.
fn expected_table() -> Vec<(Method, String, Permission)> {
    use Permission::{Authenticated, Ingest, ManageProject, ManageTenant, Operate, Public, Read};
    let fixed = [
        (Method::GET, "/healthz", Public),
        (Method::GET, "/readyz", Public),
        (Method::GET, "/v1/openapi.json", Public),
        (Method::GET, "/metrics", Public),
        (Method::GET, "/", Public),
        (Method::GET, "/console/{file}", Public),
        (Method::GET, "/v1/whoami", Authenticated),
        // Elasticsearch-compatible ingest: shippers' discovery calls need any key,
        // the bulk API and template installs need a key that may ingest (the
        // pool comes from the body's index names, checked per item).
        (Method::GET, "/es", Authenticated),
        (Method::GET, "/es/", Authenticated),
        (Method::GET, "/es/_license", Authenticated),
        (Method::GET, "/es/_xpack", Authenticated),
        (Method::GET, "/es/_cluster/health", Authenticated),
        (Method::GET, "/es/_template/{name}", Authenticated),
        (Method::PUT, "/es/_template/{name}", Ingest),
        (Method::GET, "/es/_index_template/{name}", Authenticated),
        (Method::PUT, "/es/_index_template/{name}", Ingest),
        (Method::GET, "/es/{index}", Ingest),
        (Method::POST, "/es/_bulk", Ingest),
        (Method::POST, "/es/{index}/_bulk", Ingest),
        // Its read API (Grafana): readers search and list fields.
        (Method::GET, "/es/_msearch", Read),
        (Method::POST, "/es/_msearch", Read),
        (Method::GET, "/es/{index}/_msearch", Read),
        (Method::POST, "/es/{index}/_msearch", Read),
        (Method::GET, "/es/{index}/_search", Read),
        (Method::POST, "/es/{index}/_search", Read),
        (Method::GET, "/es/{index}/_mapping", Read),
        (Method::GET, "/es/_field_caps", Read),
        (Method::POST, "/es/_field_caps", Read),
        (Method::GET, "/es/{index}/_field_caps", Read),
        (Method::POST, "/es/{index}/_field_caps", Read),
        (Method::GET, "/v1/cluster/members", Operate),
        (Method::GET, "/v1/tenants", Operate),
        (Method::POST, "/v1/tenants", Operate),
        (Method::GET, "/v1/tenants/{tenant}", ManageTenant),
        (Method::GET, "/v1/tenants/{tenant}/keys", ManageTenant),
        (Method::POST, "/v1/tenants/{tenant}/keys", ManageTenant),
        (Method::GET, "/v1/tenants/{tenant}/keys/{id}", ManageTenant),
        (
            Method::PATCH,
            "/v1/tenants/{tenant}/keys/{id}",
            ManageTenant,
        ),
        (
            Method::DELETE,
            "/v1/tenants/{tenant}/keys/{id}",
            ManageTenant,
        ),
        (Method::GET, "/v1/tenants/{tenant}/quotas", ManageTenant),
        (Method::PUT, "/v1/tenants/{tenant}/quotas", Operate),
        (Method::GET, "/v1/tenants/{tenant}/usage", ManageTenant),
        (Method::GET, "/v1/projects", Read),
        (Method::POST, "/v1/projects", ManageTenant),
        (Method::GET, "/v1/projects/{project}", Read),
        (Method::PATCH, "/v1/projects/{project}", ManageProject),
        (Method::DELETE, "/v1/projects/{project}", ManageTenant),
        // A reader may see the limits it runs into; only its tenant admin sets them.
        (Method::GET, "/v1/projects/{project}/quotas", Read),
        (Method::PUT, "/v1/projects/{project}/quotas", ManageTenant),
        // Readers open a team's saved searches; those who manage the project keep them.
        (Method::GET, "/v1/projects/{project}/saved-searches", Read),
        (
            Method::POST,
            "/v1/projects/{project}/saved-searches",
            ManageProject,
        ),
        (
            Method::GET,
            "/v1/projects/{project}/saved-searches/{id}",
            Read,
        ),
        (
            Method::PUT,
            "/v1/projects/{project}/saved-searches/{id}",
            ManageProject,
        ),
        (
            Method::DELETE,
            "/v1/projects/{project}/saved-searches/{id}",
            ManageProject,
        ),
        // Readers see a team's alerts, channels and silences; those who manage the
        // project keep them, and send channel tests.
        (Method::GET, "/v1/projects/{project}/alerts", Read),
        (Method::POST, "/v1/projects/{project}/alerts", ManageProject),
        (Method::GET, "/v1/projects/{project}/alerts/{id}", Read),
        (
            Method::PUT,
            "/v1/projects/{project}/alerts/{id}",
            ManageProject,
        ),
        (
            Method::DELETE,
            "/v1/projects/{project}/alerts/{id}",
            ManageProject,
        ),
        (
            Method::GET,
            "/v1/projects/{project}/alerts/{id}/history",
            Read,
        ),
        (Method::GET, "/v1/projects/{project}/alert-channels", Read),
        (
            Method::POST,
            "/v1/projects/{project}/alert-channels",
            ManageProject,
        ),
        (
            Method::GET,
            "/v1/projects/{project}/alert-channels/{id}",
            Read,
        ),
        (
            Method::PUT,
            "/v1/projects/{project}/alert-channels/{id}",
            ManageProject,
        ),
        (
            Method::DELETE,
            "/v1/projects/{project}/alert-channels/{id}",
            ManageProject,
        ),
        (
            Method::POST,
            "/v1/projects/{project}/alert-channels/{id}/test",
            ManageProject,
        ),
        (Method::GET, "/v1/projects/{project}/alert-silences", Read),
        (
            Method::POST,
            "/v1/projects/{project}/alert-silences",
            ManageProject,
        ),
        (
            Method::DELETE,
            "/v1/projects/{project}/alert-silences/{id}",
            ManageProject,
        ),
        // Dashboards: as saved searches; an export is a read, an import a create.
        (Method::GET, "/v1/projects/{project}/dashboards", Read),
        (
            Method::POST,
            "/v1/projects/{project}/dashboards",
            ManageProject,
        ),
        (
            Method::POST,
            "/v1/projects/{project}/dashboards/import",
            ManageProject,
        ),
        (Method::GET, "/v1/projects/{project}/dashboards/{id}", Read),
        (
            Method::PUT,
            "/v1/projects/{project}/dashboards/{id}",
            ManageProject,
        ),
        (
            Method::DELETE,
            "/v1/projects/{project}/dashboards/{id}",
            ManageProject,
        ),
        (
            Method::GET,
            "/v1/projects/{project}/dashboards/{id}/export",
            Read,
        ),
        (Method::GET, "/v1/projects/{project}/pools", Read),
        (Method::POST, "/v1/projects/{project}/pools", ManageProject),
        // The shipper protocols name their pool in headers or the payload.
        (Method::POST, "/v1/logs", Ingest),
        (Method::POST, "/loki/api/v1/push", Ingest),
    ];
    let pool = [
        (Method::GET, "", Read),
        (Method::PATCH, "", ManageProject),
        (Method::DELETE, "", ManageProject),
        (Method::GET, "/stats", Read),
        (Method::POST, "/logs", Ingest),
        (Method::GET, "/search", Read),
        (Method::POST, "/search", Read),
        (Method::GET, "/search/stream", Read),
        (Method::POST, "/search/stream", Read),
        (Method::GET, "/histogram", Read),
        (Method::POST, "/histogram", Read),
        (Method::GET, "/patterns", Read),
        (Method::POST, "/patterns", Read),
        (Method::GET, "/fields", Read),
        (Method::POST, "/fields", Read),
        (Method::GET, "/schema", Read),
        (Method::GET, "/export", Read),
        (Method::POST, "/export", Read),
        (Method::POST, "/query", Read),
        (Method::GET, "/records/{id}/context", Read),
        (Method::GET, "/tail", Read),
        (Method::GET, "/shards", Read),
        (Method::GET, "/shards/{shard}/cursor", Read),
        (Method::GET, "/shards/{shard}/records", Read),
        (Method::GET, "/archive/settings", Read),
        (Method::PUT, "/archive/settings", ManageProject),
        (Method::GET, "/archive", Read),
        (Method::POST, "/archive/restore", ManageProject),
        (Method::GET, "/archive/restore/{id}", Read),
        (Method::GET, "/consumer-groups", Read),
        (Method::POST, "/consumer-groups", ManageProject),
        (Method::DELETE, "/consumer-groups/{group}", ManageProject),
        // Members of a group are readers: they must be able to keep their shards
        // and save where they are.
        (Method::POST, "/consumer-groups/{group}/heartbeat", Read),
        (Method::PUT, "/consumer-groups/{group}/checkpoints", Read),
        (Method::GET, "/consumer-groups/{group}/checkpoints", Read),
    ];
    fixed
        .into_iter()
        .map(|(method, path, permission)| (method, path.to_string(), permission))
        .chain(
            pool.into_iter()
                .map(|(method, tail, permission)| (method, format!("{POOL}{tail}"), permission)),
        )
        .collect()
}

/// Every route of every service, from the services' own route lists.
fn code_routes() -> Vec<RouteSpec> {
    let lists: [Vec<RouteSpec>; 7] = [
        logpool_control_api::routes().specs().to_vec(),
        logpool_put_datas::routes().specs().to_vec(),
        logpool_search_api::routes().specs().to_vec(),
        logpool_tail_ws::tail::routes().specs().to_vec(),
        logpool_tail_ws::pull::routes().specs().to_vec(),
        logpool_api::health::routes().specs().to_vec(),
        logpool_api::metrics::routes().specs().to_vec(),
    ];
    lists.into_iter().flatten().collect()
}

/// Whether a role holds a permission class, from the role list (kept apart
/// from `Role::grants` so that a change there shows up here).
fn role_holds(role: Role, class: Permission) -> bool {
    use Permission::{Authenticated, Ingest, ManageProject, Operate, Public, Read};
    match role {
        Role::Operator => true,
        Role::TenantAdmin => class != Operate,
        Role::ProjectAdmin => matches!(
            class,
            Public | Authenticated | Ingest | Read | ManageProject
        ),
        Role::Writer => matches!(class, Public | Authenticated | Ingest),
        Role::Reader => matches!(class, Public | Authenticated | Read),
    }
}

#[test]
fn test_every_route_has_a_row_with_its_permission() {
    let code = code_routes();
    let mut seen = BTreeSet::new();
    for spec in &code {
        assert!(
            seen.insert((spec.method.to_string(), spec.path.clone())),
            "route declared twice: {} {}",
            spec.method,
            spec.path
        );
    }
    let table: BTreeMap<(String, String), Permission> = expected_table()
        .into_iter()
        .map(|(method, path, permission)| ((method.to_string(), path), permission))
        .collect();
    let mut problems = Vec::new();
    for spec in &code {
        let key = (spec.method.to_string(), spec.path.clone());
        match table.get(&key) {
            None => problems.push(format!(
                "route {} {} (needs `{}`) has no row in the matrix",
                spec.method,
                spec.path,
                spec.permission.as_str()
            )),
            Some(expected) if *expected != spec.permission => problems.push(format!(
                "route {} {} needs `{}` in the code, the matrix says `{}`",
                spec.method,
                spec.path,
                spec.permission.as_str(),
                expected.as_str()
            )),
            Some(_) => {}
        }
    }
    for (method, path) in table.keys() {
        if !seen.contains(&(method.clone(), path.clone())) {
            problems.push(format!(
                "the matrix has {method} {path}, no service serves it"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Only the tail takes its key from the query string (browsers cannot set
    // headers on a WebSocket); everywhere else a `?token=` would end up in logs.
    let with_query_token: Vec<&str> = code
        .iter()
        .filter(|spec| spec.token_in_query)
        .map(|spec| spec.path.as_str())
        .collect();
    assert_eq!(with_query_token, [format!("{POOL}/tail").as_str()]);
}

/// How a caller presents itself.
#[derive(Debug, Clone)]
enum Credential {
    Missing,
    /// A well-formed key whose id does not exist.
    Unknown(String),
    /// A real key that was disabled.
    Disabled(String),
    Valid {
        key: String,
        role: Role,
        project: Option<&'static str>,
    },
}

#[derive(Debug, Clone)]
struct Caller {
    name: &'static str,
    credential: Credential,
}

impl Caller {
    fn key(&self) -> Option<&str> {
        match &self.credential {
            Credential::Missing => None,
            Credential::Unknown(key) | Credential::Disabled(key) => Some(key),
            Credential::Valid { key, .. } => Some(key),
        }
    }

    fn is_operator(&self) -> bool {
        matches!(
            self.credential,
            Credential::Valid {
                role: Role::Operator,
                ..
            }
        )
    }
}

/// Which tenant and project a request names, relative to the caller (always a key
/// of `acme`, or the operator acting in `acme`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// acme's project `shop`.
    Own,
    /// acme's project `bank` (what a key limited to `shop` must not touch).
    OtherProject,
    /// globex (and its project `vault`, which acme does not have).
    Foreign,
}

impl Target {
    fn label(self) -> &'static str {
        match self {
            Target::Own => "own",
            Target::OtherProject => "other-project",
            Target::Foreign => "foreign",
        }
    }
}

/// What the matrix expects for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Served: a 2xx (101 for the tail's upgrade).
    Allowed,
    /// Refused with exactly this status.
    Refused(u16),
}

/// The path values of one request.
struct Filled {
    path: String,
    tenant: Option<String>,
    project: Option<String>,
    /// Whether the project named is one the caller's tenant does not have.
    project_of_other_tenant: bool,
}

fn expect(class: Permission, caller: &Caller, filled: &Filled) -> Expect {
    if class == Permission::Public {
        return Expect::Allowed;
    }
    let (role, scope) = match &caller.credential {
        Credential::Missing | Credential::Unknown(_) | Credential::Disabled(_) => {
            return Expect::Refused(401)
        }
        Credential::Valid { role, project, .. } => (*role, *project),
    };
    if !role_holds(role, class) {
        return Expect::Refused(403);
    }
    if let Some(tenant) = &filled.tenant {
        if tenant != "acme" && role != Role::Operator {
            return Expect::Refused(403);
        }
    }
    if let (Some(scope), Some(project)) = (scope, &filled.project) {
        if scope != project {
            return Expect::Refused(403);
        }
    }
    if filled.project_of_other_tenant {
        return Expect::Refused(404);
    }
    Expect::Allowed
}

/// The data the matrix runs on.
struct World {
    api: RawApi,
    acme_shop: SeededPool,
    acme_bank: SeededPool,
    globex_shop: SeededPool,
    globex_vault: SeededPool,
    /// A key id per tenant that checks may PATCH.
    acme_spare_key: String,
    globex_spare_key: String,
    counter: std::cell::Cell<u32>,
    /// Pools made at the start for the pool-deleting checks, by target label.
    /// Deleting a pool in the same instant it was created can fail in the embedded
    /// queue (a 503 unrelated to authorization), so they get time to settle.
    doomed_pools: std::cell::RefCell<BTreeMap<&'static str, Vec<String>>>,
}

impl World {
    fn unique(&self, prefix: &str) -> String {
        let next = self.counter.get() + 1;
        self.counter.set(next);
        format!("{prefix}-{next}")
    }

    fn seeded(&self, target: Target) -> &SeededPool {
        match target {
            Target::Own => &self.acme_shop,
            Target::OtherProject => &self.acme_bank,
            Target::Foreign => &self.globex_vault,
        }
    }

    fn tenant_of(&self, target: Target) -> &'static str {
        match target {
            Target::Foreign => "globex",
            _ => "acme",
        }
    }

    /// Markers that must never reach an acme caller.
    fn foreign_markers(&self) -> [&str; 2] {
        [&self.globex_shop.marker, &self.globex_vault.marker]
    }

    /// Fills a path template for `target`; a route that deletes something gets a
    /// throwaway object made for this one check.
    async fn fill(&self, method: &Method, template: &str, target: Target) -> Filled {
        let seeded = self.seeded(target);
        let tenant = self.tenant_of(target);
        let deleting = *method == Method::DELETE;
        let mut project = seeded.project.clone();
        let mut pool = seeded.pool.clone();
        let mut id = String::new();
        let mut group = seeded.group.clone();
        if template.starts_with("/v1/tenants/{tenant}/keys/{id}") {
            id = if deleting {
                self.api.create_key(tenant, "reader", None).await.0
            } else if target == Target::Foreign {
                self.globex_spare_key.clone()
            } else {
                self.acme_spare_key.clone()
            };
        } else if template == "/v1/projects/{project}" && deleting {
            project = self.unique("gone");
            self.api.create_project(tenant, &project).await;
        } else if template == POOL && deleting {
            pool = self
                .doomed_pools
                .borrow_mut()
                .get_mut(&target.label())
                .and_then(Vec::pop)
                .expect("a pool made to be deleted");
        } else if template.ends_with("/consumer-groups/{group}") && deleting {
            group = self.unique("gone");
            self.api.create_group(tenant, &project, &pool, &group).await;
        } else if template.ends_with("/saved-searches/{id}") {
            // A search of its own for every request, so a delete or a rename by one
            // caller never changes what the next one finds.
            let name = self.unique("saved");
            let created = self
                .api
                .as_operator(
                    tenant,
                    Method::POST,
                    &format!("/v1/projects/{project}/saved-searches"),
                    Some(&json!({ "name": name })),
                )
                .await;
            assert_eq!(created.status, 201, "create saved search: {}", created.text);
            id = created.json()["id"]
                .as_str()
                .expect("saved search id")
                .to_string();
        } else if template.contains("/dashboards/{id}") {
            // A dashboard of its own for every request, as for saved searches.
            let name = self.unique("dashboard");
            let created = self
                .api
                .as_operator(
                    tenant,
                    Method::POST,
                    &format!("/v1/projects/{project}/dashboards"),
                    Some(&json!({ "name": name })),
                )
                .await;
            assert_eq!(created.status, 201, "create dashboard: {}", created.text);
            id = created.json()["id"]
                .as_str()
                .expect("dashboard id")
                .to_string();
        } else if let Some((collection, kind)) =
            alert_collection(template).filter(|_| template.contains("{id}"))
        {
            // An object of its own for every request, as for saved searches.
            let created = self
                .api
                .as_operator(
                    tenant,
                    Method::POST,
                    &format!("/v1/projects/{project}/{collection}"),
                    Some(&alert_body(kind, &self.unique("alert"), &pool)),
                )
                .await;
            assert_eq!(created.status, 201, "create {collection}: {}", created.text);
            id = created.json()["id"].as_str().expect("alert id").to_string();
        } else if template.contains("/records/{id}") {
            id = seeded.record_id.clone();
        } else if template.contains("/restore/{id}") {
            id = seeded.restore_id.clone();
        }
        let mut path = template
            .replace("{tenant}", tenant)
            .replace("{project}", &project)
            .replace("{pool}", &pool)
            .replace("{shard}", "0")
            .replace("{group}", &group)
            .replace("{id}", &id)
            .replace("{file}", "app.js")
            .replace("{index}", &format!("{project}.{pool}"))
            .replace("{name}", "matrix-template");
        if template.ends_with("/shards/{shard}/records") {
            path.push_str(&format!("?cursor={}", seeded.cursor));
        } else if template.ends_with("/shards/{shard}/cursor") {
            path.push_str("?from=begin");
        }
        // The shipper protocols name the project in their payload, not the path.
        let names_project = template.contains("{project}") || is_shipper_route(template);
        Filled {
            path,
            tenant: template.contains("{tenant}").then(|| tenant.to_string()),
            project: names_project.then(|| project.clone()),
            project_of_other_tenant: names_project && target == Target::Foreign,
        }
    }

    /// A body that the route accepts when the caller may use it.
    fn body(&self, method: &Method, template: &str, target: Target) -> Option<Value> {
        let seeded = self.seeded(target);
        let tail = template.strip_prefix(POOL);
        let body = match (method.as_str(), template, tail) {
            ("POST", "/v1/tenants", _) => json!({ "name": self.unique("tenant") }),
            ("POST", "/v1/tenants/{tenant}/keys", _) => json!({ "role": "reader" }),
            ("PATCH", "/v1/tenants/{tenant}/keys/{id}", _) => json!({ "enabled": true }),
            ("PUT", _, _) if template.ends_with("/quotas") => json!({}),
            ("POST", "/v1/projects", _) => json!({ "name": self.unique("made") }),
            ("PATCH", "/v1/projects/{project}", _) => json!({ "description": "matrix" }),
            ("POST" | "PUT", _, _) if template.contains("/saved-searches") => {
                json!({ "name": self.unique("saved"), "query": "level:ERROR", "from": "now-1h" })
            }
            ("POST" | "PUT", _, _) if alert_collection(template).is_some() => {
                let (_, kind) = alert_collection(template).expect("an alert route");
                alert_body(kind, &self.unique("alert"), &seeded.pool)
            }
            ("POST", "/v1/projects/{project}/dashboards/import", _) => {
                json!({ "logpool_dashboard": 1, "dashboard": { "name": self.unique("dashboard") } })
            }
            ("POST" | "PUT", _, _) if template.contains("/dashboards") => {
                json!({ "name": self.unique("dashboard"), "from": "now-1h" })
            }
            ("POST", "/v1/projects/{project}/pools", _) => {
                json!({ "name": self.unique("made"), "shards": 1 })
            }
            ("PATCH", _, Some("")) => json!({ "description": "matrix" }),
            ("POST", _, Some("/logs")) => {
                json!({ "logs": [{ "message": format!("{} from the matrix", seeded.marker) }] })
            }
            ("POST", "/v1/logs", _) => json!({ "resourceLogs": [{
                "resource": { "attributes": [
                    { "key": "logpool.project", "value": { "stringValue": seeded.project } },
                    { "key": "logpool.pool", "value": { "stringValue": seeded.pool } },
                ] },
                "scopeLogs": [{ "logRecords": [{ "body": { "stringValue": "from the matrix" } }] }],
            }] }),
            ("POST", "/loki/api/v1/push", _) => json!({ "streams": [{
                "stream": { "logpool_project": seeded.project, "logpool_pool": seeded.pool },
                "values": [[now_ns().to_string(), "from the matrix"]],
            }] }),
            (
                "POST",
                _,
                Some(
                    "/search" | "/search/stream" | "/histogram" | "/patterns" | "/fields"
                    | "/export",
                ),
            ) => {
                json!({})
            }
            ("POST", _, Some("/query")) => json!({ "query": "* | SELECT count(*) AS c" }),
            ("PUT", _, Some("/archive/settings")) => json!({ "enabled": false }),
            ("POST", _, Some("/archive/restore")) => {
                json!({ "into_pool": format!("{}-spare", seeded.pool) })
            }
            ("POST", _, Some("/consumer-groups")) => json!({ "name": self.unique("made") }),
            ("POST", _, Some("/consumer-groups/{group}/heartbeat")) => {
                json!({ "consumer": "matrix-1" })
            }
            ("PUT", _, Some("/consumer-groups/{group}/checkpoints")) => {
                json!({ "shard": 0, "cursor": seeded.cursor })
            }
            _ => return None,
        };
        Some(body)
    }
}

/// Routes that take their pool from headers or the payload (OTLP, Loki push).
fn is_shipper_route(template: &str) -> bool {
    matches!(template, "/v1/logs" | "/loki/api/v1/push")
}

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default()
}

/// Routes whose answer is records: an allowed own read must show the caller's own.
fn answers_records(method: &Method, template: &str) -> bool {
    let tail = template.strip_prefix(POOL).unwrap_or_default();
    matches!(
        tail,
        "/search"
            | "/search/stream"
            | "/export"
            | "/records/{id}/context"
            | "/shards/{shard}/records"
    ) && (*method == Method::GET || *method == Method::POST)
}

/// Opens the tail with the key as a header or as `?token=` (and the operator's
/// tenant header when `act_in` is set); answers the status of the handshake (101
/// when upgraded) and the refusal's body.
async fn open_tail(
    base_url: &str,
    path: &str,
    key: Option<&str>,
    as_token: bool,
    act_in: Option<&str>,
) -> Answer {
    let mut url = format!("{}{path}", base_url.replacen("http://", "ws://", 1));
    if let (Some(key), true) = (key, as_token) {
        url.push_str(&format!("?token={key}"));
    }
    let mut request = url.into_client_request().expect("ws request");
    if let (Some(key), false) = (key, as_token) {
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {key}").parse().expect("header value"),
        );
    }
    if let Some(tenant) = act_in {
        request.headers_mut().insert(
            logpool_e2e::tenants::TENANT_HEADER,
            tenant.parse().expect("header value"),
        );
    }
    let connect = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .expect("tail handshake in time");
    match connect {
        Ok((mut socket, response)) => {
            let _ = socket.close(None).await;
            Answer {
                status: response.status().as_u16(),
                text: String::new(),
            }
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Answer {
            status: response.status().as_u16(),
            text: response
                .body()
                .as_ref()
                .map(|body| String::from_utf8_lossy(body).into_owned())
                .unwrap_or_default(),
        },
        Err(error) => panic!("tail handshake failed: {error}"),
    }
}

async fn build_world(server: &TestServer) -> (World, Vec<Caller>) {
    let api = RawApi::new(&server.url());
    api.create_tenant("acme").await;
    api.create_tenant("globex").await;
    let mut acme_shop = seed_pool(&api, "acme", "shop", "web", false).await;
    let mut acme_bank = seed_pool(&api, "acme", "bank", "web", false).await;
    // The same project and pool names in another tenant.
    let mut globex_shop = seed_pool(&api, "globex", "shop", "web", false).await;
    let mut globex_vault = seed_pool(&api, "globex", "vault", "web", false).await;
    for seeded in [
        &mut acme_shop,
        &mut acme_bank,
        &mut globex_shop,
        &mut globex_vault,
    ] {
        wait_until_searchable(&api, seeded).await;
    }
    let mut callers = vec![Caller {
        name: "operator",
        credential: Credential::Valid {
            key: ADMIN_KEY.to_string(),
            role: Role::Operator,
            project: None,
        },
    }];
    for (name, role, project) in [
        ("tenant_admin", Role::TenantAdmin, None),
        ("project_admin", Role::ProjectAdmin, None),
        ("writer", Role::Writer, None),
        ("reader", Role::Reader, None),
        ("project_admin@shop", Role::ProjectAdmin, Some("shop")),
        ("writer@shop", Role::Writer, Some("shop")),
        ("reader@shop", Role::Reader, Some("shop")),
    ] {
        let (_, key) = api.create_key("acme", role.as_str(), project).await;
        callers.push(Caller {
            name,
            credential: Credential::Valid { key, role, project },
        });
    }
    let (disabled_id, disabled_key) = api.create_key("acme", "tenant_admin", None).await;
    let disable = api
        .send(
            Method::PATCH,
            &format!("/v1/tenants/acme/keys/{disabled_id}"),
            Some(ADMIN_KEY),
            None,
            Some(&json!({ "enabled": false })),
        )
        .await;
    assert_eq!(disable.status, 200, "disable key: {}", disable.text);
    callers.extend([
        Caller {
            name: "no key",
            credential: Credential::Missing,
        },
        Caller {
            name: "unknown key",
            credential: Credential::Unknown(format!("lpk_0123456789abcdef_{}", "ab".repeat(32))),
        },
        Caller {
            name: "disabled key",
            credential: Credential::Disabled(disabled_key),
        },
    ]);
    let mut doomed_pools = BTreeMap::new();
    for (target, tenant, project) in [
        (Target::Own, "acme", "shop"),
        (Target::OtherProject, "acme", "bank"),
        (Target::Foreign, "globex", "vault"),
    ] {
        let mut names = Vec::new();
        for n in 0..callers.len() {
            let name = format!("doomed-{n}");
            api.create_pool(tenant, project, &name).await;
            names.push(name);
        }
        doomed_pools.insert(target.label(), names);
    }
    let acme_spare_key = api.create_key("acme", "reader", None).await.0;
    let globex_spare_key = api.create_key("globex", "reader", None).await.0;
    let world = World {
        api,
        acme_shop,
        acme_bank,
        globex_shop,
        globex_vault,
        acme_spare_key,
        globex_spare_key,
        counter: std::cell::Cell::new(0),
        doomed_pools: std::cell::RefCell::new(doomed_pools),
    };
    (world, callers)
}

/// Checks one answer against the expectation; returns a problem to report.
fn judge(
    world: &World,
    caller: &Caller,
    route: &str,
    target: Target,
    expected: Expect,
    answer: &Answer,
    records_expected: Option<&str>,
) -> Option<String> {
    let context = format!("{route} as {} on {} target", caller.name, target.label());
    match expected {
        Expect::Refused(status) if answer.status != status => Some(format!(
            "{context}: expected {status}, got {}: {}",
            answer.status, answer.text
        )),
        Expect::Allowed if !(200..300).contains(&answer.status) && answer.status != 101 => {
            Some(format!(
                "{context}: expected to be served, got {}: {}",
                answer.status, answer.text
            ))
        }
        _ => {
            // Only the operator may be shown another tenant's data, and only when it
            // names that tenant.
            let may_see_foreign = caller.is_operator() && target == Target::Foreign;
            if !may_see_foreign {
                if let Some(marker) = world
                    .foreign_markers()
                    .into_iter()
                    .find(|marker| answer.text.contains(marker))
                {
                    return Some(format!(
                        "{context}: the answer contains globex's `{marker}`"
                    ));
                }
            }
            match records_expected {
                Some(marker) if expected == Expect::Allowed && !answer.text.contains(marker) => {
                    Some(format!(
                        "{context}: the answer lacks the caller's own records ({marker}): {}",
                        answer.text
                    ))
                }
                _ => None,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_every_route_answers_every_caller_as_the_matrix_says() {
    // The matrix presents refused keys from one address on purpose, far more than the
    // failed-authentication throttle allows; the throttle has its own test
    // (private_data_and_auth_throttle.rs), so it is off here.
    let server = TestServer::start_with(|config| config.http.max_auth_failures_per_address = 0)
        .await
        .expect("server");
    let (world, callers) = build_world(&server).await;
    let table = expected_table();
    let mut problems = Vec::new();
    let mut printed = String::new();
    let _ = writeln!(
        printed,
        "cells: own/other-project/foreign status (one value: route names neither)\n{:<76} {}",
        "route",
        callers
            .iter()
            .map(|caller| format!("{:>19}", caller.name))
            .collect::<String>()
    );
    // Deleting routes run last, so that a wrongly allowed delete cannot hide the
    // answers of the other routes.
    let mut ordered: Vec<&(Method, String, Permission)> = table.iter().collect();
    ordered.sort_by_key(|(method, _, _)| *method == Method::DELETE);
    let mut requests = 0usize;
    for (method, template, class) in ordered {
        let route = format!("{method} {template}");
        let targets: &[Target] = if template.contains("{tenant}") {
            &[Target::Own, Target::Foreign]
        } else if template.contains("{project}") {
            &[Target::Own, Target::OtherProject, Target::Foreign]
        } else {
            &[Target::Own]
        };
        let mut row = format!("{route:<76}");
        for caller in &callers {
            let mut cell = Vec::new();
            for &target in targets {
                let filled = world.fill(method, template, target).await;
                let expected = expect(*class, caller, &filled);
                // The operator acts in acme, like every other caller.
                let act_in = caller.is_operator().then_some("acme");
                let answers = if template.ends_with("/tail") {
                    let mut answers = Vec::new();
                    for as_token in [false, true] {
                        let answer = open_tail(
                            world.api.base_url(),
                            &filled.path,
                            caller.key(),
                            as_token,
                            act_in,
                        )
                        .await;
                        answers.push(answer);
                    }
                    answers
                } else if template.ends_with("/_bulk") {
                    // One document into the caller's own pool (`acme`'s shop.web).
                    let seeded = world.seeded(target);
                    let bulk = format!(
                        "{{\"index\":{{\"_index\":\"{}.{}\"}}}}\n{{\"message\":\"{} from the matrix\"}}\n",
                        seeded.project, seeded.pool, seeded.marker
                    );
                    vec![
                        world
                            .api
                            .send_ndjson(method.clone(), &filled.path, caller.key(), act_in, bulk)
                            .await,
                    ]
                } else {
                    let body = world.body(method, template, target);
                    vec![
                        world
                            .api
                            .send(
                                method.clone(),
                                &filled.path,
                                caller.key(),
                                act_in,
                                body.as_ref(),
                            )
                            .await,
                    ]
                };
                let records_marker =
                    answers_records(method, template).then(|| world.seeded(target).marker.as_str());
                for answer in &answers {
                    requests += 1;
                    if let Some(problem) = judge(
                        &world,
                        caller,
                        &route,
                        target,
                        expected,
                        answer,
                        records_marker,
                    ) {
                        problems.push(problem);
                    }
                }
                // The tail's two variants (header, `?token=`) show once when they agree.
                let mut statuses: Vec<String> = answers
                    .iter()
                    .map(|answer| answer.status.to_string())
                    .collect();
                statuses.dedup();
                cell.push(statuses.join("|"));
            }
            let _ = write!(row, "{:>19}", cell.join("/"));
        }
        let _ = writeln!(printed, "{row}");
    }
    println!("{printed}");
    println!("{requests} requests checked");
    assert!(
        problems.is_empty(),
        "{} of {requests} answers differ from the matrix:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The collection an alert route's template names, and the kind of object in it.
fn alert_collection(template: &str) -> Option<(&'static str, &'static str)> {
    let rest = template.strip_prefix("/v1/projects/{project}/")?;
    match rest.split('/').next()? {
        "alerts" => Some(("alerts", "rule")),
        "alert-channels" => Some(("alert-channels", "channel")),
        "alert-silences" => Some(("alert-silences", "silence")),
        _ => None,
    }
}

/// A valid body for an alert object of `kind` named `name` over `pool`.
fn alert_body(kind: &str, name: &str, pool: &str) -> Value {
    match kind {
        "rule" => json!({
            "name": name, "pool": pool, "query": "level:ERROR", "window_secs": 60,
            "every_secs": 60, "condition": { "op": ">", "threshold": 1e9 },
        }),
        // Nothing listens on port 9: a test send fails fast and says so.
        "channel" => json!({
            "name": name, "kind": "webhook", "config": { "url": "http://127.0.0.1:9/" },
        }),
        _ => json!({ "labels": { "team": name }, "ends_at": "now+1h" }),
    }
}
