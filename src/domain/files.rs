//! Stored images, whatever surface they came through: one intake (stream,
//! validate, seal, make durable, record) and one way back out.
//!
//! An upload goes through three steps, and only the last makes it visible:
//! 1. [`Core::receive_image`] streams the bytes through the [`Probe`] into a
//!    sealed temporary blob; memory stays bounded by one chunk.
//! 2. The caller checks what depends on other fields (a name's extension
//!    against the probed format) and either commits or drops the upload.
//! 3. [`Core::commit_image`] makes the blob durable, decodes it in full
//!    (bounded by the decode slots), and records its metadata. A file that
//!    fails to decode is deleted again; a crash before the metadata row
//!    leaves an unreferenced blob that start-up recovery removes.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::audit::AuditEvent;
use super::{Core, FileId, FileRecord};
use crate::image::{ImageError, ImageFormat, ImageInfo, ImageRules, Probe, Probed};
use crate::model::error::{Error, Result};
use crate::store::sealed::{PlainStream, SealedWriter};

pub use crate::model::files::FileKind;

impl From<ImageError> for Error {
    fn from(e: ImageError) -> Self {
        Error::InvalidParam(e.to_string())
    }
}

/// Associated data binding a sealed file name to its file.
fn name_aad(file_id: &str) -> String {
    format!("file_name:{file_id}")
}

/// What a committed upload is recorded as: its tenant, kind and name,
/// and the upload's record of success, committed with the file's row (its
/// `object` set to the file id) so that no crash leaves a stored file
/// without its record.
pub struct Filing<'a> {
    tenant_id: i64,
    kind: FileKind,
    file_name: &'a str,
    audit: Option<AuditEvent>,
}

impl<'a> Filing<'a> {
    /// An upload that is not audited (not biometric data).
    pub fn new(tenant_id: i64, kind: FileKind, file_name: &'a str) -> Self {
        Self {
            tenant_id,
            kind,
            file_name,
            audit: None,
        }
    }

    pub fn audited(self, event: AuditEvent) -> Self {
        Self {
            audit: Some(event),
            ..self
        }
    }
}

/// The intent of an upload to a shared store while its bytes are still
/// spooled locally (nothing of it can be in the store yet): dropped with
/// the upload — refused, aborted, or cut off by the client — it is
/// forgotten. `commit_image` disarms it before sending the bytes.
struct Intent {
    db: crate::store::Db,
    key: String,
    at: i64,
    armed: bool,
}

impl Intent {
    /// From here on the intent stays until the row commits or the blob is
    /// deleted.
    fn keep(mut self) -> i64 {
        self.armed = false;
        self.at
    }
}

impl Drop for Intent {
    fn drop(&mut self) {
        if self.armed
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let (db, key) = (self.db.clone(), std::mem::take(&mut self.key));
            rt.spawn(async move {
                if let Err(e) = db.intent_remove(&key).await {
                    tracing::warn!(error = %e, "forgetting an abandoned upload's intent");
                }
            });
        }
    }
}

/// An upload whose bytes passed the streaming checks and sit sealed in a
/// temporary blob. Dropping it without [`Core::commit_image`] or
/// [`StagedImage::discard`] leaves the temporary blob to the writer's own
/// clean-up.
pub struct StagedImage {
    file_id: FileId,
    /// The upload's intent, when the store is shared.
    intent: Option<Intent>,
    writer: SealedWriter,
    rules: ImageRules,
    pub probed: Probed,
}

impl StagedImage {
    pub fn format(&self) -> ImageFormat {
        self.probed.format
    }

    pub async fn discard(self) {
        self.writer.abort().await
    }
}

/// A stored file ready to be streamed back.
pub struct FileDownload {
    pub record: FileRecord,
    pub format: ImageFormat,
    pub body: PlainStream,
}

/// MiB a decode may hold: the file, plus 8 bytes per pixel (the output
/// and the decoders' working planes, e.g. progressive JPEG coefficients),
/// at the largest size the rules allow when the header did not say.
fn decode_estimate_mib(probed: &Probed, rules: &ImageRules) -> u64 {
    let (w, h) = probed.dims.unwrap_or((rules.max_side, rules.max_side));
    let bytes = probed.size + 8 * u64::from(w) * u64::from(h);
    bytes.div_ceil(1024 * 1024)
}

impl Core {
    /// An upload refused by an image rule, counted by rule.
    fn refuse(&self, e: ImageError) -> Error {
        self.metrics.upload_refused(e.rule());
        e.into()
    }

