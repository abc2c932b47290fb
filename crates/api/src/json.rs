//! A JSON extractor whose rejections are [`ApiError`]s naming the problem.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ApiError, ErrorCode};

/// Like `axum::Json`, but bad bodies get the logpool error format.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<T, S> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(AppJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "expected `Content-Type: application/json`",
        ),
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::bad_request(format!("malformed JSON: {}", e.body_text()))
        }
        JsonRejection::JsonDataError(e) => {
            ApiError::bad_request(format!("invalid JSON body: {}", e.body_text()))
        }
        other => ApiError::bad_request(other.body_text()),
    }
}

/// Like `axum::extract::Query`, but a bad query string gets the logpool error format
/// naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(AppQuery(value)),
            Err(rejection) => Err(ApiError::bad_request(format!(
                "invalid query string: {}",
                rejection
                    .body_text()
                    .trim_start_matches("Failed to deserialize query string: ")
            ))),
        }
    }
}

/// Parameters that a GET takes from the query string and a POST from a JSON body,
/// under the same names: one handler serves both methods (search, histogram, field
/// summaries), so the two cannot drift apart.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppParams<T>(pub T);

impl<T, S> FromRequest<S> for AppParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let method = request.method();
        if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
            let (mut parts, _body) = request.into_parts();
            let AppQuery(value) = AppQuery::<T>::from_request_parts(&mut parts, state).await?;
            Ok(AppParams(value))
        } else {
            let AppJson(value) = AppJson::<T>::from_request(request, state).await?;
            Ok(AppParams(value))
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use axum::routing::on;
    use axum::routing::MethodFilter;
    use axum::Router;
    use serde::Deserialize;
    use tower::ServiceExt;

    use super::AppParams;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Params {
        query: Option<String>,
        limit: Option<u32>,
    }

    async fn echo(AppParams(params): AppParams<Params>) -> String {
        format!("{:?} {:?}", params.query, params.limit)
    }

    async fn call(request: Request<Body>) -> (StatusCode, String) {
        let app = Router::new().route("/p", on(MethodFilter::GET.or(MethodFilter::POST), echo));
        let answer = app.oneshot(request).await.expect("answer");
        let status = answer.status();
        let body = axum::body::to_bytes(answer.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn post(content_type: Option<&str>, body: &str) -> Request<Body> {
        let mut request = Request::post("/p");
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        request.body(Body::from(body.to_string())).expect("request")
    }

    #[tokio::test]
    async fn get_reads_the_query_string_and_post_the_json_body() {
        let get = Request::get("/p?query=a%20b&limit=5")
            .body(Body::empty())
            .expect("request");
        assert_eq!(
            call(get).await,
            (StatusCode::OK, "Some(\"a b\") Some(5)".into())
        );
        let body = r#"{"query": "a b", "limit": 5}"#;
        let posted = call(post(Some("application/json"), body)).await;
        assert_eq!(posted, (StatusCode::OK, "Some(\"a b\") Some(5)".into()));
    }

    #[tokio::test]
    async fn each_method_refuses_in_the_error_format() {
        let get = Request::get("/p?limit=many")
            .body(Body::empty())
            .expect("request");
        let (status, body) = call(get).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body.contains("invalid query string") && body.contains("limit"),
            "{body}"
        );
        let (status, body) = call(post(Some("application/json"), r#"{"nope": 1}"#)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body.contains("invalid JSON body") && body.contains("nope"),
            "{body}"
        );
        let (status, body) = call(post(None, r#"{"limit": 1}"#)).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    }
}
