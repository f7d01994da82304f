//! ZKTeco terminals (PUSH/ADMS): the core's side. A terminal names itself
//! by serial number alone, so admission is the serial number of a terminal
//! an admin added for this protocol and bound, called from an allowed
//! network; an unknown serial number is noted as pending and gets nothing.
//! The surface (`api::zkteco`) reads and writes the text lines.

use std::net::IpAddr;
use std::sync::Arc;

use super::messages::{Punch, PunchInput};
use super::zk_bio::{self, BioType, ZkAlgorithm};
use super::{DeviceRow, Session, validate_sn};
use crate::domain::{Core, Tenant};
use crate::model::error::{Error, Result};
use crate::model::{PersonKey, Protocol, PushInfo, ZkSettings};

/// How long a terminal counts as online after its presence was written:
/// a few of the poll intervals the init tells it
/// ([`crate::config::DeviceConfig::push_poll_secs`]).
const ONLINE_POLLS: i64 = 3;
/// A terminal's presence is written at most this often (it polls every few
/// seconds; its last-seen time needs no finer grain).
const PRESENCE_EVERY_SECS: i64 = 30;

/// Why a call is not served.
#[derive(Debug)]
pub enum Refusal {
    /// No terminal has this serial number (it is noted as pending), or
    /// one does for the other protocol.
    Unknown,
    /// Added but not bound, or unbound since.
    NotBound,
    /// Called from outside the terminal's allowed networks.
    Address,
    /// The serial number is not 1 to 64 printable ASCII characters.
    BadSn,
    Failed(Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Failed(e)
    }
}

impl From<anyhow::Error> for Refusal {
    fn from(e: anyhow::Error) -> Self {
        Refusal::Failed(e.into())
    }
}

/// A bound ZKTeco terminal, admitted for one call.
#[derive(Debug, Clone)]
pub struct ZkTerminal {
    pub row: DeviceRow,
}

impl ZkTerminal {
    pub fn sn(&self) -> &str {
        &self.row.sn
    }

    /// Unix time of a wall-clock time on the terminal's clock (seconds of
    /// that time read as if it were UTC).
    pub fn unix_time(&self, wall_clock: i64) -> i64 {
        wall_clock - self.row.utc_offset_min * 60
    }

    /// The terminal as the core's device calls name it. Its algorithm
    /// lists are placeholders: the pulls that read its templates set them
    /// per kind ([`ZkTerminal::rank`]).
    pub(super) fn session(&self) -> Session {
        Session {
            sn: self.row.sn.clone(),
            tenant_id: self.row.tenant_id,
            fa_algorithms: vec!["default".into()],
            fp_algorithms: vec!["default".into()],
        }
    }

    /// The template algorithms it reads.
    pub fn readable(&self) -> Vec<ZkAlgorithm> {
        self.row
            .push_info
            .as_ref()
            .map(zk_bio::readable)
            .unwrap_or_default()
    }

    /// The types it is sent photos of: those it makes templates of from
    /// photos ([`super::zk_photos::photo_types`]) and reads (what it makes
    /// of a photo it posts back as a template of that type).
    pub fn photo_types(&self) -> Vec<BioType> {
        let reads = self.readable();
        self.row
            .push_info
            .as_ref()
            .map(super::zk_photos::photo_types)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| reads.iter().any(|a| a.bio_type == *p))
            .collect()
    }

    /// Whether it takes templates as `BIODATA` ([`zk_bio::takes_biodata`]).
    pub fn takes_biodata(&self) -> bool {
        self.row
            .push_info
            .as_ref()
            .is_some_and(zk_bio::takes_biodata)
    }
}

/// One `ATTLOG` line, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttPunch {
    /// The person's user_id (ZKTeco's PIN).
    pub pin: String,
    /// The punch's wall-clock time on the terminal, as seconds read as UTC.
    pub wall_clock: i64,
    /// ZKTeco's punch state (0 check-in, 1 check-out, …), kept as sent.
    pub status: i64,
    /// ZKTeco's verify mode (1 fingerprint, 15 face, …).
    pub verify: i64,
    /// An access terminal's event is a door passage: WeCom's `pass_type`
    /// (1 in, 2 out, 3 unknown), which makes it a door record. `None` for
    /// an attendance punch.
    pub pass_type: Option<i64>,
}

/// The WeCom `pass_method` of a ZKTeco verify mode, where one matches: 1
/// fingerprint → 4, 15 face → 1 (others have none).
pub fn pass_method(verify: i64) -> Option<i64> {
    match verify {
        1 => Some(4),
        15 => Some(1),
        _ => None,
    }
}

/// What an `ATTLOG` upload came to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PunchOutcome {
    /// Records stored or already stored.
    pub stored: usize,
    /// Records of no person of the tenant, or too old to keep: acknowledged
    /// and dropped (the terminal would otherwise send them forever).
    pub dropped: usize,
}

