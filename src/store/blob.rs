//! Blob storage: opaque, already-sealed bytes under a key.
//!
//! The embedded implementation keeps each blob in one file under
//! `<data>/blobs/<2 hex>/<key>`. A blob becomes visible only once it is
//! complete and durable: bytes go to `<data>/tmp/`, are fsynced, renamed into
//! place, and the directory is fsynced. A crash leaves at most a temporary
//! file, which [`LocalBlobStore::sweep_tmp`] removes at the next start.

use crate::durable::sync_dir;
use std::path::{Path, PathBuf};

use anyhow::Context;
use async_trait::async_trait;
use bytes::BytesMut;
use rand::RngCore;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

pub type BlobReader = Box<dyn AsyncRead + Send + Unpin>;

/// A blob's first bytes, read at its opening, and the reader of the rest.
pub struct Ahead {
    pub first: BytesMut,
    pub reader: BlobReader,
}

/// Opens a blob and reads its first `ahead` bytes without waiting on the
/// disk, if the kernel can tell that nothing would (`RESOLVE_CACHED`: the
/// path resolves from the dentry cache; `RWF_NOWAIT`: the bytes are in the
/// page cache). A hot photo is then read on the runtime's thread, as an
/// event-driven server reads a cached file, instead of in a round trip to
/// the blocking pool. `None`, and nothing changed, when anything would
/// wait or the kernel or filesystem cannot say: the caller reads it on the
/// blocking pool. The file's offset is left after the bytes read.
#[cfg(target_os = "linux")]
fn read_cached(path: &Path, ahead: usize) -> Option<(std::fs::File, Vec<u8>)> {
    use rustix::fs::{CWD, Mode, OFlags, ResolveFlags, openat2};
    use rustix::io::{ReadWriteFlags, preadv2};
    let fd = openat2(
        CWD,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::CACHED,
    )
    .ok()?;
    let mut buf = vec![0u8; ahead];
    let mut filled = 0;
    while filled < ahead {
        let mut to = [std::io::IoSliceMut::new(&mut buf[filled..])];
        // Offset u64::MAX: the file's own, advanced by the read.
        match preadv2(&fd, &mut to, u64::MAX, ReadWriteFlags::NOWAIT) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(_) => return None,
        }
    }
    buf.truncate(filled);
    Some((std::fs::File::from(fd), buf))
}

/// Bytes buffered per blob being written.
const WRITE_BUF: usize = 128 * 1024;

/// A stored blob, as listed.
#[derive(Debug, Clone)]
pub struct BlobInfo {
    pub key: String,
    /// When it was last written (an upload's finish, a re-seal).
    pub modified: std::time::SystemTime,
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Starts writing a new blob; nothing is visible until `finish`.
    async fn create(&self, key: &str) -> anyhow::Result<Box<dyn BlobWriter>>;
    /// Opens a blob for reading; `Ok(None)` when it does not exist.
    async fn open(&self, key: &str) -> anyhow::Result<Option<BlobReader>>;
    /// Opens a blob and reads its first `ahead` bytes: those bytes (fewer
    /// only when the blob ends before them) and the reader of the rest.
    async fn open_ahead(&self, key: &str, ahead: usize) -> anyhow::Result<Option<Ahead>> {
        let Some(mut reader) = self.open(key).await? else {
            return Ok(None);
        };
        let mut first = BytesMut::with_capacity(ahead);
        while first.len() < ahead {
            if reader.read_buf(&mut first).await? == 0 {
                break;
            }
        }
        Ok(Some(Ahead { first, reader }))
    }
    async fn delete(&self, key: &str) -> anyhow::Result<()>;
    /// Every blob stored (for recovery and consistency checks).
    async fn list(&self) -> anyhow::Result<Vec<BlobInfo>>;
    /// Every key stored.
    async fn keys(&self) -> anyhow::Result<Vec<String>> {
        Ok(self.list().await?.into_iter().map(|b| b.key).collect())
    }
    /// Whether other processes may be writing to this store right now (a
    /// bucket shared by several nodes). A finished blob is unreferenced
    /// until its upload's row commits, so in a shared store a blob counts
    /// as an orphan only once older than any upload can take. The local
    /// store has one writer, the server holding the data directory's lock.
    fn shared(&self) -> bool {
        false
    }
    /// Answers quickly whether the store is reachable (readiness).
    async fn ping(&self) -> anyhow::Result<()>;
    /// Proves at start-up that blobs can be written, read and deleted, so
    /// that a wrong endpoint, bucket or credential stops `serve` at once.
    async fn probe(&self) -> anyhow::Result<()> {
        self.ping().await
    }
    /// Removes what interrupted writes left behind; returns how many.
    /// Only while no write can be in progress.
    async fn sweep_incomplete(&self) -> anyhow::Result<usize>;
    /// How many leftovers of interrupted writes there are (removes none).
    async fn incomplete(&self) -> anyhow::Result<usize>;
    /// The start count kept beside the blobs of a shared store (0 when
    /// none is kept): a data directory whose own count is lower is not the
    /// newest one using these blobs (a restored backup or a copy).
    async fn epoch(&self) -> anyhow::Result<u64> {
        Ok(0)
    }
    async fn set_epoch(&self, _epoch: u64) -> anyhow::Result<()> {
        Ok(())
    }
}

