//! The OpenAPI 3.1 document of the HTTP API.
//!
//! The routes come from the services (method, path, and the permission their keys
//! need, with the roles that hold it); this module adds what the wire types say of
//! each route: parameters, body and answer. A route without typed answers yet still
//! appears, with its roles, answering a JSON object.

use std::collections::BTreeMap;

use serde_json::json;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{ComponentsBuilder, ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathItem, PathsBuilder, Ref, RefOr,
    Required, Schema,
};
use utoipa::{IntoParams, ToSchema};

use crate::control;
use crate::error::ErrorBody;
use crate::health::Health;
use crate::search::{
    ContextAnswer, ContextParams, FieldsAnswer, FieldsParams, HistogramAnswer, HistogramParams,
    SearchAnswer, SearchParams, SqlQueryParams, SqlTable, StreamDone, StreamStep,
};

/// The path of the document itself.
pub const OPENAPI_PATH: &str = "/v1/openapi.json";

/// One route as a service declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path template (`/v1/projects/{project}`).
    pub path: String,
    /// The permission a key needs (`public`, `read`, `manage_project`, ...).
    pub permission: String,
    /// The roles that hold the permission (every role for `authenticated`, none for
    /// `public`, which needs no key).
    pub roles: Vec<String>,
    /// Whether the key may come as `?token=` (WebSocket upgrades).
    pub token_in_query: bool,
}

/// What the wire types say of one route.
struct Shape {
    summary: &'static str,
    query: Vec<utoipa::openapi::path::Parameter>,
    body: Option<&'static str>,
    answer: Answer,
}

