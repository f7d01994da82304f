//! Erasing a person: every photo ever bound to them, their crops,
//! templates and derived records, from metadata and blob storage; terminals
//! are told to delete them.

use serde::Serialize;

use super::Core;
use super::audit::{ActorKind, AuditEvent};
use crate::model::error::Result;
use crate::model::{Change, DeviceUser};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Erasure {
    pub user_id: String,
    /// Photos and crops removed (metadata and blobs).
    pub files: usize,
    pub templates: u64,
    /// Whether the database's write-ahead log could be emptied at once
    /// (otherwise the next checkpoint overwrites what remains there).
    pub log_truncated: bool,
}

impl Core {
    /// Erases `user_id` of the tenant. `actor` names who asked (an admin
    /// or an app), for the audit log.
    pub async fn erase_person(
        &self,
        tenant_id: i64,
        user_id: &str,
        actor_kind: ActorKind,
        actor: &str,
        log_id: Option<String>,
    ) -> Result<Erasure> {
        let person = self.known_person(tenant_id, user_id).await?;
        // Terminals delete the person; the audit record names what went.
        let change = Change {
            delete_user: vec![DeviceUser {
                userid: person.user_id.clone(),
                user_type: person.user_type.as_i64(),
            }],
            ..Change::default()
        };
        let event = |files: usize, templates: u64| AuditEvent {
            tenant_id,
            actor_kind,
            actor: actor.to_string(),
            action: "person.erase",
            subject: Some(person.user_id.clone()),
            object: Some(format!("{files} files, {templates} templates")),
            result: "ok".into(),
            log_id,
        };
        let (files, templates) = self
            .db
            .erase_person(&person, &change, event, self.now())
            .await?;
        // Their user tokens are gone from the store; forget cached ones too.
        self.token_cache.invalidate_all();
        // The rows are gone (nothing can reach these blobs any more) and
        // their keys doomed in the same transaction: a blob left by a crash
        // here is deleted by the start-up sweep.
        for id in &files {
            self.drop_blob(id).await?;
        }
        let log_truncated = self.db.checkpoint_truncate().await?;
        tracing::info!(tenant_id, files = files.len(), templates, "erased a person");
        Ok(Erasure {
            user_id: person.user_id,
            files: files.len(),
            templates,
            log_truncated,
        })
    }
}
