//! The routing snapshot: every pool and the queue partitions it owns.
//!
//! control-api builds a snapshot from the metadata store after every change and
//! publishes it through the coordinator; every other service routes by the latest
//! snapshot it has seen, which is why a new pool is usable without a restart.

use crate::pool_id::PoolId;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ingest::window::EventWindowOverride;

/// The tenant used until tenants and keys arrive.
pub const DEFAULT_TENANT: &str = "default";

/// Declared type of a field (a hint; the full type system lives in the query engine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Tokenised full text.
    Text,
    /// Exact string.
    Keyword,
    /// 64-bit integer.
    Long,
    /// 64-bit float.
    Double,
    /// Boolean.
    Bool,
    /// IP address.
    Ip,
    /// A time.
    Timestamp,
}

impl FieldType {
    /// Every type, in declaration order.
    pub const ALL: [FieldType; 7] = [
        FieldType::Text,
        FieldType::Keyword,
        FieldType::Long,
        FieldType::Double,
        FieldType::Bool,
        FieldType::Ip,
        FieldType::Timestamp,
    ];

    /// The type's name as the API, the config and the metadata store write it.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Keyword => "keyword",
            FieldType::Long => "long",
            FieldType::Double => "double",
            FieldType::Bool => "bool",
            FieldType::Ip => "ip",
            FieldType::Timestamp => "timestamp",
        }
    }
}

/// One queue partition: the unit of order and parallelism.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShardAddr {
    /// Tenant that owns the project.
    pub tenant: String,
    /// Project name: one topic family per project.
    pub project: String,
    /// Partition number inside the project's topic family.
    pub partition: u32,
}

/// Everything a service needs to know about one pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRoute {
    /// Stable pool id (never reused, so a re-created pool never sees old data).
    pub pool_id: PoolId,
    /// Owning tenant.
    pub tenant: String,
    /// Owning project.
    pub project: String,
    /// Pool name.
    pub name: String,
    /// Queue partitions owned by the pool, in shard order.
    pub partitions: Vec<u32>,
    /// Days of data kept in the index.
    pub retention_days: u32,
    /// Declared field types.
    pub field_hints: BTreeMap<String, FieldType>,
    /// The pool's own event-time window settings (absent in routes published
    /// before they existed).
    #[serde(default)]
    pub event_window: EventWindowOverride,
    /// Types the pool learned from the first value of each field without a hint,
    /// fixed in the metadata store by the first writer (see
    /// [`crate::field_types`]). Every reader (index, search, tail, alerts) types
    /// values with [`PoolRoute::field_types`], so they all agree.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub learned_types: BTreeMap<String, FieldType>,
}

impl PoolRoute {
    /// The types the pool indexes and searches with: the learned types overlaid by
    /// the hints, so a hint always wins.
    pub fn field_types(&self) -> BTreeMap<String, FieldType> {
        crate::field_types::effective_types(&self.field_hints, &self.learned_types)
    }

    /// Returns the queue address of shard `shard_index` of this pool.
    pub fn shard_addr(&self, shard_index: usize) -> Option<ShardAddr> {
        self.partitions.get(shard_index).map(|partition| ShardAddr {
            tenant: self.tenant.clone(),
            project: self.project.clone(),
            partition: *partition,
        })
    }

    /// Returns the queue addresses of all shards of this pool.
    pub fn shard_addrs(&self) -> Vec<ShardAddr> {
        (0..self.partitions.len())
            .filter_map(|i| self.shard_addr(i))
            .collect()
    }

    /// Returns the shard index (0-based, within the pool) of a queue partition.
    pub fn shard_index_of(&self, partition: u32) -> Option<usize> {
        self.partitions.iter().position(|p| *p == partition)
    }
}

/// A versioned view of all pools.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingSnapshot {
    /// Increases with every published change.
    pub version: u64,
    /// All pools of all projects.
    pub pools: Vec<PoolRoute>,
    /// Archive settings by pool id (pools without settings are not archived).
    #[serde(default)]
    pub archives: BTreeMap<PoolId, crate::archive::ArchiveSettings>,
    /// Tenants, keys (hashed) and quotas.
    #[serde(default)]
    pub access: crate::access::AccessTable,
}

impl RoutingSnapshot {
    /// Finds a pool by tenant, project and name.
    pub fn pool(&self, tenant: &str, project: &str, pool: &str) -> Option<&PoolRoute> {
        self.pools
            .iter()
            .find(|p| p.tenant == tenant && p.project == project && p.name == pool)
    }

    /// Finds a pool by id.
    pub fn pool_by_id(&self, pool_id: PoolId) -> Option<&PoolRoute> {
        self.pools.iter().find(|p| p.pool_id == pool_id)
    }

    /// Finds the pool that owns a queue partition.
    pub fn pool_of_shard(&self, shard: &ShardAddr) -> Option<&PoolRoute> {
        self.pools.iter().find(|p| {
            p.tenant == shard.tenant
                && p.project == shard.project
                && p.partitions.contains(&shard.partition)
        })
    }

    /// Returns the archive settings of a pool when its archive is enabled.
    pub fn archive_of(&self, pool_id: PoolId) -> Option<&crate::archive::ArchiveSettings> {
        self.archives
            .get(&pool_id)
            .filter(|settings| settings.enabled)
    }

    /// Returns every shard of every pool.
    pub fn all_shards(&self) -> Vec<ShardAddr> {
        self.pools.iter().flat_map(PoolRoute::shard_addrs).collect()
    }
}
