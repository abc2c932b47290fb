//! The data directory is private to the user that runs logpool: it holds the key
//! hashes and the cursor signing key (`metadata.sqlite`) and every tenant's data.
//!
//! The directory is created `0700` and tightened to it at every start; the SQLite
//! database files are tightened to `0600` (SQLite gives its `-wal` and `-shm` files
//! the mode of the database). The server processes also set umask 077 at start, so
//! that every other file the engines create is `0600` as well.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;

/// Mode of the data directory.
pub const DIR_MODE: u32 = 0o700;

/// Mode of files that hold secrets.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) as `0700`, and makes an existing one `0700`.
///
/// # Errors
/// Fails when the directory cannot be created or its mode cannot be set.
pub fn create(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .with_context(|| format!("failed to create data dir {}", dir.display()))?;
    restrict(dir, DIR_MODE)
}

/// Makes the SQLite database at `database` and its `-wal`/`-shm`/`-journal` files
/// `0600` where they exist.
///
/// # Errors
/// Fails when a file's mode cannot be set.
pub fn restrict_database_files(database: &Path) -> anyhow::Result<()> {
    let mut paths = vec![database.to_path_buf()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        paths.push(name.into());
    }
    for path in paths.iter().filter(|path| path.exists()) {
        restrict(path, FILE_MODE)?;
    }
    Ok(())
}

fn restrict(path: &Path, mode: u32) -> anyhow::Result<()> {
    let current = std::fs::metadata(path)
        .with_context(|| format!("failed to read the mode of {}", path.display()))?
        .permissions()
        .mode()
        & 0o7777;
    if current != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("failed to make {} mode {mode:o}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn test_new_and_existing_directories_become_private() {
        let root = tempfile::tempdir().expect("tempdir");
        let new = root.path().join("a/b");
        create(&new).expect("create");
        assert_eq!(mode(&new), DIR_MODE);
        let existing = root.path().join("open");
        std::fs::create_dir(&existing).expect("mkdir");
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        create(&existing).expect("tighten");
        assert_eq!(mode(&existing), DIR_MODE);
    }

    #[test]
    fn test_database_files_become_private() {
        let root = tempfile::tempdir().expect("tempdir");
        let database = root.path().join("metadata.sqlite");
        let wal = root.path().join("metadata.sqlite-wal");
        for path in [&database, &wal] {
            std::fs::write(path, b"x").expect("write");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        restrict_database_files(&database).expect("restrict");
        assert_eq!(mode(&database), FILE_MODE);
        assert_eq!(mode(&wal), FILE_MODE);
        assert!(!root.path().join("metadata.sqlite-shm").exists());
    }
}
