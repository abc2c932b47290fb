//! How many bytes a pool's index files take on disk.

use std::io::ErrorKind;
use std::path::Path;

/// Sums the sizes of every file under `dir`, recursively; a missing `dir` holds 0
/// bytes. Files that vanish while being counted (segments merged or a partition
/// dropped meanwhile) are skipped rather than failing the count.
pub(super) fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error),
    };
    let mut total = 0u64;
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) if error.kind() == ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        let metadata = match entry.metadata() {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        total = total.saturating_add(if metadata.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            metadata.len()
        });
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_dir_bytes_sums_nested_files_and_a_missing_dir_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a"), [0u8; 10]).expect("write");
        std::fs::create_dir(dir.path().join("day")).expect("mkdir");
        std::fs::write(dir.path().join("day/b"), [0u8; 32]).expect("write");
        assert_eq!(dir_bytes(dir.path()).expect("size"), 42);
        assert_eq!(dir_bytes(&dir.path().join("missing")).expect("size"), 0);
    }
}
