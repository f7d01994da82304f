//! The audit log: every read or write of biometric data, who did it, about
//! whom, and how it ended. Records carry identifiers only, never photo or
//! template bytes.
//!
//! Records are written with group commit: each caller waits until its
//! record is durable (so a photo is never handed out unaudited), and
//! concurrent callers share one transaction and one fsync.

use tokio::sync::{mpsc, oneshot};

use super::Core;
use super::auth::Caller;
use crate::model::error::{Error, Result};
use crate::store::Db;

pub use crate::model::audit::{ActorKind, AuditEvent, AuditFilter, AuditRecord, result_of};

/// Records written in one transaction at most.
const MAX_BATCH: usize = 1024;

impl AuditEvent {
    /// An action by an HTTP caller; `result` from what it was answered.
    pub fn by<T>(caller: &Caller, action: &'static str, outcome: &Result<T>) -> AuditEvent {
        AuditEvent {
            tenant_id: caller.tenant_id,
            actor_kind: if caller.person_id.is_some() {
                ActorKind::User
            } else {
                ActorKind::App
            },
            actor: match caller.person_id {
                Some(p) => format!("{}/person:{p}", caller.app_id),
                None => caller.app_id.clone(),
            },
            action,
            subject: None,
            object: None,
            result: result_of(outcome),
            log_id: caller.log_id.clone(),
        }
    }
}

struct Batch {
    events: Vec<AuditEvent>,
    done: oneshot::Sender<std::result::Result<(), Unwritten>>,
}

/// Why a batch was not written, shared by every caller in it: the
/// deployment's state it met, if any (a full disk, a database that does
/// not answer: told to the client as such), and the cause for the log.
#[derive(Clone)]
struct Unwritten {
    state: Option<fn() -> Error>,
    cause: String,
}

/// The group-commit writer's handle.
pub struct AuditLog {
    tx: mpsc::Sender<Batch>,
}

impl AuditLog {
    /// Starts the writer on the current runtime.
    pub fn start(db: Db) -> AuditLog {
        let (tx, mut rx) = mpsc::channel::<Batch>(4096);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batches = vec![first];
                let mut n = batches[0].events.len();
                while n < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(b) => {
                            n += b.events.len();
                            batches.push(b);
                        }
                        Err(_) => break,
                    }
                }
                let at_ms = chrono::Utc::now().timestamp_millis();
                let events: Vec<&AuditEvent> = batches.iter().flat_map(|b| &b.events).collect();
                let outcome = db.insert_audit(&events, at_ms).await.map_err(|e| {
                    let cause = format!("{e:#}");
                    let state: Option<fn() -> Error> = match Error::from(e) {
                        Error::StorageFull(_) => Some(Error::disk_full),
                        Error::Unavailable(_) => Some(Error::unavailable),
                        _ => None,
                    };
                    Unwritten { state, cause }
                });
                if let Err(e) = &outcome {
                    tracing::error!(error = %e.cause, records = events.len(), "the audit log could not be written");
                }
                for b in batches {
                    let _ = b.done.send(outcome.clone());
                }
            }
        });
        AuditLog { tx }
    }

    /// Returns once the events are durable.
    pub async fn record(&self, events: Vec<AuditEvent>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Batch { events, done })
            .await
            .map_err(|_| Error::internal("the audit log writer has stopped"))?;
        wait.await
            .map_err(|_| Error::internal("the audit log writer has stopped"))?
            .map_err(|e| {
                e.state.map_or_else(
                    || Error::internal(format!("audit log: {}", e.cause)),
                    |state| state(),
                )
            })
    }
}

impl Core {
    /// Audits `outcome` and passes it on. An action that cannot be
    /// audited fails: biometric data is not handed out unrecorded.
    pub async fn audited<T>(&self, event: AuditEvent, outcome: Result<T>) -> Result<T> {
        self.audit.record(vec![event]).await?;
        outcome
    }

    /// For a write whose success is recorded in its own transaction (with
    /// the row it writes): audits `outcome` only if it failed, and passes
    /// it on.
    pub async fn audited_if_failed<T>(&self, event: AuditEvent, outcome: Result<T>) -> Result<T> {
        if outcome.is_err() {
            self.audit.record(vec![event]).await?;
        }
        outcome
    }

    pub async fn audit_page(
        &self,
        tenant_id: i64,
        filter: &AuditFilter,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>> {
        Ok(self
            .db
            .audit_page(tenant_id, filter, after_id, limit.clamp(1, 1000))
            .await?)
    }
}
