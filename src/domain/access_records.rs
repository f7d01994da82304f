//! Door records: the terminals' passes (punches with a pass type) as
//! `acs/v1/access_records` reads them, their capture photos, and the
//! retention that deletes both.

use super::Core;
use super::FileId;
use super::acs::IdType;
use super::audit::{ActorKind, AuditEvent};
use super::auth::Caller;
use super::devices::device_id;
use super::files::{FileDownload, FileKind};
use crate::model::error::{Error, Result};
use crate::store::flows::Expired;

/// A door record as the platform shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord {
    pub access_record_id: String,
    /// In the request's id type.
    pub user_id: String,
    pub device_id: String,
    /// Unix seconds.
    pub access_time: i64,
    /// `FA`, `QRCode` or `Fp`; none for a remote opening or a terminal
    /// that named no method.
    pub access_type: Option<&'static str>,
    /// Every pass a WeCom terminal reports counts for attendance too (its
    /// punches are user flows).
    pub is_clock_in: bool,
    /// WeCom terminals report passes, not refusals: the door opened.
    pub is_door_open: bool,
}

pub struct AccessPage {
    pub items: Vec<AccessRecord>,
    pub page_token: Option<String>,
    pub has_more: bool,
}

/// What one retention pass deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RetentionPass {
    pub records: u64,
    pub photos: usize,
    /// Capture photos a crash left without their record.
    pub unlinked_photos: usize,
    /// Visitors whose every rule has ended, erased.
    pub visitors: usize,
}

/// How long a capture photo may wait for its record before a retention
/// pass takes it for a crash's leftover (storing the two takes
/// milliseconds, a frame of photos seconds).
const UNLINKED_GRACE_SECS: i64 = 3600;
/// Records deleted per transaction: a first pass over years of records
/// holds the write lock in short turns.
const EXPIRE_BATCH: i64 = 5000;

/// The actor of what the retention pass does.
fn retention(tenant_id: i64, action: &'static str, object: String) -> AuditEvent {
    AuditEvent {
        tenant_id,
        actor_kind: ActorKind::Admin,
        actor: "retention".into(),
        action,
        subject: None,
        object: Some(object),
        result: "ok".into(),
        log_id: None,
    }
}

/// The platform's access type for a WeCom `pass_method` (1 face, 2 QR,
/// 3 remote, 4 fingerprint, 5 the WeCom app scans the terminal's QR code,
/// 6 the terminal scans a phone's).
pub fn access_type(pass_method: Option<i64>) -> Option<&'static str> {
    match pass_method? {
        1 => Some("FA"),
        2 | 5 | 6 => Some("QRCode"),
        4 => Some("Fp"),
        _ => None,
    }
}

/// `{check_time}_{record_id}` of the last record of a page.
fn page_token(time: i64, record_id: &str) -> String {
    format!("{time}_{record_id}")
}

fn parse_page_token(t: &str) -> Option<(i64, &str)> {
    let (time, id) = t.split_once('_')?;
    let ok = !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit());
    Some((time.parse().ok()?, id)).filter(|_| ok)
}

