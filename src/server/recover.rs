//! The start-up sweep: what a crash can leave behind, cleared before the
//! first request.

use super::blobs::BLOB_EPOCH;
use crate::domain::Core;

/// Counts this start in the shared store's epoch; true when another data
/// directory has used the namespace since this one last started. Such a
/// data directory (a restored backup, a copy) must not act on its intents:
/// the live one may have committed those uploads or kept those files since.
async fn namespace_moved_on(core: &Core) -> anyhow::Result<bool> {
    let store = core.blobs.store();
    let ours: u64 = core
        .db
        .meta_get(BLOB_EPOCH)
        .await?
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    let theirs = store.epoch().await?;
    let next = ours.max(theirs) + 1;
    store.set_epoch(next).await?;
    core.db.meta_set(BLOB_EPOCH, &next.to_string()).await?;
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

/// Clears what a crash can leave behind: temporary files of unfinished
/// uploads, and blobs whose metadata was never committed (never
/// acknowledged, so never visible).
pub(super) async fn recover(core: &Core) -> anyhow::Result<()> {
    let retired = core.finish_rotation().await?;
    if !retired.is_empty() {
        tracing::info!(keys = ?retired, "retired encryption keys nothing is sealed under any more");
    }
    let store = core.blobs.store();
    store.probe().await?;
    let swept = store.sweep_incomplete().await?;
    // Faces stored but never recorded against a person (deleting their
    // rows dooms their blobs, which go below).
    let dangling = core.db.dangling_face_files().await?;
    for id in &dangling {
        core.db.delete_file(id).await?;
    }
    // Keys whose blobs no row protects: doomed ones (their rows were
    // deleted) at once, uploads' once older than the grace (younger ones
    // may be another node's upload about to commit).
    let grace = core.orphan_grace();
    let limits = &core.config.limits;
    let slowest = limits.upload_deadline_secs + limits.decode_wait_secs;
    if store.shared() && grace.as_secs() <= slowest {
        tracing::warn!(
            orphan_grace_secs = grace.as_secs(),
            slowest_upload_secs = slowest,
            "orphan_grace_secs is not above upload_deadline_secs + decode_wait_secs: another \
             node's start-up sweep may claim a slow upload, which then fails"
        );
    }
    let behind = store.shared() && namespace_moved_on(core).await?;
    let cutoff = core.now() - i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
    let mut orphans = 0;
    let due = if behind {
        Vec::new()
    } else {
        core.db.intents_due(cutoff).await?
    };
    for (key, at) in due {
        // An upload's intent is claimed first: after that its upload can
        // no longer commit a row for this blob.
        if at != 0 && !core.db.intent_doom(&key, at).await? {
            continue;
        }
        let unreferenced = core
            .db
            .known_file_ids(std::slice::from_ref(&key))
            .await?
            .is_empty();
        if unreferenced {
            core.drop_blob(&key).await?;
            orphans += 1;
        } else {
            core.db.intent_remove(&key).await?;
        }
    }
    // The data directory is this server's alone (its lock is held), so in
    // the local store any other unreferenced blob is a crash's leftover. In
    // a shared store it may be another deployment's: `check` reports it.
    let mut strays = 0;
    if !store.shared() {
        // Listed before the rows are read: a blob committed in between is
        // then known, never taken for an orphan.
        let listed = store.list().await?;
        let known: std::collections::HashSet<String> =
            core.db.file_ids().await?.into_iter().collect();
        for b in listed {
            if !known.contains(&b.key) {
                core.blobs.delete(&b.key).await?;
                orphans += 1;
            }
        }
    } else {
        let known: std::collections::HashSet<String> =
            core.db.file_ids().await?.into_iter().collect();
        let pending: std::collections::HashSet<String> =
            core.db.intent_keys().await?.into_iter().collect();
        let now = std::time::SystemTime::now();
        strays = store
            .list()
            .await?
            .iter()
            .filter(|b| !known.contains(&b.key) && !pending.contains(&b.key))
            .filter(|b| now.duration_since(b.modified).unwrap_or_default() >= grace)
            .count();
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
