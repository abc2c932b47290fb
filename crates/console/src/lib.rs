//! The web console: a single-page application of plain ES modules (no build step,
//! no framework, nothing fetched from the internet at run time), built into the
//! binary and served at `/` by control-api and by `logpool standalone`.
//!
//! The console talks only to the public `/v1` API, with the API key the user logged
//! in with (checked with `GET /v1/whoami`) as a bearer token, and as a subprotocol
//! entry of the live tail's WebSocket, since browsers cannot set headers there (never
//! in a URL). The key lives in the page's memory, and in the tab's session storage
//! only when the user chooses to stay logged in for the tab: it is never put into the
//! page's URL, local storage or a cookie, so closing the tab (or logging out) ends the
//! session.
//!
//! Charts are drawn by uPlot (MIT), vendored unchanged as `assets/vendor/` with its
//! license, served beside the console's own files: about 53 kB of the binary.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// Every file of the console. `index.html` is served at `/`, the rest under `/console/`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../assets/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/api.js"),
    },
    Asset {
        name: "charts.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/charts.js"),
    },
    Asset {
        name: "ui.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/ui.js"),
    },
    Asset {
        name: "projects.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/projects.js"),
    },
    Asset {
        name: "saved.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/saved.js"),
    },
    Asset {
        name: "export.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/export.js"),
    },
    Asset {
        name: "admin.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/admin.js"),
    },
    Asset {
        name: "pages.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/pages.js"),
    },
    Asset {
        name: "format.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/format.js"),
    },
    Asset {
        name: "results.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/results.js"),
    },
    Asset {
        name: "patterns.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/patterns.js"),
    },
    Asset {
        name: "fieldlist.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/fieldlist.js"),
    },
    Asset {
        name: "queryhelp.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/queryhelp.js"),
    },
    Asset {
        name: "dashboards.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/dashboards.js"),
    },
    Asset {
        name: "dashgrid.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/dashgrid.js"),
    },
    Asset {
        name: "dashpanels.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/dashpanels.js"),
    },
    Asset {
        name: "dashedit.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/dashedit.js"),
    },
    Asset {
        name: "alerts.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/alerts.js"),
    },
    Asset {
        name: "alertchannels.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/alertchannels.js"),
    },
    Asset {
        name: "uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/vendor/uPlot.iife.min.js"),
    },
    Asset {
        name: "uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../assets/vendor/uPlot.min.css"),
    },
    Asset {
        name: "uPlot.LICENSE.txt",
        content_type: "text/plain; charset=utf-8",
        body: include_str!("../assets/vendor/uPlot.LICENSE"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../assets/style.css"),
    },
];

/// Only this origin's scripts, styles and connections: the console must work with
/// nothing from elsewhere, and this keeps an injected record from loading anything.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The console's routes: `/` and `/console/{file}`.
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/console/{file}", get(asset))
}

/// `/`: the console's page.
pub async fn index() -> Response {
    serve("index.html")
}

/// `/console/{file}`: one of the console's files.
pub async fn asset(Path(file): Path<String>) -> Response {
    serve(&file)
}

fn serve(name: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such console file").into_response();
    };
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // Assets change with the binary; revalidating is cheap on a console.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn get_path(path: &str) -> Response {
        router()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("response")
    }

    #[tokio::test]
    async fn test_index_and_assets_are_served_with_their_types_and_policy() {
        let index = get_path("/").await;
        assert_eq!(index.status(), StatusCode::OK);
        assert_eq!(
            index.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(index
            .headers()
            .contains_key(header::CONTENT_SECURITY_POLICY));
        for asset in ASSETS.iter().filter(|a| a.name != "index.html") {
            let response = get_path(&format!("/console/{}", asset.name)).await;
            assert_eq!(response.status(), StatusCode::OK, "{}", asset.name);
            assert_eq!(response.headers()[header::CONTENT_TYPE], asset.content_type);
        }
        assert_eq!(
            get_path("/console/../Cargo.toml").await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get_path("/console/nope.js").await.status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn test_every_module_the_page_imports_is_embedded() {
        // A module imported but not listed would 404 in the browser only.
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for line in asset.body.lines().filter(|l| l.starts_with("import ")) {
                let Some(start) = line.find("'./") else {
                    continue;
                };
                let rest = &line[start + 3..];
                let name = &rest[..rest.find('\'').expect("closing quote")];
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "{} imports {name}, which is not embedded",
                    asset.name
                );
            }
        }
    }
}
