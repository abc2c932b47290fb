//! Authentication and authorization of every route.
//!
//! Services declare their routes through [`Routes`], which records each route's
//! method, path and [`Permission`] and wraps its handler in a check: the request's
//! key (`Authorization: Bearer <key>`; for log shippers that can send only Basic
//! auth or a fixed header, also `Authorization: ApiKey <key>` or the key as the Basic
//! auth password with any user name; on the WebSocket tail, which browsers cannot add
//! headers to, also as a subprotocol entry ([`crate::ws_key`]) or, for older
//! clients, `?token=`) is verified against the
//! access table of the routing snapshot, its role must grant the permission, and its
//! tenant and project scope must cover the path. The handler then gets a
//! [`Principal`] that names the tenant to act in: scope always comes from the key
//! and the path, never from a body or a query.
//!
//! A presented key that is refused counts against the client's address; past
//! `http.max_auth_failures_per_address` the address gets `429` before any key is
//! checked (see [`crate::throttle`]).
//!
//! Because the router is built from the same list, [`Routes::specs`] is the complete
//! list of routes, which the authorization matrix test walks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, Query, RawPathParams, Request};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::{Extension, Router};
use base64::Engine as _;
use logpool_core::access::{split_key, AccessTable, KeyRefusal, Permission, Role};

use crate::error::{ApiError, ErrorCode};
use crate::routing::RoutingView;
use crate::throttle::{AuthThrottle, ClientAddress};

/// Header an operator key sets to act in another tenant than `default`.
pub const TENANT_HEADER: &str = "x-logpool-tenant";

/// One route of a service, as the authorization matrix sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: Method,
    /// Path template (`/v1/projects/{project}`).
    pub path: String,
    /// What the caller's key must grant.
    pub permission: Permission,
    /// Whether the key may come as `?token=` (WebSocket upgrades).
    pub token_in_query: bool,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Id of the key (never its secret).
    pub key_id: String,
    /// The key's role.
    pub role: Role,
    /// The tenant the request acts in: the key's own, or for an operator key the one
    /// named by the path or the `X-Logpool-Tenant` header.
    pub tenant: String,
    /// The only project the key may touch, when it is limited to one.
    pub project_scope: Option<String>,
}

impl Principal {
    /// Whether the key may see `project` (for lists that span projects).
    pub fn may_see_project(&self, project: &str) -> bool {
        self.project_scope
            .as_deref()
            .is_none_or(|scope| scope == project)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Principal, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::internal("handler reached without an authenticated key"))
    }
}

/// Where the authorization check finds the access table: the routing view.
#[derive(Debug, Clone)]
struct AccessSource(RoutingView);

/// A service's routes, each with the permission it needs.
#[derive(Debug)]
pub struct Routes<S> {
    router: Router<S>,
    specs: Vec<RouteSpec>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Routes::new()
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    /// No routes yet.
    pub fn new() -> Routes<S> {
        Routes {
            router: Router::new(),
            specs: Vec::new(),
        }
    }