/// The 2xx answer of a route.
enum Answer {
    /// A status with a JSON body of the named schema.
    Json(u16, &'static str),
    /// `204`, no body.
    NoContent,
    /// `200` with NDJSON lines of the named schemas.
    Lines(&'static [&'static str]),
    /// A status and what it means, with a JSON object not typed here yet.
    Untyped(u16, &'static str),
    /// A status with a body of the given media type.
    Media(u16, &'static str, &'static str),
}

fn shape(method: &str, path: &str) -> Shape {
    let query = |params: Vec<utoipa::openapi::path::Parameter>| params;
    let in_query = || Some(ParameterIn::Query);
    let untyped = |summary| Shape {
        summary,
        query: Vec::new(),
        body: None,
        answer: Answer::Untyped(200, "A JSON object (not described by a schema yet)."),
    };
    const POOL: &str = "/v1/projects/{project}/pools/{pool}";
    let pool_route = path.strip_prefix(POOL);
    match (method, pool_route, path) {
        ("GET", _, "/healthz") => Shape {
            summary: "The process is alive.",
            query: Vec::new(),
            body: None,
            answer: Answer::Json(200, "Health"),
        },
        ("GET", _, "/readyz") => Shape {
            summary: "The engines answer (503 with `failures` when one does not).",
            query: Vec::new(),
            body: None,
            answer: Answer::Json(200, "Health"),
        },
        ("GET", _, OPENAPI_PATH) => Shape {
            summary: "This document.",
            query: Vec::new(),
            body: None,
            answer: Answer::Untyped(200, "The OpenAPI 3.1 document."),
        },
        ("GET", _, "/metrics") => Shape {
            summary: "Prometheus metrics.",
            query: Vec::new(),
            body: None,
            answer: Answer::Media(200, "text/plain", "Prometheus text exposition."),
        },
        ("GET" | "POST", Some("/search"), _) => Shape {
            summary: "One page of matching records, newest first.",
            query: query(get_only(method, SearchParams::into_params(in_query))),
            body: post_only(method, "SearchParams"),
            answer: Answer::Json(200, "SearchAnswer"),
        },
        ("GET" | "POST", Some("/search/stream"), _) => Shape {
            summary: "A search answered as NDJSON, one line per step, then a `done` line.",
            query: query(get_only(method, SearchParams::into_params(in_query))),
            body: post_only(method, "SearchParams"),
            answer: Answer::Lines(&["StreamStep", "StreamDone", "ErrorBody"]),
        },
        ("GET" | "POST", Some("/histogram"), _) => Shape {
            summary: "Matching records per time bucket.",
            query: query(get_only(method, HistogramParams::into_params(in_query))),
            body: post_only(method, "HistogramParams"),
            answer: Answer::Json(200, "HistogramAnswer"),
        },
        ("GET" | "POST", Some("/fields"), _) => Shape {
            summary: "The most common fields and values of a sample of matching records.",
            query: query(get_only(method, FieldsParams::into_params(in_query))),
            body: post_only(method, "FieldsParams"),
            answer: Answer::Json(200, "FieldsAnswer"),
        },
        ("GET", Some("/records/{id}/context"), _) => Shape {
            summary: "The records written before and after one record in its shard.",
            query: ContextParams::into_params(in_query),
            body: None,
            answer: Answer::Json(200, "ContextAnswer"),
        },
        ("POST", Some("/query"), _) => Shape {
            summary: "Pipe SQL: `<search> | SELECT ...` as a table.",
            query: Vec::new(),
            body: Some("SqlQueryParams"),
            answer: Answer::Json(200, "SqlTable"),
        },
        ("POST", Some("/logs"), _) => Shape {
            summary: "PutDatas: append records (JSON, NDJSON or the binary batch format).",
            query: vec![ParameterBuilder::new()
                .name("hash_key")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(
                    "Every record of the request goes to the shard of this key.",
                ))
                .schema(Some(string()))
                .build()],
            body: None,
            answer: Answer::Untyped(200, "What was accepted and refused."),
        },
        ("GET", Some("/tail"), _) => Shape {
            summary: "Live tail: a WebSocket of matching records as they arrive.",
            query: Vec::new(),
            body: None,
            answer: Answer::Media(101, "application/json", "Switching to WebSocket."),
        },
        ("GET", Some("/stats"), _) => Shape {
            summary: "What the pool holds and how far each consumer is behind.",
            query: Vec::new(),
            body: None,
            answer: Answer::Json(200, "PoolStats"),
        },
        ("GET", _, "/v1/cluster/members") => Shape {
            summary: "The service processes running now.",
            query: Vec::new(),
            body: None,
            answer: Answer::Json(200, "MemberList"),
        },
        ("GET", _, "/v1/whoami") => Shape {
            summary: "The caller's key: tenant, role and project scope.",
            query: Vec::new(),
            body: None,
            answer: Answer::Json(200, "Whoami"),
        },
        ("GET", _, path) if path.starts_with("/console") || path == "/" => Shape {
            summary: "The web console.",
            query: Vec::new(),
            body: None,
            answer: Answer::Media(200, "text/html", "The console's pages and assets."),
        },
        (_, _, "/v1/tenants" | "/v1/tenants/{tenant}")
        | (_, _, "/v1/tenants/{tenant}/keys" | "/v1/tenants/{tenant}/keys/{id}")
        | (_, _, "/v1/projects" | "/v1/projects/{project}") => control_shape(method, path),
        ("POST", _, "/v1/projects/{project}/pools") | ("POST", Some("/consumer-groups"), _) => {
            Shape {
                summary: "Creates what the path names.",
                query: Vec::new(),
                body: None,
                answer: Answer::Untyped(201, "The created object."),
            }
        }
        ("POST", Some("/archive/restore"), _) => Shape {
            summary: "Starts restoring an archived time range into a pool.",
            query: Vec::new(),
            body: None,
            answer: Answer::Untyped(202, "The restore job, to follow by its id."),
        },
        ("DELETE", _, _) => Shape {
            summary: "Deletes what the path names.",
            query: Vec::new(),
            body: None,
            answer: Answer::NoContent,
        },
        ("GET", _, _) => untyped("Reads the named object or list."),
        ("POST", _, _) => untyped("Creates or runs what the path names."),
        ("PUT", _, _) => untyped("Sets what the path names."),
        ("PATCH", _, _) => untyped("Changes what the path names."),
        _ => untyped("See the API reference."),
    }
}

/// Tenants, keys and projects, whose answers are the types of [`control`].
fn control_shape(method: &str, path: &str) -> Shape {
    let (summary, body, answer) = match (method, path) {
        ("GET", "/v1/tenants") => ("Every tenant.", None, Answer::Json(200, "TenantList")),
        ("POST", "/v1/tenants") => (
            "Creates a tenant.",
            Some("CreateTenant"),
            Answer::Json(201, "Tenant"),
        ),
        ("GET", "/v1/tenants/{tenant}") => ("The tenant.", None, Answer::Json(200, "Tenant")),
        ("GET", "/v1/tenants/{tenant}/keys") => (
            "The tenant's API keys (never their secrets).",
            None,
            Answer::Json(200, "KeyList"),
        ),
        ("POST", "/v1/tenants/{tenant}/keys") => (
            "Creates an API key; the answer holds the full key, shown only once.",
            Some("CreateKey"),
            Answer::Json(201, "ApiKey"),
        ),
        ("GET", "/v1/tenants/{tenant}/keys/{id}") => {
            ("One API key.", None, Answer::Json(200, "ApiKey"))
        }
        ("PATCH", "/v1/tenants/{tenant}/keys/{id}") => (
            "Enables or disables an API key.",
            Some("UpdateKey"),
            Answer::Json(200, "ApiKey"),
        ),
        ("GET", "/v1/projects") => (
            "The projects the key may see.",
            None,
            Answer::Json(200, "ProjectList"),
        ),
        ("POST", "/v1/projects") => (
            "Creates a project.",
            Some("CreateProject"),
            Answer::Json(201, "Project"),
        ),
        ("GET", "/v1/projects/{project}") => ("The project.", None, Answer::Json(200, "Project")),
        ("PATCH", "/v1/projects/{project}") => (
            "Changes the project's description.",
            Some("UpdateProject"),
            Answer::Json(200, "Project"),
        ),
        ("DELETE", _) => ("Deletes what the path names.", None, Answer::NoContent),
        _ => (
            "See the API reference.",
            None,
            Answer::Untyped(200, "A JSON object (not described by a schema yet)."),
        ),
    };
    Shape {
        summary,
        query: Vec::new(),
        body,
        answer,
    }
}

