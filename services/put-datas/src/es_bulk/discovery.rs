//! The calls shippers make before they send: the version at `GET /es/`, licence
//! and X-Pack checks (Beats, Logstash), cluster health (Vector), whether an index exists, and index
//! templates (Beats and Logstash check for theirs and install it when missing;
//! logpool has no mappings to install, so a template is reported present and an
//! installed one is acknowledged and ignored).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use logpool_api::{ApiError, Principal};
use logpool_wire::es::{
    EsAcknowledged, EsClusterHealth, EsIndex, EsIndices, EsInfo, EsLicense, EsLicenseBody,
    EsVersion, EsXpack, ES_VERSION,
};

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
            build_flavor: "default".to_string(),
            build_type: "logpool".to_string(),
            lucene_version: "8.7.0".to_string(),
            minimum_index_compatibility_version: "6.0.0-beta1".to_string(),
            minimum_wire_compatibility_version: "6.8.0".to_string(),
            number: ES_VERSION.to_string(),
        },
    })
}

fn basic_license() -> EsLicenseBody {
    EsLicenseBody {
        status: "active".to_string(),
        kind: "basic".to_string(),
        mode: "basic".to_string(),
        uid: CLUSTER_UUID.to_string(),
    }
}

/// `GET /es/_license`.
pub async fn license() -> Json<EsLicense> {
    Json(EsLicense {
        license: basic_license(),
    })
}

/// `GET /es/_xpack`: no features, so Beats and Logstash leave ILM alone.
pub async fn xpack() -> Json<EsXpack> {
    Json(EsXpack {
        build: serde_json::Map::new(),
        features: serde_json::Map::new(),
        license: basic_license(),
    })
}

/// `GET /es/_cluster/health`: green, as this answer comes from a serving put-datas.
pub async fn cluster_health() -> Json<EsClusterHealth> {
    Json(EsClusterHealth {
        cluster_name: "logpool".to_string(),
        number_of_data_nodes: 1,
        number_of_nodes: 1,
        status: "green".to_string(),
        timed_out: false,
    })
}

/// `GET` (and `HEAD`) `/es/{index}`: 200 when the index names a pool the key may
/// write to, else 404.
pub async fn index_exists(
    State(state): State<PutDatasState>,
    principal: Principal,
    Path(index): Path<String>,
) -> Result<Json<EsIndices>, ApiError> {
    let name = pool_of_index(&index)
        .map_err(|reason| ApiError::not_found(format!("no such index `{index}`: {reason}")))?;
    if !principal.may_see_project(&name.project) {
        return Err(ApiError::forbidden(format!(
            "this key is limited to another project than `{}`",
            name.project
        )));
    }
    state
        .routing
        .pool(&principal.tenant, &name.project, &name.pool)?;
    Ok(named(index))
}

fn named(name: String) -> Json<EsIndices> {
    Json(EsIndices(BTreeMap::from([(name, EsIndex::default())])))
}

/// `GET` (and `HEAD`) `/es/_template/{name}` and `/es/_index_template/{name}`.
pub async fn template(Path(name): Path<String>) -> Json<EsIndices> {
    named(name)
}

/// `PUT /es/_template/{name}` and `/es/_index_template/{name}`: acknowledged, not
/// kept (fields are typed by the pool, not by a template).
pub async fn put_template(Path(_name): Path<String>) -> Json<EsAcknowledged> {
    Json(EsAcknowledged { acknowledged: true })
}
