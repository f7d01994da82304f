//! The connected devices of this node and what is pushed to them.
//!
//! Pushes are derived from stored state, not from in-memory events: each
//! connection remembers the newest `perm_version` it was sent, and a sync
//! pass (woken at once by changes made in this process, and every second
//! for changes made elsewhere — the CLI, another node) sends every device
//! the versions it lacks and the enrolments queued for it. A push that
//! cannot be delivered is simply sent again by a later pass, and a device
//! that was away gets its backlog when it logs in again, across restarts.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use super::{Change, Session};
use crate::domain::Core;
use crate::error::Result;

/// At most this many versions are replayed to a device one by one; a
/// device further behind gets only the newest push, whose version gap
/// tells it to pull everything (`get_userinfo_by_page`).
pub const MAX_REPLAY: i64 = 16;

/// What a connection's writer sends.
#[derive(Debug)]
pub enum Outgoing {
    Text(Arc<str>),
    Binary(bytes::Bytes),
    /// Close with a code and reason, then stop writing.
    Close(u16, &'static str),
    /// A frame holding part of its connection's reply budget until written.
    Held(Box<Outgoing>, tokio::sync::OwnedSemaphorePermit),
}

/// Queue depth per connection; a device that falls this far behind gets
/// its pushes again from a later pass.
pub const QUEUE: usize = 256;

struct Conn {
    id: u64,
    /// Set once the device has logged in.
    tenant_id: Option<i64>,
    tx: mpsc::Sender<Outgoing>,
    pushed: i64,
    /// `push_bind_corp` was sent (bound while waiting in `active`).
    told_bound: bool,
}

#[derive(Default)]
pub struct Hub {
    conns: Mutex<HashMap<String, Conn>>,
    next_id: AtomicU64,
    wake: Notify,
}

/// A server push: `cmd`, a fresh `req_id`, `body`.
pub fn push_frame(cmd: &str, body: Value) -> Arc<str> {
    let req_id = hex::encode(crate::domain::ids::random_bytes::<8>());
    json!({"cmd": cmd, "headers": {"req_id": req_id}, "body": body})
        .to_string()
        .into()
}

fn change_frame(version: i64, change: &Change, at: i64) -> Arc<str> {
    push_frame(
        "push_change_contact",
        json!({
            "timestamp": at,
            "perm_version": version,
            "create_user": change.create_user,
            "update_user": change.update_user,
            "delete_user": change.delete_user,
        }),
    )
}

impl Hub {
    pub fn new_connection_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Conn>> {
        // A panic while holding the lock leaves plain data; keep serving.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes connection `id` the device's connection (after `register` or
    /// `active`, before login). A different earlier connection of the same
    /// device is closed: the newest one wins.
    pub fn attach(&self, sn: &str, id: u64, tx: &mpsc::Sender<Outgoing>) {
        let mut conns = self.lock();
        if let Some(old) = conns.get(sn)
            && old.id == id
        {
            return;
        }
        let old = conns.insert(
            sn.to_string(),
            Conn {
                id,
                tenant_id: None,
                tx: tx.clone(),
                pushed: 0,
                told_bound: false,
            },
        );
        drop(conns);
        if let Some(old) = old {
            let _ = old
                .tx
                .try_send(Outgoing::Close(4000, "replaced by a newer connection"));
        }
    }

    /// Marks the connection logged in; pushes start from `seen_version`.
    pub fn login(&self, session: &Session, id: u64, tx: &mpsc::Sender<Outgoing>, seen: i64) {
        self.attach(&session.sn, id, tx);
        if let Some(c) = self.lock().get_mut(&session.sn)
            && c.id == id
        {
            c.tenant_id = Some(session.tenant_id);
            c.pushed = seen;
        }
        self.wake();
    }

    /// Forgets connection `id` of `sn`; returns the version it was sent up
    /// to, if it was the device's current, logged-in connection.
    pub fn detach(&self, sn: &str, id: u64) -> Option<i64> {
        let mut conns = self.lock();
        match conns.get(sn) {
            Some(c) if c.id == id => {
                let c = conns.remove(sn).expect("present");
                c.tenant_id.map(|_| c.pushed)
            }
            _ => None,
        }
    }

    /// Sends a frame to the device if it is connected.
    pub fn push_raw(&self, sn: &str, frame: Arc<str>) -> bool {
        self.lock()
            .get(sn)
            .is_some_and(|c| c.tx.try_send(Outgoing::Text(frame)).is_ok())
    }

    /// Tells the device it was unbound, then closes its connection.
    pub fn unbind(&self, sn: &str) {
        if let Some(c) = self.lock().remove(sn) {
            let _ =
                c.tx.try_send(Outgoing::Text(push_frame("push_unbind_corp", json!({}))));
            let _ = c.tx.try_send(Outgoing::Close(4001, "unbound"));
        }
    }

    /// Closes every connection (the server is stopping).
    pub fn close_all(&self) {
        for (_, c) in self.lock().drain() {
            let _ = c.tx.try_send(Outgoing::Close(1012, "server restarting"));
        }
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn is_online(&self, sn: &str) -> bool {
        self.lock().get(sn).is_some_and(|c| c.tenant_id.is_some())
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

    /// Sends `push_bind_corp` to a waiting device (once).
    pub fn tell_bound(&self, sn: &str) {
        if let Some(c) = self.lock().get_mut(sn)
            && !c.told_bound
        {
            c.told_bound =
                c.tx.try_send(Outgoing::Text(push_frame("push_bind_corp", json!({}))))
                    .is_ok();
        }
    }

    /// Logged-in devices by tenant: (sn, pushed version).
    fn by_tenant(&self) -> HashMap<i64, Vec<(String, i64)>> {
        let mut out: HashMap<i64, Vec<(String, i64)>> = HashMap::new();
        for (sn, c) in self.lock().iter() {
            if let Some(t) = c.tenant_id {
                out.entry(t).or_default().push((sn.clone(), c.pushed));
            }
        }
        out
    }

    /// Sends `frames` to a logged-in device of `tenant_id` and records
    /// `version` as sent; `false` (nothing recorded) if the queue is full.
    fn deliver(&self, sn: &str, tenant_id: i64, frames: &[Arc<str>], version: i64) -> bool {
        let mut conns = self.lock();
        let Some(c) = conns.get_mut(sn).filter(|c| c.tenant_id == Some(tenant_id)) else {
            return false;
        };
        if c.tx.capacity() < frames.len() {
            return false;
        }
        for f in frames {
            if c.tx.try_send(Outgoing::Text(f.clone())).is_err() {
                return false;
            }
        }
        c.pushed = c.pushed.max(version);
        true
    }
}

impl Core {
    /// Runs sync passes until `stop` resolves: at once when woken, else
    /// every second.
    pub async fn run_device_sync(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
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
        // Binds and unbinds made elsewhere (the CLI, another node).
        for sn in self.hub.waiting() {
            if self.db.device(&sn).await?.is_some_and(|d| d.bound) {
                self.hub.tell_bound(&sn);
            }
        }
        for (tenant_id, devices) in self.hub.by_tenant() {
            let unbound = self.db.unbound_devices(tenant_id).await?;
            for (sn, _) in devices.iter().filter(|d| unbound.contains(&d.0)) {
                self.hub.unbind(sn);
            }
            let version = self.db.perm_version(tenant_id).await?;
            let behind: Vec<_> = devices.into_iter().filter(|d| d.1 < version).collect();
            let Some(oldest) = behind.iter().map(|d| d.1).min() else {
                continue;
            };
            let from = oldest.max(version - MAX_REPLAY);
            let frames: Vec<(i64, Arc<str>)> = self
                .db
                .changes_after(tenant_id, from, MAX_REPLAY)
                .await?
                .iter()
                .map(|(v, c)| (*v, change_frame(*v, c, now)))
                .collect();
            for (sn, pushed) in behind {
                let due: Vec<Arc<str>> = if version - pushed > MAX_REPLAY {
                    frames.last().map(|f| f.1.clone()).into_iter().collect()
                } else {
                    frames
                        .iter()
                        .filter(|f| f.0 > pushed)
                        .map(|f| f.1.clone())
                        .collect()
                };
                self.hub.deliver(&sn, tenant_id, &due, version);
            }
        }
        self.dispatch_enrolments().await?;
        let timeout = i64::try_from(self.config.device.enrol_timeout_secs).unwrap_or(i64::MAX);
        self.db.expire_enrolments(now - timeout, now).await?;
        Ok(())
    }
}
