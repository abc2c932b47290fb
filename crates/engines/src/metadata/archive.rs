//! Archive settings of pools (where and how a pool's records are archived).

use logpool_core::pool_id::PoolId;
use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;
use logpool_core::archive::ArchiveSettings;

use super::{MetadataResult, PoolRef};

/// Archive settings, one set per pool.
#[async_trait]
pub trait ArchiveStore: Send + Sync + Debug + 'static {
    /// Stores a pool's archive settings, replacing earlier ones. Deleting the pool
    /// deletes them.
    async fn set_archive_settings(
        &self,
        pool: &PoolRef,
        settings: &ArchiveSettings,
    ) -> MetadataResult<()>;
    /// Returns a pool's archive settings, `None` when they were never set.
    async fn get_archive_settings(&self, pool: &PoolRef)
        -> MetadataResult<Option<ArchiveSettings>>;
    /// Returns the archive settings of every existing pool by pool id, for the
    /// routing snapshot.
    async fn all_archive_settings(&self) -> MetadataResult<BTreeMap<PoolId, ArchiveSettings>>;
}