    /// Adds a GET route.
    pub fn get<H, T>(self, path: &str, permission: Permission, handler: H) -> Routes<S>
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add(
            Method::GET,
            MethodFilter::GET,
            path,
            permission,
            false,
            handler,
        )
    }

    /// Adds a GET route whose key may also come as `?token=` (WebSocket upgrades,
    /// which browsers open without custom headers).
    pub fn get_with_query_token<H, T>(
        self,
        path: &str,
        permission: Permission,
        handler: H,
    ) -> Routes<S>
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add(
            Method::GET,
            MethodFilter::GET,
            path,
            permission,
            true,
            handler,
        )
    }

    /// Adds a POST route.
    pub fn post<H, T>(self, path: &str, permission: Permission, handler: H) -> Routes<S>
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add(
            Method::POST,
            MethodFilter::POST,
            path,
            permission,
            false,
            handler,
        )
    }

    /// Adds a GET and a POST route served by one handler, which takes its
    /// parameters with [`crate::AppParams`] (query string or JSON body).
    pub fn get_or_post<H, T>(self, path: &str, permission: Permission, handler: H) -> Routes<S>
    where
        H: Handler<T, S> + Clone,
        T: 'static,
    {
        self.get(path, permission, handler.clone())
            .post(path, permission, handler)
    }

    /// Adds a PUT route.
    pub fn put<H, T>(self, path: &str, permission: Permission, handler: H) -> Routes<S>
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add(
            Method::PUT,
            MethodFilter::PUT,
            path,
            permission,
            false,
            handler,
        )
    }

    /// Adds a PATCH route.
    pub fn patch<H, T>(self, path: &str, permission: Permission, handler: H) -> Routes<S>
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add(
            Method::PATCH,
            MethodFilter::PATCH,
            path,
            permission,
            false,
            handler,
        )
    }

    /// Adds a DELETE route.
    pub fn delete<H, T>(self, path: &str, permission: Permission, handler: H) -> Routes<S>
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add(
            Method::DELETE,
            MethodFilter::DELETE,
            path,
            permission,
            false,
            handler,
        )
    }

    /// Adds the routes of another list.
    pub fn merge(mut self, other: Routes<S>) -> Routes<S> {
        self.router = self.router.merge(other.router);
        self.specs.extend(other.specs);
        self
    }

    /// Every route with its permission.
    pub fn specs(&self) -> &[RouteSpec] {
        &self.specs
    }

    /// The router of routes that are all [`Permission::Public`] (health, metrics):
    /// they need no access table.
    pub fn into_public_router(self) -> Router<S> {
        debug_assert!(self
            .specs
            .iter()
            .all(|spec| spec.permission == Permission::Public));
        self.router
    }

    /// The router; its checks read keys from `access` (the live routing view).
    pub fn into_router(self, access: RoutingView) -> Router<S> {
        self.router.layer(Extension(AccessSource(access)))
    }

    fn add<H, T>(
        mut self,
        method: Method,
        filter: MethodFilter,
        path: &str,
        permission: Permission,
        token_in_query: bool,
        handler: H,
    ) -> Routes<S>
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let gate = Gate {
            permission,
            token_in_query,
        };
        let method_router = on(filter, handler).route_layer(middleware::from_fn(
            move |request: Request, next: Next| gate.check(request, next),
        ));
        self.router = self.router.route(path, method_router);
        self.specs.push(RouteSpec {
            method,
            path: path.to_string(),
            permission,
            token_in_query,
        });
        self
    }
}

/// The check in front of one route.
#[derive(Debug, Clone, Copy)]
struct Gate {
    permission: Permission,
    token_in_query: bool,
}

impl Gate {
    async fn check(self, request: Request, next: Next) -> Response {
        if self.permission == Permission::Public {
            return next.run(request).await;
        }
        let (mut parts, body) = request.into_parts();
        let throttled = throttle_of(&parts);
        if let Some((throttle, client)) = &throttled {
            if let Some(wait) = throttle.blocked_for(*client) {
                return too_many_failures(wait).into_response();
            }
        }
        let principal = match self.authorize(&mut parts).await {
            Ok(principal) => principal,
            Err(Refusal::KeyRefused(error)) => {
                if let Some((throttle, client)) = &throttled {
                    throttle.record_failure(*client);
                }
                return error.into_response();
            }
            Err(Refusal::Other(error)) => return error.into_response(),
        };
        parts.extensions.insert(principal);
        if self.token_in_query {
            // The key is consumed here: handlers never see it among their parameters
            // or offered subprotocols, and nothing after this point can log it.
            parts.uri = without_token(&parts.uri);
            crate::ws_key::remove_key_protocol(&mut parts.headers);
        }
        next.run(Request::from_parts(parts, body)).await
    }

