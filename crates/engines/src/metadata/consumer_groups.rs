//! Consumer groups: named sets of programs that share the reading of a pool's shards.
//!
//! A group's members, shard owners and checkpoints live in the metadata store, so
//! every tail-ws process answers a heartbeat from the same state. A heartbeat runs
//! in one transaction that records the member, forgets members that have not sent
//! one for `timeout_s`, and rebalances the shards with [`rebalance`] (a pure
//! function, so both stores assign shards identically).

use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;
use serde::Serialize;

use super::{GroupRef, MetadataResult, PoolRef};

/// Fields of a new consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConsumerGroup {
    /// Name, unique per pool.
    pub name: String,
    /// A member that has not sent a heartbeat for this many seconds loses its shards.
    pub timeout_s: u32,
    /// When true, a shard only moves away from a member that stopped heart-beating,
    /// never from a live one, so no two live members ever process one shard.
    pub in_order: bool,
}

/// A stored consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerGroup {
    /// Database id.
    #[serde(skip)]
    pub id: i64,
    /// Name, unique per pool.
    pub name: String,
    /// Heartbeat timeout in seconds.
    pub timeout_s: u32,
    /// See [`NewConsumerGroup::in_order`].
    pub in_order: bool,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
}

/// The last position a group saved for one shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    /// Shard index in the pool.
    pub shard: u32,
    /// The saved cursor (opaque to the store).
    pub cursor: String,
    /// When it was saved, ms since the epoch.
    pub updated_at_ms: i64,
}

/// Consumer groups of pools: members, shard owners and checkpoints.
#[async_trait]
pub trait ConsumerGroupStore: Send + Sync + Debug + 'static {
    /// Creates a consumer group of a pool. Deleting the pool deletes its groups.
    async fn create_consumer_group(
        &self,
        pool: &PoolRef,
        group: NewConsumerGroup,
    ) -> MetadataResult<ConsumerGroup>;
    /// Lists a pool's consumer groups by name.
    async fn list_consumer_groups(&self, pool: &PoolRef) -> MetadataResult<Vec<ConsumerGroup>>;
    /// Deletes a consumer group with its members and checkpoints.
    async fn delete_consumer_group(&self, group: &GroupRef) -> MetadataResult<()>;
    /// Records a heartbeat of `consumer` at `now_ms`, forgets members silent for the
    /// group's timeout, rebalances ([`rebalance`]) and returns the
    /// shard indexes `consumer` owns now, ascending. One transaction, so concurrent
    /// heartbeats through different processes see one consistent assignment.
    async fn consumer_group_heartbeat(
        &self,
        group: &GroupRef,
        consumer: &str,
        now_ms: i64,
    ) -> MetadataResult<Vec<u32>>;
    /// Saves a group's checkpoint for one shard, replacing the previous one.
    async fn save_checkpoint(
        &self,
        group: &GroupRef,
        shard: u32,
        cursor: &str,
    ) -> MetadataResult<Checkpoint>;
    /// Lists a group's checkpoints by shard.
    async fn list_checkpoints(&self, group: &GroupRef) -> MetadataResult<Vec<Checkpoint>>;
}

