//! The connected devices of this node and what is pushed to them.
//!
//! Pushes are derived from stored state, not from in-memory events: each
//! connection remembers the newest `perm_version` it was sent, and a sync
//! pass (woken at once by changes made in this process, and every second
//! for changes made elsewhere — the CLI, another node) sends every device
//! the versions it lacks and the enrolments queued for it. A push that
//! cannot be delivered is simply sent again by a later pass, and a device
//! that was away gets its backlog when it logs in again, across restarts.
//!
//! The hub speaks no protocol: it hands typed [`Push`]es to a connection's
//! [`Peer`], which the protocol surface implements and encodes for.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

use super::messages::Push;
use super::{Change, DeviceUser, PRESENCE_LEASE_SECS, Session};
use crate::domain::Core;
use crate::model::BookKey;
use crate::model::error::Result;
use crate::model::{Seen, Stream};

/// At most this many versions are replayed to a device one by one; a
/// device further behind gets only the newest push, whose version gap
/// tells it to pull everything.
pub const MAX_REPLAY: i64 = 16;

/// Why the hub closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// A newer connection of the same device took over.
    Replaced,
    /// An admin unbound the device.
    Unbound,
    /// The server is stopping.
    Stopping,
}

/// How the hub reaches one connection of a device, whatever its protocol.
pub trait Peer: Send + Sync {
    /// The connection's number ([`Hub::new_connection_id`]).
    fn id(&self) -> u64;
    /// Queues `pushes` in order; `false` if they do not all fit (the
    /// device is not reading) — a later pass sends them again.
    fn push(&self, pushes: &[Arc<Push>]) -> bool;
    /// Tells the connection to close; it stops serving requests at once.
    fn close(&self, why: Closing);
}

struct Conn {
    peer: Arc<dyn Peer>,
    /// Set once the device has logged in.
    tenant_id: Option<i64>,
    pushed: Seen,
    /// The bind push was sent (bound while waiting to activate).
    told_bound: bool,
    /// When this node last renewed the device's presence lease (unix
    /// seconds; 0: not since it logged in).
    renewed: i64,
}

pub struct Hub {
    conns: Mutex<HashMap<String, Conn>>,
    next_id: AtomicU64,
    wake: Arc<Notify>,
    /// This process among the nodes, for presence lease owners.
    node: u64,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            conns: Mutex::default(),
            next_id: AtomicU64::default(),
            wake: Arc::default(),
            node: u64::from_le_bytes(crate::model::ids::random_bytes::<8>()),
        }
    }
}

impl Hub {
    /// The presence lease owner of connection `id`: unique among nodes.
    pub fn owner(&self, id: u64) -> String {
        format!("{:016x}.{id}", self.node)
    }