    async fn authorize(self, parts: &mut Parts) -> Result<Principal, Refusal> {
        let Some(AccessSource(routing)) = parts.extensions.get::<AccessSource>().cloned() else {
            return Err(Refusal::Other(ApiError::internal(
                "route served without its access table",
            )));
        };
        let params: Vec<(String, String)> = RawPathParams::from_request_parts(parts, &())
            .await
            .map(|params| {
                params
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let query_token = if self.token_in_query {
            Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
                .ok()
                .and_then(|Query(mut query)| query.remove("token"))
        } else {
            None
        };
        let protocol_key = if self.token_in_query {
            crate::ws_key::key_from_protocols(&parts.headers)
        } else {
            None
        };
        let presented = presented_key(&parts.headers)
            .or(protocol_key)
            .or(query_token)
            .ok_or_else(|| {
                Refusal::Other(unauthorized(
                    "missing API key: send the header `Authorization: Bearer <key>` (or \
                     `ApiKey <key>`, or Basic auth with the key as the password)",
                ))
            })?;
        let snapshot = routing.snapshot();
        let principal = authorize(
            &snapshot.access,
            self.permission,
            &presented,
            &parts.headers,
            &params,
        )
        .map_err(|error| {
            if error.code == ErrorCode::Unauthorized {
                Refusal::KeyRefused(error)
            } else {
                Refusal::Other(error)
            }
        })?;
        crate::path_params::check(&params).map_err(Refusal::Other)?;
        Ok(principal)
    }
}

/// Why a request was not let through; only a presented key that is refused counts
/// towards the failed-authentication throttle.
enum Refusal {
    KeyRefused(ApiError),
    Other(ApiError),
}

/// The listener's throttle and the request's client address, when the server that
/// received the request put them there.
fn throttle_of(parts: &Parts) -> Option<(Arc<AuthThrottle>, IpAddr)> {
    let throttle = parts.extensions.get::<Arc<AuthThrottle>>()?.clone();
    let ClientAddress(client) = *parts.extensions.get::<ClientAddress>()?;
    Some((throttle, client))
}

/// The 429 of a throttled address; `Retry-After` rounds up, so that a client that
/// waits as told is let through.
fn too_many_failures(wait: Duration) -> ApiError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::new(
        ErrorCode::TooManyRequests,
        format!("too many failed authentications from this address; retry in {seconds} s"),
    )
    .with_detail("limit", "http.max_auth_failures_per_address")
    .with_retry_after(Duration::from_secs(seconds))
}

/// Decides whether `presented` may use a route that needs `permission` with these
/// path parameters.
fn authorize(
    access: &AccessTable,
    permission: Permission,
    presented: &str,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<Principal, ApiError> {
    let key = access.verify(presented).map_err(|refusal| {
        // The id is public; the secret never reaches a log line.
        let key_id = split_key(presented).0;
        let reason = match refusal {
            KeyRefusal::Unknown => "unknown key id",
            KeyRefusal::Mismatch => "secret does not match",
            KeyRefusal::Disabled => "key disabled",
        };
        tracing::debug!(key_id, reason, "API key refused");
        unauthorized("API key refused: it is unknown, wrong, disabled or deleted")
    })?;
    if !key.role.grants(permission) {
        return Err(ApiError::forbidden(format!(
            "a `{}` key may not do this (it needs the `{}` permission)",
            key.role,
            permission.as_str()
        ))
        .with_detail("role", key.role.as_str())
        .with_detail("required", permission.as_str()));
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(param, _)| param == name)
            .map(|(_, value)| value.as_str())
    };
    let mut tenant = key.tenant.clone();
    if key.role == Role::Operator {
        if let Some(named) = headers.get(TENANT_HEADER) {
            let named = named.to_str().unwrap_or_default();
            if !access.tenants.contains(named) {
                return Err(ApiError::not_found(format!("tenant `{named}` not found"))
                    .with_detail("header", TENANT_HEADER));
            }
            tenant = named.to_string();
        }
    }
    if let Some(path_tenant) = param("tenant") {
        if key.role == Role::Operator {
            tenant = path_tenant.to_string();
        } else if path_tenant != key.tenant {
            return Err(ApiError::forbidden(
                "this key belongs to another tenant than the one in the path",
            ));
        }
    }
    if let (Some(scope), Some(project)) = (&key.project, param("project")) {
        if scope != project {
            return Err(ApiError::forbidden(format!(
                "this key is limited to project `{scope}`"
            )));
        }
    }
    Ok(Principal {
        key_id: key.id.clone(),
        role: key.role,
        tenant,
        project_scope: key.project.clone(),
    })
}

/// The URI with every `token` query parameter removed.
fn without_token(uri: &Uri) -> Uri {
    let Some(query) = uri.query() else {
        return uri.clone();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| pair.split('=').next() != Some("token"))
        .collect();
    let path_and_query = if kept.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{}", uri.path(), kept.join("&"))
    };
    let mut uri_parts = uri.clone().into_parts();
    match path_and_query.parse() {
        Ok(path_and_query) => {
            uri_parts.path_and_query = Some(path_and_query);
            Uri::from_parts(uri_parts).unwrap_or_else(|_| uri.clone())
        }
        Err(_) => uri.clone(),
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message)
}

/// The key of an `Authorization: Bearer <key>` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    authorization(headers, "bearer")
}

/// The key an `Authorization` header presents: `Bearer <key>`, `ApiKey <key>`
/// (Elasticsearch's scheme, which Beats, Logstash and the Elasticsearch clients
/// send), or `Basic` with the key as the password (the user name is ignored; a key
/// given as the user name with an empty password is taken too). Every form carries
/// the same key with the same role.
fn presented_key(headers: &HeaderMap) -> Option<String> {
    if let Some(key) = bearer(headers).or_else(|| authorization(headers, "apikey")) {
        return Some(key.to_string());
    }
    let encoded = authorization(headers, "basic")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':').unwrap_or((text.as_str(), ""));
    let key = if password.is_empty() { user } else { password };
    (!key.is_empty()).then(|| key.to_string())
}

