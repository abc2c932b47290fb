//! Object store on the local file system (standalone mode).

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{ObjectStore, ObjectStoreError, ObjectStoreResult};

/// Settings of the local object store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalFileObjectStoreConfig {
    /// Root directory of all objects.
    pub dir: PathBuf,
}

impl Default for LocalFileObjectStoreConfig {
    fn default() -> Self {
        LocalFileObjectStoreConfig {
            dir: PathBuf::from("objects"),
        }
    }
}

/// Objects as files under a root directory; writes go to a temporary file that is
/// fsynced and renamed, so a crash never leaves a half-written object.
#[derive(Debug, Clone)]
pub struct LocalFileObjectStore {
    root: PathBuf,
}

impl LocalFileObjectStore {
    /// Opens (creating) the root directory.
    ///
    /// # Errors
    /// Fails when the directory cannot be created.
    pub fn open(config: &LocalFileObjectStoreConfig) -> ObjectStoreResult<LocalFileObjectStore> {
        std::fs::create_dir_all(&config.dir)?;
        Ok(LocalFileObjectStore {
            root: config.dir.clone(),
        })
    }

    fn path_of(&self, key: &str) -> ObjectStoreResult<PathBuf> {
        let relative = Path::new(key);
        let valid = !key.is_empty()
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
            && !key.ends_with('/');
        if !valid {
            return Err(ObjectStoreError::InvalidKey(key.to_string()));
        }
        Ok(self.root.join(relative))
    }
}

#[async_trait]
impl ObjectStore for LocalFileObjectStore {
    async fn put(&self, key: &str, data: Bytes) -> ObjectStoreResult<()> {
        let path = self.path_of(key)?;
        tokio::task::spawn_blocking(move || -> ObjectStoreResult<()> {
            use std::io::Write;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let temporary = path.with_extension("partial");
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(&data)?;
            file.sync_data()?;
            std::fs::rename(&temporary, &path)?;
            Ok(())
        })
        .await
        .map_err(|e| ObjectStoreError::Io(std::io::Error::other(e)))?
    }

    async fn get(&self, key: &str) -> ObjectStoreResult<Bytes> {
        let path = self.path_of(key)?;
        match tokio::fs::read(&path).await {
            Ok(data) => Ok(Bytes::from(data)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Err(ObjectStoreError::NotFound(key.to_string()))
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn list(&self, prefix: &str) -> ObjectStoreResult<Vec<String>> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || -> ObjectStoreResult<Vec<String>> {
            let mut keys = Vec::new();
            let mut stack = vec![root.clone()];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir)? {
                    let entry = entry?;
                    let path = entry.path();
                    if entry.file_type()?.is_dir() {
                        stack.push(path);
                    } else if path.extension().is_none_or(|ext| ext != "partial") {
                        let key = path
                            .strip_prefix(&root)
                            .map(|p| p.to_string_lossy().replace('\\', "/"))
                            .unwrap_or_default();
                        if key.starts_with(&prefix) {
                            keys.push(key);
                        }
                    }
                }
            }
            keys.sort();
            Ok(keys)
        })
        .await
        .map_err(|e| ObjectStoreError::Io(std::io::Error::other(e)))?
    }

    async fn delete(&self, key: &str) -> ObjectStoreResult<()> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object_store::conformance;

    #[tokio::test]
    async fn test_put_get_list_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalFileObjectStore::open(&LocalFileObjectStoreConfig {
            dir: dir.path().to_path_buf(),
        })
        .expect("open");
        conformance::check_object_store(&store).await;
    }
}
