//! The commands a ZKTeco terminal is sent. Each person is a group: put
//! them and their templates of the algorithms the terminal reads (and,
//! lacking a template of a type it extracts from photos, their photo), or
//! take them off. Groups go out whole, in batches within the protocol's limits
//! per reply: at most [`MAX_COMMANDS`] commands and
//! `device.push_reply_kib` of text (a batch holds at least one group).

use std::collections::{BTreeMap, HashMap};

use super::messages::{UserInfo, Wanted};
use super::zk::ZkTerminal;
use super::zk_bio::{BioType, ZkAlgorithm};
use super::{DeviceUser, Modality, Session};
use crate::domain::files::FileKind;
use crate::domain::{Core, FileId};
use crate::model::error::Result;

/// Commands per reply: the protocol's limit (manual §2.4.5).
pub const MAX_COMMANDS: usize = 200;
// A full sync's page is one pull page.
const _: () = assert!(MAX_COMMANDS <= super::sync::MAX_USERS);

/// How a terminal takes templates of one algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZkKind {
    pub algorithm: ZkAlgorithm,
    /// As `BIODATA` (type and version on each line), else as `FINGERTMP` /
    /// `FACE` (no version: sent only of the version it reads).
    pub biodata: bool,
}

/// What a ZKTeco terminal is told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZkCommand {
    /// Put the person on the terminal (added, or replaced).
    User { id: i64, pin: String, name: String },
    /// Take the person, and whatever the terminal holds of them, off it.
    Delete { id: i64, pin: String },
    /// Take the person's templates of one type off it (before those of
    /// now are put: what was removed here goes there too).
    Clear { id: i64, pin: String, kind: ZkKind },
    /// Put one of the person's templates.
    Template {
        id: i64,
        pin: String,
        kind: ZkKind,
        slot: i64,
        data: Vec<u8>,
    },
    /// Put the person's face photo, for the terminal to make its own
    /// template of `bio_type` from (and post it back).
    Photo {
        id: i64,
        pin: String,
        bio_type: BioType,
        photo: ZkPhoto,
    },
}

/// A photo to send: the stored file while batches are made (reading and
/// shrinking it is left to the groups that go out), then the JPEG sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZkPhoto {
    Stored(FileKind, FileId),
    Jpeg(Vec<u8>),
}

impl ZkCommand {
    pub fn id(&self) -> i64 {
        match self {
            ZkCommand::User { id, .. }
            | ZkCommand::Delete { id, .. }
            | ZkCommand::Clear { id, .. }
            | ZkCommand::Template { id, .. }
            | ZkCommand::Photo { id, .. } => *id,
        }
    }

    fn numbered(mut self, n: i64) -> ZkCommand {
        match &mut self {
            ZkCommand::User { id, .. }
            | ZkCommand::Delete { id, .. }
            | ZkCommand::Clear { id, .. }
            | ZkCommand::Template { id, .. }
            | ZkCommand::Photo { id, .. } => *id = n,
        }
        self
    }

    /// The bytes of its line, from above: the fixed words and fields, the
    /// name, and the template or photo in base64 (a photo not yet read:
    /// none, see [`group_size`]).
    pub(super) fn size(&self) -> usize {
        const LINE: usize = 160;
        let base64 = |n: usize| n.div_ceil(3) * 4;
        match self {
            ZkCommand::User { pin, name, .. } => LINE + pin.len() + name.len(),
            ZkCommand::Delete { pin, .. } | ZkCommand::Clear { pin, .. } => LINE + pin.len(),
            ZkCommand::Template { pin, data, .. } => LINE + pin.len() + base64(data.len()),
            ZkCommand::Photo { pin, photo, .. } => match photo {
                ZkPhoto::Stored(..) => 0,
                ZkPhoto::Jpeg(jpeg) => LINE + pin.len() + base64(jpeg.len()),
            },
        }
    }
}

/// The bytes of a person's commands in a reply of `max_bytes`, from
/// above: a photo not yet read counts at the most it may take there
/// ([`super::zk_photos::group_photo`]; none when it will not be sent).
fn group_size(commands: &[ZkCommand], max_bytes: usize) -> usize {
    let stored = commands.iter().any(|c| {
        matches!(
            c,
            ZkCommand::Photo {
                photo: ZkPhoto::Stored(..),
                ..
            }
        )
    });
    let (rest, budget) = super::zk_photos::group_photo(commands, max_bytes);
    match budget {
        Some(budget) if stored => rest + super::zk_photos::photo_line(budget),
        _ => rest,
    }
}

/// A PIN a command line can carry: printable ASCII, no spaces (fields are
/// TAB-separated and firmware trims).
pub(super) fn expressible(pin: &str) -> bool {
    !pin.is_empty() && pin.bytes().all(|b| b.is_ascii_graphic())
}

