//! The filesystem's durability primitive every writer of files shares (the
//! blob store, the key file): a rename or unlink is durable only once its
//! directory is synced.

use std::path::Path;

/// fsyncs a directory so that a rename or unlink in it is durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()?;
    }
    let _ = dir;
    Ok(())
}
