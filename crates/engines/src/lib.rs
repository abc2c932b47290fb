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
#[cfg(test)]
pub(crate) mod conformance;
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
    /// Builds every engine the configuration names (all of [`EngineNeeds::ALL`]).
    ///
    /// # Errors
    /// Fails with context naming the engine that could not start.
    pub async fn build(config: &Config) -> anyhow::Result<Engines> {
        EngineSet::build(config, EngineNeeds::ALL)
            .await?
            .complete()
            .context("an engine of the full set was not built")
    }
}

/// The engine roles a service uses. The coordinator is always built: every service
/// routes by its snapshot and registers as a member.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineNeeds {
    /// The queue.
    pub queue: bool,
    /// The index.
    pub index: bool,
    /// The metadata store (for SQL stores: the database and its migrations).
    pub metadata: bool,
    /// The object store.
    pub object_store: bool,
    /// The idempotency ledger (PutDatas' record of what each request key did).
    pub idempotency: bool,
}

impl EngineNeeds {
    /// Every engine role.
    pub const ALL: EngineNeeds = EngineNeeds {
        queue: true,
        index: true,
        metadata: true,
        object_store: true,
        idempotency: true,
    };

    /// What either of two services uses: what a process running both must build.
    pub fn union(self, other: EngineNeeds) -> EngineNeeds {
        EngineNeeds {
            queue: self.queue || other.queue,
            index: self.index || other.index,
            metadata: self.metadata || other.metadata,
            object_store: self.object_store || other.object_store,
            idempotency: self.idempotency || other.idempotency,
        }
    }
}