    pub fn new_connection_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Conn>> {
        // A panic while holding the lock leaves plain data; keep serving.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `peer` the device's connection (after `register` or `active`,
    /// before login). A different earlier connection of the same device is
    /// closed: the newest one wins.
    pub fn attach(&self, sn: &str, peer: &Arc<dyn Peer>) {
        let mut conns = self.lock();
        if conns.get(sn).is_some_and(|c| c.peer.id() == peer.id()) {
            return;
        }
        let old = conns.insert(
            sn.to_string(),
            Conn {
                peer: peer.clone(),
                tenant_id: None,
                pushed: Seen::default(),
                told_bound: false,
                renewed: 0,
            },
        );
        drop(conns);
        if let Some(old) = old {
            old.peer.close(Closing::Replaced);
        }
    }

    /// Marks the connection logged in; pushes start from `seen`.
    pub fn login(&self, session: &Session, peer: &Arc<dyn Peer>, seen: Seen) {
        self.attach(&session.sn, peer);
        if let Some(c) = self.lock().get_mut(&session.sn)
            && c.peer.id() == peer.id()
        {
            c.tenant_id = Some(session.tenant_id);
            c.pushed = seen;
            c.renewed = 0;
        }
        self.wake();
    }

    /// Whether connection `id` is still the device's logged-in connection.
    pub fn is_current(&self, sn: &str, id: u64) -> bool {
        self.lock()
            .get(sn)
            .is_some_and(|c| c.peer.id() == id && c.tenant_id.is_some())
    }

    /// Forgets connection `id` of `sn`; returns the versions it was sent
    /// up to, if it was the device's current, logged-in connection.
    pub fn detach(&self, sn: &str, id: u64) -> Option<Seen> {
        let mut conns = self.lock();
        match conns.get(sn) {
            Some(c) if c.peer.id() == id => {
                let c = conns.remove(sn).expect("present");
                c.tenant_id.map(|_| c.pushed)
            }
            _ => None,
        }
    }

    /// Sends a push to the device if it is logged in.
    pub fn push_logged_in(&self, sn: &str, push: Push) -> bool {
        self.lock()
            .get(sn)
            .is_some_and(|c| c.tenant_id.is_some() && c.peer.push(&[Arc::new(push)]))
    }

    /// Tells the device it was unbound, then closes its connection.
    pub fn unbind(&self, sn: &str) {
        if let Some(c) = self.lock().remove(sn) {
            c.peer.push(&[Arc::new(Push::Unbound)]);
            c.peer.close(Closing::Unbound);
        }
    }

    /// Closes every connection (the server is stopping); returns the sync
    /// positions of the logged-in ones, to be saved.
    pub fn close_all(&self) -> Vec<(String, Seen, u64)> {
        let mut positions = Vec::new();
        for (sn, c) in self.lock().drain() {
            if c.tenant_id.is_some() {
                positions.push((sn, c.pushed, c.peer.id()));
            }
            c.peer.close(Closing::Stopping);
        }
        positions
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn is_online(&self, sn: &str) -> bool {
        self.lock().get(sn).is_some_and(|c| c.tenant_id.is_some())
    }

    /// The versions a logged-in device was sent up to, if it is logged in
    /// here.
    pub fn pushed(&self, sn: &str) -> Option<Seen> {
        let conns = self.lock();
        conns
            .get(sn)
            .filter(|c| c.tenant_id.is_some())
            .map(|c| c.pushed)
    }

    /// The logged-in devices whose presence lease was last renewed before
    /// `due`: (sn, version sent, lease owner, connection); marked renewed
    /// at `now` ([`Hub::presence_failed`] takes that back).
    pub fn presence_due(&self, due: i64, now: i64) -> Vec<(String, Seen, String, u64)> {
        let mut out = Vec::new();
        for (sn, c) in self.lock().iter_mut() {
            if c.tenant_id.is_some() && c.renewed <= due {
                c.renewed = now;
                let id = c.peer.id();
                out.push((sn.clone(), c.pushed, self.owner(id), id));
            }
        }
        out
    }

    /// The renewal of these leases did not commit: due again next pass.
    pub fn presence_failed(&self, due: &[(String, Seen, String, u64)]) {
        let mut conns = self.lock();
        for (sn, _, _, id) in due {
            if let Some(c) = conns.get_mut(sn)
                && c.peer.id() == *id
            {
                c.renewed = 0;
            }
        }
    }

    /// Serial numbers of the logged-in devices.
    pub fn online_sns(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, c)| c.tenant_id.is_some())
            .map(|(sn, _)| sn.clone())
            .collect()
    }

    /// Logged-in devices.
    pub fn online(&self) -> usize {
        self.lock()
            .values()
            .filter(|c| c.tenant_id.is_some())
            .count()
    }

    /// Devices connected but not logged in, not yet told they are bound.
    fn waiting(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, c)| c.tenant_id.is_none() && !c.told_bound)
            .map(|(sn, _)| sn.clone())
            .collect()
    }

    /// Tells a waiting device it was bound (once).
    pub fn tell_bound(&self, sn: &str) {
        if let Some(c) = self.lock().get_mut(sn)
            && !c.told_bound
        {
            c.told_bound = c.peer.push(&[Arc::new(Push::Bound)]);
        }
    }

    /// Logged-in devices by tenant: (sn, connection id, pushed versions).
    fn by_tenant(&self) -> HashMap<i64, Vec<(String, u64, Seen)>> {
        let mut out: HashMap<i64, Vec<(String, u64, Seen)>> = HashMap::new();
        for (sn, c) in self.lock().iter() {
            if let Some(t) = c.tenant_id {
                out.entry(t)
                    .or_default()
                    .push((sn.clone(), c.peer.id(), c.pushed));
            }
        }
        out
    }

    /// Sends `pushes` of `list` to connection `id` of `sn` if it is still
    /// the one the pass looked at, and moves its position in that list
    /// from `from` to `version`; `false` (nothing recorded) if anything
    /// changed meanwhile or the queue is full — a later pass tries again.
    fn deliver(
        &self,
        sn: &str,
        id: u64,
        list: Stream,
        (from, version): (i64, i64),
        pushes: &[Arc<Push>],
    ) -> bool {
        let mut conns = self.lock();
        let Some(c) = conns
            .get_mut(sn)
            .filter(|c| c.peer.id() == id && c.pushed.get(list) == from && c.tenant_id.is_some())
        else {
            return false;
        };
        if !c.peer.push(pushes) {
            return false;
        }
        c.pushed.set(list, version);
        true
    }
}

