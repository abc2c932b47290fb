//! The field types a pool learned from first values, kept in `{pool}/field_types.json`.
//!
//! The file is replaced atomically (written aside, synced, renamed) before the
//! documents that need a new type are staged, so a committed document never depends
//! on a type that is not on disk, and a restart or a new day partition sees the same
//! types. A process that only searches (or a second index handle) re-reads the file
//! when its modification time changes.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use logpool_core::field_types::{effective_types, learn_types};
use logpool_core::record::Record;
use logpool_core::routing::{FieldType, PoolRoute};

use super::lock;
use crate::index::{IndexError, IndexResult};

const FILE_NAME: &str = "field_types.json";

#[derive(Debug, Default, Clone)]
struct Learned {
    types: BTreeMap<String, FieldType>,
    /// Modification time of the file these types were read from or written to.
    modified: Option<SystemTime>,
}

/// Learned types of every pool this index handle has touched.
#[derive(Debug, Default)]
pub(crate) struct TypeRegistry {
    pools: Mutex<HashMap<i64, Learned>>,
    /// Held while learning, so two writers never both add to the file and lose one
    /// of the additions.
    learning: Mutex<()>,
}

impl TypeRegistry {
    /// The pool's effective types (learned, overlaid by hints), as on disk now.
    pub(crate) fn types(
        &self,
        pool_dir: &Path,
        pool: &PoolRoute,
    ) -> IndexResult<BTreeMap<String, FieldType>> {
        let learned = self.current(pool_dir, pool.pool_id)?;
        Ok(effective_types(&pool.field_hints, &learned.types))
    }

    /// Learns the types of fields `records` show for the first time, persists them,
    /// and returns the pool's effective types. Blocking.
    pub(crate) fn learn<'a>(
        &self,
        pool_dir: &Path,
        pool: &PoolRoute,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> IndexResult<BTreeMap<String, FieldType>> {
        let _learning = lock(&self.learning);
        let mut learned = self.current(pool_dir, pool.pool_id)?;
        let new = learn_types(&pool.field_hints, &learned.types, records);
        if !new.is_empty() {
            learned.types.extend(new);
            learned.modified = Some(write_atomically(pool_dir, &learned.types)?);
            lock(&self.pools).insert(pool.pool_id, learned.clone());
        }
        Ok(effective_types(&pool.field_hints, &learned.types))
    }

    /// Forgets a dropped pool.
    pub(crate) fn forget(&self, pool_id: i64) {
        lock(&self.pools).remove(&pool_id);
    }

    fn current(&self, pool_dir: &Path, pool_id: i64) -> IndexResult<Learned> {
        let path = pool_dir.join(FILE_NAME);
        let modified = match std::fs::metadata(&path) {
            Ok(metadata) => Some(metadata.modified()?),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(error.into()),
        };
        if let Some(cached) = lock(&self.pools).get(&pool_id) {
            if cached.modified == modified {
                return Ok(cached.clone());
            }
        }
        let types = match modified {
            None => BTreeMap::new(),
            Some(_) => {
                let text = std::fs::read_to_string(&path)?;
                serde_json::from_str(&text).map_err(|e| {
                    IndexError::Corrupted(format!("{FILE_NAME} of pool {pool_id}: {e}"))
                })?
            }
        };
        let learned = Learned { types, modified };
        lock(&self.pools).insert(pool_id, learned.clone());
        Ok(learned)
    }
}

/// Replaces the file so that readers see the old or the new types, never a part.
fn write_atomically(
    pool_dir: &Path,
    types: &BTreeMap<String, FieldType>,
) -> IndexResult<SystemTime> {
    std::fs::create_dir_all(pool_dir)?;
    let text = serde_json::to_vec_pretty(types)
        .map_err(|e| IndexError::Internal(format!("field types cannot be serialized: {e}")))?;
    let aside: PathBuf = pool_dir.join(format!("{FILE_NAME}.tmp"));
    {
        let mut file = std::fs::File::create(&aside)?;
        file.write_all(&text)?;
        file.sync_all()?;
    }
    let path = pool_dir.join(FILE_NAME);
    std::fs::rename(&aside, &path)?;
    // The rename itself is durable only once the directory is synced.
    std::fs::File::open(pool_dir)?.sync_all()?;
    Ok(std::fs::metadata(&path)?.modified()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use logpool_core::record::FieldValue;

    fn pool() -> PoolRoute {
        PoolRoute {
            pool_id: 9,
            tenant: "default".into(),
            project: "p".into(),
            name: "types".into(),
            partitions: vec![0],
            retention_days: 1,
            field_hints: BTreeMap::new(),
            event_window: Default::default(),
        }
    }

    fn record(name: &str, value: FieldValue) -> Record {
        Record {
            time_ns: 0,
            fields: [(name.to_string(), value)].into(),
        }
    }

    #[test]
    fn test_learned_types_survive_a_new_registry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = TypeRegistry::default();
        let first = record("status", FieldValue::Long(200));
        let types = registry
            .learn(dir.path(), &pool(), [&first])
            .expect("learn");
        assert_eq!(types["status"], FieldType::Long);
        let later = record("status", FieldValue::Str("abc".into()));
        let types = registry
            .learn(dir.path(), &pool(), [&later])
            .expect("learn");
        assert_eq!(types["status"], FieldType::Long, "the first type stays");
        let reopened = TypeRegistry::default();
        assert_eq!(
            reopened.types(dir.path(), &pool()).expect("types")["status"],
            FieldType::Long
        );
        let mut hinted = pool();
        hinted
            .field_hints
            .insert("status".into(), FieldType::Keyword);
        assert_eq!(
            reopened.types(dir.path(), &hinted).expect("types")["status"],
            FieldType::Keyword,
            "a hint wins"
        );
    }
}
