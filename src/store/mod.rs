//! Persistence: the metadata repository (SQLite, embedded) and blob storage.
//!
//! Write transactions write before they read wherever they can: SQLite takes
//! the write lock at the first write, and a deferred transaction that reads
//! first can fail with SQLITE_BUSY instead of waiting for the lock.

pub mod admin;
pub mod audit;
pub mod blob;
pub mod devices;
pub mod private;
pub mod s3;
pub mod sealed;
pub mod sealed_values;
pub mod transfer;

pub use private::{lock_data_dir, server_running};

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions, Executor, Row};

use crate::model::{
    App, AttendanceSetting, AuditEvent, Change, FileRecord, Person, PersonDraft, Tenant, TokenKind,
    TokenRecord,
};

/// An upload's intent was claimed by the orphan sweep before its row
/// could commit: the upload took longer than `orphan_grace_secs`.
#[derive(Debug, thiserror::Error)]
#[error(
    "the upload outlived orphan_grace_secs and its blob was claimed by the orphan sweep; \
     raise orphan_grace_secs above upload_deadline_secs"
)]
pub struct IntentLost;

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
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// PostgreSQL's URL, for the LISTEN connection (see [`Db::on_notices`]).
    url: Option<std::sync::Arc<str>>,
}

/// The channel nodes sharing a PostgreSQL store announce device-facing
/// changes on, so every node's device sync runs at once instead of at its
/// next one-second poll.
const DEVICES_CHANNEL: &str = "facehub_devices";

/// The channel a revocation of access tokens is announced on, so every
/// node forgets the tokens it has cached at once.
const TOKENS_CHANNEL: &str = "facehub_tokens";

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

/// A transaction on either engine.
pub type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// Outcome of writing a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Created,
    Updated,
    Unchanged,
}

/// Records a write's audit event in the write's own transaction: the
/// write and its record commit together, so no crash leaves one without
/// the other.
async fn audit_in(tx: &mut Tx<'_>, event: Option<&AuditEvent>) -> anyhow::Result<()> {
    if let Some(e) = event {
        audit::insert_audit_in(tx, &[e], chrono::Utc::now().timestamp_millis()).await?;
    }
    Ok(())
}

/// Whether a pooled connection may be handed out: one the driver still
/// counts inside a transaction is closed instead (closing it rolls back
/// whatever the database still holds, and frees its locks). A dropped
/// transaction's ROLLBACK has run by then (the pool pings a connection as
/// it takes it back), so this sees only transactions that could not be
/// ended: SQLite rolls a transaction back by itself on some I/O errors
/// (SQLITE_FULL, SQLITE_IOERR), after which the driver's own ROLLBACK
/// fails and its depth stays above zero; such a connection would fail
/// every `BEGIN IMMEDIATE`, and turn every `begin` into a SAVEPOINT that
/// keeps a real transaction, and the write lock, open for good.
fn outside_transaction(conn: &sqlx::AnyConnection) -> bool {
    use sqlx::Connection as _;
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!("a pooled database connection was left inside a transaction; closing it");
    }
    clean
}

