//! Persistence: the metadata repository (SQLite, embedded) and blob storage.
//!
//! Write transactions write before they read wherever they can: SQLite takes
//! the write lock at the first write, and a deferred transaction that reads
//! first can fail with SQLITE_BUSY instead of waiting for the lock.
//!
//! Each aggregate has its own file, an `impl Db` block: `pool` (opening,
//! transactions, notices between nodes; `reach` watches PostgreSQL), `meta`, `tenants` (tenants, apps,
//! tokens), `people`, `acs` (door-access users), `access` (access rules
//! and the terminals' address books, worked out in `books`), `files` (files and upload
//! intents), `erasure`, `devices`, `templates`, `changes` (the change
//! log), `enrolments`, `flows` (punch records), `admin` and `audit`; row mappers are in
//! `rows`, SQL helpers in `sql`.

mod access;
mod acs;
pub mod admin;
pub mod audit;
pub mod blob;
mod books;
mod changes;
pub mod devices;
mod enrolments;
mod erasure;
mod files;
pub mod flows;
mod meta;
mod people;
mod pool;
pub mod private;
mod reach;
mod rows;
pub mod s3;
pub mod sealed;
pub mod sealed_values;
mod sql;
mod templates;
mod tenants;
pub mod transfer;

pub use access::{AccessOutcome, AccessWrite};
pub use acs::AcsRow;
pub use files::IntentLost;
pub use private::{lock_data_dir, server_running};
pub use sql::{Tx, is_unique_violation};

use sqlx::AnyPool;

/// The engine behind [`Db`]. One SQL text serves both (sqlx's `Any`
/// driver, `$N` placeholders, which SQLite accepts too); what differs
/// is here: how a write transaction starts, and SQLite's file upkeep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The metadata repository: SQLite in the data directory (embedded, the
/// default) or PostgreSQL (shared by the nodes of a deployment).
#[derive(Clone)]
pub struct Db {
    /// Reached through [`Db::pool`], which fails at once while PostgreSQL
    /// does not answer.
    connections: AnyPool,
    backend: Backend,
    /// PostgreSQL's URL, for the LISTEN connection (see [`Db::on_notices`]).
    url: Option<std::sync::Arc<str>>,
    /// Whether PostgreSQL answers (always, for SQLite).
    reach: std::sync::Arc<reach::Reach>,
}

/// What a node hears on its LISTEN connection (see [`Db::on_notices`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The connection is (re)established: whatever was announced before
    /// went unheard.
    Listening,
    /// [`Db::devices_changed`].
    DevicesChanged,
    /// A transaction that revoked access tokens committed.
    TokensRevoked,
}

/// Outcome of writing a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Created,
    Updated,
    Unchanged,
}