/// A CIDR list as given to `device add`: each entry a network or a single
/// address.
pub fn parse_networks(entries: &[String]) -> Result<Vec<ipnet::IpNet>> {
    entries
        .iter()
        .map(|e| {
            let e = e.trim();
            e.parse::<ipnet::IpNet>()
                .or_else(|_| e.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| Error::param(format!("{e:?} is not an address or a CIDR network")))
        })
        .collect()
}

/// Whether `client` may call as a terminal allowed `from` (empty: any).
fn allowed(from: &[String], client: IpAddr) -> bool {
    if from.is_empty() {
        return true;
    }
    // Stored lists were checked when added; an entry that no longer parses
    // admits nobody.
    let client = match client {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
        v4 => v4,
    };
    parse_networks(from)
        .map(|nets| nets.iter().any(|n| n.contains(&client)))
        .unwrap_or(false)
}

impl Core {
    /// Adds a ZKTeco terminal for `tenant`; it is served once bound.
    pub async fn add_zk_device(&self, tenant: &Tenant, sn: &str, zk: &ZkSettings) -> Result<()> {
        validate_sn(sn)?;
        if !(-720..=840).contains(&zk.utc_offset_min) {
            return Err(Error::param(
                "the UTC offset must be between -12:00 and +14:00",
            ));
        }
        parse_networks(&zk.allow_from)?;
        // A ZKTeco terminal has no factory SecretNo. The column holds a
        // random one nobody knows (so `register` could not be signed even
        // if the protocol check there were lost), and WeCom bring-up
        // refuses the row by its protocol.
        let unknowable = hex::encode(crate::model::ids::random_bytes::<24>());
        let sealed = self.keys.seal_small(
            format!("device:{sn}:secret_no").as_bytes(),
            unknowable.as_bytes(),
        );
        self.insert_device(sn, tenant, &sealed, Some(zk)).await
    }

    /// The `RegistryCode` and `SessionID` an access terminal (PUSH 3.x) is
    /// given: derived from the server's secret, its serial number and its
    /// tenant, so that they survive restarts and change with a binding to
    /// another tenant. Admission does not rest on them (the serial number
    /// and the address do), so they identify; they do not authenticate.
    pub fn zk_registration(&self, t: &ZkTerminal) -> (String, String) {
        let tenant = t.row.tenant_id.to_string();
        let derive = |what: &str, len| {
            crate::model::ids::derive_hex(&self.id_secret, &[what, t.sn(), &tenant], len)
        };
        (derive("zk-registry", 32), derive("zk-session", 16))
    }

    /// Serial numbers that called before they were added, newest first.
    pub async fn pending_devices(&self) -> Result<Vec<crate::model::PendingDevice>> {
        Ok(self.db.pending_devices().await?)
    }

    /// Admits a call from the terminal `sn` at `client`. An unknown serial
    /// number is noted as pending (bounded by `device.pending_max`).
    pub async fn zk_terminal(
        &self,
        sn: &str,
        client: IpAddr,
    ) -> std::result::Result<ZkTerminal, Refusal> {
        if validate_sn(sn).is_err() {
            return Err(Refusal::BadSn);
        }
        let row = match self.db.device(sn).await? {
            None => {
                let max = self.config().device.pending_max as i64;
                self.db
                    .note_pending(sn, Protocol::ZkTeco, &client.to_string(), self.now(), max)
                    .await?;
                return Err(Refusal::Unknown);
            }
            Some(row) if row.protocol != Protocol::ZkTeco => return Err(Refusal::Unknown),
            Some(row) => row,
        };
        if !row.bound {
            return Err(Refusal::NotBound);
        }
        if !allowed(&row.allow_from, client) {
            return Err(Refusal::Address);
        }
        Ok(ZkTerminal { row })
    }