/// What happens to each person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    /// Put them (as the change log names them, with their type). `new`:
    /// they came into the book within these changes (and were not taken
    /// off first), so nothing the terminal holds of them came from
    /// facehub: their templates there are not cleared (a terminal may
    /// hold what was enrolled on it before the person was added).
    Put {
        user: DeviceUser,
        new: bool,
    },
    Remove,
}

/// One person's commands (ids still to be given), and their PIN.
pub(super) type Group = (String, Vec<ZkCommand>);

/// A person's templates of one kind: (slot, template).
pub(super) type KindSet = (ZkKind, Vec<(i64, Vec<u8>)>);

/// A person as the terminal's book holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Held {
    pub name: String,
    pub person_id: i64,
    /// Their templates of each algorithm the terminal reads.
    pub sets: Vec<KindSet>,
    /// Their photo, for each type the terminal extracts templates of from
    /// photos and they have no template of.
    pub photos: Vec<(BioType, FileKind, FileId)>,
}

impl Held {
    /// The types the terminal makes templates of from photos of which
    /// they hold none.
    fn lacking(&self, photo_types: &[BioType]) -> Vec<BioType> {
        photo_types
            .iter()
            .copied()
            .filter(|t| !self.sets.iter().any(|(k, _)| k.algorithm.bio_type == *t))
            .collect()
    }
}

/// The person's commands: put them as `held` or, when the book no longer
/// holds them, take them off. `clear` first takes off their templates of
/// every type the terminal reads, so that a template removed in facehub
/// goes from the terminal too; the templates of each type are then put.
fn group(pin: &str, held: Option<&Held>, kinds: &[ZkKind], clear: bool) -> Vec<ZkCommand> {
    let pin = pin.to_string();
    let Some(held) = held else {
        return vec![ZkCommand::Delete { id: 0, pin }];
    };
    let mut out = vec![ZkCommand::User {
        id: 0,
        pin: pin.clone(),
        name: held.name.clone(),
    }];
    if clear {
        let mut cleared: Vec<(BioType, bool)> = Vec::new();
        for kind in kinds {
            let what = (kind.algorithm.bio_type, kind.biodata);
            if !cleared.contains(&what) {
                cleared.push(what);
                out.push(ZkCommand::Clear {
                    id: 0,
                    pin: pin.clone(),
                    kind: *kind,
                });
            }
        }
    }
    for (kind, slots) in &held.sets {
        out.extend(slots.iter().map(|(slot, data)| ZkCommand::Template {
            id: 0,
            pin: pin.clone(),
            kind: *kind,
            slot: *slot,
            data: data.clone(),
        }));
    }
    out.extend(held.photos.iter().map(|(t, kind, file)| ZkCommand::Photo {
        id: 0,
        pin: pin.clone(),
        bio_type: *t,
        photo: ZkPhoto::Stored(*kind, file.clone()),
    }));
    out
}

/// The groups that fit one reply, in order (at least the first), and
/// whether any were left out.
pub(super) fn within_budget(groups: Vec<Group>, max_bytes: usize) -> (Vec<Group>, bool) {
    let (mut count, mut bytes) = (0, 0);
    let mut out = Vec::new();
    for g in groups {
        let (c, b) = (g.1.len(), group_size(&g.1, max_bytes));
        if !out.is_empty() && (count + c > MAX_COMMANDS || bytes + b > max_bytes) {
            return (out, true);
        }
        (count, bytes) = (count + c, bytes + b);
        out.push(g);
    }
    (out, false)
}

/// The groups' commands, numbered from `next_id`.
pub(super) fn numbered(groups: Vec<Group>, next_id: i64) -> Vec<ZkCommand> {
    groups
        .into_iter()
        .flat_map(|g| g.1)
        .enumerate()
        .map(|(i, c)| c.numbered(next_id + i as i64))
        .collect()
}

impl ZkTerminal {
    /// How it takes each algorithm it reads: visible-light faces only as
    /// `BIODATA`.
    pub fn kinds(&self) -> Vec<ZkKind> {
        let biodata = self.takes_biodata();
        self.readable()
            .into_iter()
            .map(|algorithm| ZkKind {
                algorithm,
                biodata: biodata || algorithm.bio_type == BioType::VisibleFace,
            })
            .collect()
    }