impl Core {
    /// The tenant's door records with `from <= access_time <= to`, newest
    /// first, of one terminal when `device` is given.
    pub async fn access_records(
        &self,
        caller: &Caller,
        id_type: IdType,
        (from, to): (i64, i64),
        device: Option<&str>,
        page_size: i64,
        page_token: Option<&str>,
    ) -> Result<AccessPage> {
        if from > to {
            return Err(Error::param(format!("from {from} is after to {to}")));
        }
        let after = match page_token.filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => Some(
                parse_page_token(t)
                    .ok_or_else(|| Error::param(format!("page_token {t:?} is not valid")))?,
            ),
        };
        let sn = match device.filter(|d| !d.is_empty()) {
            None => None,
            Some(id) => Some(self.terminal_sn(caller.tenant_id, id).await?),
        };
        let mut rows = self
            .db
            .door_records(
                caller.tenant_id,
                (from, to),
                sn.as_deref(),
                after,
                page_size + 1,
            )
            .await?;
        let has_more = rows.len() as i64 > page_size;
        rows.truncate(page_size as usize);
        let page_token = match rows.last() {
            Some(r) if has_more => Some(self::page_token(r.flow.check_time, &r.flow.record_id)),
            _ => None,
        };
        let items = rows
            .into_iter()
            .map(|r| AccessRecord {
                user_id: self.external_user_id(caller, id_type, &r.user_id, &r.union_id),
                device_id: device_id(r.flow.sn.as_deref().unwrap_or_default()),
                access_time: r.flow.check_time,
                access_type: access_type(r.flow.pass_method),
                is_clock_in: true,
                is_door_open: true,
                access_record_id: r.flow.record_id,
            })
            .collect();
        Ok(AccessPage {
            items,
            page_token,
            has_more,
        })
    }

    /// A door record's capture photo; the read is audited. A record of
    /// another tenant, or one that is not a door record, is not found.
    pub async fn access_photo(&self, caller: &Caller, record_id: &str) -> Result<FileDownload> {
        let outcome = self.open_access_photo(caller.tenant_id, record_id).await;
        let owner = outcome.as_ref().ok().map(|(owner, _)| owner.as_str());
        // The photo by its file id, as its upload and deletion name it.
        let record = super::devices::clip(record_id, 128);
        let object = match &outcome {
            Ok((_, file)) => format!("{} of record {record}", file.record.file_id),
            Err(_) => format!("record {record}"),
        };
        let event = AuditEvent::by(caller, "access_photo.download", &outcome)
            .subject(owner)
            .object(object);
        self.audited(event, outcome.map(|(_, file)| file)).await
    }

    async fn open_access_photo(
        &self,
        tenant_id: i64,
        record_id: &str,
    ) -> Result<(String, FileDownload)> {
        let flow = self
            .db
            .flow(tenant_id, record_id)
            .await?
            .filter(|f| f.sn.is_some() && f.pass_type.is_some())
            .ok_or_else(|| Error::param(format!("access_record_id {record_id:?} not found")))?;
        let no_photo = || Error::param(format!("access record {record_id:?} has no capture photo"));
        let id = flow
            .photo_file_id
            .as_deref()
            .and_then(FileId::parse)
            .ok_or_else(no_photo)?;
        let file = self
            .open_file(tenant_id, FileKind::AccessPhoto, &id)
            .await?
            .ok_or_else(no_photo)?;
        Ok((flow.creator_id, file))
    }

    /// Deletes the records older than `device.record_retention_days` (if
    /// set) with their capture photos, audited per tenant, and capture
    /// photos a crash left without their record.
    pub async fn expire_records(&self) -> Result<RetentionPass> {
        let now = self.now();
        let mut pass = RetentionPass::default();
        let days = self.config.device.record_retention_days;
        if days > 0 {
            let before = now - i64::from(days) * 86_400;
            let event = |tenant_id: i64, e: &Expired| {
                let what = format!(
                    "{} records, {} capture photos older than {days} days",
                    e.records,
                    e.photos.len()
                );
                retention(tenant_id, "records.expire", what)
            };
            loop {
                let batch = self
                    .db
                    .expire_flows(before, EXPIRE_BATCH, event, now)
                    .await?;
                if batch.is_empty() {
                    break;
                }
                for (_, expired) in batch {
                    pass.records += expired.records;
                    pass.photos += expired.photos.len();
                    for id in &expired.photos {
                        self.drop_blob(id).await?;
                    }
                }
            }
        }
        let event = |tenant_id: i64, n: usize| {
            let what = format!("{n} capture photos without a record");
            retention(tenant_id, "access_photo.delete", what)
        };
        let unlinked = self
            .db
            .delete_unlinked_access_photos(now - UNLINKED_GRACE_SECS, event, now)
            .await?;
        for id in &unlinked {
            self.drop_blob(id).await?;
        }
        pass.unlinked_photos = unlinked.len();
        pass.visitors = self.expire_visitors().await?;
        Ok(pass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_methods_map_to_the_platform_s_access_types() {
        let seen: Vec<_> = (0..=7).map(|m| access_type(Some(m))).collect();
        assert_eq!(
            seen,
            [
                None,
                Some("FA"),
                Some("QRCode"),
                None,
                Some("Fp"),
                Some("QRCode"),
                Some("QRCode"),
                None
            ]
        );
        assert_eq!(access_type(None), None);
    }

    #[test]
    fn page_tokens_round_trip_and_refuse_what_is_not_one() {
        let t = page_token(1_763_900_000, "4242");
        assert_eq!(parse_page_token(&t), Some((1_763_900_000, "4242")));
        for bad in [
            "",
            "_",
            "1_",
            "_1",
            "x_1",
            "1_x",
            "1_1_1",
            "1-1",
            &format!("1_{}", "9".repeat(21)),
        ] {
            assert_eq!(parse_page_token(bad), None, "{bad:?}");
        }
    }
}