    /// Step 1: streams an upload into a sealed temporary blob, checking it
    /// with `rules` as the bytes arrive. Fails (and leaves nothing behind)
    /// as soon as a rule is broken or the body fails.
    pub async fn receive_image<S>(&self, rules: ImageRules, body: S) -> Result<StagedImage>
    where
        S: Stream<Item = Result<Bytes>> + Send,
    {
        let file_id = FileId::generate();
        // In a shared store the sweep deletes only what it was told about:
        // say so before the first byte is sent.
        let intent = if self.blobs.store().shared() {
            let at = self.now();
            self.db.intent_add(file_id.as_str(), at).await?;
            Some(Intent {
                db: self.db.clone(),
                key: file_id.as_str().to_string(),
                at,
                armed: true,
            })
        } else {
            None
        };
        let mut writer = self
            .blobs
            .create(file_id.as_str())
            .await
            .map_err(Error::from)?;
        let mut probe = Probe::new(rules);
        let mut body = std::pin::pin!(body);
        let outcome: Result<()> = async {
            while let Some(piece) = body.next().await {
                let piece = piece?;
                probe.push(&piece).map_err(|e| self.refuse(e))?;
                writer.write(&piece).await.map_err(Error::from)?;
            }
            Ok(())
        }
        .await;
        match outcome.and_then(|()| probe.finish().map_err(|e| self.refuse(e))) {
            Ok(probed) => Ok(StagedImage {
                file_id,
                intent,
                writer,
                rules,
                probed,
            }),
            Err(e) => {
                writer.abort().await;
                drop(intent);
                Err(e)
            }
        }
    }

    /// The tenant and kind of stored file `id` (`None` if there is none).
    pub async fn file_owner(&self, id: &FileId) -> anyhow::Result<Option<(i64, FileKind)>> {
        let Some((tenant_id, kind)) = self.db.file_owner(id.as_str()).await? else {
            return Ok(None);
        };
        Ok(FileKind::parse(&kind).map(|kind| (tenant_id, kind)))
    }

    /// Deletes a blob no row refers to any more (the row was deleted, or
    /// never inserted), then its intent. A failure keeps the intent, so
    /// the start-up sweep deletes the blob later.
    pub async fn drop_blob(&self, id: &str) -> anyhow::Result<()> {
        self.blobs.delete(id).await?;
        self.db.intent_remove(id).await
    }

    /// Step 3: durable blob, full decode, metadata. Runs as its own task:
    /// once the last byte is in, a client hanging up (which drops the
    /// request future) can no longer leave a blob without its metadata or
    /// a half-validated file behind. `hold` (the caller's upload permit) is
    /// released only when this work is done, so the work in flight stays
    /// bounded by the upload limit even when clients hang up.
    pub async fn commit_image(
        self: &std::sync::Arc<Self>,
        staged: StagedImage,
        filing: Filing<'_>,
        hold: impl Send + 'static,
    ) -> Result<FileRecord> {
        let (record, ()) = self
            .commit_image_with(staged, filing, hold, |_, _| Ok(()))
            .await?;
        Ok(record)
    }

    /// [`Core::commit_image`] with a further check: `inspect` runs on the
    /// decoded file's bytes in the same blocking task (and decode budget) as
    /// the decode, before the metadata is written; its error refuses the
    /// upload like a validation failure, and its result is returned.
    pub async fn commit_image_with<T, F>(
        self: &std::sync::Arc<Self>,
        staged: StagedImage,
        filing: Filing<'_>,
        hold: impl Send + 'static,
        inspect: F,
    ) -> Result<(FileRecord, T)>
    where
        T: Send + 'static,
        F: FnOnce(&[u8], &ImageInfo) -> Result<T> + Send + 'static,
    {
        let core = self.clone();
        let Filing {
            tenant_id,
            kind,
            file_name,
            audit,
        } = filing;
        let file_name = file_name.to_string();
        tokio::spawn(async move {
            let _hold = hold;
            let StagedImage {
                file_id,
                intent,
                writer,
                rules,
                probed,
            } = staged;
            let id = file_id.as_str();
            let key_id = writer.key_id();
            let intent = intent.map(Intent::keep);
            let sha256 = match writer.finish().await {
                Ok(digest) => digest,
                Err(e) => {
                    // The failure may come after the rename (directory
                    // sync), or a PUT the client gave up on may still land:
                    // delete, and keep any intent for the sweep.
                    let _ = core.blobs.delete(id).await;
                    return Err(Error::from(e));
                }
            };
            let (info, extra) = match core.verify_stored(id, probed, rules, inspect).await {
                Ok(done) => done,
                Err(e) => {
                    // Not acknowledged: do not keep the blob.
                    if let Err(d) = core.drop_blob(id).await {
                        tracing::warn!(error = %d, "deleting a refused upload");
                    }
                    return Err(e);
                }
            };
            let record = FileRecord {
                file_id: id.to_string(),
                tenant_id,
                kind,
                file_name,
                format: info.format,
                width: info.width.into(),
                height: info.height.into(),
                size: info.size as i64,
                sha256,
                key_id: key_id.into(),
                created_at: core.now(),
                owner: None,
            };
            let sealed_name = core
                .keys
                .seal_small(name_aad(id).as_bytes(), record.file_name.as_bytes());
            let audit = audit.map(|a| a.object(id));
            if let Err(e) = core
                .db
                .insert_file(&record, &sealed_name, intent, audit.as_ref())
                .await
            {
                // A claimed intent is the sweep's, which may have deleted
                // the object before this upload's PUT landed: delete again.
                if e.is::<crate::store::IntentLost>() {
                    let _ = core.blobs.delete(id).await;
                } else {
                    let _ = core.drop_blob(id).await;
                }
                return Err(e.into());
            }
            Ok((record, extra))
        })
        .await
        .map_err(|e| Error::Internal(anyhow::Error::new(e).context("storing an upload")))?
    }

