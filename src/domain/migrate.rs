//! `facehub migrate-store`: copies every blob the metadata refers to from
//! one blob store to another (the data directory and an S3 bucket, either
//! way). Blobs travel sealed, as stored: nothing is decrypted, so the copy
//! needs no key and reveals nothing. Each copy is proved against the
//! digest recorded at upload, on both sides. Resumable: a blob already in
//! the destination with the right digest is not copied again.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::Core;
use super::deployment::{BLOB_STORE, MAINTENANCE};
use super::integrity::Problem;
use crate::store::Db;
use crate::store::blob::{BlobStore, sha256_rest};
use crate::store::transfer::TableCopy;

const PAGE: i64 = 500;
const BUF: usize = 256 * 1024;

#[derive(Debug, Default, Clone, Serialize)]
pub struct Migration {
    /// Files the metadata holds.
    pub files: u64,
    pub copied: u64,
    pub copied_bytes: u64,
    /// Already in the destination, digest verified (an earlier run).
    pub present: u64,
    /// In the metadata, but in neither store.
    pub missing: Vec<String>,
    /// In the source with bytes that differ from the recorded digest: not
    /// copied (`facehub check` tells more).
    pub corrupt: Vec<Problem>,
}

impl Migration {
    pub fn complete(&self) -> bool {
        self.missing.is_empty() && self.corrupt.is_empty()
    }
}

/// The hex SHA-256 of a stored (sealed) blob, or `None` if it is absent.
async fn digest(store: &dyn BlobStore, key: &str) -> anyhow::Result<Option<String>> {
    let Some(mut r) = store.open(key).await? else {
        return Ok(None);
    };
    Ok(Some(sha256_rest(Sha256::new(), &mut r, BUF).await?))
}

enum Copy {
    Done(u64),
    Missing,
    Corrupt(String),
}

