//! The OpenAPI 3.1 document of the HTTP API.
//!
//! The routes come from the services (method, path, and the permission their keys
//! need, with the roles that hold it); this module adds what the wire types say of
//! each route: parameters, body, answer and the error statuses it can give.

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

use crate::archive::ArchiveListParams;
use crate::error::ErrorBody;
use crate::export::ExportParams;
use crate::health::Health;
use crate::patterns::{PatternsAnswer, PatternsParams};
use crate::queue::{CursorParams, RecordsParams};
use crate::search::{
    ContextAnswer, ContextParams, FieldsAnswer, FieldsParams, HistogramAnswer, HistogramParams,
    SchemaAnswer, SearchAnswer, SearchParams, SqlQueryParams, SqlTable, StreamDone, StreamStep,
};
use crate::tail::TailParams;
use crate::{archive, control, es, es_search, ingest, queue, quotas, shippers, tail};

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
    body: Option<Body>,
    answer: Answer,
    /// Error statuses beyond those every route of its kind can answer
    /// ([`common_errors`]).
    errors: &'static [u16],
    /// Errors answered in the protocol's own shape (beyond the JSON envelope of
    /// the key check's 401/403): media type and schema (none for text).
    protocol_errors: Option<&'static [(&'static str, Option<&'static str>)]>,
}