#[async_trait]
pub trait BlobWriter: Send {
    async fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()>;
    /// Makes the blob durable and visible under its key.
    async fn finish(self: Box<Self>) -> anyhow::Result<()>;
    /// Throws the partial blob away.
    async fn abort(self: Box<Self>);
}

pub struct LocalBlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
}

/// Keys are generated by facehub itself; refusing anything else keeps a bug
/// elsewhere from turning into a path traversal.
pub(crate) fn check_key(key: &str) -> anyhow::Result<()> {
    let ok = key.len() >= 3
        && key.len() <= 128
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    anyhow::ensure!(ok, "invalid blob key {key:?}");
    Ok(())
}

impl LocalBlobStore {
    pub fn open(root: &Path) -> anyhow::Result<LocalBlobStore> {
        let blobs = root.join("blobs");
        let tmp = root.join("tmp");
        let mut created = false;
        for d in [&blobs, &tmp] {
            if !d.exists() {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
                created = true;
            }
        }
        // Every shard of a hex key exists (durably) before the first upload,
        // so a rename never lands in a directory entry that a crash can lose.
        let mut shards_created = false;
        for i in 0..=255u8 {
            let shard = blobs.join(format!("{i:02x}"));
            if !shard.exists() {
                std::fs::create_dir(&shard)
                    .with_context(|| format!("creating {}", shard.display()))?;
                shards_created = true;
            }
        }
        if shards_created {
            sync_dir(&blobs)?;
        }
        if created {
            sync_dir(root)?;
        }
        Ok(LocalBlobStore { blobs, tmp })
    }

    fn path_of(&self, key: &str) -> PathBuf {
        // Fan out on the last two characters: keys share prefixes, not suffixes.
        let shard = &key[key.len() - 2..];
        self.blobs.join(shard).join(key)
    }

    /// Removes temporary files left by interrupted uploads. Only call this
    /// while no upload can be running on this directory (the server holds
    /// the data directory's lock when it does).
    pub fn sweep_tmp(&self) -> anyhow::Result<usize> {
        sweep_parts(&self.tmp)
    }

    /// Every blob key present on disk (for consistency checks).
    pub fn list_keys(&self) -> anyhow::Result<Vec<String>> {
        let mut keys = Vec::new();
        for shard in std::fs::read_dir(&self.blobs)? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(shard.path())? {
                keys.push(f?.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(keys)
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn create(&self, key: &str) -> anyhow::Result<Box<dyn BlobWriter>> {
        check_key(key)?;
        Ok(Box::new(LocalWriter {
            part: create_part(&self.tmp, key).await?,
            final_path: self.path_of(key),
        }))
    }

    async fn open(&self, key: &str) -> anyhow::Result<Option<BlobReader>> {
        Ok(self.open_ahead(key, 0).await?.map(|a| a.reader))
    }

    /// Opens the file and reads its first bytes: at once when the page
    /// cache holds them ([`read_cached`]), else in one trip to the blocking
    /// pool. A photo of a few hundred KiB is then served without another.
    async fn open_ahead(&self, key: &str, ahead: usize) -> anyhow::Result<Option<Ahead>> {
        use std::io::Read;
        check_key(key)?;
        let path = self.path_of(key);
        #[cfg(target_os = "linux")]
        if let Some((file, first)) = read_cached(&path, ahead) {
            return Ok(Some(Ahead {
                first: BytesMut::from(bytes::Bytes::from(first)),
                reader: Box::new(tokio::fs::File::from_std(file)),
            }));
        }
        tokio::task::spawn_blocking(move || {
            let mut file = match std::fs::File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e).context("opening blob"),
            };
            let mut first = Vec::with_capacity(ahead);
            (&mut file)
                .take(ahead as u64)
                .read_to_end(&mut first)
                .context("reading blob")?;
            let reader: BlobReader = Box::new(tokio::fs::File::from_std(file));
            Ok(Some(Ahead {
                // Vec → Bytes → BytesMut moves the buffer, no copy.
                first: BytesMut::from(bytes::Bytes::from(first)),
                reader,
            }))
        })
        .await?
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        check_key(key)?;
        let path = self.path_of(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).context("deleting blob"),
        }
        let dir = path.parent().expect("blob has a shard dir").to_path_buf();
        tokio::task::spawn_blocking(move || sync_dir(&dir)).await??;
        Ok(())
    }