    /// Records that the terminal called (at most every half minute unless
    /// it reports something new of itself): last seen, online, its report,
    /// merged into the stored one (re-read when another call wrote first);
    /// `t` is brought up to date.
    pub async fn zk_called(&self, t: &mut ZkTerminal, report: Option<PushInfo>) -> Result<()> {
        let now = self.now();
        let poll = i64::try_from(self.config().device.push_poll_secs).unwrap_or(3600);
        // Presence is written every PRESENCE_EVERY_SECS at most, so the
        // lease outlasts that by a few polls.
        let lease = PRESENCE_EVERY_SECS + ONLINE_POLLS * poll.min(3600);
        for _ in 0..3 {
            let old = t.row.push_info.clone();
            let base = old.clone().unwrap_or_default();
            let info = match &report {
                Some(r) => merge(base.clone(), r.clone()),
                None => base.clone(),
            };
            let fresh = t
                .row
                .last_seen
                .is_some_and(|s| now - s < PRESENCE_EVERY_SECS);
            if fresh && info == base {
                return Ok(());
            }
            let sn = t.row.sn.clone();
            if self
                .db
                .set_push_info(&sn, old.as_ref(), &info, (now, now + lease))
                .await?
            {
                t.row.push_info = Some(info);
                t.row.last_seen = Some(now);
                return Ok(());
            }
            match self.db.device(&sn).await? {
                Some(row) => t.row = row,
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// Stores an `ATTLOG` upload's punches as the tenant's punch records
    /// (idempotent: a re-sent upload adds nothing).
    pub async fn zk_punches(
        self: &Arc<Self>,
        t: &ZkTerminal,
        punches: Vec<AttPunch>,
    ) -> Result<PunchOutcome> {
        let mut outcome = PunchOutcome::default();
        let session = t.session();
        // The WeCom frame's limit, which `checkin` and the punch writer take.
        for chunk in punches.chunks(super::sync::MAX_USERS) {
            let pins: Vec<String> = chunk.iter().map(|p| p.pin.clone()).collect();
            let people = self
                .db
                .people_by(t.row.tenant_id, PersonKey::UserId, &pins)
                .await?;
            let mut input = Vec::with_capacity(chunk.len());
            for p in chunk {
                // Too old to keep (as for WeCom): dropped, and counted so.
                if t.unix_time(p.wall_clock) < super::checkin::EARLIEST {
                    outcome.dropped += 1;
                    continue;
                }
                match people.iter().find(|person| person.user_id == p.pin) {
                    Some(person) => input.push(PunchInput::Read(Punch {
                        userid: p.pin.clone(),
                        user_type: person.user_type.as_i64(),
                        timestamp: t.unix_time(p.wall_clock),
                        pass_type: p.pass_type,
                        pass_method: pass_method(p.verify),
                        photo: None,
                    })),
                    None => outcome.dropped += 1,
                }
            }
            let sent = input.len();
            let done = self.checkin(&session, input).await?;
            // A failed record here is one the core refuses whatever is
            // sent again (its person was erased meanwhile).
            outcome.dropped += done.fail_list.len();
            outcome.stored += sent - done.fail_list.len();
        }
        if outcome.dropped > 0 {
            tracing::info!(
                sn = t.sn(),
                dropped = outcome.dropped,
                "punches of no person of the tenant, or from before 2018, dropped"
            );
        }
        Ok(outcome)
    }
}

/// `old` with what `new` reports.
fn merge(old: PushInfo, new: PushInfo) -> PushInfo {
    PushInfo {
        firmware: new.firmware.or(old.firmware),
        push_version: new.push_version.or(old.push_version),
        device_type: new.device_type.or(old.device_type),
        users: new.users.or(old.users),
        fingerprints: new.fingerprints.or(old.fingerprints),
        punches: new.punches.or(old.punches),
        address: new.address.or(old.address),
        fp_version: new.fp_version.or(old.fp_version),
        face_version: new.face_version.or(old.face_version),
        faces: new.faces.or(old.faces),
        attlog_stamp: new.attlog_stamp.or(old.attlog_stamp),
        operlog_stamp: new.operlog_stamp.or(old.operlog_stamp),
        biodata_stamp: new.biodata_stamp.or(old.biodata_stamp),
        multi_bio_data: new.multi_bio_data.or(old.multi_bio_data),
        multi_bio_version: new.multi_bio_version.or(old.multi_bio_version),
        multi_bio_photo: new.multi_bio_photo.or(old.multi_bio_photo),
        written: if new.written.is_empty() {
            old.written
        } else {
            new.written
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn allow_lists() {
        let from = vec!["10.1.0.0/16".to_string(), "192.168.5.7".to_string()];
        assert!(allowed(&[], ip("8.8.8.8")));
        assert!(allowed(&from, ip("10.1.200.3")));
        assert!(allowed(&from, ip("192.168.5.7")));
        assert!(allowed(&from, ip("::ffff:10.1.0.1")));
        assert!(!allowed(&from, ip("10.2.0.1")));
        assert!(!allowed(&from, ip("192.168.5.8")));
        assert!(!allowed(&["nonsense".to_string()], ip("10.1.0.1")));
        assert!(parse_networks(&["10.0.0.0/33".to_string()]).is_err());
        assert!(parse_networks(&["fd00::/8".to_string()]).is_ok());
    }

    #[test]
    fn verify_modes_map_to_pass_methods() {
        assert_eq!(pass_method(1), Some(4));
        assert_eq!(pass_method(15), Some(1));
        assert_eq!(pass_method(0), None);
        assert_eq!(pass_method(4), None);
    }
}