/// A role a service asked for that its process did not build: a wiring mistake,
/// reported when the service starts.
#[derive(Debug, thiserror::Error)]
#[error("the {0} engine was not built for this process; add it to the service's engine needs")]
pub struct MissingEngine(pub &'static str);

/// The engines one process built: the coordinator always, the other roles only when
/// one of its services needs them (a put-datas process connects to no metadata store
/// and no index).
#[derive(Debug, Clone)]
pub struct EngineSet {
    /// The coordinator.
    pub coordinator: Arc<dyn Coordinator>,
    /// The queue, when needed.
    pub queue: Option<Arc<dyn Queue>>,
    /// The index, when needed.
    pub index: Option<Arc<dyn LogIndex>>,
    /// The metadata store, when needed.
    pub metadata: Option<Arc<dyn MetadataStore>>,
    /// The object store, when needed.
    pub object_store: Option<Arc<dyn ObjectStore>>,
    /// The idempotency ledger, when needed.
    pub idempotency: Option<Arc<dyn idempotency::IdempotencyLedger>>,
    /// Held while these engines live (see [`Engines::data_dir_lock`]).
    pub data_dir_lock: Arc<DataDirLock>,
}

impl EngineSet {
    /// Builds the coordinator and the engines `needs` names. This is the only place
    /// that names concrete engine types.
    ///
    /// # Errors
    /// Fails with context naming the engine that could not start.
    pub async fn build(config: &Config, needs: EngineNeeds) -> anyhow::Result<EngineSet> {
        private_dir::create(&config.data_dir)?;
        let data_dir_lock = Arc::new(DataDirLock::acquire(&config.data_dir)?);
        let queue = if needs.queue {
            Some(open_queue(config).await?)
        } else {
            None
        };
        let index = if needs.index {
            Some(open_index(config)?)
        } else {
            None
        };
        let metadata = if needs.metadata {
            Some(open_metadata(config).await?)
        } else {
            None
        };
        let coordinator = open_coordinator(config).await?;
        let object_store = if needs.object_store {
            Some(open_object_store(config)?)
        } else {
            None
        };
        let idempotency = if needs.idempotency {
            Some(idempotency::open(config).await?)
        } else {
            None
        };
        Ok(EngineSet {
            coordinator,
            queue,
            index,
            metadata,
            object_store,
            idempotency,
            data_dir_lock,
        })
    }

    /// The queue, or which role is missing.
    ///
    /// # Errors
    /// [`MissingEngine`] when it was not built.
    pub fn queue(&self) -> Result<Arc<dyn Queue>, MissingEngine> {
        self.queue.clone().ok_or(MissingEngine("queue"))
    }

    /// The index, or which role is missing.
    ///
    /// # Errors
    /// [`MissingEngine`] when it was not built.
    pub fn index(&self) -> Result<Arc<dyn LogIndex>, MissingEngine> {
        self.index.clone().ok_or(MissingEngine("index"))
    }

    /// The metadata store, or which role is missing.
    ///
    /// # Errors
    /// [`MissingEngine`] when it was not built.
    pub fn metadata(&self) -> Result<Arc<dyn MetadataStore>, MissingEngine> {
        self.metadata.clone().ok_or(MissingEngine("metadata"))
    }

    /// The object store, or which role is missing.
    ///
    /// # Errors
    /// [`MissingEngine`] when it was not built.
    pub fn object_store(&self) -> Result<Arc<dyn ObjectStore>, MissingEngine> {
        self.object_store
            .clone()
            .ok_or(MissingEngine("object store"))
    }

    /// The idempotency ledger, or which role is missing.
    ///
    /// # Errors
    /// [`MissingEngine`] when it was not built.
    pub fn idempotency(&self) -> Result<Arc<dyn idempotency::IdempotencyLedger>, MissingEngine> {
        self.idempotency
            .clone()
            .ok_or(MissingEngine("idempotency ledger"))
    }

    /// Every role as [`Engines`], when all of them were built.
    ///
    /// # Errors
    /// [`MissingEngine`] naming the first role that was not built.
    pub fn complete(&self) -> Result<Engines, MissingEngine> {
        Ok(Engines {
            queue: self.queue()?,
            index: self.index()?,
            metadata: self.metadata()?,
            coordinator: self.coordinator.clone(),
            object_store: self.object_store()?,
            idempotency: self.idempotency()?,
            data_dir_lock: self.data_dir_lock.clone(),
        })
    }
}

impl From<Engines> for EngineSet {
    fn from(engines: Engines) -> EngineSet {
        EngineSet {
            coordinator: engines.coordinator,
            queue: Some(engines.queue),
            index: Some(engines.index),
            metadata: Some(engines.metadata),
            object_store: Some(engines.object_store),
            idempotency: Some(engines.idempotency),
            data_dir_lock: engines.data_dir_lock,
        }
    }
}

/// Opens (or connects to) the queue the configuration names.
async fn open_queue(config: &Config) -> anyhow::Result<Arc<dyn Queue>> {
    Ok(match &config.queue {
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
    })
}

/// Opens (or connects to) the index the configuration names.
fn open_index(config: &Config) -> anyhow::Result<Arc<dyn LogIndex>> {
    Ok(match &config.index {
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
    })
}

/// Opens (or connects to) the metadata store the configuration names.
async fn open_metadata(config: &Config) -> anyhow::Result<Arc<dyn MetadataStore>> {
    Ok(match &config.metadata {
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
    })
}

/// Opens (or connects to) the coordinator the configuration names.
async fn open_coordinator(config: &Config) -> anyhow::Result<Arc<dyn Coordinator>> {
    Ok(match &config.coordination {
        CoordinationConfig::Local => Arc::new(LocalCoordinator::new()),
        #[cfg(feature = "etcd")]
        CoordinationConfig::Etcd(c) => Arc::new(
            coordination::etcd::EtcdCoordinator::connect(c.clone())
                .await
                .with_context(|| format!("failed to connect to etcd at {:?}", c.endpoints))?,
        ),
    })
}

/// Opens (or connects to) the object store the configuration names.
fn open_object_store(config: &Config) -> anyhow::Result<Arc<dyn ObjectStore>> {
    Ok(match &config.object_store {
        ObjectStoreConfig::LocalFile(c) => {
            let c = LocalFileObjectStoreConfig {
                dir: config.resolve(&c.dir),
            };
            Arc::new(
                LocalFileObjectStore::open(&c).context("failed to open the local object store")?,
            )
        }
        #[cfg(feature = "s3")]
        ObjectStoreConfig::S3(c) => Arc::new(
            object_store::s3::S3ObjectStore::connect(c)
                .context("failed to set up the S3 object store")?,
        ),
    })
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
