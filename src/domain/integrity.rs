//! `facehub check`: proves that what the metadata promises is stored and
//! intact, and that nothing is stored that the metadata does not know.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;

use super::Core;
use super::devices::check_secret_no;
use super::devices::sync::template_digest;
use crate::store::sealed::BlobVerdict;
use crate::store::sealed_values::SEALED_COLUMNS;

const PAGE: i64 = 500;
/// Blobs read at once: on object storage each read is a round trip, and
/// one at a time leaves `check` waiting on the network rather than the
/// disk or the CPU.
const READS_AT_ONCE: usize = 8;

/// A blob or value found wrong, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    pub id: String,
    pub why: String,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct CheckReport {
    /// Files the metadata holds, by kind.
    pub files: std::collections::BTreeMap<String, u64>,
    /// Blobs read in full, digested and decrypted.
    pub blobs_checked: u64,
    pub blob_bytes: u64,
    /// Files whose blob is gone.
    pub missing: Vec<String>,
    /// Blobs whose bytes differ from their digest or do not decrypt.
    pub corrupt: Vec<Problem>,
    /// Blobs no file refers to (an upload never acknowledged).
    pub unreferenced: Vec<String>,
    /// Blobs no file refers to yet, younger than `orphan_grace_secs` in a
    /// store shared by nodes: uploads perhaps still committing elsewhere.
    pub recent: usize,
    /// Door-access face files no door-access user refers to.
    pub dangling: Vec<String>,
    /// Temporary files of uploads interrupted (or, with a server running,
    /// in progress).
    pub temporary: usize,
    /// Sealed metadata values opened (file names, templates, device
    /// secrets, tokens).
    pub sealed_checked: u64,
    pub sealed_bad: Vec<Problem>,
    /// Stored biometric writes (attendance photos, their bindings, door
    /// faces, templates) made since `audit_complete_since` without their
    /// audit record: `action tenant:<id> <object>`.
    pub unaudited: Vec<String>,
    /// Terminals whose SecretNo is below today's minimum strength (added
    /// before it was enforced): a warning, not a fault of the store, so
    /// not counted in [`CheckReport::problems`]. Such a terminal's
    /// SecretNo can be guessed; replace the terminal or watch its
    /// `register` failures.
    pub weak_secret_nos: Vec<Problem>,
}

impl CheckReport {
    pub fn problems(&self) -> usize {
        self.missing.len()
            + self.corrupt.len()
            + self.unreferenced.len()
            + self.dangling.len()
            + self.sealed_bad.len()
            + self.unaudited.len()
    }
}

impl Core {
    /// Reads every blob and every sealed value, and finds what the start-up
    /// sweep deletes ([`Core::unreferenced_blobs`], [`Core::dangling_faces`]).
    /// A blob that looks unreferenced is looked at again after `settle`:
    /// with a server running, an upload's blob is finished just before its
    /// row commits.
    pub async fn check(&self, settle: Duration) -> anyhow::Result<CheckReport> {
        let mut report = CheckReport::default();
        let mut pages = self.db.file_digests(PAGE);
        while let Some(page) = pages.next().await? {
            // In the page's order, so that the report lists problems as
            // the metadata does.
            let mut verdicts = futures_util::stream::iter(page)
                .map(|(id, kind, sha)| async move {
                    let verdict = self.blobs.verify(&id, &sha).await;
                    (id, kind, verdict)
                })
                .buffered(READS_AT_ONCE);
            while let Some((id, kind, verdict)) = verdicts.next().await {
                *report.files.entry(kind).or_default() += 1;
                match verdict? {
                    BlobVerdict::Sound { sealed_bytes } => {
                        report.blobs_checked += 1;
                        report.blob_bytes += sealed_bytes;
                    }
                    BlobVerdict::Missing => report.missing.push(id),
                    BlobVerdict::Corrupt(why) => {
                        report.blobs_checked += 1;
                        report.corrupt.push(Problem { id, why });
                    }
                }
            }
        }
        // Found as the start-up sweep finds them. In a store other nodes
        // write to, a young unreferenced blob may be an upload about to
        // commit: counted, not reported as a problem.
        let found = self.unreferenced_blobs(self.orphan_grace(), false).await?;
        report.recent = found.recent;
        let mut candidates = found.keys;
        let mut dangling = self.dangling_faces().await?;
        let suspects = !candidates.is_empty() || !dangling.is_empty();
        if suspects && !settle.is_zero() {
            tokio::time::sleep(settle).await;
            let now: HashSet<String> = self.dangling_faces().await?.into_iter().collect();
            dangling.retain(|d| now.contains(d));
            let known: HashSet<String> = self
                .db
                .known_file_ids(&candidates)
                .await?
                .into_iter()
                .collect();
            let still: HashSet<String> = self.blobs.store().keys().await?.into_iter().collect();
            candidates.retain(|k| !known.contains(k) && still.contains(k));
        }
        report.unreferenced = candidates;
        report.dangling = dangling;
        report.temporary = self.blobs.store().incomplete().await?;
        self.check_sealed_values(&mut report).await?;
        let since: i64 = self
            .db
            .meta_get("audit_complete_since")
            .await?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        report.unaudited = self
            .db
            .unaudited_writes(since)
            .await?
            .into_iter()
            .map(|(action, tenant, object)| format!("{action} tenant:{tenant} {object}"))
            .collect();
        report
            .unaudited
            .extend(self.unaudited_templates(since).await?);
        Ok(report)
    }

