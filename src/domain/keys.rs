//! `facehub key rotate`: a new data key, everything re-sealed under it, and
//! the old key retired once nothing needs it. A server running on the same
//! data directory keeps serving throughout: it takes up the new key within
//! a second ([`Core::watch_key`]), every blob is replaced atomically, and
//! every sealed value is swapped only if unchanged since it was read.
//!
//! An old key leaves the key file only where no write can be under way
//! with it: in a rotation with no server running (the rotation holds the
//! data directory's lock), or when a server starts ([`Core::finish_rotation`]).
//! A running server may have an upload in flight that it began sealing
//! under the old key; removing that key then would make the upload
//! unreadable after a restart.

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use super::Core;
use super::devices::sync::template_digest;
use crate::crypto::{self, Key};
use crate::store::sealed_values::SEALED_COLUMNS;

const PAGE: i64 = 200;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Rotation {
    pub key_id: String,
    pub blobs_resealed: u64,
    pub values_resealed: u64,
    /// Keys removed from the key file: nothing is sealed under them.
    pub retired: Vec<String>,
    /// A server is running: the old key is retired when it next starts.
    pub retire_at_restart: bool,
    /// Blobs and values still under an older key (another run finishes
    /// them; the old key stays until then).
    pub remaining: u64,
}

impl Core {
    /// Rotates the data key. `settle` is how long to wait for a running
    /// server to take up the new key before the second pass, which
    /// re-seals what it wrote under the old key meanwhile.
    pub async fn rotate_key(&self, settle: Duration) -> anyhow::Result<Rotation> {
        // With no server running, hold its lock: none can start mid-way.
        let lock = crate::store::lock_data_dir(&self.config.data_dir).ok();
        anyhow::ensure!(
            self.config.encryption_key.is_none(),
            "the key comes from the configuration (encryption_key), which key rotate cannot \
             change on every node: add a new key (`facehub key new`) to every node's \
             decryption_keys, then make it encryption_key there with the old key in \
             decryption_keys, then run `facehub key reseal` (README, \"Rotating a shared key\")"
        );
        let path = self.config.key_file();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading key file {}", path.display()))?;
        let line = crypto::new_key_line();
        let new = Key::from_base64(&line)?;
        // The file first (it is the authority: a crash before the meta
        // update is mended at the next start), then the marker servers watch.
        write_key_file(&path, &format!("{line}\n{}", text.trim_start()))?;
        self.keys.reload(&path)?;
        let id = crypto::key_id_hex(new.id());
        retry_busy(|| self.db.meta_set("key_id", &id)).await?;
        let mut r = Rotation {
            key_id: crypto::key_id_hex(new.id()),
            ..Rotation::default()
        };
        self.reseal_all_retrying(&mut r).await?;
        if lock.is_some() {
            self.retire_keys(&path, &mut r).await?;
        } else {
            // What the server sealed before it took up the new key.
            tokio::time::sleep(settle).await;
            self.reseal_all_retrying(&mut r).await?;
            r.remaining = self.count_not_current().await?;
            r.retire_at_restart = true;
        }
        Ok(r)
    }

    /// `facehub key reseal`: re-seals what is still under an older key
    /// (after every node's `encryption_key` changed, or to finish a
    /// rotation) and counts what is left under one, which a node still
    /// sealing under an older key keeps adding to. With a key file and no
    /// server running on the data directory, retires the keys nothing
    /// needs any more, as a rotation does.
    pub async fn reseal_keys(&self) -> anyhow::Result<Rotation> {
        let lock = crate::store::lock_data_dir(&self.config.data_dir).ok();
        // With keys from the configuration, a command run with an outdated
        // one would move everything back to the old key.
        let current = crypto::key_id_hex(self.keys.current().id());
        let serving = self.db.meta_get("key_id").await?;
        anyhow::ensure!(
            self.config.encryption_key.is_none() || serving.as_deref() == Some(current.as_str()),
            "this configuration's encryption_key (id {current}) is not the key the last server \
             started seals under (id {}); run key reseal with the configuration the nodes now \
             have, once every node has restarted with it",
            serving.as_deref().unwrap_or("none")
        );
        let mut r = Rotation {
            key_id: crypto::key_id_hex(self.keys.current().id()),
            ..Rotation::default()
        };
        self.reseal_all_retrying(&mut r).await?;
        if lock.is_some() && self.config.encryption_key.is_none() {
            self.retire_keys(&self.config.key_file(), &mut r).await?;
        } else {
            r.remaining = self.count_not_current().await?;
        }
        Ok(r)
    }

    /// At start-up, before serving: re-seals what an interrupted rotation
    /// (or a server that was still writing under the old key) left, and
    /// retires keys nothing needs. Returns the ids retired.
    pub async fn finish_rotation(&self) -> anyhow::Result<Vec<String>> {
        if self.config.encryption_key.is_some() {
            return Ok(Vec::new());
        }
        let path = self.config.key_file();
        let text = std::fs::read_to_string(&path)?;
        if crypto::parse_key_file(&text)?.len() < 2 {
            return Ok(Vec::new());
        }
        let mut r = Rotation::default();
        self.reseal_all(&mut r).await?;
        self.retire_keys(&path, &mut r).await?;
        Ok(r.retired)
    }