    /// Reads a just-written blob back and decodes it in full, once it has
    /// decode memory (its file plus an estimate of its pixels) and a CPU
    /// slot; an upload that waits longer than `decode_wait_secs` for them is
    /// refused like the frequency limit.
    async fn verify_stored<T, F>(
        &self,
        id: &str,
        probed: Probed,
        rules: ImageRules,
        inspect: F,
    ) -> Result<(ImageInfo, T)>
    where
        T: Send + 'static,
        F: FnOnce(&[u8], &ImageInfo) -> Result<T> + Send + 'static,
    {
        let _permits = self
            .decode_permits(decode_estimate_mib(&probed, &rules))
            .await?;
        let bytes = self
            .blobs
            .open(id)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::internal(format!("blob {id} vanished before validation")))?
            .read_all(probed.size as usize)
            .await
            .map_err(Error::from)?;
        let format = probed.format;
        let metrics = self.metrics.uploads_refused.clone();
        let refuse = move |e: ImageError| {
            metrics
                .get_or_create(&crate::metrics::RuleLabels {
                    rule: e.rule().into(),
                })
                .inc();
            Error::from(e)
        };
        let on_panic = refuse.clone();
        let decoded = tokio::task::spawn_blocking(move || -> Result<(ImageInfo, T)> {
            let info = crate::image::decode(&bytes, format, &rules).map_err(refuse)?;
            let extra = inspect(&bytes, &info)?;
            Ok((info, extra))
        })
        .await;
        match decoded {
            Ok(result) => result,
            // A decoder bug must not take the server down or answer 500 for
            // what is most likely a malformed file: refuse the file.
            Err(e) if e.is_panic() => {
                tracing::error!(format = %format, "image decoder panicked");
                Err(on_panic(ImageError::Corrupt {
                    format,
                    detail: "the decoder could not read it".into(),
                }))
            }
            Err(e) => Err(Error::Internal(e.into())),
        }
    }

    /// Opens a stored file of the tenant. Unknown ids and other tenants'
    /// ids look the same: `None`.
    pub async fn open_file(
        &self,
        tenant_id: i64,
        kind: FileKind,
        file_id: &FileId,
    ) -> Result<Option<FileDownload>> {
        let id = file_id.as_str();
        let Some((mut record, sealed_name)) = self.db.file(tenant_id, kind, id).await? else {
            return Ok(None);
        };
        let name = self
            .keys
            .open_small(name_aad(id).as_bytes(), &sealed_name)
            .map_err(Error::from)?;
        record.file_name = String::from_utf8(name).map_err(|e| Error::Internal(e.into()))?;
        let body = self
            .blobs
            .open_sized(id, u64::try_from(record.size).unwrap_or(0))
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::internal(format!("blob of file {id} is missing")))?;
        Ok(Some(FileDownload {
            format: record.format,
            record,
            body,
        }))
    }

    /// Whether the tenant has a file of this kind under this id.
    pub async fn file_exists(
        &self,
        tenant_id: i64,
        kind: FileKind,
        file_id: &FileId,
    ) -> Result<bool> {
        Ok(self
            .db
            .file(tenant_id, kind, file_id.as_str())
            .await?
            .is_some())
    }
}