/// The query parameters of a GET; a POST takes the same names in its body.
fn get_only(
    method: &str,
    params: Vec<utoipa::openapi::path::Parameter>,
) -> Vec<utoipa::openapi::path::Parameter> {
    if method == "GET" {
        params
    } else {
        Vec::new()
    }
}

fn post_only(method: &str, schema: &'static str) -> Option<&'static str> {
    (method == "POST").then_some(schema)
}

fn string() -> Schema {
    ObjectBuilder::new().schema_type(Type::String).into()
}

fn json_content(schema: &str) -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(schema)))
        .build()
}

/// The schemas the routes refer to, with every schema they refer to in turn.
fn schemas() -> Vec<(String, RefOr<Schema>)> {
    let mut schemas = Vec::new();
    fn add<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
    add::<ErrorBody>(&mut schemas);
    add::<Health>(&mut schemas);
    add::<SearchParams>(&mut schemas);
    add::<SearchAnswer>(&mut schemas);
    add::<StreamStep>(&mut schemas);
    add::<StreamDone>(&mut schemas);
    add::<HistogramParams>(&mut schemas);
    add::<HistogramAnswer>(&mut schemas);
    add::<FieldsParams>(&mut schemas);
    add::<FieldsAnswer>(&mut schemas);
    add::<ContextAnswer>(&mut schemas);
    add::<SqlQueryParams>(&mut schemas);
    add::<SqlTable>(&mut schemas);
    add::<control::Whoami>(&mut schemas);
    add::<control::CreateTenant>(&mut schemas);
    add::<control::Tenant>(&mut schemas);
    add::<control::TenantList>(&mut schemas);
    add::<control::CreateKey>(&mut schemas);
    add::<control::UpdateKey>(&mut schemas);
    add::<control::ApiKey>(&mut schemas);
    add::<control::KeyList>(&mut schemas);
    add::<control::CreateProject>(&mut schemas);
    add::<control::UpdateProject>(&mut schemas);
    add::<control::Project>(&mut schemas);
    add::<control::ProjectList>(&mut schemas);
    add::<control::MemberList>(&mut schemas);
    add::<crate::stats::PoolStats>(&mut schemas);
    schemas
}

/// The path parameters of a template: each `{name}` is a required string.
fn path_parameters(path: &str) -> Vec<utoipa::openapi::path::Parameter> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(string()))
                .build()
        })
        .collect()
}

fn http_method(method: &str) -> Option<HttpMethod> {
    Some(match method {
        "GET" => HttpMethod::Get,
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        _ => return None,
    })
}

/// The error answers every route may give, by status.
const ERROR_STATUSES: [(u16, &str); 4] = [
    (400, "A parameter or the body is wrong; `field` names it."),
    (401, "No key, or one that is unknown or disabled."),
    (
        403,
        "The key's role or project scope does not allow the request.",
    ),
    (404, "The named project, pool or object does not exist."),
];

