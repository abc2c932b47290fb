//! Cluster membership of a service process: what it registers about itself.
//!
//! Every service registers `{service}/{id}` with the coordinator for as long as it
//! runs (in distributed mode an etcd key under a lease that a crashed process loses
//! after the lease TTL), and leaves on a graceful shutdown. control-api lists them
//! at `GET /v1/cluster/members`.

use std::net::SocketAddr;

use anyhow::Context;
use logpool_engines::coordination::{Coordinator, MemberInfo, Membership};

/// The logpool version every member reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Describes this process as a member of `service`, serving on `listening`.
///
/// The id is the address others reach it at: `advertise_address` when configured,
/// else the listening address; a wildcard listening address (`0.0.0.0`) says nothing
/// about where the process is, so it gets a generated id that cannot collide with
/// another process's.
pub fn member_info(
    service: &str,
    advertise_address: Option<&str>,
    listening: SocketAddr,
) -> MemberInfo {
    let address = advertise_address.map_or_else(|| listening.to_string(), str::to_string);
    let id = if advertise_address.is_none() && listening.ip().is_unspecified() {
        generated_id(service, listening.port())
    } else {
        address.clone()
    };
    MemberInfo {
        service: service.to_string(),
        id,
        address,
        version: VERSION.to_string(),
        started_at_ms: crate::time::now_ns() / 1_000_000,
    }
}

/// `{service}-{port}-{pid}-{nanos}`: unique enough across hosts for a member list.
fn generated_id(service: &str, port: u16) -> String {
    let nanos = crate::time::now_ns().rem_euclid(1_000_000_000_000);
    format!("{service}-{port}-{}-{nanos:x}", std::process::id())
}

/// Registers this process as a member of `service`; the returned handle keeps the
/// entry alive until it leaves (at shutdown) or is dropped.
///
/// # Errors
/// Fails when the coordinator cannot register it.
pub async fn register(
    coordinator: &dyn Coordinator,
    service: &str,
    advertise_address: Option<&str>,
    listening: SocketAddr,
) -> anyhow::Result<Box<dyn Membership>> {
    let member = member_info(service, advertise_address, listening);
    let id = member.id.clone();
    let membership = coordinator
        .register(member)
        .await
        .with_context(|| format!("failed to register {service} member `{id}`"))?;
    tracing::info!(service, id = %id, "registered as a cluster member");
    Ok(membership)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_member_id_is_the_reachable_address() {
        let loopback: SocketAddr = "127.0.0.1:8081".parse().expect("addr");
        let member = member_info("put-datas", None, loopback);
        assert_eq!(member.id, "127.0.0.1:8081");
        assert_eq!(member.address, "127.0.0.1:8081");
        assert_eq!(member.version, VERSION);
        assert!(member.started_at_ms > 0);

        let wildcard: SocketAddr = "0.0.0.0:8081".parse().expect("addr");
        let advertised = member_info("put-datas", Some("10.0.0.5:8081"), wildcard);
        assert_eq!(advertised.id, "10.0.0.5:8081");
        let generated = member_info("put-datas", None, wildcard);
        assert!(
            generated.id.starts_with("put-datas-8081-"),
            "{}",
            generated.id
        );
        assert!(!generated.id.contains('/'));
        assert_eq!(generated.address, "0.0.0.0:8081");
    }
}
