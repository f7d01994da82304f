//! Audit records: who did what to whose biometric data, and how it ended.
//! Records carry identifiers only, never photo or template bytes.

use serde::Serialize;

use super::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// An app with a tenant token.
    App,
    /// A person acting through an app (user access token).
    User,
    /// A terminal on the device protocol.
    Device,
    /// An administrator (the CLI or the admin API).
    Admin,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::App => "app",
            ActorKind::User => "user",
            ActorKind::Device => "device",
            ActorKind::Admin => "admin",
        }
    }
}

/// One audited action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub tenant_id: i64,
    pub actor_kind: ActorKind,
    pub actor: String,
    pub action: &'static str,
    /// The user_id of the person concerned, when known.
    pub subject: Option<String>,
    /// The file id, file token, or templates concerned.
    pub object: Option<String>,
    /// `ok`, or the kind of error the caller was answered with.
    pub result: String,
    pub log_id: Option<String>,
}

impl AuditEvent {
    /// An action by a terminal.
    pub fn by_device(tenant_id: i64, sn: &str, action: &'static str) -> AuditEvent {
        AuditEvent {
            tenant_id,
            actor_kind: ActorKind::Device,
            actor: sn.to_string(),
            action,
            subject: None,
            object: None,
            result: "ok".into(),
            log_id: None,
        }
    }

    pub fn subject(mut self, user_id: Option<&str>) -> Self {
        self.subject = user_id.map(str::to_string);
        self
    }

    pub fn object(mut self, object: impl Into<String>) -> Self {
        self.object = Some(object.into());
        self
    }
}

/// `ok`, or what kind of error the caller was answered with.
pub fn result_of<T>(outcome: &Result<T>) -> String {
    match outcome {
        Ok(_) => "ok".into(),
        Err(e) => e.kind().into(),
    }
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub at_ms: i64,
    pub actor_kind: String,
    pub actor: String,
    pub action: String,
    pub subject: Option<String>,
    pub object: Option<String>,
    pub result: String,
    pub log_id: Option<String>,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub subject: Option<String>,
    pub action: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
}
