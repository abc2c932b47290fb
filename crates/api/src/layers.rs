//! Middleware shared by every service.

use std::any::Any;

use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;

/// Adds the layers every service router gets: a panic in a handler (a bug, or one
/// in an engine library) becomes a 500 in the logpool error format and is logged,
/// instead of a dropped connection.
pub fn with_common_layers(router: Router) -> Router {
    router.layer(CatchPanicLayer::custom(panic_response))
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::internal(format!("handler panicked: {detail}")).into_response()
}
