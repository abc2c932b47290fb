//! The object store role: whole objects by key (archives, exports).

#[cfg(test)]
pub(crate) mod conformance;
pub mod local_file;
#[cfg(feature = "s3")]
pub mod s3;

use std::fmt::Debug;

use async_trait::async_trait;
use bytes::Bytes;

pub use local_file::{LocalFileObjectStore, LocalFileObjectStoreConfig};

/// Result alias for object store operations.
pub type ObjectStoreResult<T> = Result<T, ObjectStoreError>;

/// Errors of the object store role.
#[derive(Debug, thiserror::Error)]
pub enum ObjectStoreError {
    /// The key does not exist.
    #[error("object `{0}` not found")]
    NotFound(String),
    /// The key is not acceptable (empty, absolute, or with `..`).
    #[error("invalid object key `{0}`")]
    InvalidKey(String),
    /// A local I/O error.
    #[error("object store I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A remote store failed the request or could not be reached (network error,
    /// timeout, server error after retries, refused credentials, bad client settings).
    #[error("object store unavailable: {0}")]
    Unavailable(String),
}

/// The object store role. Keys are `/`-separated relative paths.
#[async_trait]
pub trait ObjectStore: Send + Sync + Debug + 'static {
    /// Stores an object atomically: readers see the old object or the whole new one.
    async fn put(&self, key: &str, data: Bytes) -> ObjectStoreResult<()>;
    /// Reads an object.
    async fn get(&self, key: &str) -> ObjectStoreResult<Bytes>;
    /// Lists keys that start with `prefix`, sorted.
    async fn list(&self, prefix: &str) -> ObjectStoreResult<Vec<String>>;
    /// Deletes an object; deleting a missing key is not an error.
    async fn delete(&self, key: &str) -> ObjectStoreResult<()>;
}