/// The credentials of an `Authorization: <scheme> <credentials>` header.
fn authorization<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (given, credentials) = value.split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then(|| credentials.trim())
        .filter(|credentials| !credentials.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use logpool_core::access::{format_key, hash_secret, KeyEntry};

    fn access() -> AccessTable {
        let mut table = AccessTable::default();
        table
            .tenants
            .extend(["default".to_string(), "acme".to_string()]);
        for (id, tenant, role, project) in [
            ("op", "default", Role::Operator, None),
            ("rd", "acme", Role::Reader, Some("shop")),
            ("ta", "acme", Role::TenantAdmin, None),
        ] {
            let salt = format!("salt-{id}");
            table.keys.insert(
                id.to_string(),
                KeyEntry {
                    id: id.to_string(),
                    tenant: tenant.to_string(),
                    role,
                    project: project.map(str::to_string),
                    hash: hash_secret(&salt, "secret"),
                    salt,
                    enabled: true,
                },
            );
        }
        table
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn the_tenant_comes_from_the_key_and_the_project_scope_is_enforced() {
        let table = access();
        let key = format_key("rd", "secret");
        let principal = authorize(
            &table,
            Permission::Read,
            &key,
            &HeaderMap::new(),
            &params(&[("project", "shop")]),
        )
        .expect("allowed");
        assert_eq!(principal.tenant, "acme");
        let other = authorize(
            &table,
            Permission::Read,
            &key,
            &HeaderMap::new(),
            &params(&[("project", "bank")]),
        );
        assert_eq!(other.map_err(|e| e.code), Err(ErrorCode::Forbidden));
        let ingest = authorize(&table, Permission::Ingest, &key, &HeaderMap::new(), &[]);
        assert_eq!(ingest.map_err(|e| e.code), Err(ErrorCode::Forbidden));
    }

    #[test]
    fn only_operators_choose_another_tenant() {
        let table = access();
        let mut headers = HeaderMap::new();
        headers.insert(TENANT_HEADER, "acme".parse().expect("header"));
        let operator = authorize(
            &table,
            Permission::Read,
            &format_key("op", "secret"),
            &headers,
            &[],
        )
        .expect("operator");
        assert_eq!(operator.tenant, "acme");
        let admin = authorize(
            &table,
            Permission::ManageTenant,
            &format_key("ta", "secret"),
            &HeaderMap::new(),
            &params(&[("tenant", "default")]),
        );
        assert_eq!(admin.map_err(|e| e.code), Err(ErrorCode::Forbidden));
    }

    #[test]
    fn the_query_token_is_removed_before_the_handler() {
        let uri: Uri = "/v1/tail?query=a&token=lpk_x_y&start=-5m"
            .parse()
            .expect("uri");
        assert_eq!(without_token(&uri), "/v1/tail?query=a&start=-5m");
        let only: Uri = "/v1/tail?token=k".parse().expect("uri");
        assert_eq!(without_token(&only), "/v1/tail");
    }

    #[test]
    fn wrong_secrets_are_unauthorized_and_bearer_is_parsed_strictly() {
        let table = access();
        let refused = authorize(
            &table,
            Permission::Read,
            &format_key("rd", "guess"),
            &HeaderMap::new(),
            &[],
        );
        assert_eq!(refused.map_err(|e| e.code), Err(ErrorCode::Unauthorized));
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().expect("header"));
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            "bearer  k1 ".parse().expect("header"),
        );
        assert_eq!(bearer(&headers), Some("k1"));
    }

    #[test]
    fn shippers_present_the_key_as_apikey_or_as_the_basic_password() {
        let key = format_key("ta", "secret");
        let with = |value: String| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().expect("header"));
            presented_key(&headers)
        };
        let basic = |credentials: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            )
        };
        assert_eq!(with(format!("Bearer {key}")), Some(key.clone()));
        assert_eq!(with(format!("ApiKey {key}")), Some(key.clone()));
        assert_eq!(with(basic(&format!("filebeat:{key}"))), Some(key.clone()));
        assert_eq!(with(basic(&format!("{key}:"))), Some(key.clone()));
        assert_eq!(with(basic(":")), None);
        assert_eq!(with("Basic !!not-base64".to_string()), None);
        assert_eq!(with(format!("Digest {key}")), None);
        // The key found either way is the same key with the same role.
        let table = access();
        let principal = authorize(
            &table,
            Permission::ManageTenant,
            &with(basic(&format!("anyone:{key}"))).expect("key"),
            &HeaderMap::new(),
            &[],
        )
        .expect("allowed");
        assert_eq!(principal.role, Role::TenantAdmin);
    }
}
