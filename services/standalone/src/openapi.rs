//! The OpenAPI document of every service's routes, as `docs/openapi.json` holds it
//! and `GET /v1/openapi.json` serves it.

use logpool_api::auth::RouteSpec;
use logpool_core::access::Role;
use logpool_wire::openapi::{document_json, Route};

/// Every route of every service, from the services' own route lists.
pub fn route_specs() -> Vec<RouteSpec> {
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

/// The routes with the roles that hold each one's permission.
pub fn routes() -> Vec<Route> {
    route_specs()
        .into_iter()
        .map(|spec| Route {
            method: spec.method.as_str().to_string(),
            roles: match spec.permission {
                logpool_core::access::Permission::Public => Vec::new(),
                permission => Role::ALL
                    .into_iter()
                    .filter(|role| role.grants(permission))
                    .map(|role| role.as_str().to_string())
                    .collect(),
            },
            path: spec.path,
            permission: spec.permission.as_str().to_string(),
            token_in_query: spec.token_in_query,
        })
        .collect()
}

/// The document as JSON text.
///
/// # Errors
/// Only if the document cannot be written as JSON.
pub fn document() -> Result<String, serde_json::Error> {
    document_json(&routes())
}
