//! `GET /v1/openapi.json`: the OpenAPI document of the whole API.
//!
//! The document is generated from the routes and the wire types and checked into
//! `docs/openapi.json` (a test fails when the two differ); every service serves that
//! same file, so a client may ask any of them.

use axum::http::header;
use axum::response::IntoResponse;

/// The checked-in document.
pub const OPENAPI_JSON: &str = include_str!("../../../docs/openapi.json");

/// Answers the document.
pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