/// What most tests commit: an attendance photo named `a.png`.
#[cfg(test)]
pub(crate) async fn commit_photo(
    core: &std::sync::Arc<Core>,
    staged: StagedImage,
    tenant_id: i64,
    hold: impl Send + 'static,
    audit: Option<AuditEvent>,
) -> Result<FileRecord> {
    let filing = Filing::new(tenant_id, FileKind::AttendancePhoto, "a.png");
    let filing = match audit {
        Some(a) => filing.audited(a),
        None => filing,
    };
    core.commit_image(staged, filing, hold).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::testing::core_with;
    use crate::image::samples;

    fn body(bytes: Vec<u8>) -> impl Stream<Item = Result<Bytes>> + Send {
        futures_util::stream::iter(
            bytes
                .chunks(7000)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn saturated_decoding_is_refused_and_leaves_nothing() {
        let (_dir, core) = core_with(|c| c.limits.decode_wait_secs = 0).await;
        let core = Arc::new(core);
        let tenant = core.create_tenant("acme").await.unwrap();
        let rules = core.attendance_rules();
        // Every CPU slot is taken.
        let n = core.decode_slots.available_permits() as u32;
        let held = core.decode_slots.acquire_many(n).await.unwrap();
        let staged = core
            .receive_image(rules, body(samples::png(100, 100)))
            .await
            .unwrap();
        let e = commit_photo(&core, staged, tenant.id, (), None)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::RateLimited { .. }), "{e:?}");
        assert!(core.blobs.store().keys().await.unwrap().is_empty());
        // Once a slot is free the same upload goes through.
        drop(held);
        let staged = core
            .receive_image(rules, body(samples::png(100, 100)))
            .await
            .unwrap();
        let rec = commit_photo(&core, staged, tenant.id, (), None)
            .await
            .unwrap();
        assert_eq!(
            (rec.width, rec.height, rec.format),
            (100, 100, ImageFormat::Png)
        );
        assert_eq!(core.blobs.store().keys().await.unwrap(), vec![rec.file_id]);
    }

    /// A server takes up a rotated key while an upload is being sealed
    /// under the old one: the row must name the key the blob is really
    /// under, or the rotation would skip it and retire its key.
    #[tokio::test]
    async fn an_upload_sealed_across_a_key_change_records_its_real_key() {
        let (_dir, core) = core_with(|_| {}).await;
        let core = Arc::new(core);
        let tenant = core.create_tenant("acme").await.unwrap();
        let old = core.keys.current().id();
        let staged = core
            .receive_image(core.attendance_rules(), body(samples::png(100, 100)))
            .await
            .unwrap();
        // Another process rotates; this server reloads the key file.
        let path = core.config.key_file();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{}\n{text}", crate::crypto::new_key_line())).unwrap();
        core.keys.reload(&path).unwrap();
        let new = core.keys.current().id();
        assert_ne!(old, new);
        let uploaded = AuditEvent::by_device(tenant.id, "test", "photo.upload");
        let rec = commit_photo(&core, staged, tenant.id, (), Some(uploaded))
            .await
            .unwrap();
        assert_eq!(rec.key_id, i64::from(old));
        let pending = core.db.files_not_under_key(new, "", 10).await.unwrap();
        assert_eq!(pending.len(), 1, "the rotation must re-seal this blob");
        // The start-up pass re-seals it, records the new key, and retires
        // the old one; the photo still reads.
        let retired = core.finish_rotation().await.unwrap();
        assert_eq!(retired, vec![format!("{old:08x}")]);
        assert!(
            core.db
                .files_not_under_key(new, "", 10)
                .await
                .unwrap()
                .is_empty()
        );
        let report = core.check(std::time::Duration::ZERO).await.unwrap();
        assert_eq!(report.problems(), 0, "{report:?}");
    }

    #[tokio::test]
    async fn refused_at_decode_leaves_nothing_and_releases_the_hold() {
        let (_dir, core) = core_with(|_| {}).await;
        let core = Arc::new(core);
        let tenant = core.create_tenant("acme").await.unwrap();
        // Passes the streaming checks (header, size) but not the decoder:
        // the image data is damaged in the middle.
        let mut png = samples::noisy(crate::image::ImageFormat::Png, 200, 200);
        let mid = png.len() / 2;
        png[mid..mid + 64].fill(0xAA);
        let staged = core
            .receive_image(core.attendance_rules(), body(png))
            .await
            .unwrap();
        let uploads = Arc::new(tokio::sync::Semaphore::new(1));
        let permit = uploads.clone().acquire_owned().await.unwrap();
        let e = commit_photo(&core, staged, tenant.id, permit, None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("png data is corrupt"), "{e}");
        assert_eq!(uploads.available_permits(), 1);
        assert!(core.blobs.store().keys().await.unwrap().is_empty());
    }

    #[test]
    fn decode_estimates() {
        let rules = crate::image::ImageRules::lingo();
        let probed = |dims| Probed {
            format: ImageFormat::Png,
            size: 1024 * 1024,
            dims,
        };
        assert_eq!(decode_estimate_mib(&probed(Some((1024, 1024))), &rules), 9);
        // Unknown dimensions are charged at the largest allowed.
        assert_eq!(decode_estimate_mib(&probed(None), &rules), 129);
    }
}