    async fn count_not_current(&self) -> anyhow::Result<u64> {
        let current = self.keys.current().id();
        let usage = self.db.key_usage().await?;
        Ok(usage
            .iter()
            .filter(|(k, _)| **k != current)
            .map(|(_, n)| n)
            .sum())
    }

    /// A pass is idempotent (it picks what is still under an older key), so
    /// one that meets a busy database (a server writing hard on the same
    /// directory) is simply run again.
    async fn reseal_all_retrying(&self, r: &mut Rotation) -> anyhow::Result<()> {
        let mut tries = 0;
        loop {
            match self.reseal_all(r).await {
                Err(e) if is_busy(&e) && tries < 20 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100 * tries)).await;
                }
                other => return other,
            }
        }
    }

    async fn reseal_all(&self, r: &mut Rotation) -> anyhow::Result<()> {
        let current = self.keys.current();
        let mut after = String::new();
        loop {
            let page = self
                .db
                .files_not_under_key(current.id(), &after, PAGE)
                .await?;
            let Some((last, _)) = page.last() else { break };
            after = last.clone();
            for (id, old_sha) in page {
                let Some((sha, key_id)) = self.blobs.reseal(&id).await? else {
                    continue; // deleted meanwhile
                };
                if self.db.set_file_seal(&id, &old_sha, &sha, key_id).await? {
                    r.blobs_resealed += 1;
                } else if !self
                    .db
                    .known_file_ids(std::slice::from_ref(&id))
                    .await?
                    .is_empty()
                {
                    tracing::warn!(file_id = %id, "a file changed while it was re-sealed");
                } else {
                    // Erased while we re-sealed it: do not leave it behind.
                    self.drop_blob(&id).await?;
                }
            }
        }
        for col in SEALED_COLUMNS {
            let mut pages = self.db.sealed_values(col, PAGE);
            while let Some(page) = pages.next().await? {
                let keys = self.keys.clone();
                let current = current.clone();
                let updates = tokio::task::spawn_blocking(move || {
                    page.into_iter()
                        .filter(|v| {
                            keys.key_of_small(&v.sealed)
                                .is_none_or(|k| k.id() != current.id())
                        })
                        .map(|v| {
                            let plain = keys
                                .open_small(&v.aad, &v.sealed)
                                .with_context(|| format!("opening {}", v.label))?;
                            let sealed = keys.seal_small(&v.aad, &plain);
                            let digest = v
                                .digest
                                .as_ref()
                                .map(|_| template_digest(current.digest_key(), &plain));
                            anyhow::Ok((v, sealed, digest))
                        })
                        .collect::<anyhow::Result<Vec<_>>>()
                })
                .await??;
                if !updates.is_empty() {
                    r.values_resealed += self.db.reseal_values(col, &updates).await?;
                }
            }
        }
        Ok(())
    }

    /// Removes from the key file every older key nothing is sealed under.
    async fn retire_keys(&self, path: &std::path::Path, r: &mut Rotation) -> anyhow::Result<()> {
        let current = self.keys.current().id();
        let usage = self.db.key_usage().await?;
        r.remaining = usage
            .iter()
            .filter(|(k, _)| **k != current)
            .map(|(_, n)| n)
            .sum();
        let text = std::fs::read_to_string(path)?;
        let mut kept = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if line.starts_with('#') {
                kept.push(line.to_string());
                continue;
            }
            let id = Key::from_base64(line)?.id();
            if id == current || usage.get(&id).copied().unwrap_or(0) > 0 {
                kept.push(line.to_string());
            } else {
                r.retired.push(crypto::key_id_hex(id));
            }
        }
        if !r.retired.is_empty() {
            write_key_file(path, &kept.join("\n"))?;
        }
        Ok(())
    }

    /// Takes up a key rotated by another process: called every second by
    /// a running server.
    pub async fn watch_key(&self) -> anyhow::Result<()> {
        if self.config.encryption_key.is_some() {
            return Ok(());
        }
        let recorded = self.db.meta_get("key_id").await?;
        if recorded.is_some_and(|r| r != crypto::key_id_hex(self.keys.current().id())) {
            self.keys.reload(&self.config.key_file())?;
            tracing::info!(
                key_id = %crypto::key_id_hex(self.keys.current().id()),
                "took up a rotated encryption key"
            );
        }
        Ok(())
    }
}

/// SQLite's "database is locked": another process holds the write lock
/// past the busy timeout, or a read snapshot went stale.
fn is_busy(e: &anyhow::Error) -> bool {
    format!("{e:#}").contains("database is locked")
}

async fn retry_busy<F, Fut>(mut op: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut tries = 0;
    loop {
        match op().await {
            Err(e) if is_busy(&e) && tries < 20 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100 * tries)).await;
            }
            other => return other,
        }
    }
}

/// Replaces the key file atomically (mode 0600, fsynced).
fn write_key_file(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("key.new");
    let _ = std::fs::remove_file(&tmp);
    crypto::write_secret_file(&tmp, format!("{}\n", text.trim_end()).as_bytes())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    if let Some(dir) = path.parent() {
        crate::durable::sync_dir(dir)?;
    }
    Ok(())
}