impl Db {
    /// Opens the metadata store `database` names: a `postgres://` URL, or
    /// else the SQLite file at `sqlite_path`.
    pub async fn open(database: Option<&str>, sqlite_path: &Path) -> anyhow::Result<Db> {
        match database {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Db::open_postgres(url).await
            }
            Some(other) => anyhow::bail!(
                "database: {:?} is not a postgres:// URL (leave it unset for the embedded SQLite)",
                crate::config::redact_url(other)
            ),
            None => Db::open_sqlite(sqlite_path).await,
        }
    }

    /// Opens (creating if needed) the SQLite database at `path` in WAL mode
    /// with `synchronous=FULL`, so a committed transaction survives power loss,
    /// and brings its schema up to date. Its files are owner-only
    /// ([`private::database_files`]).
    pub async fn open_sqlite(path: &Path) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        private::database_files(path)?;
        let url = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .to_url_lossy();
        let opts = AnyConnectOptions::from_url(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .before_acquire(|conn, _| Box::pin(async move { Ok(outside_transaction(conn)) }))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // Per connection: the Any driver takes only a URL, which
                    // carries none of these. secure_delete overwrites deleted
                    // rows instead of leaving them in free pages: an erased
                    // person's sealed templates must not linger.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                         PRAGMA secure_delete = ON;",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .with_context(|| format!("opening database {}", path.display()))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .context("migrating database schema")?;
        Ok(Db {
            pool,
            backend: Backend::Sqlite,
            url: None,
        })
    }

    /// Connects to PostgreSQL and brings its schema up to date. Nodes
    /// starting together are safe: sqlx's migrator holds an advisory lock
    /// while it migrates, so one node migrates and the others wait.
    pub async fn open_postgres(url: &str) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let shown = crate::config::redact_url(url);
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .before_acquire(|conn, _| Box::pin(async move { Ok(outside_transaction(conn)) }))
            .connect(url)
            .await
            .with_context(|| format!("connecting to {shown}"))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .with_context(|| format!("migrating the schema of {shown}"))?;
        Ok(Db {
            pool,
            backend: Backend::Postgres,
            url: Some(url.into()),
        })
    }

    /// Tells every node sharing this store (PostgreSQL NOTIFY) that what
    /// devices are owed has changed. The change itself is committed: a
    /// lost notice only delays it to the nodes' next poll.
    pub async fn devices_changed(&self) -> anyhow::Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("NOTIFY facehub_devices")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Tells every node sharing this store (PostgreSQL NOTIFY) that `tx`
    /// revokes access tokens. The notice goes out when `tx` commits and
    /// only then: no node hears of a revocation before it can see it, and
    /// no crash between the commit and the notice can lose it.
    pub(crate) async fn tokens_revoked(&self, tx: &mut Tx<'_>) -> anyhow::Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("NOTIFY facehub_tokens")
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Calls `hear` with every [`Notice`] from any node (this one
    /// included), on one LISTEN connection for all channels, until the
    /// returned task is aborted; `None` on SQLite, whose one node needs no
    /// telling. The connection reconnects by itself, and says
    /// [`Notice::Listening`] each time it is up.
    pub fn on_notices(
        &self,
        hear: impl Fn(Notice) + Send + Sync + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let url = self.url.clone()?;
        Some(tokio::spawn(async move {
            loop {
                let listened: Result<std::convert::Infallible, sqlx::Error> = async {
                    let mut l = sqlx::postgres::PgListener::connect(&url).await?;
                    l.listen_all([DEVICES_CHANNEL, TOKENS_CHANNEL]).await?;
                    loop {
                        hear(Notice::Listening);
                        // `None`: the connection was lost and is back (the
                        // listener reconnects before it says so), so what
                        // was announced meanwhile went unheard.
                        while let Some(n) = l.try_recv().await? {
                            match n.channel() {
                                DEVICES_CHANNEL => hear(Notice::DevicesChanged),
                                TOKENS_CHANNEL => hear(Notice::TokensRevoked),
                                _ => {}
                            }
                        }
                    }
                }
                .await;
                let Err(e) = listened;
                tracing::warn!(error = %e, "listening for other nodes' notices; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a transaction that will write. SQLite's deferred transaction
    /// that reads before it writes can fail with SQLITE_BUSY on upgrade;
    /// `BEGIN IMMEDIATE` takes the write lock up front instead. PostgreSQL
    /// locks rows as they are written.
    pub(crate) async fn begin_write(&self) -> Result<Tx<'static>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Commits a one-row write, as every upload must: fails while the
    /// store cannot commit (a full disk, a write lock held, a read-only
    /// file), where a read still answers.
    pub async fn probe_commit(&self, now_ms: i64) -> anyhow::Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO meta(key, value) VALUES ('ready_probe', $1) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )
        .bind(now_ms.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await
    }

    // ---------------------------------------------------------------- meta

    pub async fn meta_get(&self, key: &str) -> anyhow::Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn meta_set(&self, key: &str, value: &str) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO meta(key, value) VALUES ($1, $2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Returns the value stored under `key`, storing `init()` first if the
    /// key is new. Concurrent first calls agree on one value.
    pub async fn meta_get_or_init(
        &self,
        key: &str,
        init: impl FnOnce() -> String,
    ) -> anyhow::Result<String> {
        sqlx::query("INSERT INTO meta(key, value) VALUES ($1, $2) ON CONFLICT(key) DO NOTHING")
            .bind(key)
            .bind(init())
            .execute(&self.pool)
            .await?;
        let v: String = sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await?;
        Ok(v)
    }

    // ------------------------------------------------------------- tenants

    pub async fn insert_tenant(
        &self,
        name: &str,
        tenant_key: &str,
        now: i64,
    ) -> Result<Tenant, sqlx::Error> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tenants(name, tenant_key, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(name)
        .bind(tenant_key)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(Tenant {
            id,
            name: name.to_string(),
            tenant_key: tenant_key.to_string(),
            created_at: now,
        })
    }

    pub async fn tenant_by_name(&self, name: &str) -> anyhow::Result<Option<Tenant>> {
        let row = sqlx::query("SELECT * FROM tenants WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| tenant_from_row(&r)))
    }

    pub async fn tenants(&self) -> anyhow::Result<Vec<Tenant>> {
        let rows = sqlx::query("SELECT * FROM tenants ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(tenant_from_row).collect())
    }

    // ---------------------------------------------------------------- apps

    /// Inserts an app together with the open_ids of the tenant's people.
    pub async fn insert_app(&self, app: &App, open_ids: &[(String, i64)]) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO apps(app_id, tenant_id, secret_hash, scopes, disabled, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&app.app_id)
        .bind(app.tenant_id)
        .bind(&app.secret_hash)
        .bind(app.scopes.join(" "))
        .bind(i64::from(app.disabled))
        .bind(app.created_at)
        .execute(&mut *tx)
        .await?;
        for (open_id, person_id) in open_ids {
            sqlx::query("INSERT INTO open_ids(open_id, app_id, person_id) VALUES ($1, $2, $3)")
                .bind(open_id)
                .bind(&app.app_id)
                .bind(person_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn app(&self, app_id: &str) -> anyhow::Result<Option<App>> {
        let row = sqlx::query("SELECT * FROM apps WHERE app_id = $1")
            .bind(app_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| app_from_row(&r)))
    }

    pub async fn apps(&self) -> anyhow::Result<Vec<App>> {
        let rows = sqlx::query("SELECT * FROM apps ORDER BY tenant_id, created_at, app_id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(app_from_row).collect())
    }

    pub async fn apps_of_tenant(&self, tenant_id: i64) -> anyhow::Result<Vec<App>> {
        let rows = sqlx::query("SELECT * FROM apps WHERE tenant_id = $1 ORDER BY app_id")
            .bind(tenant_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(app_from_row).collect())
    }

    // -------------------------------------------------------------- tokens

    /// The newest token of this app and kind that is still valid at `valid_at`.
    pub async fn newest_token(
        &self,
        app_id: &str,
        kind: TokenKind,
        valid_at: i64,
    ) -> anyhow::Result<Option<(Vec<u8>, i64)>> {
        let row = sqlx::query(
            "SELECT sealed, expires_at FROM tokens
             WHERE app_id = $1 AND kind = $2 AND expires_at > $3
             ORDER BY expires_at DESC LIMIT 1",
        )
        .bind(app_id)
        .bind(kind.as_str())
        .bind(valid_at)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (r.get("sealed"), r.get("expires_at"))))
    }

    pub async fn insert_token(
        &self,
        token_hash: &str,
        rec: &TokenRecord,
        sealed: &[u8],
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO tokens(token_hash, kind, app_id, tenant_id, person_id, sealed, issued_at,
                                expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(token_hash)
        .bind(rec.kind.as_str())
        .bind(&rec.app_id)
        .bind(rec.tenant_id)
        .bind(rec.person_id)
        .bind(sealed)
        .bind(rec.issued_at)
        .bind(rec.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn token(&self, token_hash: &str) -> anyhow::Result<Option<TokenRecord>> {
        let row = sqlx::query(
            "SELECT kind, app_id, tenant_id, person_id, issued_at, expires_at
             FROM tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|r| {
            Some(TokenRecord {
                kind: TokenKind::parse(r.get::<&str, _>("kind"))?,
                app_id: r.get("app_id"),
                tenant_id: r.get("tenant_id"),
                person_id: r.get("person_id"),
                issued_at: r.get("issued_at"),
                expires_at: r.get("expires_at"),
            })
        }))
    }

    pub async fn purge_tokens(&self, expired_before: i64) -> anyhow::Result<u64> {
        let r = sqlx::query("DELETE FROM tokens WHERE expires_at < $1")
            .bind(expired_before)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    // -------------------------------------------------------------- people

    /// Creates the person or updates name / employee_no / extra. A new
    /// person gets the given (app_id, open_id) pairs. What terminals are
    /// told is the caller's policy: `tell(old, new)` is called with the
    /// person's previous user type (`None` when created) and the new one,
    /// and the change it returns is logged in the same transaction, so
    /// that neither the person nor the change exists without the other.
    pub async fn upsert_person(
        &self,
        tenant_id: i64,
        draft: &PersonDraft,
        union_id: &str,
        open_ids: &[(String, String)],
        now: i64,
        tell: impl FnOnce(Option<i64>, i64) -> Option<Change>,
    ) -> Result<(Person, Upsert), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // Write first (see the module comment): an insert that does nothing
        // on conflict still takes the write lock.
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO people(tenant_id, user_id, union_id, name, employee_no, extra, user_type, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT(tenant_id, user_id) DO NOTHING RETURNING id",
        )
        .bind(tenant_id)
        .bind(draft.user_id.as_str())
        .bind(union_id)
        .bind(&draft.name)
        .bind(draft.employee_no.as_deref())
        .bind(draft.extra.to_string())
        .bind(draft.user_type.unwrap_or_default().as_i64())
        .bind(now)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = if let Some(id) = inserted {
            for (app_id, open_id) in open_ids {
                sqlx::query("INSERT INTO open_ids(open_id, app_id, person_id) VALUES ($1, $2, $3)")
                    .bind(open_id)
                    .bind(app_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(change) = tell(None, draft.user_type.unwrap_or_default().as_i64()) {
                record_change(&mut tx, tenant_id, &change, now).await?;
            }
            Upsert::Created
        } else {
            let old_type: i64 = sqlx::query_scalar(
                "SELECT user_type FROM people WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(tenant_id)
            .bind(draft.user_id.as_str())
            .fetch_one(&mut *tx)
            .await?;
            // No user_type given (a CSV without the column): keep it.
            let new_type = draft.user_type.map_or(old_type, |t| t.as_i64());
            let changed = sqlx::query(
                "UPDATE people SET name = $1, employee_no = $2, extra = $3, user_type = $4, updated_at = $5
                 WHERE tenant_id = $6 AND user_id = $7
                   AND (name IS DISTINCT FROM $8 OR employee_no IS DISTINCT FROM $9 OR extra IS DISTINCT FROM $10 OR user_type IS DISTINCT FROM $11)",
            )
            .bind(&draft.name)
            .bind(draft.employee_no.as_deref())
            .bind(draft.extra.to_string())
            .bind(new_type)
            .bind(now)
            .bind(tenant_id)
            .bind(draft.user_id.as_str())
            .bind(&draft.name)
            .bind(draft.employee_no.as_deref())
            .bind(draft.extra.to_string())
            .bind(new_type)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if let Some(change) = tell(Some(old_type), new_type) {
                record_change(&mut tx, tenant_id, &change, now).await?;
            }
            if changed > 0 {
                Upsert::Updated
            } else {
                Upsert::Unchanged
            }
        };
        let row = sqlx::query("SELECT * FROM people WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant_id)
            .bind(draft.user_id.as_str())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((person_from_row(&row), outcome))
    }

    pub async fn person_by_user_id(
        &self,
        tenant_id: i64,
        user_id: &str,
    ) -> anyhow::Result<Option<Person>> {
        let row = sqlx::query("SELECT * FROM people WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant_id)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| person_from_row(&r)))
    }

    pub async fn person_by_employee_no(
        &self,
        tenant_id: i64,
        employee_no: &str,
    ) -> anyhow::Result<Option<Person>> {
        let row = sqlx::query("SELECT * FROM people WHERE tenant_id = $1 AND employee_no = $2")
            .bind(tenant_id)
            .bind(employee_no)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| person_from_row(&r)))
    }

    pub async fn person(&self, person_id: i64) -> anyhow::Result<Option<Person>> {
        let row = sqlx::query("SELECT * FROM people WHERE id = $1")
            .bind(person_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| person_from_row(&r)))
    }

    pub async fn person_by_union_id(
        &self,
        tenant_id: i64,
        union_id: &str,
    ) -> anyhow::Result<Option<Person>> {
        let row = sqlx::query("SELECT * FROM people WHERE tenant_id = $1 AND union_id = $2")
            .bind(tenant_id)
            .bind(union_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| person_from_row(&r)))
    }

    /// The person an app knows under `open_id`.
    pub async fn person_by_open_id(
        &self,
        app_id: &str,
        open_id: &str,
    ) -> anyhow::Result<Option<Person>> {
        let row = sqlx::query(
            "SELECT p.* FROM people p JOIN open_ids o ON o.person_id = p.id
             WHERE o.app_id = $1 AND o.open_id = $2",
        )
        .bind(app_id)
        .bind(open_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| person_from_row(&r)))
    }

    // ---------------------------------------------------------- acs users

    /// Grants door access; `false` if the person already had it.
    pub async fn acs_grant(
        &self,
        tenant_id: i64,
        person_id: i64,
        now: i64,
    ) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "INSERT INTO acs_users(person_id, tenant_id, granted_at, updated_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(person_id)
        .bind(tenant_id)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Revokes door access; returns the row that was removed.
    /// The face files' rows go in the same transaction: their blobs are
    /// the caller's to delete (a crash first leaves orphan blobs, which the
    /// start-up sweep removes, never rows without a person).
    pub async fn acs_revoke(&self, person_id: i64) -> anyhow::Result<Option<AcsRow>> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("DELETE FROM acs_users WHERE person_id = $1 RETURNING *")
            .bind(person_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| acs_from_row(&r));
        if let Some(r) = &row {
            delete_files_in(&mut tx, [&r.face_file_id, &r.crop_file_id]).await?;
        }
        tx.commit().await?;
        Ok(row)
    }

    pub async fn acs_user(&self, person_id: i64) -> anyhow::Result<Option<AcsRow>> {
        let row = sqlx::query("SELECT * FROM acs_users WHERE person_id = $1")
            .bind(person_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| acs_from_row(&r)))
    }

    /// A page of the tenant's door-access users, in person order, after
    /// `after` (a person id).
    pub async fn acs_users_page(
        &self,
        tenant_id: i64,
        after: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<(Person, AcsRow)>> {
        let rows = sqlx::query(
            "SELECT p.*, a.person_id AS a_person_id, a.card AS a_card,
                    a.face_file_id AS a_face_file_id, a.crop_file_id AS a_crop_file_id,
                    a.face_box AS a_face_box
             FROM acs_users a JOIN people p ON p.id = a.person_id
             WHERE a.tenant_id = $1 AND a.person_id > $2 ORDER BY a.person_id LIMIT $3",
        )
        .bind(tenant_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    person_from_row(r),
                    AcsRow {
                        person_id: r.get("a_person_id"),
                        card: r.get("a_card"),
                        face_file_id: r.get("a_face_file_id"),
                        crop_file_id: r.get("a_crop_file_id"),
                        face_box: r.get("a_face_box"),
                    },
                )
            })
            .collect())
    }

    pub async fn acs_set_card(
        &self,
        person_id: i64,
        card: Option<i64>,
        now: i64,
    ) -> anyhow::Result<()> {
        sqlx::query("UPDATE acs_users SET card = $1, updated_at = $2 WHERE person_id = $3")
            .bind(card)
            .bind(now)
            .bind(person_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a newly enrolled face and drops the previous face's file
    /// rows with it; returns the previous row so its blobs can be deleted.
    pub async fn acs_set_face(
        &self,
        person_id: i64,
        face_file_id: &str,
        crop_file_id: &str,
        face_box: &str,
        now: i64,
        audit: Option<&AuditEvent>,
    ) -> anyhow::Result<Option<AcsRow>> {
        let mut tx = self.pool.begin().await?;
        // Write first (see the module comment): reading the old row before
        // taking the write lock lets a concurrent enrolment make this
        // transaction fail with SQLITE_BUSY instead of waiting.
        sqlx::query("UPDATE acs_users SET updated_at = updated_at WHERE person_id = $1")
            .bind(person_id)
            .execute(&mut *tx)
            .await?;
        let old = sqlx::query("SELECT * FROM acs_users WHERE person_id = $1")
            .bind(person_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| acs_from_row(&r));
        sqlx::query(
            "UPDATE acs_users SET face_file_id = $1, crop_file_id = $2, face_box = $3, updated_at = $4
             WHERE person_id = $5",
        )
        .bind(face_file_id)
        .bind(crop_file_id)
        .bind(face_box)
        .bind(now)
        .bind(person_id)
        .execute(&mut *tx)
        .await?;
        if let Some(o) = &old {
            delete_files_in(&mut tx, [&o.face_file_id, &o.crop_file_id]).await?;
        }
        // The photos are theirs, for erasure.
        sqlx::query("UPDATE files SET person_id = $1 WHERE file_id IN ($2, $3)")
            .bind(person_id)
            .bind(face_file_id)
            .bind(crop_file_id)
            .execute(&mut *tx)
            .await?;
        audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(old)
    }

    /// Door-access face files no door-access user refers to: what a crash
    /// between storing a face and recording it leaves.
    pub async fn dangling_face_files(&self) -> anyhow::Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT file_id FROM files WHERE kind IN ('acs_face', 'acs_face_crop')
               AND file_id NOT IN (SELECT face_file_id FROM acs_users WHERE face_file_id IS NOT NULL)
               AND file_id NOT IN (SELECT crop_file_id FROM acs_users WHERE crop_file_id IS NOT NULL)
             ORDER BY file_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Removes a file's metadata (its blob is the caller's to delete).
    pub async fn delete_file(&self, file_id: &str) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM files WHERE file_id = $1")
            .bind(file_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn people(&self, tenant_id: i64) -> anyhow::Result<Vec<Person>> {
        let rows = sqlx::query("SELECT * FROM people WHERE tenant_id = $1 ORDER BY user_id")
            .bind(tenant_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(person_from_row).collect())
    }

    /// (app_id, open_id) pairs of a person.
    pub async fn open_ids_of(&self, person_id: i64) -> anyhow::Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT app_id, open_id FROM open_ids WHERE person_id = $1 ORDER BY app_id",
        )
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("app_id"), r.get("open_id")))
            .collect())
    }

    // --------------------------------------------------------------- files

    /// Inserts a file row; `sealed_name` replaces `f.file_name`, which is
    /// not stored in clear. `intent` is the upload's intent
    /// ([`Db::intent_add`]) when it has one: it is dropped in the same
    /// transaction, and if the sweep has claimed it meanwhile (the upload
    /// outlived the grace) nothing is inserted and [`IntentLost`] is the
    /// error — the blob is the sweep's to delete.
    pub async fn insert_file(
        &self,
        f: &FileRecord,
        sealed_name: &[u8],
        intent: Option<i64>,
        audit: Option<&AuditEvent>,
    ) -> anyhow::Result<()> {
        let mut tx = self.begin_write().await?;
        if let Some(at) = intent {
            let n = sqlx::query("DELETE FROM blob_intents WHERE key = $1 AND created_at = $2")
                .bind(&f.file_id)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                return Err(IntentLost.into());
            }
        }
        sqlx::query(
            "INSERT INTO files(file_id, tenant_id, kind, file_name, format, width, height, size, sha256, key_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&f.file_id)
        .bind(f.tenant_id)
        .bind(&f.kind)
        .bind(sealed_name)
        .bind(&f.format)
        .bind(f.width)
        .bind(f.height)
        .bind(f.size)
        .bind(&f.sha256)
        .bind(f.key_id)
        .bind(f.created_at)
        .execute(&mut *tx)
        .await?;
        audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records, before an upload's first byte goes to a shared store, that
    /// `key` may soon name an object no row protects.
    pub async fn intent_add(&self, key: &str, at: i64) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO blob_intents(key, created_at) VALUES ($1, $2)")
            .bind(key)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets the intent of `key` (its blob is gone, or its upload failed
    /// and its blob was deleted).
    pub async fn intent_remove(&self, key: &str) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM blob_intents WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Intents the sweep may act on: doomed ones, and uploads' recorded
    /// at or before `until` (key, created_at).
    pub async fn intents_due(&self, until: i64) -> anyhow::Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT key, created_at FROM blob_intents WHERE created_at <= $1")
            .bind(until)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("key"), r.get("created_at")))
            .collect())
    }

    /// Claims an upload's intent for the sweep: marks it doomed unless its
    /// upload has committed (or it changed) meanwhile. After this the
    /// upload can no longer commit, so its blob may go.
    pub async fn intent_doom(&self, key: &str, at: i64) -> anyhow::Result<bool> {
        Ok(sqlx::query(
            "UPDATE blob_intents SET created_at = 0 WHERE key = $1 AND created_at = $2
                 AND NOT EXISTS (SELECT 1 FROM files WHERE file_id = $3)",
        )
        .bind(key)
        .bind(at)
        .bind(key)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    /// Every key with an intent (for consistency checks).
    pub async fn intent_keys(&self) -> anyhow::Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT key FROM blob_intents")
            .fetch_all(&self.pool)
            .await?)
    }

    /// A file of `tenant_id` and its sealed name (`file_name` is left
    /// empty); another tenant's file is simply not found.
    pub async fn file(
        &self,
        tenant_id: i64,
        kind: &str,
        file_id: &str,
    ) -> anyhow::Result<Option<(FileRecord, Vec<u8>)>> {
        let row = sqlx::query(
            "SELECT f.*, p.user_id AS owner FROM files f LEFT JOIN people p ON p.id = f.person_id
                 WHERE f.file_id = $1 AND f.tenant_id = $2 AND f.kind = $3",
        )
        .bind(file_id)
        .bind(tenant_id)
        .bind(kind)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| {
            (
                FileRecord {
                    file_id: r.get("file_id"),
                    tenant_id: r.get("tenant_id"),
                    kind: r.get("kind"),
                    file_name: String::new(),
                    format: r.get("format"),
                    width: r.get("width"),
                    height: r.get("height"),
                    size: r.get("size"),
                    sha256: r.get("sha256"),
                    key_id: r.get("key_id"),
                    created_at: r.get("created_at"),
                    owner: r.get("owner"),
                },
                r.get("file_name"),
            )
        }))
    }

    /// Every file id referenced by metadata (for consistency checks).
    pub async fn file_ids(&self) -> anyhow::Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT file_id FROM files")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Files in id order after `after`: (file_id, kind, digest of the
    /// sealed blob).
    pub async fn file_count(&self) -> anyhow::Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM files")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    pub async fn file_digests(
        &self,
        after: &str,
        limit: i64,
    ) -> anyhow::Result<Vec<(String, String, String)>> {
        let rows = sqlx::query(
            "SELECT file_id, kind, sha256 FROM files WHERE file_id > $1 ORDER BY file_id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("file_id"), r.get("kind"), r.get("sha256")))
            .collect())
    }

    /// Which of `ids` have a file row.
    pub async fn known_file_ids(&self, ids: &[String]) -> anyhow::Result<Vec<String>> {
        let mut known = Vec::new();
        for id in ids {
            let hit: Option<String> =
                sqlx::query_scalar("SELECT file_id FROM files WHERE file_id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
            known.extend(hit);
        }
        Ok(known)
    }

    /// Erases a person in one transaction: every photo ever bound to them
    /// (rows only; the blobs are the caller's to delete afterwards, and a
    /// crash first leaves orphans the start-up sweep removes), the person
    /// and, by cascade, their settings, door access, templates, enrolments,
    /// punch records, open ids and tokens. Terminals are told through the
    /// change log (`change`), and the erasure is audited in the same
    /// transaction with the record `audit(files, templates)` returns, so
    /// that no erasure goes unrecorded. Returns the erased files' ids and
    /// the template count.
    pub async fn erase_person(
        &self,
        person: &Person,
        change: &Change,
        audit: impl FnOnce(usize, u64) -> AuditEvent,
        now: i64,
    ) -> anyhow::Result<(Vec<String>, u64)> {
        let mut tx = self.pool.begin().await?;
        // Write first (see acs_set_face): take the write lock before reading.
        let gone = sqlx::query("UPDATE people SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(person.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        anyhow::ensure!(gone == 1, "person {} vanished", person.id);
        let files: Vec<String> = sqlx::query_scalar(
            "SELECT file_id FROM files WHERE person_id = $1
             UNION SELECT face_key FROM attendance_settings WHERE person_id = $1
             UNION SELECT face_file_id FROM acs_users WHERE person_id = $1 AND face_file_id IS NOT NULL
             UNION SELECT crop_file_id FROM acs_users WHERE person_id = $1 AND crop_file_id IS NOT NULL",
        )
        .bind(person.id)
        .fetch_all(&mut *tx)
        .await?;
        let templates: i64 =
            sqlx::query_scalar("SELECT count(*) FROM templates WHERE person_id = $1")
                .bind(person.id)
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query("DELETE FROM people WHERE id = $1")
            .bind(person.id)
            .execute(&mut *tx)
            .await?;
        for id in &files {
            sqlx::query("DELETE FROM files WHERE file_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        record_change(&mut tx, person.tenant_id, change, now).await?;
        let audit = audit(files.len(), templates as u64);
        audit::insert_audit_in(&mut tx, &[&audit], now * 1000).await?;
        // The person's user tokens went with their row (ON DELETE CASCADE).
        self.tokens_revoked(&mut tx).await?;
        tx.commit().await?;
        Ok((files, templates as u64))
    }

    /// Folds the write-ahead log into the database and empties it, so
    /// that deleted pages survive in neither file. Readers can hold the
    /// log for a moment: retried briefly, then left to the next checkpoint.
    /// PostgreSQL has neither file; its dead rows (sealed values only) go
    /// when vacuum reuses their space.
    pub async fn checkpoint_truncate(&self) -> anyhow::Result<bool> {
        if self.backend == Backend::Postgres {
            return Ok(true);
        }
        for _ in 0..50 {
            let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&self.pool)
                .await?;
            if busy == 0 {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(false)
    }

    // ---------------------------------------------------------- attendance

    pub async fn set_attendance(
        &self,
        person_id: i64,
        s: &AttendanceSetting,
        now: i64,
        audit: Option<&AuditEvent>,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO attendance_settings(person_id, face_key, face_key_open, face_key_update_time, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT(person_id) DO UPDATE SET face_key = excluded.face_key,
                 face_key_open = excluded.face_key_open,
                 face_key_update_time = excluded.face_key_update_time,
                 updated_at = excluded.updated_at",
        )
        .bind(person_id)
        .bind(&s.face_key)
        .bind(i64::from(s.face_key_open))
        .bind(s.face_key_update_time)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // The photo is theirs from now on, for erasure.
        sqlx::query("UPDATE files SET person_id = $1 WHERE file_id = $2")
            .bind(person_id)
            .bind(&s.face_key)
            .execute(&mut *tx)
            .await?;
        audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn attendance(&self, person_id: i64) -> anyhow::Result<Option<AttendanceSetting>> {
        let row = sqlx::query(
            "SELECT face_key, face_key_open, face_key_update_time FROM attendance_settings WHERE person_id = $1",
        )
        .bind(person_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| AttendanceSetting {
            face_key: r.get("face_key"),
            face_key_open: r.get::<i64, _>("face_key_open") != 0,
            face_key_update_time: r.get("face_key_update_time"),
        }))
    }
}

fn tenant_from_row(r: &AnyRow) -> Tenant {
    Tenant {
        id: r.get("id"),
        name: r.get("name"),
        tenant_key: r.get("tenant_key"),
        created_at: r.get("created_at"),
    }
}

fn app_from_row(r: &AnyRow) -> App {
    let scopes: String = r.get("scopes");
    App {
        app_id: r.get("app_id"),
        tenant_id: r.get("tenant_id"),
        secret_hash: r.get("secret_hash"),
        scopes: scopes.split_whitespace().map(str::to_string).collect(),
        disabled: r.get::<i64, _>("disabled") != 0,
        created_at: r.get("created_at"),
    }
}

/// A door-access user's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcsRow {
    pub person_id: i64,
    pub card: Option<i64>,
    pub face_file_id: Option<String>,
    pub crop_file_id: Option<String>,
    pub face_box: Option<String>,
}

fn acs_from_row(r: &AnyRow) -> AcsRow {
    AcsRow {
        person_id: r.get("person_id"),
        card: r.get("card"),
        face_file_id: r.get("face_file_id"),
        crop_file_id: r.get("crop_file_id"),
        face_box: r.get("face_box"),
    }
}

pub(crate) fn person_from_row(r: &AnyRow) -> Person {
    let extra: String = r.get("extra");
    Person {
        id: r.get("id"),
        tenant_id: r.get("tenant_id"),
        user_id: r.get("user_id"),
        union_id: r.get("union_id"),
        name: r.get("name"),
        employee_no: r.get("employee_no"),
        extra: serde_json::from_str(&extra).unwrap_or_default(),
        user_type: crate::model::UserType::from_i64(r.get("user_type")).unwrap_or_default(),
        fa_ver: r.get("fa_ver"),
        fp_ver: r.get("fp_ver"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

/// Records a change inside a person write, keeping that write's error type.
async fn record_change(
    tx: &mut Tx<'_>,
    tenant_id: i64,
    change: &Change,
    now: i64,
) -> Result<i64, sqlx::Error> {
    devices::record_change_in(tx, tenant_id, change, now)
        .await
        .map_err(|e| match e.downcast::<sqlx::Error>() {
            Ok(e) => e,
            Err(e) => sqlx::Error::Protocol(e.to_string()),
        })
}

/// True for a UNIQUE constraint violation.
async fn delete_files_in(tx: &mut Tx<'_>, ids: [&Option<String>; 2]) -> anyhow::Result<()> {
    for id in ids.into_iter().flatten() {
        sqlx::query("DELETE FROM files WHERE file_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// `$first, $first+1, …` for `n` values. (sqlx's QueryBuilder writes `?`
/// under the Any driver, which PostgreSQL does not take.)
pub(crate) fn placeholders(n: usize, first: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($first, …), (…), …` for `rows` rows of `cols` values.
pub(crate) fn values_rows(rows: usize, cols: usize, first: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders(cols, first + r * cols)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod sql_tests {
    use super::*;

    #[test]
    fn placeholders_number_from_first() {
        assert_eq!(placeholders(3, 2), "$2, $3, $4");
        assert_eq!(values_rows(2, 2, 2), "($2, $3), ($4, $5)");
    }

    /// SQLite rolls a transaction back by itself on some I/O errors (a full
    /// disk among them); the driver's own ROLLBACK then fails, its depth
    /// stays at one, and the connection went back to the pool "inside" a
    /// transaction: `begin_with` then failed on it for good, and `begin`
    /// opened a SAVEPOINT, a real transaction no ROLLBACK TO ever ended,
    /// holding the database's write lock. Simulated here by ending the
    /// transaction behind the driver's back.
    #[tokio::test]
    async fn a_transaction_ended_behind_the_driver_leaks_no_connection() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        db.meta_set("k", "0").await.unwrap();
        for round in 0..3 {
            let mut tx = db.begin_write().await.unwrap();
            sqlx::query("UPDATE meta SET value = 'lost' WHERE key = 'k'")
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query("ROLLBACK").execute(&mut *tx).await.unwrap();
            drop(tx);
            // Every later transaction works, and none holds the lock.
            for i in 0..10 {
                let mut tx = db
                    .begin_write()
                    .await
                    .unwrap_or_else(|e| panic!("{round}.{i}: {e}"));
                sqlx::query("UPDATE meta SET value = $1 WHERE key = 'k'")
                    .bind(format!("{round}.{i}"))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                let mut tx = db.pool.begin().await.unwrap();
                sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
                tx.rollback().await.unwrap();
            }
            assert_eq!(
                db.meta_get("k").await.unwrap().as_deref(),
                Some(format!("{round}.9").as_str())
            );
        }
        // Another connection (another process) can still write at once.
        let other = Db::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        tokio::time::timeout(Duration::from_secs(2), other.meta_set("k", "other"))
            .await
            .expect("the database is not left locked")
            .unwrap();
    }
}
