//! The model: the values the store and the core share — validated ids,
//! tenants, people, files, devices, audit records — and the core's error.
//! It imports nothing else of facehub except `image` (leaf), so every
//! other layer can use it without a cycle.

pub mod access;
pub mod audit;
pub mod devices;
pub mod error;
pub mod files;
pub mod flows;
pub mod ids;
pub mod people;
pub mod tenancy;

pub use access::{AccessDelta, Book, BookKey, DayTime, RuleRow, RuleSpec};
pub use audit::{ActorKind, AuditEvent, AuditFilter, AuditRecord};
pub use devices::{
    Change, CheckinRecord, DeviceKey, DeviceRow, DeviceUser, Enrolment, FullSync, Modality,
    PendingDevice, PersonTemplates, Protocol, PushInfo, Seen, StoredTemplate, Stream,
    TemplateWrite, ZkQueue, ZkSettings,
};
pub use error::{Error, Result};
pub use files::{FileKind, FileRecord};
pub use flows::{FlowExtras, UserFlow};
pub use ids::{FileId, PhotoName, Scope, UserId, UserType};
pub use people::{AttendanceSetting, Person, PersonDraft, PersonKey};
pub use tenancy::{App, Tenant, TokenKind, TokenRecord};