    /// Stored templates that no `template.upload` record of their person
    /// names. A record's object lists the slots it wrote, space-separated
    /// (`fa/<algorithm>:<slot>`, a deleted one followed by ` deleted`); a
    /// slot counts as named where it stands between spaces or the ends and
    /// is not followed by ` deleted`.
    async fn unaudited_templates(&self, since: i64) -> anyhow::Result<Vec<String>> {
        let mut named: HashMap<(i64, String), Vec<String>> = HashMap::new();
        for (tenant, subject, object) in self.db.audited("template.upload").await? {
            named.entry((tenant, subject)).or_default().push(object);
        }
        let is_named = |objects: &[String], slot: &str| {
            objects.iter().any(|o| {
                o.match_indices(slot).any(|(at, _)| {
                    let before = at == 0 || o.as_bytes()[at - 1] == b' ';
                    let rest = &o[at + slot.len()..];
                    before
                        && (rest.is_empty() || rest.starts_with(' '))
                        && !rest.starts_with(" deleted")
                })
            })
        };
        let mut missing: Vec<String> = self
            .db
            .stored_template_slots(since)
            .await?
            .into_iter()
            .filter(|(tenant, user, slot)| {
                !named
                    .get(&(*tenant, user.clone()))
                    .is_some_and(|objects| is_named(objects, slot))
            })
            .map(|(tenant, user, slot)| format!("template.upload tenant:{tenant} {user} {slot}"))
            .collect();
        missing.sort();
        Ok(missing)
    }