/// Computes the shard owners of a group after a heartbeat.
///
/// `live` are the members that are still heart-beating; `owners` the current owners.
/// Shards of members that are gone (or beyond `num_shards`) are free. Unless
/// `in_order` is set, a member that owns more than its fair share (`num_shards / n`,
/// rounded up for the members that already own the most) gives up its highest shards.
/// Every free shard then goes to the member owning the fewest (ties by name). The
/// result only depends on its inputs, and shards stay with their owners when they can,
/// so a member's work is not moved around needlessly.
pub(crate) fn rebalance(
    num_shards: u32,
    live: &[String],
    owners: &BTreeMap<u32, String>,
    in_order: bool,
) -> BTreeMap<u32, String> {
    let mut assignment: BTreeMap<u32, String> = owners
        .iter()
        .filter(|(shard, owner)| **shard < num_shards && live.contains(owner))
        .map(|(shard, owner)| (*shard, owner.clone()))
        .collect();
    if live.is_empty() {
        return assignment;
    }
    let count_of = |assignment: &BTreeMap<u32, String>, member: &str| {
        assignment.values().filter(|owner| *owner == member).count()
    };
    if !in_order {
        let num_members = live.len();
        let base = num_shards as usize / num_members;
        let num_with_extra = num_shards as usize % num_members;
        let mut by_load: Vec<&String> = live.iter().collect();
        by_load.sort_by(|a, b| {
            count_of(&assignment, b)
                .cmp(&count_of(&assignment, a))
                .then_with(|| a.cmp(b))
        });
        for (rank, member) in by_load.into_iter().enumerate() {
            let quota = base + usize::from(rank < num_with_extra);
            let owned: Vec<u32> = assignment
                .iter()
                .filter(|(_, owner)| *owner == member)
                .map(|(shard, _)| *shard)
                .collect();
            for shard in owned.into_iter().skip(quota) {
                assignment.remove(&shard);
            }
        }
    }
    for shard in 0..num_shards {
        if assignment.contains_key(&shard) {
            continue;
        }
        let least_loaded = live
            .iter()
            .min_by(|a, b| {
                count_of(&assignment, a)
                    .cmp(&count_of(&assignment, b))
                    .then_with(|| a.cmp(b))
            })
            .cloned();
        if let Some(member) = least_loaded {
            assignment.insert(shard, member);
        }
    }
    assignment
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    fn shards_of(assignment: &BTreeMap<u32, String>, member: &str) -> Vec<u32> {
        assignment
            .iter()
            .filter(|(_, owner)| *owner == member)
            .map(|(shard, _)| *shard)
            .collect()
    }

    #[test]
    fn test_rebalance_splits_evenly_and_keeps_owners() {
        let one = rebalance(4, &members(&["a"]), &BTreeMap::new(), false);
        assert_eq!(shards_of(&one, "a"), [0, 1, 2, 3]);
        let two = rebalance(4, &members(&["a", "b"]), &one, false);
        assert_eq!(shards_of(&two, "a"), [0, 1], "a keeps its lowest shards");
        assert_eq!(shards_of(&two, "b"), [2, 3]);
        let three = rebalance(5, &members(&["a", "b", "c"]), &two, false);
        let loads: Vec<usize> = ["a", "b", "c"]
            .iter()
            .map(|member| shards_of(&three, member).len())
            .collect();
        assert_eq!(loads.iter().sum::<usize>(), 5);
        assert!(loads.iter().all(|load| (1..=2).contains(load)), "{loads:?}");
        // Stable: the same inputs give the same answer.
        assert_eq!(
            rebalance(5, &members(&["a", "b", "c"]), &three, false),
            three
        );
    }

    #[test]
    fn test_rebalance_hands_shards_of_gone_members_to_live_ones() {
        let two = rebalance(4, &members(&["a", "b"]), &BTreeMap::new(), false);
        let after = rebalance(4, &members(&["b"]), &two, false);
        assert_eq!(shards_of(&after, "b"), [0, 1, 2, 3]);
        assert!(rebalance(4, &[], &two, false).is_empty());
        // Shards beyond the pool's count are dropped.
        let shrunk = rebalance(2, &members(&["a", "b"]), &two, false);
        assert_eq!(shrunk.len(), 2);
    }

    #[test]
    fn test_in_order_never_moves_a_shard_from_a_live_member() {
        let one = rebalance(4, &members(&["a"]), &BTreeMap::new(), true);
        let two = rebalance(4, &members(&["a", "b"]), &one, true);
        assert_eq!(shards_of(&two, "a"), [0, 1, 2, 3]);
        assert!(shards_of(&two, "b").is_empty());
        let after = rebalance(4, &members(&["b"]), &two, true);
        assert_eq!(shards_of(&after, "b"), [0, 1, 2, 3]);
    }
}
