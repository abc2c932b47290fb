//! HTTP plumbing shared by the logpool services.
//!
//! - [`error`]: `ApiError`, the one table from error codes to HTTP statuses, and the
//!   `{ "error": { "code", "message" } }` body.
//! - [`layers`]: middleware every service router gets.
//! - [`metrics`]: `/metrics` in the Prometheus text format.
//! - [`members`]: what a service registers about itself as a cluster member.
//! - [`json`]: the `AppJson` extractor whose rejections use that body.
//! - [`routing`]: the live routing view every service resolves pools with.
//! - [`health`]: `/healthz` and `/readyz`.
//! - [`service_main`]: configuration loading for the per-service binaries.
//! - [`time`]: the clock, in one place so that tests and services agree.

pub mod error;
pub mod health;
pub mod json;
pub mod layers;
pub mod members;
pub mod metrics;
pub mod routing;
pub mod service_main;
pub mod time;

pub use error::{ApiError, ErrorCode};
pub use json::{AppJson, AppQuery};
pub use routing::RoutingView;