    async fn check_sealed_values(&self, report: &mut CheckReport) -> anyhow::Result<()> {
        for col in SEALED_COLUMNS {
            let mut pages = self.db.sealed_values(col, PAGE);
            while let Some(page) = pages.next().await? {
                report.sealed_checked += page.len() as u64;
                let keys = self.keys.clone();
                // Decrypting thousands of templates is CPU work.
                let secret_nos = col.table == "devices" && col.column == "secret_no";
                let (bad, weak) = tokio::task::spawn_blocking(move || {
                    let (mut bad, mut weak) = (Vec::new(), Vec::new());
                    for v in &page {
                        let why = match keys.open_small(&v.aad, &v.sealed) {
                            Err(e) => format!("does not decrypt: {e:#}"),
                            Ok(plain) => {
                                if secret_nos
                                    && let Err(why) =
                                        check_secret_no(&String::from_utf8_lossy(&plain))
                                {
                                    // The AAD names the device: `device:<sn>:secret_no`.
                                    let aad = String::from_utf8_lossy(&v.aad);
                                    let sn = aad
                                        .strip_prefix("device:")
                                        .and_then(|a| a.strip_suffix(":secret_no"))
                                        .unwrap_or(&aad);
                                    weak.push(Problem {
                                        id: sn.to_string(),
                                        why,
                                    });
                                }
                                let Some(expected) = v.digest.as_ref() else {
                                    continue;
                                };
                                let key = keys.key_of_small(&v.sealed).expect("it opened");
                                let actual = template_digest(key.digest_key(), &plain);
                                if &actual == expected {
                                    continue;
                                }
                                "its digest does not match its content".to_string()
                            }
                        };
                        bad.push(Problem {
                            id: v.label.clone(),
                            why,
                        });
                    }
                    (bad, weak)
                })
                .await?;
                report.weak_secret_nos.extend(weak);
                report.sealed_bad.extend(bad);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::domain::testing::core;
    use crate::domain::{PhotoName, Scope, TokenKind};

    /// A store with a photo, a device and a token, and the photo's id.
    async fn populated() -> (tempfile::TempDir, Arc<Core>, String) {
        let (dir, core) = core().await;
        let core = Arc::new(core);
        let t = core.create_tenant("acme").await.unwrap();
        let app = core
            .create_app(&t, &[Scope::parse("attendance:rule").unwrap()])
            .await
            .unwrap();
        core.token_for(&app.app, TokenKind::Tenant).await.unwrap();
        core.add_device(&t, "SN1", "integrity-factory-secret")
            .await
            .unwrap();
        let caller = caller(t.id, &app.app.app_id);
        let file_id = store_photo(&core, &caller, 400).await;
        (dir, core, file_id)
    }

    fn caller(tenant_id: i64, app_id: &str) -> crate::domain::auth::Caller {
        crate::domain::auth::Caller {
            tenant_id,
            app_id: app_id.into(),
            scopes: Vec::new(),
            person_id: None,
            log_id: None,
        }
    }

    /// One flipped bit in the blob's last chunk.
    fn flip_bit(path: &std::path::Path) {
        let mut raw = std::fs::read(path).unwrap();
        let n = raw.len();
        raw[n - 3] ^= 1;
        std::fs::write(path, &raw).unwrap();
    }

    async fn store_photo(
        core: &Arc<Core>,
        caller: &crate::domain::auth::Caller,
        side: u32,
    ) -> String {
        let photo = crate::image::samples::png(side, side);
        let body = futures_util::stream::iter([Ok(Bytes::from(photo))]);
        core.store_attendance_photo(caller, &PhotoName::parse("a.png").unwrap(), body, ())
            .await
            .unwrap()
            .file_id
    }

    fn blob_path(dir: &std::path::Path, id: &str) -> std::path::PathBuf {
        dir.join("blobs").join(&id[id.len() - 2..]).join(id)
    }

    #[tokio::test]
    async fn a_sound_store_checks_clean() {
        let (_dir, core, _) = populated().await;
        let r = core.check(Duration::ZERO).await.unwrap();
        assert_eq!(r.problems(), 0, "{r:?}");
        assert_eq!(r.blobs_checked, 1);
        assert!(r.blob_bytes > 0);
        // The file name, the device's SecretNo and the token.
        assert_eq!(r.sealed_checked, 3, "{r:?}");
    }

    /// A photo and its binding are recorded in the audit log with the row
    /// they write; a record missing (as a crash between two commits used
    /// to leave it) is a problem the check names.
    #[tokio::test]
    async fn writes_without_their_audit_record_are_reported() {
        let (_dir, core, file_id) = populated().await;
        let t = core.tenant("acme").await.unwrap();
        let tenant_id = t.id;
        let d = crate::domain::PersonDraft::new("u1", "U One", None).unwrap();
        core.upsert_person(&t, &d).await.unwrap();
        let caller = caller(tenant_id, "cli_test");
        core.modify_user_setting(
            &caller,
            crate::domain::people::EmployeeType::EmployeeId,
            "u1",
            &file_id,
            None,
            None,
        )
        .await
        .unwrap();
        let r = core.check(Duration::ZERO).await.unwrap();
        assert!(r.unaudited.is_empty(), "{r:?}");
        sqlx::query("DELETE FROM audit_log WHERE action IN ('photo.upload', 'photo.bind')")
            .execute(core.db.pool().unwrap())
            .await
            .unwrap();
        let r = core.check(Duration::ZERO).await.unwrap();
        assert_eq!(
            r.unaudited,
            [
                format!("photo.bind tenant:{tenant_id} {file_id}"),
                format!("photo.upload tenant:{tenant_id} {file_id}"),
            ]
        );
        assert_eq!(r.problems(), 2);
        // Writes from before the store held every write to its record (an
        // upgraded deployment) are not held to it.
        core.db
            .meta_set("audit_complete_since", &(core.now() + 10).to_string())
            .await
            .unwrap();
        let r = core.check(Duration::ZERO).await.unwrap();
        assert!(r.unaudited.is_empty(), "{r:?}");
    }

    #[tokio::test]
    async fn weak_secret_nos_are_warned_of() {
        let (_dir, core, _) = populated().await;
        // A terminal added before the minimum strength was enforced.
        let tenant_id = core.db.device("SN1").await.unwrap().unwrap().tenant_id;
        let sealed = core.keys.seal_small(b"device:OLD-1:secret_no", b"1234");
        core.db
            .insert_device("OLD-1", tenant_id, &sealed, None, core.now())
            .await
            .unwrap();
        let r = core.check(Duration::ZERO).await.unwrap();
        assert_eq!(r.problems(), 0, "{r:?}");
        assert_eq!(r.weak_secret_nos.len(), 1, "{r:?}");
        assert_eq!(r.weak_secret_nos[0].id, "OLD-1");
        assert!(r.weak_secret_nos[0].why.contains("it has 4"), "{r:?}");
    }

    #[tokio::test]
    async fn damage_of_every_kind_is_reported() {
        let (dir, core, id) = populated().await;
        let path = blob_path(dir.path(), &id);
        assert!(path.exists(), "blob layout changed: {}", path.display());
        flip_bit(&path);
        // A blob no file refers to, and an interrupted upload.
        let orphan = blob_path(dir.path(), "att_0123456789abcdef0123456789ab");
        std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
        std::fs::write(&orphan, b"x").unwrap();
        std::fs::write(dir.path().join("tmp/x.1.part"), b"half").unwrap();
        // A sealed value moved to another row fails its associated data.
        sqlx::query("UPDATE devices SET secret_no = (SELECT file_name FROM files)")
            .execute(core.db.pool().unwrap())
            .await
            .unwrap();
        let r = core.check(Duration::ZERO).await.unwrap();
        assert_eq!(r.corrupt.len(), 1, "{r:?}");
        assert_eq!(r.corrupt[0].id, id);
        assert_eq!(r.unreferenced, ["att_0123456789abcdef0123456789ab"]);
        assert_eq!(r.temporary, 1);
        assert_eq!(r.sealed_bad.len(), 1, "{r:?}");
        assert!(r.sealed_bad[0].id.starts_with("devices.secret_no"));

        // And a blob that is gone.
        std::fs::remove_file(&path).unwrap();
        let r = core.check(Duration::ZERO).await.unwrap();
        assert_eq!(r.missing, [id]);
        assert!(r.corrupt.is_empty());
    }

    /// Blobs are read several at once; what each verdict says still lands
    /// on its own file, in the metadata's order.
    #[tokio::test]
    async fn blobs_read_at_once_are_each_judged_as_themselves() {
        let (dir, core, first) = populated().await;
        let caller = caller(core.tenant("acme").await.unwrap().id, "cli_test");
        let mut ids = vec![first];
        for side in 0..2 * READS_AT_ONCE as u32 {
            ids.push(store_photo(&core, &caller, 200 + side).await);
        }
        ids.sort();
        // The metadata pages by file id: damage two, remove one.
        flip_bit(&blob_path(dir.path(), &ids[1]));
        flip_bit(&blob_path(dir.path(), &ids[READS_AT_ONCE + 3]));
        std::fs::remove_file(blob_path(dir.path(), &ids[5])).unwrap();
        let r = core.check(Duration::ZERO).await.unwrap();
        let corrupt: Vec<&str> = r.corrupt.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(corrupt, [&ids[1], &ids[READS_AT_ONCE + 3]], "{r:?}");
        assert_eq!(r.missing, [ids[5].clone()]);
        assert_eq!(r.blobs_checked, ids.len() as u64 - 1);
        assert_eq!(r.files["attendance_photo"], ids.len() as u64);
    }
}