    async fn list(&self) -> anyhow::Result<Vec<BlobInfo>> {
        let blobs = self.blobs.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for shard in std::fs::read_dir(&blobs)? {
                let shard = shard?;
                if !shard.file_type()?.is_dir() {
                    continue;
                }
                for f in std::fs::read_dir(shard.path())? {
                    let f = f?;
                    let modified = match f.metadata() {
                        Ok(m) => m.modified()?,
                        // Deleted since the directory was read.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e.into()),
                    };
                    out.push(BlobInfo {
                        key: f.file_name().to_string_lossy().into_owned(),
                        modified,
                    });
                }
            }
            anyhow::Ok(out)
        })
        .await?
    }

    async fn ping(&self) -> anyhow::Result<()> {
        let meta = tokio::fs::metadata(&self.blobs)
            .await
            .with_context(|| format!("blob directory {}", self.blobs.display()))?;
        anyhow::ensure!(meta.is_dir(), "{} is not a directory", self.blobs.display());
        Ok(())
    }

    async fn sweep_incomplete(&self) -> anyhow::Result<usize> {
        self.sweep_tmp()
    }

    async fn incomplete(&self) -> anyhow::Result<usize> {
        Ok(part_files(&self.tmp)?.len())
    }
}

struct LocalWriter {
    part: Part,
    final_path: PathBuf,
}

#[async_trait]
impl BlobWriter for LocalWriter {
    async fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        crate::faults::inject_eio!("blob.write");
        let f = self.part.file()?;
        f.write_all(bytes).await.context("writing blob")?;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> anyhow::Result<()> {
        crate::faults::inject_eio!("blob.finish");
        let mut f = self.part.take()?;
        let result = async {
            f.flush().await?;
            f.get_mut().sync_all().await?;
            drop(f);
            let dir = self.final_path.parent().expect("shard dir").to_path_buf();
            let created = !tokio::fs::try_exists(&dir).await?;
            if created {
                tokio::fs::create_dir_all(&dir).await?;
            }
            tokio::fs::rename(&self.part.path, &self.final_path).await?;
            let blobs_root = dir.parent().map(Path::to_path_buf);
            tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                sync_dir(&dir)?;
                if created && let Some(root) = blobs_root {
                    sync_dir(&root)?;
                }
                Ok(())
            })
            .await??;
            anyhow::Ok(())
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&self.part.path).await;
        }
        result.context("finishing blob")
    }

    async fn abort(mut self: Box<Self>) {
        self.part.remove("could not remove a temporary blob").await;
    }
}

/// A temporary `.part` file being written (see [`create_part`]).
pub(crate) struct Part {
    file: Option<tokio::io::BufWriter<tokio::fs::File>>,
    pub(crate) path: PathBuf,
}

impl Part {
    /// The file, while it is being written.
    pub(crate) fn file(&mut self) -> anyhow::Result<&mut tokio::io::BufWriter<tokio::fs::File>> {
        self.file.as_mut().context("blob writer already closed")
    }

    /// The file, taken to finish the write: from then on the writer, not
    /// the drop, says what becomes of the part.
    pub(crate) fn take(&mut self) -> anyhow::Result<tokio::io::BufWriter<tokio::fs::File>> {
        self.file.take().context("blob writer already closed")
    }

