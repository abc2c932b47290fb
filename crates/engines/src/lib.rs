//! Engine roles of logpool behind object-safe traits, their implementations, the
//! configuration and the one composition root that turns configuration into engines.
//!
//! # Layout
//! - [`queue`]: [`queue::Queue`] — embedded durable log.
//! - [`index`]: [`index::LogIndex`] — tantivy, time-partitioned per pool.
//! - [`metadata`]: [`metadata::MetadataStore`] — SQLite.
//! - [`coordination`]: [`coordination::Coordinator`] — in-process watch.
//! - [`object_store`]: [`object_store::ObjectStore`] — local files.
//! - [`idempotency`]: [`idempotency::IdempotencyLedger`] — what PutDatas did per
//!   request key (SQLite file, or etcd).
//! - [`config`]: the `Config` struct.
//! - [`Engines`]: the composition root.
//!
//! Services only ever hold `Arc<dyn Trait>`; the distributed engines (Pulsar,
//! Elasticsearch, MySQL, etcd, S3) plug into the same traits.

pub mod config;
pub mod coordination;
pub mod idempotency;
pub mod index;
pub mod metadata;
pub mod object_store;
pub mod private_dir;
pub mod queue;
#[cfg(all(
    test,
    any(
        feature = "pulsar",
        feature = "elasticsearch",
        feature = "etcd",
        feature = "mysql",
        feature = "s3"
    )
))]
pub(crate) mod test_env;

use std::sync::Arc;

use anyhow::Context;

use crate::config::{
    Config, CoordinationConfig, IndexConfig, MetadataConfig, ObjectStoreConfig, QueueConfig,
};
use crate::coordination::{Coordinator, LocalCoordinator};
use crate::index::{LogIndex, TantivyIndex, TantivyIndexConfig};
use crate::metadata::{MetadataStore, SqliteMetadataConfig, SqliteMetadataStore};
use crate::object_store::{LocalFileObjectStore, LocalFileObjectStoreConfig, ObjectStore};
use crate::queue::{EmbeddedQueue, EmbeddedQueueConfig, Queue};

/// One handle per engine role, as the services see them.
#[derive(Debug, Clone)]
pub struct Engines {
    /// The queue.
    pub queue: Arc<dyn Queue>,
    /// The index.
    pub index: Arc<dyn LogIndex>,
    /// The metadata store.
    pub metadata: Arc<dyn MetadataStore>,
    /// The coordinator.
    pub coordinator: Arc<dyn Coordinator>,
    /// The object store.
    pub object_store: Arc<dyn ObjectStore>,
    /// What PutDatas did per request key.
    pub idempotency: Arc<dyn idempotency::IdempotencyLedger>,
    /// Held while these engines live: a second process on the same data directory
    /// would corrupt the embedded engines, so it is refused at start.
    pub data_dir_lock: Arc<DataDirLock>,
}

/// An exclusive lock on `{data_dir}/logpool.lock`, released when dropped (or when
/// the process dies, even by SIGKILL).
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
}

impl DataDirLock {
    /// Takes the lock.
    ///
    /// # Errors
    /// Fails when another process holds it.
    pub fn acquire(data_dir: &std::path::Path) -> anyhow::Result<DataDirLock> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = data_dir.join("logpool.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("failed to open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(DataDirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "another logpool process is using the data directory {}",
                data_dir.display()
            ),
            Err(std::fs::TryLockError::Error(error)) => {
                Err(error).with_context(|| format!("failed to lock {}", path.display()))
            }
        }
    }
}

impl Engines {
    /// Builds every engine the configuration names. This is the only place that
    /// names concrete engine types.
    ///
    /// # Errors
    /// Fails with context naming the engine that could not start.
    pub async fn build(config: &Config) -> anyhow::Result<Engines> {
        private_dir::create(&config.data_dir)?;
        let data_dir_lock = Arc::new(DataDirLock::acquire(&config.data_dir)?);
        let queue: Arc<dyn Queue> = match &config.queue {
            QueueConfig::Embedded(c) => {
                let c = EmbeddedQueueConfig {
                    dir: config.resolve(&c.dir),
                    ..c.clone()
                };
                Arc::new(
                    EmbeddedQueue::open(c)
                        .await
                        .context("failed to open the embedded queue")?,
                )
            }
            #[cfg(feature = "pulsar")]
            QueueConfig::Pulsar(c) => Arc::new(
                queue::pulsar::PulsarQueue::connect(c.clone())
                    .await
                    .with_context(|| format!("failed to connect to Pulsar at {}", c.url))?,
            ),
        };
        let index: Arc<dyn LogIndex> = match &config.index {
            IndexConfig::Tantivy(c) => {
                let c = TantivyIndexConfig {
                    dir: config.resolve(&c.dir),
                    ..c.clone()
                };
                Arc::new(TantivyIndex::open(c).context("failed to open the tantivy index")?)
            }
            #[cfg(feature = "elasticsearch")]
            IndexConfig::Elasticsearch(c) => Arc::new(
                index::elasticsearch::ElasticsearchIndex::connect(c.clone())
                    .with_context(|| format!("failed to set up Elasticsearch at {}", c.url))?,
            ),
        };
        let metadata: Arc<dyn MetadataStore> = match &config.metadata {
            MetadataConfig::Sqlite(c) => {
                let c = SqliteMetadataConfig {
                    path: config.resolve(&c.path),
                };
                let store = SqliteMetadataStore::open(&c)
                    .await
                    .context("failed to open the SQLite metadata store")?;
                // It holds the key hashes and the cursor signing key.
                private_dir::restrict_database_files(&c.path)?;
                Arc::new(store)
            }
            #[cfg(feature = "mysql")]
            MetadataConfig::Mysql(c) => Arc::new(
                metadata::mysql::MysqlMetadataStore::connect(c)
                    .await
                    .context("failed to open the MySQL metadata store")?,
            ),
        };
        let coordinator: Arc<dyn Coordinator> = match &config.coordination {
            CoordinationConfig::Local => Arc::new(LocalCoordinator::new()),
            #[cfg(feature = "etcd")]
            CoordinationConfig::Etcd(c) => Arc::new(
                coordination::etcd::EtcdCoordinator::connect(c.clone())
                    .await
                    .with_context(|| format!("failed to connect to etcd at {:?}", c.endpoints))?,
            ),
        };
        let object_store: Arc<dyn ObjectStore> = match &config.object_store {
            ObjectStoreConfig::LocalFile(c) => {
                let c = LocalFileObjectStoreConfig {
                    dir: config.resolve(&c.dir),
                };
                Arc::new(
                    LocalFileObjectStore::open(&c)
                        .context("failed to open the local object store")?,
                )
            }
            #[cfg(feature = "s3")]
            ObjectStoreConfig::S3(c) => Arc::new(
                object_store::s3::S3ObjectStore::connect(c)
                    .context("failed to set up the S3 object store")?,
            ),
        };
        let idempotency = idempotency::open(config).await?;
        Ok(Engines {
            queue,
            index,
            metadata,
            coordinator,
            object_store,
            idempotency,
            data_dir_lock,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_data_dir_lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DataDirLock::acquire(dir.path()).expect("first lock");
        let error = DataDirLock::acquire(dir.path()).expect_err("second lock must fail");
        assert!(
            error.to_string().contains("another logpool process"),
            "{error}"
        );
        drop(first);
        DataDirLock::acquire(dir.path()).expect("lock after release");
    }
}
