//! HTTP plumbing shared by the logpool services.
//!
//! - [`auth`]: API keys, roles and scopes: every route declares its permission.
//! - [`path_params`]: every path parameter checked by its name before a handler.
//! - [`error`]: `ApiError`, the one table from error codes to HTTP statuses, and the
//!   `{ "error": { "code", "message" } }` body.
//! - [`layers`]: middleware every service router gets.
//! - [`quota`]: token buckets for the per-tenant and per-project rate quotas.
//! - [`metrics`]: `/metrics` in the Prometheus text format.
//! - [`members`]: what a service registers about itself as a cluster member.
//! - [`json`]: the `AppJson` extractor whose rejections use that body.
//! - [`routing`]: the live routing view every service resolves pools with.
//! - [`health`]: `/healthz` and `/readyz`, with each service's readiness.
//! - [`jobs`]: the runner of background jobs (periodic, leader-gated, workers).
//! - [`node`]: the node assembly: the services of one process, their engines,
//!   start and ordered shutdown.
//! - [`process`]: the open-file limit and file modes every server process sets.
//! - [`server`]: the one HTTP(S) server of every listener, with its connection
//!   limits and timeouts.
//! - [`service_main`]: configuration loading for the per-service binaries.
//! - [`stop`]: the stop request of a shutdown phase.
//! - [`throttle`]: failed authentications counted per client address.
//! - [`time`]: the clock, in one place so that tests and services agree.
//! - [`tls`]: HTTPS on the listeners when `[tls]` is configured.

pub mod auth;
pub mod error;
pub mod field_type;
pub mod health;
pub mod jobs;
pub mod json;
pub mod layers;
pub mod members;
pub mod metrics;
pub mod node;
pub mod openapi;
pub mod path_params;
pub mod process;
pub mod quota;
pub mod routing;
pub mod server;
pub mod service_main;
pub mod stop;
pub mod throttle;
pub mod time;
pub mod tls;
pub mod ws_key;

pub use auth::{Principal, Routes};
pub use error::{ApiError, ErrorCode};
pub use json::{AppJson, AppParams, AppQuery};
pub use routing::RoutingView;