    /// Closes and deletes the part; a failure is logged as `warning`.
    pub(crate) async fn remove(&mut self, warning: &'static str) {
        drop(self.file.take());
        if let Err(e) = tokio::fs::remove_file(&self.path).await {
            tracing::warn!(error = %e, "{warning}");
        }
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        // Dropped while still being written (e.g. the request future was
        // cancelled): do not leave the temporary file behind.
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The hex SHA-256 of what `sha` has seen and then of everything left in
/// `r`, read `buf` bytes at a time.
pub async fn sha256_rest(
    mut sha: sha2::Sha256,
    r: &mut (impl AsyncRead + Unpin + ?Sized),
    buf: usize,
) -> std::io::Result<String> {
    use sha2::Digest;
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; buf];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
    }
    Ok(hex::encode(sha.finalize()))
}

/// A new temporary file `<dir>/<key>.<random>.part` (owner-only), buffered
/// for writing.
pub(crate) async fn create_part(dir: &Path, key: &str) -> anyhow::Result<Part> {
    let mut suffix = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut suffix);
    let path = dir.join(format!("{key}.{}.part", hex::encode(suffix)));
    let mut opts = tokio::fs::OpenOptions::new();
    opts.read(true).write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut file = opts
        .open(&path)
        .await
        .with_context(|| format!("creating {}", path.display()))?;
    // tokio copies each write into its own buffer (up to 2 MiB by
    // default) for the blocking pool; keep that per-upload cost small.
    file.set_max_buf_size(WRITE_BUF);
    Ok(Part {
        file: Some(tokio::io::BufWriter::with_capacity(WRITE_BUF, file)),
        path,
    })
}

/// The temporary files in `dir`: of writes in progress or interrupted.
pub(crate) fn part_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut parts = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let is_part = entry.file_name().to_string_lossy().ends_with(".part");
        if is_part && entry.file_type()?.is_file() {
            parts.push(entry.path());
        }
    }
    Ok(parts)
}

/// Removes the temporary files in `dir`. Only while no write can be in
/// progress there (the server holds the data directory's lock).
pub(crate) fn sweep_parts(dir: &Path) -> anyhow::Result<usize> {
    let parts = part_files(dir)?;
    for p in &parts {
        std::fs::remove_file(p)?;
    }
    if !parts.is_empty() {
        sync_dir(dir)?;
    }
    Ok(parts.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A file just written is in the page cache: read without blocking,
    /// its offset left after what was read; a missing one is not.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_cached_file_is_read_at_once_and_left_at_its_offset() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        for ahead in [0, 1, 70_000, data.len(), data.len() + 1] {
            let (mut file, first) = read_cached(&path, ahead).expect("cached");
            assert_eq!(first, data[..ahead.min(data.len())]);
            let mut rest = Vec::new();
            file.read_to_end(&mut rest).unwrap();
            assert_eq!(rest, data[first.len()..], "ahead {ahead}");
        }
        assert!(read_cached(&dir.path().join("missing"), 10).is_none());
    }

    #[tokio::test]
    async fn write_finish_read_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalBlobStore::open(dir.path()).unwrap();
        let mut w = s.create("att_0123abcd").await.unwrap();
        w.write(b"hello ").await.unwrap();
        w.write(b"world").await.unwrap();
        assert!(
            s.open("att_0123abcd").await.unwrap().is_none(),
            "visible before finish"
        );
        w.finish().await.unwrap();
        let mut buf = String::new();
        s.open("att_0123abcd")
            .await
            .unwrap()
            .unwrap()
            .read_to_string(&mut buf)
            .await
            .unwrap();
        assert_eq!(buf, "hello world");
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        assert_eq!(s.list_keys().unwrap(), vec!["att_0123abcd".to_string()]);
        s.delete("att_0123abcd").await.unwrap();
        assert!(s.open("att_0123abcd").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn abort_and_drop_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalBlobStore::open(dir.path()).unwrap();
        let mut w = s.create("att_aaaa").await.unwrap();
        w.write(b"partial").await.unwrap();
        w.abort().await;
        let mut w = s.create("att_bbbb").await.unwrap();
        w.write(b"partial").await.unwrap();
        drop(w);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        assert!(s.list_keys().unwrap().is_empty());
    }

    #[tokio::test]
    async fn sweep_removes_leftovers_and_keys_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalBlobStore::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("tmp/x.part"), b"junk").unwrap();
        std::fs::create_dir(dir.path().join("tmp/keep.part.d")).unwrap();
        std::fs::write(dir.path().join("tmp/README"), b"not ours").unwrap();
        assert_eq!(s.sweep_tmp().unwrap(), 1);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            2
        );
        assert!(s.create("../etc/passwd").await.is_err());
        assert!(s.open("A").await.is_err());
    }
}
