//! Owner-only modes for the data directory (0700) and the database files
//! in it (0600), whatever the process umask: the database holds secrets,
//! and under the usual umask of 022 it would otherwise be readable by
//! every local user. Modes are set when facehub creates a file, not left
//! to the umask; a directory or file from an older version with looser
//! modes is tightened at start, with a warning.
//!
//! The other files that hold data are created owner-only where they are
//! written: blobs and spool files (`blob::create_part`) and the key file
//! ([`crate::crypto::write_secret_file`]).

use std::path::Path;

use anyhow::Context;

/// Creates the data directory with mode 0700, or tightens an existing one.
/// Its parents, which hold nothing of facehub's, keep the usual modes.
pub fn data_dir(dir: &Path) -> anyhow::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        Ok(()) => set_mode(dir, 0o700),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {
            // A directory facehub cannot change (another owner's, shared
            // through its group) still works: the files in it are 0600.
            if let Err(e) = tighten(dir) {
                tracing::warn!(
                    path = %dir.display(),
                    error = %e,
                    "could not make the data directory owner-only; run chmod 700 on it"
                );
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
    .with_context(|| format!("creating data directory {}", dir.display()))
}

/// Makes the SQLite database at `path` owner-only before SQLite opens it.
/// SQLite creates the `-wal`, `-shm` and `-journal` files with the mode of
/// the database file, so a new database file is created here, empty (which
/// SQLite takes as an empty database), with mode 0600; existing files with
/// looser modes are tightened.
pub fn database_files(path: &Path) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(_) => set_mode(path, 0o600)
            .with_context(|| format!("setting the mode of {}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating database {}", path.display())),
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = Path::new(&file);
        match tighten(file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("making {} owner-only (chmod 600)", file.display()));
            }
        }
    }
    Ok(())
}

/// Sets `path`'s mode exactly, since a creation mode is masked by the umask.
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    let _ = (path, mode);
    Ok(())
}

/// Removes group and other permissions from `path` if it has any, and
/// says so in the log.
fn tighten(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            set_mode(path, mode & 0o700)?;
            tracing::warn!(
                path = %path.display(),
                was = %format_args!("{mode:04o}"),
                now = %format_args!("{:04o}", mode & 0o700),
                "made owner-only: group or others had access"
            );
        }
    }
    let _ = path;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn creates_owner_only_and_tightens_what_exists() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/data");
        data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let db = dir.join("facehub.db");
        database_files(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let wal = dir.join("facehub.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::write(&db, b"kept").unwrap();
        data_dir(&dir).unwrap();
        database_files(&db).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&wal), 0o600);
        assert_eq!(
            std::fs::read(&db).unwrap(),
            b"kept",
            "an existing file is kept"
        );
    }
}

/// Takes the data directory's lock, or says who holds it.
pub fn lock_data_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another facehub server is using {} (its LOCK file is held)",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).context("locking the data directory"),
    }
}

/// Whether a server holds the data directory's lock right now.
pub fn server_running(dir: &Path) -> bool {
    match std::fs::File::open(dir.join("LOCK")) {
        Ok(f) => matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}