fn operation(route: &Route) -> utoipa::openapi::path::Operation {
    let shape = shape(&route.method, &route.path);
    let mut responses = ResponsesBuilder::new();
    responses = match shape.answer {
        Answer::Json(status, schema) => responses.response(
            status.to_string(),
            ResponseBuilder::new()
                .description(if status == 201 { "Created" } else { "OK" })
                .content("application/json", json_content(schema)),
        ),
        Answer::NoContent => {
            responses.response("204", ResponseBuilder::new().description("Done; no body."))
        }
        Answer::Lines(schemas) => responses.response(
            "200",
            ResponseBuilder::new()
                .description(format!("NDJSON: each line one of {}", schemas.join(", ")))
                .content(
                    "application/x-ndjson",
                    ContentBuilder::new()
                        .schema(Some::<Schema>(
                            schemas
                                .iter()
                                .fold(OneOfBuilder::new(), |one_of, name| {
                                    one_of.item(Ref::from_schema_name(*name))
                                })
                                .into(),
                        ))
                        .build(),
                ),
        ),
        Answer::Untyped(status, description) => responses.response(
            status.to_string(),
            ResponseBuilder::new().description(description).content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                    .build(),
            ),
        ),
        Answer::Media(status, media, description) => responses.response(
            status.to_string(),
            ResponseBuilder::new()
                .description(description)
                .content(media, ContentBuilder::new().build()),
        ),
    };
    let public = route.permission == "public";
    for (status, description) in ERROR_STATUSES {
        if public && (status == 401 || status == 403) {
            continue;
        }
        responses = responses.response(
            status.to_string(),
            ResponseBuilder::new()
                .description(description)
                .content("application/json", json_content("ErrorBody")),
        );
    }
    responses = responses.response(
        "default",
        ResponseBuilder::new()
            .description("Any other error, in the same envelope.")
            .content("application/json", json_content("ErrorBody")),
    );
    let roles = if public {
        "No key needed.".to_string()
    } else {
        format!("Roles: {}.", route.roles.join(", "))
    };
    let mut parameters = path_parameters(&route.path);
    parameters.extend(shape.query);
    let mut builder = OperationBuilder::new()
        .summary(Some(shape.summary))
        .description(Some(format!("{roles} Permission: `{}`.", route.permission)))
        .operation_id(Some(operation_id(route)))
        .parameters(Some(parameters))
        .responses(responses.build())
        .extensions(Some(
            ExtensionsBuilder::new()
                .add("x-permission", json!(route.permission))
                .add("x-roles", json!(route.roles))
                .build(),
        ));
    if let Some(body) = shape.body {
        builder = builder.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content("application/json", json_content(body))
                .build(),
        ));
    }
    if public {
        builder = builder.securities(Some(Vec::<SecurityRequirement>::new()));
    } else if route.token_in_query {
        builder = builder
            .security(SecurityRequirement::new("api_key", Vec::<String>::new()))
            .parameter(
                ParameterBuilder::new()
                    .name("token")
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(
                        "The API key, for WebSocket clients that cannot send headers.",
                    ))
                    .schema(Some(string()))
                    .build(),
            );
    }
    builder.build()
}

/// A stable id: the method and the path's words (`get_v1_projects_project_pools`).
fn operation_id(route: &Route) -> String {
    let mut id = route.method.to_ascii_lowercase();
    for word in route
        .path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
    {
        id.push('_');
        id.push_str(word);
    }
    id
}

/// The document for these routes. Routes with a method OpenAPI has no field for are
/// left out (none exist today).
pub fn document(routes: &[Route]) -> OpenApi {
    let mut by_path: BTreeMap<&str, Vec<&Route>> = BTreeMap::new();
    for route in routes {
        by_path.entry(route.path.as_str()).or_default().push(route);
    }
    let mut paths = PathsBuilder::new();
    for (path, routes) in by_path {
        let mut item: Option<PathItem> = None;
        for route in routes {
            let Some(method) = http_method(&route.method) else {
                continue;
            };
            let one = PathItem::new(method, operation(route));
            match &mut item {
                Some(item) => item.merge_operations(one),
                None => item = Some(one),
            }
        }
        if let Some(item) = item {
            paths = paths.path(path, item);
        }
    }
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas())
        .security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("lpk_<id>_<secret>")
                    .description(Some("An API key as `Authorization: Bearer <key>`."))
                    .build(),
            ),
        )
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("logpool")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The HTTP API of logpool. Each operation names the permission its key \
                     needs and the roles that hold it (`x-permission`, `x-roles`). Errors \
                     answer `{\"error\": {\"code\", \"message\", ...}}`.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components))
        .security(Some([SecurityRequirement::new(
            "api_key",
            Vec::<String>::new(),
        )]))
        .build()
}

/// The document as the JSON the service answers and `docs/openapi.json` holds.
///
/// # Errors
/// Only if the document cannot be written as JSON (never for these types).
pub fn document_json(routes: &[Route]) -> Result<String, serde_json::Error> {
    // Through a JSON value, whose objects keep their keys sorted: the extensions of
    // an operation are a hash map, and the checked-in file must not change from one
    // run to the next.
    let sorted = serde_json::to_value(document(routes))?;
    let mut text = serde_json::to_string_pretty(&sorted)?;
    text.push('\n');
    Ok(text)
}