    /// The pulls that read its templates: the `r`th face kind and the
    /// `r`th fingerprint kind it reads (a pull reads one algorithm of a
    /// modality, and a terminal reads at most one of each type, so an
    /// infrared and a visible-light face take two). `None` past the last.
    pub(super) fn rank(&self, r: usize) -> Option<(Session, Wanted, [Option<ZkKind>; 2])> {
        let kinds = self.kinds();
        let of = |m: Modality| -> Option<ZkKind> {
            kinds
                .iter()
                .filter(|k| k.algorithm.bio_type.modality() == m)
                .nth(r)
                .copied()
        };
        let (face, print) = (of(Modality::Face), of(Modality::Fingerprint));
        if r > 0 && face.is_none() && print.is_none() {
            return None;
        }
        let name =
            |k: Option<ZkKind>| vec![k.map_or_else(|| "default".into(), |k| k.algorithm.name())];
        let session = Session {
            fa_algorithms: name(face),
            fp_algorithms: name(print),
            ..self.session()
        };
        let wanted = Wanted {
            faces: face.is_some(),
            fingerprints: print.is_some(),
        };
        Some((session, wanted, [face, print]))
    }
}

/// A pull's templates of the kinds it read.
fn sets_of(u: &UserInfo, [face, print]: [Option<ZkKind>; 2]) -> Vec<KindSet> {
    let mut out = Vec::new();
    for (set, kind) in [(&u.fingerprints, print), (&u.faces, face)] {
        if let (Some(set), Some(kind)) = (set, kind)
            && set.algorithm.is_some()
            && !set.slots.is_empty()
        {
            out.push((kind, set.slots.clone()));
        }
    }
    out
}

impl Core {
    /// `users` as the terminal's book holds them, by PIN (those it does
    /// not hold are absent). `first`: the first rank's pull, when already
    /// read (a full sync's page).
    async fn zk_held(
        &self,
        t: &ZkTerminal,
        users: &[DeviceUser],
        first: Option<Vec<UserInfo>>,
    ) -> Result<HashMap<String, Held>> {
        let mut out: HashMap<String, Held> = HashMap::new();
        let mut first = first;
        for r in 0.. {
            let Some((session, wanted, kinds)) = t.rank(r) else {
                break;
            };
            let infos = match first.take() {
                Some(infos) => infos,
                None => self.users_by_ids(&session, users, wanted).await?,
            };
            for u in infos {
                let sets = sets_of(&u, kinds);
                if r == 0 {
                    let held = Held {
                        name: u.name.clone(),
                        person_id: u.person_id,
                        sets,
                        photos: Vec::new(),
                    };
                    out.insert(u.user.userid.clone(), held);
                } else if let Some(held) = out.get_mut(&u.user.userid) {
                    held.sets.extend(sets);
                }
            }
        }
        // Their photo, for the types they lack a template of (of those it
        // reads: what it makes of a photo it then posts back).
        let photo_types = t.photo_types();
        for h in out.values_mut() {
            let lacking = h.lacking(&photo_types);
            if lacking.is_empty() {
                continue;
            }
            if let Some((kind, file)) = self.face_photo(h.person_id).await? {
                h.photos = lacking
                    .into_iter()
                    .map(|t| (t, kind, file.clone()))
                    .collect();
            }
        }
        Ok(out)
    }

    /// The groups for `actions`, in PIN order: a person to put who is no
    /// longer in the book (erased, or gone from its rules since) is
    /// removed instead; a PIN no command line can carry is left out.
    pub(super) async fn zk_groups(
        &self,
        t: &ZkTerminal,
        actions: BTreeMap<String, Action>,
    ) -> Result<Vec<Group>> {
        let put: Vec<DeviceUser> = actions
            .values()
            .filter_map(|a| match a {
                Action::Put { user, .. } => Some(user.clone()),
                Action::Remove => None,
            })
            .collect();
        // Those the book holds (none to look up when nothing is put).
        let held = if put.is_empty() {
            HashMap::new()
        } else {
            self.zk_held(t, &put, None).await?
        };
        let kinds = t.kinds();
        let mut skipped = 0;
        let mut out = Vec::with_capacity(actions.len());
        for (pin, action) in actions {
            if !expressible(&pin) {
                skipped += 1;
                continue;
            }
            let commands = match action {
                Action::Put { new, .. } => group(&pin, held.get(&pin), &kinds, !new),
                Action::Remove => group(&pin, None, &kinds, false),
            };
            out.push((pin, commands));
        }
        skipped_pins(t, skipped);
        Ok(out)
    }

    /// The groups of a full sync's page (`users`, read with the first
    /// rank's pull), in its order (by person id), with the id of each
    /// group's person; `clear` as for [`group`].
    pub(super) async fn zk_page_groups(
        &self,
        t: &ZkTerminal,
        users: Vec<UserInfo>,
        clear: bool,
    ) -> Result<Vec<(i64, Group)>> {
        let order: Vec<(i64, DeviceUser)> = users
            .iter()
            .map(|u| (u.person_id, u.user.clone()))
            .collect();
        let all: Vec<DeviceUser> = order.iter().map(|(_, u)| u.clone()).collect();
        let held = self.zk_held(t, &all, Some(users)).await?;
        let kinds = t.kinds();
        let mut skipped = 0;
        let mut out = Vec::with_capacity(order.len());
        for (id, u) in order {
            if !expressible(&u.userid) {
                skipped += 1;
                continue;
            }
            let Some(h) = held.get(&u.userid) else {
                continue;
            };
            let commands = group(&u.userid, Some(h), &kinds, clear);
            out.push((id, (u.userid, commands)));
        }
        skipped_pins(t, skipped);
        Ok(out)
    }
}