impl Core {
    /// What devices are owed changed (committed): this node's sync runs
    /// at once, and so does every other node's sharing the store.
    pub async fn devices_changed(&self) {
        self.hub.wake();
        if let Err(e) = self.db.devices_changed().await {
            tracing::warn!(error = %e, "announcing a device change to the other nodes");
        }
    }

    /// Runs sync passes until `stop` resolves: at once when woken (by
    /// this node or, over a shared store, another), else every second.
    pub async fn run_device_sync(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let wake = self.hub.wake.clone();
        let _listener = self
            .hear_other_nodes(move || wake.notify_one())
            .map(tokio_util::task::AbortOnDropHandle::new);
        loop {
            tokio::select! {
                () = self.hub.wake.notified() => {}
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                () = &mut stop => return,
            }
            if let Err(e) = self.sync_pass().await {
                tracing::warn!(error = %e, "device sync pass failed");
            }
        }
    }

    /// One pass: versions the devices lack, queued enrolments, timeouts.
    pub async fn sync_pass(&self) -> Result<()> {
        let now = self.now();
        let mut first_error = None;
        // Binds and unbinds made elsewhere (the CLI, another node).
        for sn in self.hub.waiting() {
            if self.db.device(&sn).await?.is_some_and(|d| d.bound) {
                self.hub.tell_bound(&sn);
            }
        }
        // One tenant's failure does not hold up the others.
        for (tenant_id, devices) in self.hub.by_tenant() {
            if let Err(e) = self.sync_tenant(tenant_id, devices, now).await {
                first_error.get_or_insert(e);
            }
        }
        // Rules whose valid days started or ended change books.
        if let Err(e) = self.recheck_access().await {
            first_error.get_or_insert(e);
        }
        if let Err(e) = self.dispatch_enrolments().await {
            first_error.get_or_insert(e);
        }
        // Presence for every node and the CLI: renewed a third of a lease
        // before it would run out.
        let due = self.hub.presence_due(now - PRESENCE_LEASE_SECS / 3, now);
        let until = now + PRESENCE_LEASE_SECS;
        let leases: Vec<(String, Seen, String)> = due
            .iter()
            .map(|(sn, v, owner, _)| (sn.clone(), *v, owner.clone()))
            .collect();
        match self.db.renew_presence(&leases, now, until).await {
            Ok(()) => {
                // A connection that ended while its lease was being renewed
                // may have cleared it first: clear it again.
                for (sn, v, owner, id) in &due {
                    if !self.hub.is_current(sn, *id) {
                        self.db.set_seen(sn, *v, now, owner).await?;
                    }
                }
            }
            Err(e) => {
                self.hub.presence_failed(&due);
                first_error.get_or_insert(e.into());
            }
        }
        let timeout = i64::try_from(self.config.device.enrol_timeout_secs).unwrap_or(i64::MAX);
        self.db.expire_enrolments(now - timeout, now).await?;
        first_error.map_or(Ok(()), Err)
    }

    async fn sync_tenant(
        &self,
        tenant_id: i64,
        devices: Vec<(String, u64, Seen)>,
        now: i64,
    ) -> Result<()> {
        let unbound = self.db.unbound_devices(tenant_id).await?;
        for (sn, ..) in devices.iter().filter(|d| unbound.contains(&d.0)) {
            self.hub.unbind(sn);
        }
        let versions = self.db.versions(tenant_id).await?;
        let behind = |list: Stream| -> Vec<(String, u64, i64)> {
            devices
                .iter()
                .filter(|d| d.2.get(list) < versions.get(list))
                .map(|d| (d.0.clone(), d.1, d.2.get(list)))
                .collect()
        };
        let mut books = None;
        for list in Stream::ALL {
            let behind = behind(list);
            if behind.is_empty() {
                continue;
            }
            if books.is_none() {
                books = Some(self.db.book_keys(tenant_id).await?);
            }
            let books = books.as_ref().expect("read above");
            self.sync_list(tenant_id, list, versions.get(list), behind, books, now)
                .await?;
        }
        Ok(())
    }