/// The body a route takes.
enum Body {
    /// JSON of the named schema.
    Json(&'static str),
    /// PutDatas: JSON of the named schema, or NDJSON records.
    Records(&'static str),
    /// Elasticsearch bulk: NDJSON action and document lines.
    Bulk,
    /// A shipper protocol's body: media types with what each holds.
    Protocol(&'static [(&'static str, &'static str)]),
}

/// The 2xx answer of a route.
enum Answer {
    /// A status with a JSON body of the named schema.
    Json(u16, &'static str),
    /// `204`, no body.
    NoContent,
    /// `200` with NDJSON lines of the named schemas.
    Lines(&'static [&'static str]),
    /// `200` with any JSON document (the OpenAPI document itself).
    AnyJson(&'static str),
    /// A status with a body of the given media type.
    Media(u16, &'static str, &'static str),
    /// `202` (started) or `200` (running or done already), with the named schema.
    Started(&'static str),
}

impl Shape {
    fn new(summary: &'static str, answer: Answer) -> Shape {
        Shape {
            summary,
            query: Vec::new(),
            body: None,
            answer,
            errors: &[],
            protocol_errors: None,
        }
    }

    fn body(mut self, schema: &'static str) -> Shape {
        self.body = Some(Body::Json(schema));
        self
    }

    fn query(mut self, params: Vec<utoipa::openapi::path::Parameter>) -> Shape {
        self.query = params;
        self
    }

    fn errors(mut self, errors: &'static [u16]) -> Shape {
        self.errors = errors;
        self
    }
}

/// Reads that may wait for a write (`wait_for`): 408 when it is not searchable in
/// time.
const WAITING_READ: &[u16] = &[408];

fn shape(method: &str, path: &str) -> Shape {
    let in_query = || Some(ParameterIn::Query);
    const POOL: &str = "/v1/projects/{project}/pools/{pool}";
    let pool_route = path.strip_prefix(POOL);
    match (method, pool_route, path) {
        ("GET", _, "/healthz") => Shape::new("The process is alive.", Answer::Json(200, "Health")),
        ("GET", _, "/readyz") => Shape::new(
            "The engines this service needs answer (503 with `failures` when one does not).",
            Answer::Json(200, "Health"),
        ),
        ("GET", _, OPENAPI_PATH) => Shape::new(
            "This document.",
            Answer::AnyJson("The OpenAPI 3.1 document."),
        ),
        ("GET", _, "/metrics") => Shape::new(
            "Prometheus metrics.",
            Answer::Media(
                200,
                "application/openmetrics-text",
                "OpenMetrics text, which Prometheus reads.",
            ),
        ),
        ("GET" | "POST", Some("/search"), _) => Shape {
            summary: "One page of matching records, newest first (or oldest first, `order=asc`).",
            query: get_only(method, SearchParams::into_params(in_query)),
            body: post_only(method, "SearchParams"),
            answer: Answer::Json(200, "SearchAnswer"),
            errors: WAITING_READ,
            protocol_errors: None,
        },
        ("GET" | "POST", Some("/search/stream"), _) => Shape {
            summary: "A search answered as NDJSON, one line per step, then a `done` line.",
            query: get_only(method, SearchParams::into_params(in_query)),
            body: post_only(method, "SearchParams"),
            answer: Answer::Lines(&["StreamStep", "StreamDone", "ErrorBody"]),
            errors: WAITING_READ,
            protocol_errors: None,
        },
        ("GET" | "POST", Some("/histogram"), _) => Shape {
            summary: "Matching records per time bucket.",
            query: get_only(method, HistogramParams::into_params(in_query)),
            body: post_only(method, "HistogramParams"),
            answer: Answer::Json(200, "HistogramAnswer"),
            errors: WAITING_READ,
            protocol_errors: None,
        },
        ("GET" | "POST", Some("/export"), _) => Shape {
            summary: "Every match of the range, newest first, as NDJSON (whole records, \
                      or objects of the chosen `columns`) or CSV (`format=csv`, a header \
                      line of the columns, default `time,message`), up to \
                      `search.max_export_records`. The headers `X-Logpool-Export-Matches`, \
                      `-Limit` and `-Truncated` say how many matched and whether the \
                      export stops at its limit.",
            query: get_only(method, ExportParams::into_params(in_query)),
            body: post_only(method, "ExportParams"),
            answer: Answer::Media(
                200,
                "application/x-ndjson",
                "One JSON object per record (`text/csv` with `format=csv`).",
            ),
            errors: &[],
            protocol_errors: None,
        },
        ("GET" | "POST", Some("/fields"), _) => Shape {
            summary: "The most common fields of the newest matches, with their counts and \
                      top values over every match in the range.",
            query: get_only(method, FieldsParams::into_params(in_query)),
            body: post_only(method, "FieldsParams"),
            answer: Answer::Json(200, "FieldsAnswer"),
            errors: &[],
            protocol_errors: None,
        },
        ("GET" | "POST", Some("/patterns"), _) => Shape {
            summary: "The log patterns of the matching records, most frequent first: \
                      template, count, share, first and last seen, a sample record and \
                      counts per bucket; with `compare_from`/`compare_to`, each \
                      pattern's baseline count and whether it is new, gone or changed.",
            query: get_only(method, PatternsParams::into_params(in_query)),
            body: post_only(method, "PatternsParams"),
            answer: Answer::Json(200, "PatternsAnswer"),
            errors: &[],
            protocol_errors: None,
        },
        ("GET", Some("/schema"), _) => Shape::new(
            "Every field the pool has typed (hinted or learned), with its type.",
            Answer::Json(200, "SchemaAnswer"),
        ),
        ("GET", Some("/records/{id}/context"), _) => Shape::new(
            "The records written before and after one record in its shard.",
            Answer::Json(200, "ContextAnswer"),
        )
        .query(ContextParams::into_params(in_query))
        .errors(WAITING_READ),
        ("POST", Some("/query"), _) => Shape::new(
            "Pipe SQL: `<search> | SELECT ...` as a table.",
            Answer::Json(200, "SqlTable"),
        )
        .body("SqlQueryParams")
        .errors(WAITING_READ),
        ("POST", Some("/logs"), _) => Shape {
            summary: "PutDatas: append records (JSON or NDJSON, optionally gzip or zstd).",
            query: vec![
                ParameterBuilder::new()
                    .name("hash_key")
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(
                        "Every record of the request goes to the shard of this key.",
                    ))
                    .schema(Some(string()))
                    .build(),
                ParameterBuilder::new()
                    .name("Idempotency-Key")
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .description(Some(
                        "1 to 128 characters of `A-Z a-z 0-9 - _ . :`; a retry with the same \
                         key stores nothing twice.",
                    ))
                    .schema(Some(string()))
                    .build(),
            ],
            body: Some(Body::Records("PutBody")),
            answer: Answer::Json(200, "PutAnswer"),
            errors: &[409, 413, 415],
            protocol_errors: None,
        },
        ("POST", _, "/v1/logs") => Shape {
            summary: "OTLP logs over HTTP: an `ExportLogsServiceRequest` (protobuf or \
                      OTLP/JSON, optionally gzip or zstd) into the pool of the \
                      `X-Logpool-Project`/`X-Logpool-Pool` headers or the resource \
                      attributes `logpool.project`/`logpool.pool`.",
            query: shipper_headers(),
            body: Some(Body::Protocol(&[
                ("application/x-protobuf", "An `ExportLogsServiceRequest`."),
                ("application/json", "An `ExportLogsServiceRequest` in OTLP/JSON."),
            ])),
            answer: Answer::Json(200, "OtlpExportAnswer"),
            errors: &[409, 413, 415],
            protocol_errors: Some(&[
                ("application/json", Some("OtlpErrorAnswer")),
                ("application/x-protobuf", None),
            ]),
        },
        ("POST", _, "/loki/api/v1/push") => Shape {
            summary: "Loki push: a `PushRequest` (snappy protobuf) or Loki's JSON streams \
                      into the pool of the `X-Logpool-Project`/`X-Logpool-Pool` headers or \
                      the stream labels `logpool_project`/`logpool_pool`. A 400 after a \
                      partial write names the entries left out.",
            query: shipper_headers(),
            body: Some(Body::Protocol(&[
                ("application/x-protobuf", "A snappy-compressed Loki `PushRequest`."),
                (
                    "application/json",
                    "`{\"streams\": [{\"stream\": {labels}, \"values\": [[\"<ns>\", \"line\", {metadata}]]}]}`.",
                ),
            ])),
            answer: Answer::NoContent,
            errors: &[409, 413, 415],
            protocol_errors: Some(&[("text/plain", None)]),
        },
        ("GET", Some("/tail"), _) => Shape::new(
            "Live tail: a WebSocket of `TailFrame` text frames, matching records as they \
             arrive.",
            Answer::Media(101, "application/json", "Switching to WebSocket."),
        )
        .query(TailParams::into_params(in_query)),
        ("GET", Some("/stats"), _) => Shape::new(
            "What the pool holds and how far each consumer is behind.",
            Answer::Json(200, "PoolStats"),
        ),
        ("GET", Some(""), _) => Shape::new("The pool.", Answer::Json(200, "Pool")),
        ("PATCH", Some(""), _) => Shape::new(
            "Changes the pool; members left out keep their values.",
            Answer::Json(200, "Pool"),
        )
        .body("UpdatePool")
        .errors(&[409]),
        ("GET", _, "/v1/projects/{project}/pools") => {
            Shape::new("The project's pools.", Answer::Json(200, "PoolList"))
        }
        ("POST", _, "/v1/projects/{project}/pools") => {
            Shape::new("Creates a pool.", Answer::Json(201, "Pool"))
                .body("CreatePool")
                .errors(&[409])
        }
        ("GET", Some("/archive/settings"), _) => Shape::new(
            "The pool's archive settings (the defaults when never set).",
            Answer::Json(200, "ArchiveSettings"),
        ),
        ("PUT", Some("/archive/settings"), _) => Shape::new(
            "Changes the archive settings; members left out keep their values.",
            Answer::Json(200, "ArchiveSettings"),
        )
        .body("ArchiveSettingsPatch"),

        ("GET", Some("/archive"), _) => Shape::new(
            "The archived objects whose records overlap a time range.",
            Answer::Json(200, "ArchiveListing"),
        )
        .query(ArchiveListParams::into_params(in_query)),
        ("POST", Some("/archive/restore"), _) => Shape::new(
            "Restores an archived time range into another pool: 202 when started, 200 \
             when that restore is running or done.",
            Answer::Started("Restore"),
        )
        .body("RestoreRequest"),

        ("GET", Some("/archive/restore/{id}"), _) => {
            Shape::new("One restore's progress.", Answer::Json(200, "Restore"))
        }
        ("GET", Some("/shards"), _) => Shape::new(
            "The pool's shards as a queue, with cursors at their ends.",
            Answer::Json(200, "ShardList"),
        ),
        ("GET", Some("/shards/{shard}/cursor"), _) => Shape::new(
            "A cursor at the beginning, the end, or a time of one shard.",
            Answer::Json(200, "CursorAnswer"),
        )
        .query(CursorParams::into_params(in_query)),
        ("GET", Some("/shards/{shard}/records"), _) => Shape::new(
            "Records of one shard from a cursor on (410 with `earliest_cursor` when \
             retention removed its data).",
            Answer::Json(200, "QueueRecords"),
        )
        .query(RecordsParams::into_params(in_query))
        .errors(&[410]),
        ("GET", Some("/consumer-groups"), _) => Shape::new(
            "The pool's consumer groups.",
            Answer::Json(200, "ConsumerGroupList"),
        ),
        ("POST", Some("/consumer-groups"), _) => Shape::new(
            "Creates a consumer group.",
            Answer::Json(201, "ConsumerGroup"),
        )
        .body("CreateConsumerGroup")
        .errors(&[409]),
        ("POST", Some("/consumer-groups/{group}/heartbeat"), _) => Shape::new(
            "A member is alive; the answer is the shards it owns now.",
            Answer::Json(200, "HeartbeatAnswer"),
        )
        .body("Heartbeat"),

        ("GET", Some("/consumer-groups/{group}/checkpoints"), _) => Shape::new(
            "The group's saved place per shard.",
            Answer::Json(200, "CheckpointList"),
        ),
        ("PUT", Some("/consumer-groups/{group}/checkpoints"), _) => Shape::new(
            "Saves the place to resume one shard from.",
            Answer::Json(200, "Checkpoint"),
        )
        .body("SaveCheckpoint"),

        ("GET", _, "/v1/tenants/{tenant}/quotas" | "/v1/projects/{project}/quotas") => {
            Shape::new("The limits set here.", Answer::Json(200, "Limits"))
        }
        ("PUT", _, "/v1/tenants/{tenant}/quotas" | "/v1/projects/{project}/quotas") => Shape::new(
            "Sets the limits (replacing them; a member left out is no limit).",
            Answer::Json(200, "Limits"),
        )
        .body("Limits"),
        ("GET", _, "/v1/tenants/{tenant}/usage") => Shape::new(
            "The tenant's keys, pools and storage, per project with its quotas.",
            Answer::Json(200, "Usage"),
        ),
        ("GET", _, "/v1/cluster/members") => Shape::new(
            "The service processes running now.",
            Answer::Json(200, "MemberList"),
        ),
        ("GET", _, "/es" | "/es/") => Shape::new(
            "Elasticsearch-compatible cluster information: the version shippers check.",
            Answer::Json(200, "EsInfo"),
        ),
        ("GET", _, "/es/_cluster/health") => Shape::new(
            "Elasticsearch-compatible cluster health: green.",
            Answer::Json(200, "EsClusterHealth"),
        ),
        ("GET", _, "/es/_license") => Shape::new(
            "Elasticsearch-compatible licence: active, `basic`.",
            Answer::Json(200, "EsLicense"),
        ),
        ("GET", _, "/es/_xpack") => Shape::new(
            "Elasticsearch-compatible X-Pack information: no features.",
            Answer::Json(200, "EsXpack"),
        ),
        ("GET", _, "/es/{index}") => Shape::new(
            "Whether the index (`{project}.{pool}`) names a pool the key may write to \
             (also as `HEAD`).",
            Answer::Json(200, "EsIndices"),
        ),
        ("GET", _, "/es/_template/{name}" | "/es/_index_template/{name}") => Shape::new(
            "An index template is always reported present (also as `HEAD`): pools type \
             their fields themselves.",
            Answer::Json(200, "EsIndices"),
        ),
        ("PUT", _, "/es/_template/{name}" | "/es/_index_template/{name}") => Shape::new(
            "Installing an index template is acknowledged and ignored.",
            Answer::Json(200, "EsAcknowledged"),
        ),
        ("POST", _, "/es/_bulk" | "/es/{index}/_bulk") => Shape {
            summary: "Elasticsearch bulk ingest: `index` and `create` actions into the pools \
                      their index names (`{project}.{pool}`); 200 once the stored items \
                      are durable, with a status per item.",
            query: Vec::new(),
            body: Some(Body::Bulk),
            answer: Answer::Json(200, "BulkAnswer"),
            errors: &[413, 415],
            protocol_errors: None,
        },
        ("GET", _, "/v1/projects/{project}/saved-searches") => Shape::new(
            "The project's saved searches, by name.",
            Answer::Json(200, "SavedSearchList"),
        ),
        ("POST", _, "/v1/projects/{project}/saved-searches") => Shape::new(
            "Saves a search for the project's team (409 for a taken name or a full \
             project).",
            Answer::Json(201, "SavedSearch"),
        )
        .body("SavedSearchBody")
        .errors(&[409]),
        ("GET", _, "/v1/projects/{project}/saved-searches/{id}") => {
            Shape::new("One saved search.", Answer::Json(200, "SavedSearch"))
        }
        ("PUT", _, "/v1/projects/{project}/saved-searches/{id}") => Shape::new(
            "Replaces what a saved search holds (409 for a taken name).",
            Answer::Json(200, "SavedSearch"),
        )
        .body("SavedSearchBody")
        .errors(&[409]),
        ("GET", _, "/v1/projects/{project}/alerts") => Shape::new(
            "The project's alert rules, oldest first, with the state of each group.",
            Answer::Json(200, "RuleList"),
        ),
        ("POST", _, "/v1/projects/{project}/alerts") => Shape::new(
            "Creates an alert rule (400 naming the field, and the position for a query or \
             SQL that does not parse; 409 over the tenant's `alert_rules` quota).",
            Answer::Json(201, "Rule"),
        )
        .body("RuleBody")
        .errors(&[409]),
        ("GET", _, "/v1/projects/{project}/alerts/{id}") => {
            Shape::new("One alert rule with its state.", Answer::Json(200, "Rule"))
        }
        ("PUT", _, "/v1/projects/{project}/alerts/{id}") => Shape::new(
            "Replaces an alert rule; its state and history are kept.",
            Answer::Json(200, "Rule"),
        )
        .body("RuleBody"),
        ("GET", _, "/v1/projects/{project}/alerts/{id}/history") => Shape::new(
            "The rule's state transitions, newest first.",
            Answer::Json(200, "History"),
        )
        .query(vec![ParameterBuilder::new()
            .name("limit")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some("Most transitions to return (1 to 1000, default 100)."))
            .schema(Some(integer()))
            .build()]),
        ("GET", _, "/v1/projects/{project}/alert-channels") => Shape::new(
            "The project's notification channels, oldest first (secrets read `***`).",
            Answer::Json(200, "ChannelList"),
        ),
        ("POST", _, "/v1/projects/{project}/alert-channels") => Shape::new(
            "Creates a notification channel.",
            Answer::Json(201, "Channel"),
        )
        .body("ChannelBody")
        .errors(&[409]),
        ("GET", _, "/v1/projects/{project}/alert-channels/{id}") => {
            Shape::new("One notification channel.", Answer::Json(200, "Channel"))
        }
        ("PUT", _, "/v1/projects/{project}/alert-channels/{id}") => Shape::new(
            "Replaces a channel; a secret sent back as `***` keeps the stored one.",
            Answer::Json(200, "Channel"),
        )
        .body("ChannelBody"),
        ("POST", _, "/v1/projects/{project}/alert-channels/{id}/test") => Shape::new(
            "Sends a test notification through the channel now and says how it went.",
            Answer::Json(200, "ChannelTestAnswer"),
        ),
        ("GET", _, "/v1/projects/{project}/alert-silences") => Shape::new(
            "The project's silences, oldest first.",
            Answer::Json(200, "SilenceList"),
        ),
        ("POST", _, "/v1/projects/{project}/alert-silences") => Shape::new(
            "Mutes a rule, or the rules carrying some labels, for a period.",
            Answer::Json(201, "Silence"),
        )
        .body("SilenceBody")
        .errors(&[409]),
        ("GET", _, "/v1/projects/{project}/dashboards") => Shape::new(
            "The project's dashboards, by name.",
            Answer::Json(200, "DashboardList"),
        ),
        ("POST", _, "/v1/projects/{project}/dashboards") => Shape::new(
            "Creates a dashboard for the project's team (409 for a taken name or a full \
             project); a panel whose query or SQL does not parse is refused naming the \
             panel's field and the position.",
            Answer::Json(201, "Dashboard"),
        )
        .body("DashboardBody")
        .errors(&[409]),
        ("POST", _, "/v1/projects/{project}/dashboards/import") => Shape::new(
            "Creates a dashboard from what an export gave (409 for a taken name).",
            Answer::Json(201, "Dashboard"),
        )
        .body("DashboardExport")
        .errors(&[409]),
        ("GET", _, "/v1/projects/{project}/dashboards/{id}") => {
            Shape::new("One dashboard.", Answer::Json(200, "Dashboard"))
        }
        ("GET", _, "/v1/projects/{project}/dashboards/{id}/export") => Shape::new(
            "A dashboard as JSON that `POST .../dashboards/import` creates again, in any \
             project.",
            Answer::Json(200, "DashboardExport"),
        ),
        ("PUT", _, "/v1/projects/{project}/dashboards/{id}") => Shape::new(
            "Replaces what a dashboard holds: panels, layout, range, refresh (409 for a \
             taken name).",
            Answer::Json(200, "Dashboard"),
        )
        .body("DashboardBody")
        .errors(&[409]),
        (_, _, path) if path.starts_with("/es/") && es_search_path(path) => {
            es_search_shape(method, path)
        }
        ("GET", _, "/v1/whoami") => Shape::new(
            "The caller's key: tenant, role and project scope.",
            Answer::Json(200, "Whoami"),
        ),
        ("GET", _, path) if path.starts_with("/console") || path == "/" => Shape::new(
            "The web console.",
            Answer::Media(200, "text/html", "The console's pages and assets."),
        ),
        (_, _, "/v1/tenants" | "/v1/tenants/{tenant}")
        | (_, _, "/v1/tenants/{tenant}/keys" | "/v1/tenants/{tenant}/keys/{id}")
        | (_, _, "/v1/projects" | "/v1/projects/{project}") => control_shape(method, path),
        ("DELETE", _, _) => Shape::new("Deletes what the path names.", Answer::NoContent),
        // Not reached for the routes of the services: the test of the document
        // checks that each has a schema of its own.
        _ => Shape::new("See the API reference.", Answer::AnyJson("A JSON object.")),
    }
}

/// Whether `path` is one of the Elasticsearch-compatible read routes.
fn es_search_path(path: &str) -> bool {
    ["/_msearch", "/_search", "/_mapping", "/_field_caps"]
        .iter()
        .any(|end| path.ends_with(end))
}

/// The Elasticsearch-compatible read routes, which answer errors in
/// Elasticsearch's shape (the key check before them answers the envelope).
fn es_search_shape(method: &str, path: &str) -> Shape {
    const ES_ERRORS: &[(&str, Option<&str>)] = &[("application/json", Some("EsReadError"))];
    let (summary, body, answer): (&'static str, Option<Body>, Answer) =
        if path.ends_with("/_msearch") {
            (
                "Elasticsearch-compatible multi-search (Grafana): NDJSON pairs of a header \
             (`index`: `{project}.{pool}`) and a search body; each search answered in order \
             with its own `status`.",
                Some(Body::Protocol(&[(
                    "application/x-ndjson",
                    "Header and search body lines in pairs.",
                )])),
                Answer::Json(200, "EsMsearchAnswer"),
            )
        } else if path.ends_with("/_search") {
            (
                "Elasticsearch-compatible search of one pool: `query` (query_string, bool, \
             range, term, match, ...), `size`, `sort` by `@timestamp`, `search_after`, \
             `aggs` (date_histogram, terms, avg, sum, min, max, percentiles, cardinality, \
             value_count).",
                Some(Body::Protocol(&[(
                    "application/json",
                    "An Elasticsearch search body.",
                )])),
                Answer::Json(200, "EsSearchAnswer"),
            )
        } else if path.ends_with("/_mapping") {
            (
                "The pool's fields with Elasticsearch types.",
                None,
                Answer::Json(200, "EsMapping"),
            )
        } else {
            (
                "The fields (`?fields=`) of the pools with Elasticsearch types and capabilities.",
                None,
                Answer::Json(200, "EsFieldCaps"),
            )
        };
    Shape {
        summary,
        query: Vec::new(),
        // A GET carries its search in the URL (`q`, `size`), or none.
        body: body.filter(|_| method == "POST"),
        answer,
        errors: &[],
        protocol_errors: Some(ES_ERRORS),
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
            Answer::AnyJson("A JSON object."),
        ),
    };
    let errors: &'static [u16] = if method == "POST" { &[409] } else { &[] };
    Shape {
        summary,
        query: Vec::new(),
        body: body.map(Body::Json),
        answer,
        errors,
        protocol_errors: None,
    }
}

/// The headers of the shipper protocols: the target pool and the request key.
fn shipper_headers() -> Vec<utoipa::openapi::path::Parameter> {
    let header = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(description))
            .schema(Some(string()))
            .build()
    };
    vec![
        header(
            "X-Logpool-Project",
            "The target project (with `X-Logpool-Pool`; wins over the payload's names).",
        ),
        header(
            "X-Logpool-Pool",
            "The target pool (with `X-Logpool-Project`).",
        ),
        header(
            "Idempotency-Key",
            "As for PutDatas: a retry with the same key stores nothing twice.",
        ),
    ]
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

fn post_only(method: &str, schema: &'static str) -> Option<Body> {
    (method == "POST").then_some(Body::Json(schema))
}

fn string() -> Schema {
    ObjectBuilder::new().schema_type(Type::String).into()
}

fn integer() -> Schema {
    ObjectBuilder::new().schema_type(Type::Integer).into()
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
    add::<PatternsParams>(&mut schemas);
    add::<PatternsAnswer>(&mut schemas);
    add::<FieldsParams>(&mut schemas);
    add::<ExportParams>(&mut schemas);
    add::<FieldsAnswer>(&mut schemas);
    add::<SchemaAnswer>(&mut schemas);
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
    add::<crate::dashboards::DashboardBody>(&mut schemas);
    add::<crate::dashboards::Dashboard>(&mut schemas);
    add::<crate::dashboards::DashboardList>(&mut schemas);
    add::<crate::dashboards::DashboardExport>(&mut schemas);
    add::<control::Project>(&mut schemas);
    add::<control::ProjectList>(&mut schemas);
    add::<control::MemberList>(&mut schemas);
    add::<crate::saved::SavedSearchBody>(&mut schemas);
    add::<crate::saved::SavedSearch>(&mut schemas);
    add::<crate::saved::SavedSearchList>(&mut schemas);
    add::<crate::alerts::RuleBody>(&mut schemas);
    add::<crate::alerts::Rule>(&mut schemas);
    add::<crate::alerts::RuleList>(&mut schemas);
    add::<crate::alerts::History>(&mut schemas);
    add::<crate::alerts::ChannelBody>(&mut schemas);
    add::<crate::alerts::Channel>(&mut schemas);
    add::<crate::alerts::ChannelList>(&mut schemas);
    add::<crate::alerts::ChannelTestAnswer>(&mut schemas);
    add::<crate::alerts::SilenceBody>(&mut schemas);
    add::<crate::alerts::Silence>(&mut schemas);
    add::<crate::alerts::SilenceList>(&mut schemas);
    add::<crate::alerts::Notification>(&mut schemas);
    add::<control::CreatePool>(&mut schemas);
    add::<control::UpdatePool>(&mut schemas);
    add::<control::Pool>(&mut schemas);
    add::<control::PoolList>(&mut schemas);
    add::<crate::stats::PoolStats>(&mut schemas);
    add::<quotas::Limits>(&mut schemas);
    add::<quotas::Usage>(&mut schemas);
    add::<ingest::PutBody>(&mut schemas);
    add::<ingest::PutAnswer>(&mut schemas);
    add::<archive::ArchiveSettings>(&mut schemas);
    add::<archive::ArchiveSettingsPatch>(&mut schemas);
    add::<archive::ArchiveListing>(&mut schemas);
    add::<archive::RestoreRequest>(&mut schemas);
    add::<archive::Restore>(&mut schemas);
    add::<queue::ShardList>(&mut schemas);
    add::<queue::CursorAnswer>(&mut schemas);
    add::<queue::QueueRecords>(&mut schemas);
    add::<queue::CreateConsumerGroup>(&mut schemas);
    add::<queue::ConsumerGroup>(&mut schemas);
    add::<queue::ConsumerGroupList>(&mut schemas);
    add::<queue::Heartbeat>(&mut schemas);
    add::<queue::HeartbeatAnswer>(&mut schemas);
    add::<queue::SaveCheckpoint>(&mut schemas);
    add::<queue::Checkpoint>(&mut schemas);
    add::<queue::CheckpointList>(&mut schemas);
    add::<tail::TailFrame>(&mut schemas);
    add::<es::BulkAnswer>(&mut schemas);
    add::<es::EsInfo>(&mut schemas);
    add::<es::EsLicense>(&mut schemas);
    add::<es::EsXpack>(&mut schemas);
    add::<es::EsIndices>(&mut schemas);
    add::<es::EsAcknowledged>(&mut schemas);
    add::<es::EsClusterHealth>(&mut schemas);
    add::<es_search::EsSearchAnswer>(&mut schemas);
    add::<es_search::EsMsearchAnswer>(&mut schemas);
    add::<es_search::EsMapping>(&mut schemas);
    add::<es_search::EsFieldCaps>(&mut schemas);
    add::<es_search::EsErrorAnswer>(&mut schemas);
    add::<es_search::EsReadError>(&mut schemas);
    add::<shippers::OtlpExportAnswer>(&mut schemas);
    add::<shippers::OtlpErrorAnswer>(&mut schemas);
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

/// What each error status means; the `code` of the envelope says which case.
fn error_description(status: u16) -> &'static str {
    match status {
        400 => "A parameter, a path segment or the body is wrong; `field` (or `parameter`) names it.",
        401 => "No key, or one that is unknown, wrong, disabled or deleted (`WWW-Authenticate: Bearer`).",
        403 => "The key's role or project scope does not allow the request (`forbidden`); a \
                write into a project over its storage quota (`quota_exceeded`).",
        404 => "The named tenant, project, pool or object does not exist.",
        408 => "`wait_for` ran out before the write was searchable (`wait_timeout`, with \
                `Retry-After` and what is still pending); retrying is safe.",
        409 => "The object exists already or the change conflicts with its state; for \
                PutDatas, another attempt with the same `Idempotency-Key` is in progress \
                (with `Retry-After`).",
        410 => "The data at `cursor` was removed by retention; go on from `earliest_cursor`.",
        413 => "A size limit (body, records, fields, value); `limit` names it.",
        415 => "The body's `Content-Type` or `Content-Encoding` is not accepted.",
        429 => "A rate or concurrency limit of the tenant or project, or too many failed \
                authentications from the client's address; `Retry-After` says when to retry.",
        500 => "A bug or an unexpected engine failure.",
        503 => "An engine the request needs cannot serve now, or the listener is at its \
                connection cap; `Retry-After` says when to retry.",
        _ => "An error.",
    }
}

/// The error statuses of a route: those of every route of its kind (and 415 for
/// one with a JSON body, refused without `Content-Type: application/json`), and its
/// own.
fn error_statuses(public: bool, json_body: bool, own: &[u16]) -> Vec<u16> {
    let common: &[u16] = if public {
        &[503]
    } else {
        &[400, 401, 403, 404, 429, 500, 503]
    };
    let body: &[u16] = if json_body { &[415] } else { &[] };
    let mut statuses: Vec<u16> = common.iter().chain(body).chain(own).copied().collect();
    statuses.sort_unstable();
    statuses.dedup();
    statuses
}

fn json_response(status: u16, schema: &str) -> utoipa::openapi::Response {
    let description = match status {
        201 => "Created.",
        202 => "Started.",
        _ => "OK.",
    };
    ResponseBuilder::new()
        .description(description)
        .content("application/json", json_content(schema))
        .build()
}

fn operation(route: &Route) -> utoipa::openapi::path::Operation {
    let shape = shape(&route.method, &route.path);
    let mut responses = ResponsesBuilder::new();
    responses = match shape.answer {
        Answer::Json(status, schema) => {
            responses.response(status.to_string(), json_response(status, schema))
        }
        Answer::Started(schema) => responses
            .response("202", json_response(202, schema))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("The same request was made before: that one, running or done.")
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
        Answer::AnyJson(description) => responses.response(
            "200",
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
    let json_body = matches!(shape.body, Some(Body::Json(_)));
    for status in error_statuses(public, json_body, shape.errors) {
        let response = ResponseBuilder::new().description(error_description(status));
        let response = match shape.protocol_errors {
            // The handler answers in the protocol's shape; the key check before it
            // answers the envelope (`OtlpErrorAnswer` is either; Loki's text is not
            // described).
            Some(media) => media.iter().fold(response, |response, (media, schema)| {
                let content = match schema {
                    Some(schema) => json_content(schema),
                    None => ContentBuilder::new().build(),
                };
                response.content(*media, content)
            }),
            None => response.content("application/json", json_content("ErrorBody")),
        };
        responses = responses.response(status.to_string(), response);
    }
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
    match shape.body {
        Some(Body::Json(schema)) => {
            builder = builder.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content("application/json", json_content(schema))
                    .build(),
            ));
        }
        Some(Body::Records(schema)) => {
            builder = builder.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .description(Some(
                        "The records: a JSON object (or a bare array of records), or one \
                         record object per NDJSON line; `Content-Encoding: gzip` or `zstd` \
                         optional.",
                    ))
                    .content("application/json", json_content(schema))
                    .content(
                        "application/x-ndjson",
                        ContentBuilder::new().schema(Some(string())).build(),
                    )
                    .build(),
            ));
        }
        Some(Body::Bulk) => {
            builder = builder.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .description(Some(
                        "NDJSON: an action line (`{\"index\": {\"_index\": \"shop.web\"}}`, \
                         or `create`) then the document on the next line, for each item; \
                         `Content-Encoding: gzip` or `zstd` optional.",
                    ))
                    .content(
                        "application/x-ndjson",
                        ContentBuilder::new().schema(Some(string())).build(),
                    )
                    .build(),
            ));
        }
        Some(Body::Protocol(media)) => {
            let body = media.iter().fold(
                RequestBodyBuilder::new().required(Some(Required::True)),
                |body, (media, description)| {
                    body.content(
                        *media,
                        ContentBuilder::new()
                            .schema(Some::<Schema>(
                                ObjectBuilder::new().description(Some(*description)).into(),
                            ))
                            .build(),
                    )
                },
            );
            builder = builder.request_body(Some(body.build()));
        }
        None => {}
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
    // `/es/` and `/es` are both served (clients differ); their ids must differ.
    if route.path.len() > 1 && route.path.ends_with('/') {
        id.push_str("_slash");
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
                    .description(Some(
                        "An API key as `Authorization: Bearer <key>`; for log shippers also \
                         as `Authorization: ApiKey <key>` or as the Basic auth password \
                         (any user name).",
                    ))
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
