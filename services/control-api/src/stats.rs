//! `/v1/projects/{project}/pools/{pool}/stats`: what a pool holds and how far its
//! consumers are behind, for the console's projects page and for operators.
//!
//! Every number is read live from the queue and the index; nothing is cached, so
//! the answer costs one backlog call per subscription, one match-all count and one
//! storage size.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use logpool_api::Principal;
use logpool_api::{ApiError, Routes};
use logpool_core::access::Permission;
use logpool_core::query::Query;
use logpool_core::routing::PoolRoute;
use logpool_engines::index::SearchRequest;
use logpool_engines::metadata::PoolRef;
use logpool_engines::queue::ShardBacklog;
use logpool_wire::stats::{Backlog, Lag, PoolStats, ShardStats};

use crate::ControlState;

/// The loghub indexers' subscription (the same name loghub subscribes with).
pub const INDEX_SUBSCRIPTION: &str = "loghub";
/// The archivers' subscription, present only while the pool's archive is enabled.
pub const ARCHIVE_SUBSCRIPTION: &str = "archive";

pub(crate) fn routes() -> Routes<ControlState> {
    Routes::new().get(
        "/v1/projects/{project}/pools/{pool}/stats",
        Permission::Read,
        pool_stats,
    )
}

async fn pool_stats(
    State(state): State<ControlState>,
    principal: Principal,
    Path((project, pool)): Path<(String, String)>,
) -> Result<Json<PoolStats>, ApiError> {
    let stored = state
        .metadata
        .get_pool(&PoolRef::new(&principal.tenant, &project, &pool))
        .await?;
    let route = stored.route();
    let archived = state
        .metadata
        .get_archive_settings(&PoolRef::new(&principal.tenant, &project, &pool))
        .await?
        .is_some_and(|settings| settings.enabled);
    let mut subscriptions = vec![INDEX_SUBSCRIPTION];
    if archived {
        subscriptions.push(ARCHIVE_SUBSCRIPTION);
    }
    let addrs = route.shard_addrs();
    let mut backlogs = Vec::with_capacity(subscriptions.len());
    for subscription in &subscriptions {
        backlogs.push((
            *subscription,
            state.queue.backlog(subscription, &addrs).await?,
        ));
    }
    let indexed = indexed_records(&state, &route).await?;
    let storage_bytes = state.index.storage_bytes(&route).await?;
    let mut stats = stats_of(&backlogs, &indexed, now_ns());
    stats.storage_bytes = storage_bytes;
    Ok(Json(stats))
}

/// What the index holds for a pool.
struct Indexed {
    records: u64,
    /// Event time of the newest indexed record, in nanoseconds.
    newest_time_ns: Option<i64>,
}

/// Counts every record of the pool over all time with a one-hit match-all search:
/// the total comes with the page, and the one hit is the newest record.
async fn indexed_records(state: &ControlState, route: &PoolRoute) -> Result<Indexed, ApiError> {
    let request = SearchRequest {
        query: Query::All,
        from_ns: i64::MIN,
        to_ns: i64::MAX,
        limit: 1,
        after: None,
        order: logpool_engines::index::SortOrder::Desc,
        // One hit: bounded by the limit.
        memory: logpool_core::memory::RequestMemory::unlimited(),
    };
    let page = state.index.search(route, &request).await?;
    Ok(Indexed {
        records: page.total,
        newest_time_ns: page.hits.first().map(|hit| hit.time_ns),
    })
}

fn now_ns() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_nanos()).unwrap_or(i64::MAX)
}

/// The stats of a pool but its storage, which the caller measures.
fn stats_of(backlogs: &[(&str, Vec<ShardBacklog>)], indexed: &Indexed, now_ns: i64) -> PoolStats {
    let shard_count = backlogs.first().map_or(0, |(_, shards)| shards.len());
    let mut shards = Vec::with_capacity(shard_count);
    for index in 0..shard_count {
        let mut per_subscription = BTreeMap::new();
        let mut end_position = 0;
        for (subscription, shard_backlogs) in backlogs {
            if let Some(backlog) = shard_backlogs.get(index) {
                end_position = backlog.end_position;
                per_subscription.insert(
                    (*subscription).to_string(),
                    Backlog {
                        bytes: backlog.bytes,
                        messages: backlog.messages,
                    },
                );
            }
        }
        shards.push(ShardStats {
            backlog: per_subscription,
            end_position,
            shard: index,
        });
    }
    let mut totals = BTreeMap::new();
    for (subscription, shard_backlogs) in backlogs {
        let messages: u64 = shard_backlogs.iter().map(|b| b.messages).sum();
        let bytes: u64 = shard_backlogs.iter().map(|b| b.bytes).sum();
        totals.insert((*subscription).to_string(), Backlog { bytes, messages });
    }
    let index_backlog = backlogs
        .iter()
        .find(|(subscription, _)| *subscription == INDEX_SUBSCRIPTION)
        .map_or(0, |(_, shards)| {
            shards.iter().map(|b| b.messages).sum::<u64>()
        });
    let newest = indexed.newest_time_ns;
    PoolStats {
        backlog: totals,
        lag: Lag {
            newest_record_age_ms: newest.map(|t| now_ns.saturating_sub(t) / 1_000_000),
            newest_record_time: newest.map(logpool_core::record::format_time_ns),
            unindexed_messages: index_backlog,
        },
        records: indexed.records,
        shards,
        storage_bytes: 0,
    }
}

#[cfg(test)]
mod tests {
    use logpool_core::routing::ShardAddr;

    use super::*;

    fn backlog(partition: u32, messages: u64, end_position: u64) -> ShardBacklog {
        ShardBacklog {
            shard: ShardAddr {
                tenant: "t".into(),
                project: "p".into(),
                partition,
            },
            messages,
            bytes: messages * 10,
            end_position,
        }
    }

    #[test]
    fn test_stats_sum_subscriptions_per_shard_and_in_total() {
        let backlogs = [
            (INDEX_SUBSCRIPTION, vec![backlog(0, 2, 5), backlog(1, 0, 7)]),
            (
                ARCHIVE_SUBSCRIPTION,
                vec![backlog(0, 5, 5), backlog(1, 1, 7)],
            ),
        ];
        let indexed = Indexed {
            records: 10,
            newest_time_ns: Some(1_000_000_000),
        };
        let stats =
            serde_json::to_value(stats_of(&backlogs, &indexed, 3_000_000_000)).expect("json");
        assert_eq!(stats["records"], 10);
        assert_eq!(stats["backlog"]["loghub"]["messages"], 2);
        assert_eq!(stats["backlog"]["archive"]["messages"], 6);
        assert_eq!(stats["backlog"]["archive"]["bytes"], 60);
        assert_eq!(stats["shards"][1]["end_position"], 7);
        assert_eq!(stats["shards"][0]["backlog"]["archive"]["messages"], 5);
        assert_eq!(stats["lag"]["unindexed_messages"], 2);
        assert_eq!(stats["lag"]["newest_record_age_ms"], 2000);
    }

    #[test]
    fn test_stats_of_an_empty_pool_has_no_newest_record() {
        let backlogs = [(INDEX_SUBSCRIPTION, vec![backlog(0, 0, 0)])];
        let indexed = Indexed {
            records: 0,
            newest_time_ns: None,
        };
        let stats = serde_json::to_value(stats_of(&backlogs, &indexed, 1)).expect("json");
        assert_eq!(stats["records"], 0);
        assert!(stats["lag"]["newest_record_time"].is_null());
        assert!(stats["backlog"].get("archive").is_none());
    }
}