/// Streams one blob across, digesting as it goes; the destination's blob
/// becomes visible only when complete, and is thrown away if the source's
/// bytes are not the recorded ones.
async fn copy(
    from: &dyn BlobStore,
    to: &dyn BlobStore,
    key: &str,
    sha256: &str,
) -> anyhow::Result<Copy> {
    let Some(mut r) = from.open(key).await? else {
        return Ok(Copy::Missing);
    };
    let mut w = to.create(key).await?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; BUF];
    let mut total = 0u64;
    let copied = async {
        loop {
            let n = r.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            sha.update(&buf[..n]);
            w.write(&buf[..n]).await?;
            total += n as u64;
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = copied {
        w.abort().await;
        return Err(e.context(format!("copying blob {key}")));
    }
    let got = hex::encode(sha.finalize());
    if got != sha256 {
        w.abort().await;
        return Ok(Copy::Corrupt(format!(
            "source bytes digest to {got}, not the {sha256} recorded at upload"
        )));
    }
    w.finish().await?;
    Ok(Copy::Done(total))
}

impl Core {
    /// Copies every blob of the metadata from `from` to `to`. `progress`
    /// is told (done, total) after each file.
    pub async fn migrate_blobs(
        &self,
        from: Arc<dyn BlobStore>,
        to: Arc<dyn BlobStore>,
        progress: impl Fn(u64, u64),
    ) -> anyhow::Result<Migration> {
        let total = self.db.file_count().await?;
        let already: HashSet<String> = to
            .keys()
            .await
            .context("listing the destination")?
            .into_iter()
            .collect();
        let mut m = Migration::default();
        let mut pages = self.db.file_digests(PAGE);
        while let Some(page) = pages.next().await? {
            for (id, _kind, sha) in page {
                m.files += 1;
                let there = if already.contains(&id) {
                    digest(&*to, &id).await?
                } else {
                    None
                };
                if there.as_deref() == Some(sha.as_str()) {
                    m.present += 1;
                } else {
                    match copy(&*from, &*to, &id, &sha).await? {
                        Copy::Done(n) => {
                            // Read back from the destination: the copy is
                            // proved there, not only on the way out.
                            let back = digest(&*to, &id).await?;
                            anyhow::ensure!(
                                back.as_deref() == Some(sha.as_str()),
                                "blob {id} reads back from the destination with another digest"
                            );
                            m.copied += 1;
                            m.copied_bytes += n;
                        }
                        Copy::Missing => m.missing.push(id),
                        Copy::Corrupt(why) => m.corrupt.push(Problem { id, why }),
                    }
                }
                progress(m.files, total);
            }
        }
        Ok(m)
    }

    /// `migrate-store --to`: [`Core::migrate_blobs`] under the maintenance
    /// marker (which keeps other writers out while the copy is half done);
    /// once every blob is there, the data directory switches to `to` (in
    /// canonical form), so every later command and server start finds the
    /// blobs there.
    pub async fn move_blobs(
        &self,
        from: Arc<dyn BlobStore>,
        to: Arc<dyn BlobStore>,
        to_spec: &str,
        progress: impl Fn(u64, u64),
    ) -> anyhow::Result<Migration> {
        self.db.meta_set(MAINTENANCE, "migrate-store").await?;
        let m = self.migrate_blobs(from, to, progress).await;
        self.db.meta_set(MAINTENANCE, "").await?;
        let m = m?;
        if m.complete() {
            self.db.meta_set(BLOB_STORE, to_spec).await?;
        }
        Ok(m)
    }

    /// `migrate-store --to-database`: copies every table to `to` (a
    /// database URL, or `None` for the data directory's SQLite) and proves
    /// each copy by digest. `progress` is told (table, rows so far).
    pub async fn copy_metadata(
        &self,
        to: Option<&str>,
        progress: impl Fn(&str, u64),
    ) -> anyhow::Result<Vec<TableCopy>> {
        let path = self.config.database_path();
        let to = match to {
            None => Db::open_sqlite(&path).await?,
            Some(url) => Db::open(Some(url), &path).await?,
        };
        let tables = self.db.copy_to(&to, progress).await;
        to.close().await;
        tables
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::files::commit_photo;
    use crate::domain::testing::core;
    use crate::image::samples;
    use crate::store::blob::LocalBlobStore;

    async fn upload(core: &Arc<Core>, tenant: i64, seed: u8) -> String {
        let body = futures_util::stream::iter(vec![Ok(bytes::Bytes::from(samples::png(
            90 + u32::from(seed),
            90,
        )))]);
        let staged = core
            .receive_image(core.attendance_rules(), body)
            .await
            .unwrap();
        commit_photo(core, staged, tenant, (), None)
            .await
            .unwrap()
            .file_id
    }

    /// One blob of `store` lost, another overwritten with other bytes.
    async fn lose_and_damage(store: &dyn BlobStore, lost: &str, damaged: &str) {
        store.delete(lost).await.unwrap();
        let mut w = store.create(damaged).await.unwrap();
        w.write(b"damaged").await.unwrap();
        w.finish().await.unwrap();
    }

    #[tokio::test]
    async fn copies_verified_resumes_and_reports_damage() {
        let (_dir, core) = core().await;
        let core = Arc::new(core);
        let tenant = core.create_tenant("acme").await.unwrap();
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(upload(&core, tenant.id, i).await);
        }
        let from = core.blobs.store().clone();
        let dest_dir = tempfile::tempdir().unwrap();
        let to: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::open(dest_dir.path()).unwrap());

        // A first run copies everything, byte for byte.
        let seen = std::sync::Mutex::new(Vec::new());
        let m = core
            .migrate_blobs(from.clone(), to.clone(), |d, t| {
                seen.lock().unwrap().push((d, t))
            })
            .await
            .unwrap();
        assert_eq!((m.files, m.copied, m.present), (5, 5, 0));
        assert!(m.complete());
        assert_eq!(seen.lock().unwrap().last(), Some(&(5, 5)));
        for id in &ids {
            assert_eq!(
                digest(&*from, id).await.unwrap(),
                digest(&*to, id).await.unwrap()
            );
        }

        // Resumed after losing one copy and damaging another: only those
        // two are copied again.
        lose_and_damage(&*to, &ids[0], &ids[1]).await;
        let m = core
            .migrate_blobs(from.clone(), to.clone(), |_, _| {})
            .await
            .unwrap();
        assert_eq!((m.copied, m.present), (2, 3));
        assert_eq!(
            digest(&*to, &ids[1]).await.unwrap(),
            digest(&*from, &ids[1]).await.unwrap()
        );

        // A source blob that is gone or altered is reported, not copied.
        let fresh_dir = tempfile::tempdir().unwrap();
        let fresh: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::open(fresh_dir.path()).unwrap());
        lose_and_damage(&*from, &ids[2], &ids[3]).await;
        let m = core
            .migrate_blobs(from.clone(), fresh.clone(), |_, _| {})
            .await
            .unwrap();
        assert!(!m.complete());
        assert_eq!(m.missing, vec![ids[2].clone()]);
        assert_eq!(m.corrupt.len(), 1);
        assert_eq!(m.corrupt[0].id, ids[3]);
        assert_eq!(m.copied, 3);
        assert!(fresh.open(&ids[3]).await.unwrap().is_none());
    }
}
