//! Field types that earlier versions kept beside each pool's partitions, in
//! `{tenant}/{pool id}/field_types.json`, before learned types moved to the metadata
//! store. They are read once for loghub to import, then removed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use logpool_core::pool_id::PoolId;
use logpool_core::routing::FieldType;

use crate::index::{IndexError, IndexResult};
use crate::metadata::LearnedTypes;

/// The file an earlier version wrote its learned types to, in a pool's directory.
pub(crate) const FILE_NAME: &str = "field_types.json";

/// Every legacy types file under the index directory `root`, with its pool.
fn files(root: &Path) -> IndexResult<Vec<(PoolId, PathBuf)>> {
    let mut found = Vec::new();
    let tenants = match std::fs::read_dir(root) {
        Ok(tenants) => tenants,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(error) => return Err(error.into()),
    };
    for tenant in tenants {
        let tenant = tenant?.path();
        if !tenant.is_dir() {
            continue;
        }
        for pool in std::fs::read_dir(&tenant)? {
            let pool = pool?.path();
            let Some(pool_id) = pool
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.parse::<PoolId>().ok())
            else {
                continue;
            };
            let file = pool.join(FILE_NAME);
            if file.is_file() {
                found.push((pool_id, file));
            }
        }
    }
    Ok(found)
}

/// The learned types of every pool that still has a legacy file.
///
/// # Errors
/// A file that is not the map of field names to types an earlier version wrote is
/// [`IndexError::Corrupted`], naming the file: importing part of a pool's types, or
/// none, would let later values type its fields differently from its data.
pub(crate) fn read(root: &Path) -> IndexResult<HashMap<PoolId, LearnedTypes>> {
    let mut pools = HashMap::new();
    for (pool_id, file) in files(root)? {
        let text = std::fs::read_to_string(&file)?;
        let types: BTreeMap<String, FieldType> = serde_json::from_str(&text).map_err(|e| {
            IndexError::Corrupted(format!("learned field types in {}: {e}", file.display()))
        })?;
        pools.insert(pool_id, types);
    }
    Ok(pools)
}

/// Removes every legacy file (their types are in the metadata store now).
///
/// # Errors
/// Fails when a file cannot be removed; a later call removes what is left.
pub(crate) fn remove(root: &Path) -> IndexResult<()> {
    for (_, file) in files(root)? {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_reads_each_pools_file_and_removes_them() {
        let root = tempfile::tempdir().expect("tempdir");
        let pool = |tenant: &str, id: &str| {
            let dir = root.path().join(tenant).join(id);
            std::fs::create_dir_all(&dir).expect("pool dir");
            dir
        };
        std::fs::write(
            pool("default", "7").join(FILE_NAME),
            r#"{"status": "long", "host": "keyword", "took": "double"}"#,
        )
        .expect("write");
        std::fs::write(pool("acme", "12").join(FILE_NAME), r#"{"ok": "bool"}"#).expect("write");
        // A pool without a file, and a directory that is not a pool, are skipped.
        pool("acme", "13");
        std::fs::write(pool("acme", "notes").join(FILE_NAME), "{}").expect("write");

        let pools = read(root.path()).expect("read");
        assert_eq!(pools.len(), 2, "{pools:?}");
        let seven = &pools[&PoolId::new(7)];
        assert_eq!(seven.get("status"), Some(&FieldType::Long));
        assert_eq!(seven.get("host"), Some(&FieldType::Keyword));
        assert_eq!(seven.get("took"), Some(&FieldType::Double));
        assert_eq!(pools[&PoolId::new(12)].get("ok"), Some(&FieldType::Bool));

        remove(root.path()).expect("remove");
        assert!(read(root.path()).expect("read again").is_empty());
        assert!(root.path().join("acme/notes").join(FILE_NAME).exists());
        remove(root.path()).expect("remove twice");
    }

    #[test]
    fn test_a_damaged_file_is_an_error_naming_it() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("default").join("3");
        std::fs::create_dir_all(&dir).expect("pool dir");
        std::fs::write(dir.join(FILE_NAME), r#"{"status": "lon"#).expect("write");
        let error = read(root.path()).expect_err("damaged");
        assert!(
            matches!(&error, IndexError::Corrupted(text) if text.contains(FILE_NAME)),
            "{error}"
        );
    }

    #[test]
    fn test_no_index_directory_means_nothing_to_import() {
        let root = tempfile::tempdir().expect("tempdir");
        assert!(read(&root.path().join("missing")).expect("read").is_empty());
    }
}
