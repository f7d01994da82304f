//! Visitors (`acs/v1/visitors`): people of a tenant who reach terminals
//! only through access rules, in the terminals' visitor list (its own
//! `visitor_version`), never in the staff's address book. A visitor can
//! have a face photo and templates like staff, and is erased, with them,
//! when deleted or once every rule naming them has ended.

use serde_json::{Map, Value};

use super::audit::AuditEvent;
use super::auth::Caller;
use super::{Core, Person, PersonDraft};
use crate::model::error::{Error, Result};
use crate::model::{ActorKind, UserType};

/// A visitor as a caller creates one.
#[derive(Debug, Clone, Default)]
pub struct VisitorDraft {
    pub name: String,
    /// What the caller says of the visitor beyond the name (`user_type`,
    /// `user_id`, `phone_num`, `department_id`), kept as given and shown
    /// with the rules that name them.
    pub details: Map<String, Value>,
}

impl Core {
    /// Creates a visitor; returns their `visitor_id` (their user id on the
    /// device protocol, with user_type 1).
    pub async fn create_visitor(&self, caller: &Caller, draft: VisitorDraft) -> Result<String> {
        let tenant = self
            .db
            .tenant_by_id(caller.tenant_id)
            .await?
            .ok_or_else(|| Error::internal("the caller's tenant is gone"))?;
        let id = crate::model::ids::platform_id();
        let mut person = PersonDraft::new(&id, &draft.name, None)
            .map_err(|_| Error::param("user.user_name must be 1 to 128 printable characters"))?;
        person.user_type = Some(UserType::Visitor);
        person.extra = Value::Object(draft.details);
        self.upsert_person(&tenant, &person).await?;
        let event = AuditEvent::by(caller, "visitor.create", &Ok(())).subject(Some(&id));
        self.audit.record(vec![event]).await?;
        Ok(id)
    }

    /// Deletes visitor `visitor_id` and everything stored of them (their
    /// photos and templates): terminals drop them from their visitor list.
    pub async fn delete_visitor(&self, caller: &Caller, visitor_id: &str) -> Result<()> {
        self.visitor(caller.tenant_id, visitor_id).await?;
        self.erase_person(
            caller.tenant_id,
            visitor_id,
            ActorKind::App,
            &caller.app_id,
            caller.log_id.clone(),
        )
        .await?;
        Ok(())
    }

    /// The tenant's visitor `visitor_id`, or a parameter error naming it.
    pub async fn visitor(&self, tenant_id: i64, visitor_id: &str) -> Result<Person> {
        self.person(tenant_id, visitor_id)
            .await?
            .filter(|p| p.user_type == UserType::Visitor)
            .ok_or_else(|| {
                Error::param(format!(
                    "visitor {visitor_id:?} is not a visitor of this tenant"
                ))
            })
    }

    /// Erases the visitors every rule of whom has ended: nothing is kept of
    /// a visit once it is over. Returns how many went.
    pub async fn expire_visitors(&self) -> Result<usize> {
        let now = self.now();
        let mut gone = 0;
        for (tenant_id, user_id) in self.db.visitors_past(now).await? {
            match self
                .erase_person(tenant_id, &user_id, ActorKind::Admin, "retention", None)
                .await
            {
                Ok(_) => gone += 1,
                // Erased meanwhile (by its API, another node).
                Err(Error::UserNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(gone)
    }
}
