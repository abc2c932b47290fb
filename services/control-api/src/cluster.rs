//! `GET /v1/cluster/members`: the service processes running now, as registered with
//! the coordinator (etcd in distributed mode; in standalone mode the one process,
//! once per service it runs).

use axum::extract::State;
use axum::Json;
use logpool_api::{ApiError, Routes};
use logpool_core::access::Permission;
use logpool_engines::coordination::MemberInfo;
use serde_json::{json, Value};

use crate::{format_ms, ControlState};

pub(crate) fn routes() -> Routes<ControlState> {
    Routes::new().get("/v1/cluster/members", Permission::Operate, list_members)
}

fn member_json(member: &MemberInfo) -> Value {
    json!({
        "service": member.service,
        "id": member.id,
        "address": member.address,
        "version": member.version,
        "started_at": format_ms(member.started_at_ms),
    })
}

async fn list_members(State(state): State<ControlState>) -> Result<Json<Value>, ApiError> {
    let members = state.coordinator.members().await?;
    let members: Vec<Value> = members.iter().map(member_json).collect();
    Ok(Json(json!({ "members": members })))
}
