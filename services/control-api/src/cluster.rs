//! `GET /v1/cluster/members`: the service processes running now, as registered with
//! the coordinator (etcd in distributed mode; in standalone mode the one process,
//! once per service it runs).

use axum::extract::State;
use axum::Json;
use logpool_api::{ApiError, Routes};
use logpool_core::access::Permission;
use logpool_engines::coordination::MemberInfo;
use logpool_wire::control::{Member, MemberList};

use crate::{format_ms, ControlState};

pub(crate) fn routes() -> Routes<ControlState> {
    Routes::new().get("/v1/cluster/members", Permission::Operate, list_members)
}

fn member_of(member: &MemberInfo) -> Member {
    Member {
        address: member.address.clone(),
        id: member.id.clone(),
        service: member.service.clone(),
        started_at: format_ms(member.started_at_ms),
        version: member.version.clone(),
    }
}

async fn list_members(State(state): State<ControlState>) -> Result<Json<MemberList>, ApiError> {
    let members = state.coordinator.members().await?;
    Ok(Json(MemberList {
        members: members.iter().map(member_of).collect(),
    }))
}
