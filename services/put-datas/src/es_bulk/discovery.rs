//! The calls shippers make before they send: the version at `GET /es/`, licence
//! and X-Pack checks (Beats, Logstash), whether an index exists, and index
//! templates (Beats and Logstash check for theirs and install it when missing;
//! logpool has no mappings to install, so a template is reported present and an
//! installed one is acknowledged and ignored).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use logpool_api::{ApiError, Principal};
use logpool_wire::es::{EsInfo, EsLicense, EsLicenseBody, EsVersion, EsXpack, ES_VERSION};
use serde_json::json;

use super::index_name::pool_of_index;
use crate::PutDatasState;

/// Fixed id of the cluster, as clients only compare it between calls.
const CLUSTER_UUID: &str = "logpool-000000000000000000";

/// `GET /es/`.
pub async fn info() -> Json<EsInfo> {
    Json(EsInfo {
        cluster_name: "logpool".to_string(),
        cluster_uuid: CLUSTER_UUID.to_string(),
        name: "logpool".to_string(),
        tagline: "You Know, for Search".to_string(),
        version: EsVersion {
            build_flavor: "oss".to_string(),
            build_type: "logpool".to_string(),
            lucene_version: "8.7.0".to_string(),
            minimum_index_compatibility_version: "6.0.0-beta1".to_string(),
            minimum_wire_compatibility_version: "6.8.0".to_string(),
            number: ES_VERSION.to_string(),
        },
    })
}

fn oss_license() -> EsLicenseBody {
    EsLicenseBody {
        status: "active".to_string(),
        kind: "oss".to_string(),
        mode: "oss".to_string(),
        uid: CLUSTER_UUID.to_string(),
    }
}

/// `GET /es/_license`.
pub async fn license() -> Json<EsLicense> {
    Json(EsLicense {
        license: oss_license(),
    })
}

/// `GET /es/_xpack`: no features, so Beats and Logstash leave ILM alone.
pub async fn xpack() -> Json<EsXpack> {
    Json(EsXpack {
        build: serde_json::Map::new(),
        features: serde_json::Map::new(),
        license: oss_license(),
    })
}

/// `GET` (and `HEAD`) `/es/{index}`: 200 when the index names a pool the key may
/// write to, else Elasticsearch's 404 `index_not_found_exception`.
pub async fn index_exists(
    State(state): State<PutDatasState>,
    principal: Principal,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    let found = pool_of_index(&index).ok().filter(|name| {
        principal.may_see_project(&name.project)
            && state
                .routing
                .snapshot()
                .pool(&principal.tenant, &name.project, &name.pool)
                .is_some()
    });
    Ok(match found {
        Some(_) => Json(json!({
            index.clone(): {"aliases": {}, "mappings": {}, "settings": {}}
        }))
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({
                "error": {
                    "type": "index_not_found_exception",
                    "reason": format!(
                        "no such index [{index}]: an index is `{{project}}.{{pool}}` of an existing pool"
                    ),
                    "index": index,
                },
                "status": 404,
            })),
        )
            .into_response(),
    })
}

/// `GET` (and `HEAD`) `/es/_template/{name}` and `/es/_index_template/{name}`.
pub async fn template(Path(name): Path<String>) -> Json<serde_json::Value> {
    Json(json!({ name: {"index_patterns": [], "mappings": {}, "settings": {}} }))
}

/// `PUT /es/_template/{name}` and `/es/_index_template/{name}`: acknowledged, not
/// kept (fields are typed by the pool, not by a template).
pub async fn put_template(Path(_name): Path<String>) -> Json<serde_json::Value> {
    Json(json!({"acknowledged": true}))
}
