//! What a crash can leave behind, found in one place: blobs no file row
//! refers to, door-access faces no person refers to, uploads' intents past
//! their grace. `facehub check` ([`Core::check`]) reports what
//! [`Core::unreferenced_blobs`] and [`Core::dangling_faces`] find; the
//! start-up sweep ([`Core::recover`]) deletes it before the first request.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use super::Core;

/// Meta key of the start count compared with the shared store's epoch.
const BLOB_EPOCH: &str = "blob_epoch";

/// Stored blobs no file row refers to.
#[derive(Debug, Default)]
pub struct Unreferenced {
    /// At least as old as the grace, sorted.
    pub keys: Vec<String>,
    /// Younger than the grace: in a store other nodes write to, perhaps
    /// uploads about to commit elsewhere.
    pub recent: usize,
}

impl Core {
    /// Lists the blob store, then reads which keys rows protect: file rows,
    /// and with `spare_pending` the intents of uploads still pending (read
    /// before the rows, as an upload's row commits as its intent goes).
    /// Listing first means a blob committed in between is known, never
    /// taken for unreferenced.
    pub async fn unreferenced_blobs(
        &self,
        grace: Duration,
        spare_pending: bool,
    ) -> anyhow::Result<Unreferenced> {
        let listed = self.blobs.store().list().await?;
        let mut known: HashSet<String> = if spare_pending {
            self.db.intent_keys().await?.into_iter().collect()
        } else {
            HashSet::new()
        };
        known.extend(self.db.file_ids().await?);
        let now = SystemTime::now();
        let mut found = Unreferenced::default();
        for b in listed.into_iter().filter(|b| !known.contains(&b.key)) {
            if now.duration_since(b.modified).unwrap_or_default() < grace {
                found.recent += 1;
            } else {
                found.keys.push(b.key);
            }
        }
        found.keys.sort();
        Ok(found)
    }

    /// Door-access faces stored but recorded against no person (a crash
    /// between storing a face and recording it).
    pub async fn dangling_faces(&self) -> anyhow::Result<Vec<String>> {
        self.db.dangling_face_files().await
    }

    /// Counts this start in the shared store's epoch; true when another
    /// data directory has used the namespace since this one last started.
    /// Such a data directory (a restored backup, a copy) must not act on
    /// its intents: the live one may have committed those uploads or kept
    /// those files since.
    async fn namespace_moved_on(&self) -> anyhow::Result<bool> {
        let store = self.blobs.store();
        let ours: u64 = self
            .db
            .meta_get(BLOB_EPOCH)
            .await?
            .and_then(|e| e.parse().ok())
            .unwrap_or(0);
        let theirs = store.epoch().await?;
        let next = ours.max(theirs) + 1;
        store.set_epoch(next).await?;
        self.db.meta_set(BLOB_EPOCH, &next.to_string()).await?;
        if theirs > ours {
            tracing::warn!(
                ours,
                theirs,
                "another data directory has used this bucket namespace since this one last \
                 started (a restored backup or a copy?); the sweep deletes nothing this time"
            );
        }
        Ok(theirs > ours)
    }

    /// The start-up sweep, run by a server holding the data directory's
    /// lock: clears temporary files of unfinished uploads, and blobs whose
    /// metadata was never committed (never acknowledged, so never visible).
    pub async fn recover(&self) -> anyhow::Result<()> {
        let retired = self.finish_rotation().await?;
        if !retired.is_empty() {
            tracing::info!(keys = ?retired, "retired encryption keys nothing is sealed under any more");
        }
        let store = self.blobs.store();
        store.probe().await?;
        let swept = store.sweep_incomplete().await?;
        // Faces stored but never recorded against a person (deleting their
        // rows dooms their blobs, which go below).
        let dangling = self.dangling_faces().await?;
        for id in &dangling {
            self.db.delete_file(id).await?;
        }
        // Keys whose blobs no row protects: doomed ones (their rows were
        // deleted) at once, uploads' once older than the grace (younger ones
        // may be another node's upload about to commit).
        let grace = self.orphan_grace();
        let limits = &self.config.limits;
        let slowest = limits.upload_deadline_secs + limits.decode_wait_secs;
        if store.shared() && grace.as_secs() <= slowest {
            tracing::warn!(
                orphan_grace_secs = grace.as_secs(),
                slowest_upload_secs = slowest,
                "orphan_grace_secs is not above upload_deadline_secs + decode_wait_secs: another \
                 node's start-up sweep may claim a slow upload, which then fails"
            );
        }
        let behind = store.shared() && self.namespace_moved_on().await?;
        let cutoff = self.now() - i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
        let mut orphans = 0;
        let due = if behind {
            Vec::new()
        } else {
            self.db.intents_due(cutoff).await?
        };
        for (key, at) in due {
            // An upload's intent is claimed first: after that its upload can
            // no longer commit a row for this blob.
            if at != 0 && !self.db.intent_doom(&key, at).await? {
                continue;
            }
            let unreferenced = self
                .db
                .known_file_ids(std::slice::from_ref(&key))
                .await?
                .is_empty();
            if unreferenced {
                self.drop_blob(&key).await?;
                orphans += 1;
            } else {
                self.db.intent_remove(&key).await?;
            }
        }
        // The data directory is this server's alone (its lock is held), so in
        // the local store any other unreferenced blob, whatever its age, is a
        // crash's leftover. In a shared store it may be another deployment's:
        // `check` reports it.
        let mut strays = 0;
        if !store.shared() {
            for key in self.unreferenced_blobs(Duration::ZERO, false).await?.keys {
                self.blobs.delete(&key).await?;
                orphans += 1;
            }
        } else {
            strays = self.unreferenced_blobs(grace, true).await?.keys.len();
        }
        if strays > 0 {
            tracing::warn!(
                objects = strays,
                "the bucket holds objects this data directory never recorded; left in place \
                 (facehub check lists them as unreferenced)"
            );
        }
        if swept + orphans + dangling.len() > 0 {
            tracing::warn!(
                temporary = swept,
                unacknowledged = orphans,
                dangling_faces = dangling.len(),
                "start-up sweep removed temporary files and blobs of uploads never acknowledged"
            );
        } else {
            tracing::info!("start-up sweep: nothing left behind by an earlier run");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
