//! The audit log: every read or write of biometric data, who did it, about
//! whom, and how it ended. Records carry identifiers only, never photo or
//! template bytes.
//!
//! Records are written with group commit: each caller waits until its
//! record is durable (so a photo is never handed out unaudited), and
//! concurrent callers share one transaction and one fsync.

use super::Core;
use super::auth::Caller;
use super::group_commit::GroupCommit;
use crate::model::error::Result;
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

/// The group-commit writer of audit records.
pub struct AuditLog {
    writer: GroupCommit<Vec<AuditEvent>, ()>,
}

impl AuditLog {
    /// Starts the writer on the current runtime.
    pub fn start(db: Db) -> AuditLog {
        let writer = GroupCommit::start(
            "audit log",
            Vec::len,
            MAX_BATCH,
            move |batches: Vec<Vec<AuditEvent>>| {
                let db = db.clone();
                async move {
                    let at_ms = chrono::Utc::now().timestamp_millis();
                    let events: Vec<&AuditEvent> = batches.iter().flatten().collect();
                    db.insert_audit(&events, at_ms).await?;
                    Ok(vec![(); batches.len()])
                }
            },
        );
        AuditLog { writer }
    }

    /// Returns once the events are durable.
    pub async fn record(&self, events: Vec<AuditEvent>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.writer.submit(events).await
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