fn skipped_pins(t: &ZkTerminal, skipped: usize) {
    if skipped > 0 {
        tracing::warn!(
            sn = t.sn(),
            skipped,
            "people whose user_id a ZKTeco PIN cannot carry were not sent"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Slots = Vec<(i64, Vec<u8>)>;

    fn kind(t: BioType, v: &str, biodata: bool) -> ZkKind {
        ZkKind {
            algorithm: ZkAlgorithm::of(t, v).unwrap(),
            biodata,
        }
    }

    fn held(kind: ZkKind, slots: Slots) -> Held {
        Held {
            name: "Ann".into(),
            person_id: 1,
            sets: vec![(kind, slots)],
            photos: Vec::new(),
        }
    }

    #[test]
    fn a_person_is_put_with_the_templates_the_terminal_reads() {
        let kinds = [
            kind(BioType::Fingerprint, "10", false),
            kind(BioType::Face, "7", false),
        ];
        let u = held(kinds[1], vec![(0, b"a".to_vec()), (1, b"b".to_vec())]);
        let g = group("7", Some(&u), &kinds, true);
        let shape: Vec<&str> = g
            .iter()
            .map(|c| match c {
                ZkCommand::User { .. } => "user",
                ZkCommand::Delete { .. } => "delete",
                ZkCommand::Clear { .. } => "clear",
                ZkCommand::Template { .. } => "template",
                ZkCommand::Photo { .. } => "photo",
            })
            .collect();
        // Every type it reads is cleared before any template is put.
        assert_eq!(shape, ["user", "clear", "clear", "template", "template"]);
        assert_eq!(group("7", Some(&u), &kinds, false).len(), 3);
        assert!(matches!(
            group("7", None, &kinds, true)[..],
            [ZkCommand::Delete { .. }]
        ));
    }

    #[test]
    fn batches_keep_within_the_reply_limits() {
        let g = |pin: &str, n: usize, size: usize| -> Group {
            let kind = kind(BioType::Face, "7", false);
            let c = (0..n)
                .map(|slot| ZkCommand::Template {
                    id: 0,
                    pin: pin.into(),
                    kind,
                    slot: slot as i64,
                    data: vec![0; size],
                })
                .collect();
            (pin.to_string(), c)
        };
        // By count: 150 + 60 is more than 200.
        let (out, cut) = within_budget(vec![g("1", 150, 1), g("2", 60, 1)], 1 << 30);
        assert_eq!((out.len(), cut), (1, true));
        // By size; a group larger than the budget still goes, alone.
        let (out, cut) = within_budget(vec![g("1", 3, 30_000), g("2", 1, 10)], 40 << 10);
        assert_eq!((out.len(), cut), (1, true));
        let (out, cut) = within_budget(vec![g("1", 1, 10), g("2", 1, 10)], 40 << 10);
        assert_eq!((out.len(), cut), (2, false));
        let ids: Vec<i64> = numbered(out, 41).iter().map(ZkCommand::id).collect();
        assert_eq!(ids, [41, 42]);
    }

    #[test]
    fn a_photo_not_yet_read_counts_at_its_largest() {
        let g = |pin: &str| -> Group {
            let photo = ZkPhoto::Stored(FileKind::AttendancePhoto, FileId::generate());
            let c = ZkCommand::Photo {
                id: 0,
                pin: pin.into(),
                bio_type: BioType::VisibleFace,
                photo,
            };
            (pin.to_string(), vec![c])
        };
        // In the protocol's 40 KiB a photo takes what the rest of its
        // person's commands leave: the reply.
        let user = ZkCommand::User {
            id: 0,
            pin: "3".into(),
            name: "Cy".into(),
        };
        let (out, cut) = within_budget(vec![g("1"), ("3".into(), vec![user])], 40 << 10);
        assert_eq!((out.len(), cut), (1, true));
        // A large reply carries photos of at most 48 KiB (64 KiB of base64).
        let (out, cut) = within_budget(vec![g("1"), g("2")], 140 << 10);
        assert_eq!((out.len(), cut), (2, false));
        let (out, cut) = within_budget(vec![g("1"), g("2")], 120 << 10);
        assert_eq!((out.len(), cut), (1, true));
    }
}