    /// Sends the terminals `behind` in `list` the versions up to `version`
    /// they lack.
    async fn sync_list(
        &self,
        tenant_id: i64,
        list: Stream,
        version: i64,
        behind: Vec<(String, u64, i64)>,
        books: &HashMap<String, BookKey>,
        now: i64,
    ) -> Result<()> {
        let Some(oldest) = behind.iter().map(|d| d.2).min() else {
            return Ok(());
        };
        let from = oldest.max(version - MAX_REPLAY);
        // Versions recorded after `version` was read wait for the next pass.
        let changes: Vec<(i64, Change)> = self
            .db
            .changes_after(tenant_id, list, from, MAX_REPLAY)
            .await?
            .into_iter()
            .filter(|(v, _)| *v <= version)
            .collect();
        // Every version goes to every terminal (a gap would make it pull
        // everything), each seeing what its book holds of it; terminals
        // seeing the same share one push.
        let mut views = Views::default();
        for (sn, id, pushed) in behind {
            let book = books.get(&sn).cloned().flatten();
            let due: Vec<&(i64, Change)> = if version - pushed > MAX_REPLAY {
                changes.last().into_iter().collect()
            } else {
                changes.iter().filter(|c| c.0 > pushed).collect()
            };
            let mut pushes = Vec::with_capacity(due.len());
            for (v, change) in due {
                let at = (list, *v, now);
                let terminal = (tenant_id, sn.as_str(), &book);
                pushes.push(views.push(self, at, change, terminal).await?);
            }
            self.hub.deliver(&sn, id, list, (pushed, version), &pushes);
        }
        Ok(())
    }
}

/// How one version looks to one terminal: which access group it is in,
/// or, for other changes, what its book holds.
#[derive(Clone, PartialEq, Eq, Hash)]
enum View {
    /// An access change: the group the terminal is in, if any.
    Group(Option<usize>),
    /// The whole tenant: the change as it is.
    Whole,
    /// The people of these rules.
    Book(Vec<i64>),
}

/// The pushes of one sync pass, shared by the terminals that see a
/// version alike.
#[derive(Default)]
pub(super) struct Views {
    pushes: HashMap<(Stream, i64, View), Arc<Push>>,
}

impl Views {
    /// Version `version` of `list`, as terminal `sn` holding `book` sees it.
    pub(super) async fn push(
        &mut self,
        core: &Core,
        (list, version, at): (Stream, i64, i64),
        change: &Change,
        (tenant_id, sn, book): (i64, &str, &BookKey),
    ) -> Result<Arc<Push>> {
        let view = if !change.access.is_empty() {
            View::Group(
                change
                    .access
                    .iter()
                    .position(|d| d.sns.iter().any(|s| s == sn)),
            )
        } else {
            match book {
                None => View::Whole,
                Some(numbers) => View::Book(numbers.clone()),
            }
        };
        if let Some(p) = self.pushes.get(&(list, version, view.clone())) {
            return Ok(p.clone());
        }
        let seen = match &view {
            View::Group(None) => Change::default(),
            View::Group(Some(i)) => {
                let d = &change.access[*i];
                Change {
                    create_user: d.create_user.clone(),
                    update_user: d.update_user.clone(),
                    delete_user: d.delete_user.clone(),
                    access: Vec::new(),
                }
            }
            // The whole tenant holds every staff member and no visitor.
            View::Whole if list == Stream::Visitors => Change::default(),
            View::Whole => change.clone(),
            View::Book(numbers) => {
                // Only the people the change names are looked up.
                let named: Vec<DeviceUser> = change
                    .create_user
                    .iter()
                    .chain(&change.update_user)
                    .cloned()
                    .collect();
                let people = core.db.people_by_device_ids(tenant_id, &named).await?;
                let ids: Vec<i64> = people.values().map(|p| p.id).collect();
                let admitted = core.db.admitted(numbers, &ids).await?;
                let held: HashSet<&DeviceUser> = people
                    .iter()
                    .filter(|(_, p)| admitted.contains_key(&p.id))
                    .map(|(u, _)| u)
                    .collect();
                let keep = |users: &[DeviceUser]| {
                    users.iter().filter(|u| held.contains(u)).cloned().collect()
                };
                // Deletions go out as they are: the person is gone from
                // every book by now, and deleting a user a terminal does
                // not hold does nothing there.
                Change {
                    create_user: keep(&change.create_user),
                    update_user: keep(&change.update_user),
                    delete_user: change.delete_user.clone(),
                    access: Vec::new(),
                }
            }
        };
        let push = Arc::new(Push::Change {
            list,
            version,
            change: seen,
            at,
        });
        self.pushes.insert((list, version, view), push.clone());
        Ok(push)
    }
}
